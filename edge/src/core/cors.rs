//! CORS, answered entirely at the edge: preflights never reach the brain, and the CORS headers
//! on actual responses are the edge's, computed per request from an allowlist.
//!
//! Origins are compared as parsed (scheme, host, port) triples: exact on scheme and port
//! (a default port equals no port), case-insensitive on the host, and never by substring, so
//! `https://evil-example.com` and `https://example.com.evil.net` match neither
//! `https://example.com` nor `https://*.example.com`. The `null` origin is never allowed.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use shared_types::error::ErrorCode;

use super::policy_error::PolicyError;
use super::request_id::RequestId;
use super::response::{EdgeResponse, set_request_id};

/// Request headers a browser may send cross-origin unless configured otherwise.
pub const DEFAULT_ALLOWED_HEADERS: [&str; 4] = [
    "authorization",
    "content-type",
    "x-request-id",
    "x-session-id",
];
/// Response headers scripts may read unless configured otherwise: the edge's own contract.
pub const DEFAULT_EXPOSED_HEADERS: [&str; 6] = [
    "x-request-id",
    "x-edge-cache",
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
    "x-session-id",
];
/// Methods allowed cross-origin unless configured otherwise.
pub const DEFAULT_METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// Default `Access-Control-Max-Age` (browsers cap it further: Chromium at 2 h, Firefox at 24 h).
pub const DEFAULT_MAX_AGE_SECS: u32 = 600;
/// Largest accepted `max_age_secs`.
pub const MAX_MAX_AGE_SECS: u32 = 86_400;

/// The CORS configuration, validated while deserialized:
///
/// ```json
/// {"allowed_origins": ["https://app.example.com", "https://*.example.com"],
///  "allowed_methods": ["GET", "POST"], "allowed_headers": ["content-type"],
///  "exposed_headers": ["x-request-id"], "max_age_secs": 600, "allow_credentials": true}
/// ```
/// Only `allowed_origins` is required. An origin is `http(s)://host[:port]` (no path, no
/// trailing slash); `https://*.example.com` allows every subdomain of `example.com` at any
/// depth but not `example.com` itself (list it separately); a lone `*` allows every origin and
/// is refused together with `allow_credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawCorsConfig")]
pub struct CorsConfig {
    origins: Vec<OriginPattern>,
    any_origin: bool,
    methods: Vec<Method>,
    allow_credentials: bool,
    allowed_headers: Vec<HeaderName>,
    allow_methods_value: HeaderValue,
    allow_headers_value: Option<HeaderValue>,
    expose_headers_value: Option<HeaderValue>,
    max_age_value: HeaderValue,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCorsConfig {
    allowed_origins: Vec<String>,
    #[serde(default = "default_methods")]
    allowed_methods: Vec<String>,
    #[serde(default = "default_allowed_headers")]
    allowed_headers: Vec<String>,
    #[serde(default = "default_exposed_headers")]
    exposed_headers: Vec<String>,
    #[serde(default = "default_max_age")]
    max_age_secs: u32,
    #[serde(default)]
    allow_credentials: bool,
}

fn owned(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
fn default_methods() -> Vec<String> {
    owned(&DEFAULT_METHODS)
}
fn default_allowed_headers() -> Vec<String> {
    owned(&DEFAULT_ALLOWED_HEADERS)
}
fn default_exposed_headers() -> Vec<String> {
    owned(&DEFAULT_EXPOSED_HEADERS)
}
fn default_max_age() -> u32 {
    DEFAULT_MAX_AGE_SECS
}

impl TryFrom<RawCorsConfig> for CorsConfig {
    type Error = PolicyError;

    fn try_from(raw: RawCorsConfig) -> Result<Self, PolicyError> {
        let mut origins = Vec::new();
        let mut any_origin = false;
        for (i, entry) in raw.allowed_origins.iter().enumerate() {
            let field = format!("allowed_origins[{i}]");
            if entry == "*" {
                if raw.allow_credentials {
                    return Err(PolicyError::new(
                        field,
                        "`*` cannot be combined with allow_credentials; list the origins",
                    ));
                }
                any_origin = true;
            } else {
                origins.push(OriginPattern::parse(entry).map_err(|reason| {
                    PolicyError::new(field, format!("{reason} (got {entry:?})"))
                })?);
            }
        }

        let mut methods = Vec::new();
        for (i, raw_method) in raw.allowed_methods.iter().enumerate() {
            let method = Method::from_bytes(raw_method.as_bytes())
                .ok()
                .filter(|_| raw_method != "*")
                .ok_or_else(|| {
                    PolicyError::new(
                        format!("allowed_methods[{i}]"),
                        format!("not a method name (wildcards are not supported): {raw_method:?}"),
                    )
                })?;
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        let allowed_headers = header_names("allowed_headers", &raw.allowed_headers)?;
        let exposed_headers = header_names("exposed_headers", &raw.exposed_headers)?;
        if raw.max_age_secs > MAX_MAX_AGE_SECS {
            return Err(PolicyError::new(
                "max_age_secs",
                format!(
                    "must be at most {MAX_MAX_AGE_SECS}, got {}",
                    raw.max_age_secs
                ),
            ));
        }

        let join = |items: Vec<&str>| {
            (!items.is_empty())
                .then(|| items.join(", "))
                .and_then(|joined| HeaderValue::from_str(&joined).ok())
        };
        let allow_methods_value = join(methods.iter().map(Method::as_str).collect())
            .unwrap_or_else(|| HeaderValue::from_static(""));
        let allow_headers_value = join(allowed_headers.iter().map(HeaderName::as_str).collect());
        let expose_headers_value = join(exposed_headers.iter().map(HeaderName::as_str).collect());
        Ok(Self {
            origins,
            any_origin,
            methods,
            allow_credentials: raw.allow_credentials,
            allowed_headers,
            allow_methods_value,
            allow_headers_value,
            expose_headers_value,
            max_age_value: HeaderValue::from(raw.max_age_secs),
        })
    }
}

fn header_names(field: &str, raw: &[String]) -> Result<Vec<HeaderName>, PolicyError> {
    let mut names = Vec::new();
    for (i, name) in raw.iter().enumerate() {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .ok()
            .filter(|_| name != "*")
            .ok_or_else(|| {
                PolicyError::new(
                    format!("{field}[{i}]"),
                    format!("not a header name (wildcards are not supported): {name:?}"),
                )
            })?;
        if !names.contains(&parsed) {
            names.push(parsed);
        }
    }
    Ok(names)
}

/// What to do with an `OPTIONS` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// Not a CORS preflight (not `OPTIONS`, or no `Origin` / `Access-Control-Request-Method`):
    /// handle it like any other request.
    NotPreflight,
    /// Answer `204 No Content` with these headers ([`CorsConfig::preflight_response`] does).
    Allowed(HeaderMap),
    /// Answer `403` `forbidden` in the error shape, without CORS headers (so the browser
    /// blocks the actual request). The reason goes into the message.
    Rejected(PreflightRejection),
}

/// Why a preflight was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightRejection {
    /// The origin is not allowlisted, is `null`, is malformed or was sent more than once.
    OriginNotAllowed,
    /// `Access-Control-Request-Method` names a method that is not allowed (or no method).
    MethodNotAllowed(String),
    /// `Access-Control-Request-Headers` names a header that is not allowed.
    HeaderNotAllowed(String),
}

impl core::fmt::Display for PreflightRejection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::OriginNotAllowed => f.write_str("CORS: the origin is not allowed"),
            Self::MethodNotAllowed(method) => {
                write!(f, "CORS: the method {method:?} is not allowed")
            }
            Self::HeaderNotAllowed(name) => {
                write!(f, "CORS: the request header {name:?} is not allowed")
            }
        }
    }
}

/// Methods a browser may always send cross-origin (Fetch's CORS-safelisted methods).
const SAFELISTED_METHODS: [Method; 3] = [Method::GET, Method::HEAD, Method::POST];

impl CorsConfig {
    /// No origin allowed (used when `CORS` is not configured): same-origin requests work,
    /// cross-origin preflights are refused at the edge.
    pub fn deny_all() -> Self {
        let raw = RawCorsConfig {
            allowed_origins: Vec::new(),
            allowed_methods: default_methods(),
            allowed_headers: default_allowed_headers(),
            exposed_headers: default_exposed_headers(),
            max_age_secs: default_max_age(),
            allow_credentials: false,
        };
        match Self::try_from(raw) {
            Ok(config) => config,
            // The defaults are valid; this arm only keeps the function total.
            Err(_) => Self {
                origins: Vec::new(),
                any_origin: false,
                methods: Vec::new(),
                allow_credentials: false,
                allowed_headers: Vec::new(),
                allow_methods_value: HeaderValue::from_static(""),
                allow_headers_value: None,
                expose_headers_value: None,
                max_age_value: HeaderValue::from_static("0"),
            },
        }
    }

    /// Classifies a request and, for a preflight, decides it.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Preflight {
        if method != Method::OPTIONS
            || !headers.contains_key(ORIGIN)
            || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return Preflight::NotPreflight;
        }
        let Some(origin) = self.allowed_origin(headers) else {
            return Preflight::Rejected(PreflightRejection::OriginNotAllowed);
        };
        let requested = headers.get(ACCESS_CONTROL_REQUEST_METHOD);
        let method_ok = requested
            .and_then(|value| Method::from_bytes(value.as_bytes()).ok())
            .is_some_and(|m| SAFELISTED_METHODS.contains(&m) || self.methods.contains(&m));
        if !method_ok
            || headers
                .get_all(ACCESS_CONTROL_REQUEST_METHOD)
                .iter()
                .count()
                != 1
        {
            let shown = requested.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Preflight::Rejected(PreflightRejection::MethodNotAllowed(
                shown.unwrap_or_default(),
            ));
        }
        for value in headers.get_all(ACCESS_CONTROL_REQUEST_HEADERS) {
            for name in value.as_bytes().split(|&b| b == b',') {
                let name = name.trim_ascii();
                if name.is_empty() {
                    continue;
                }
                let allowed = HeaderName::from_bytes(name)
                    .is_ok_and(|parsed| self.allowed_headers.contains(&parsed));
                if !allowed {
                    return Preflight::Rejected(PreflightRejection::HeaderNotAllowed(
                        String::from_utf8_lossy(name).into_owned(),
                    ));
                }
            }
        }

        let mut out = HeaderMap::new();
        out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.allow_credentials {
            out.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        out.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            self.allow_methods_value.clone(),
        );
        if let Some(value) = &self.allow_headers_value {
            out.insert(ACCESS_CONTROL_ALLOW_HEADERS, value.clone());
        }
        out.insert(ACCESS_CONTROL_MAX_AGE, self.max_age_value.clone());
        out.insert(
            VARY,
            HeaderValue::from_static(
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
            ),
        );
        Preflight::Allowed(out)
    }

    /// The edge's whole answer to a preflight: `None` when the request is not one, else a 204
    /// with the CORS headers or a 403 `forbidden` in the error shape. Both carry `x-request-id`.
    pub fn preflight_response(
        &self,
        method: &Method,
        headers: &HeaderMap,
        request_id: &RequestId,
    ) -> Option<EdgeResponse> {
        match self.preflight(method, headers) {
            Preflight::NotPreflight => None,
            Preflight::Allowed(mut headers) => {
                set_request_id(&mut headers, request_id);
                Some(EdgeResponse {
                    status: StatusCode::NO_CONTENT,
                    headers,
                    body: Vec::new(),
                })
            }
            Preflight::Rejected(reason) => Some(EdgeResponse::error(
                ErrorCode::Forbidden,
                reason.to_string(),
                request_id,
            )),
        }
    }

    /// The CORS headers for the response to an actual (non-preflight) request: always
    /// `Vary: Origin` (the answer depends on it, so caches must key on it); for an allowlisted
    /// origin also `Access-Control-Allow-Origin` echoing it, `Access-Control-Expose-Headers`,
    /// and `Access-Control-Allow-Credentials: true` when credentials are enabled.
    pub fn response_headers(&self, request: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        out.insert(VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = self.allowed_origin(request) {
            out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            if self.allow_credentials {
                out.insert(
                    ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
            }
            if let Some(value) = &self.expose_headers_value {
                out.insert(ACCESS_CONTROL_EXPOSE_HEADERS, value.clone());
            }
        }
        out
    }

    /// Applies [`CorsConfig::response_headers`] to a response from the brain or the cache:
    /// drops every `Access-Control-*` header already there (the edge owns CORS), sets the
    /// edge's, and adds `Origin` to `Vary` unless it is already listed or `Vary: *`.
    pub fn apply_to_response(&self, request: &HeaderMap, response: &mut HeaderMap) {
        let theirs: Vec<HeaderName> = response
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .cloned()
            .collect();
        for name in theirs {
            response.remove(name);
        }
        let varies = response.get_all(VARY).iter().any(|value| {
            value
                .as_bytes()
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .any(|token| token == b"*" || token.eq_ignore_ascii_case(b"origin"))
        });
        for (name, value) in self.response_headers(request) {
            // One value per name here, so `None` (another value of the previous name) never occurs.
            let Some(name) = name else { continue };
            if name != VARY {
                response.insert(name, value);
            } else if !varies {
                response.append(name, value);
            }
        }
    }

    /// The request's `Origin` value if it is allowed: exactly one, well-formed, not `null`.
    fn allowed_origin<'h>(&self, headers: &'h HeaderMap) -> Option<&'h HeaderValue> {
        let mut values = headers.get_all(ORIGIN).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        let origin = Origin::parse(value.to_str().ok()?)?;
        (self.any_origin || self.origins.iter().any(|pattern| pattern.matches(&origin)))
            .then_some(value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// A serialized origin, parsed: scheme, lowercase host, effective port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` with nothing else (no path, userinfo, query or fragment).
    fn parse(raw: &str) -> Option<Self> {
        let (scheme, rest) = raw.split_once("://")?;
        let scheme = if scheme.eq_ignore_ascii_case("https") {
            Scheme::Https
        } else if scheme.eq_ignore_ascii_case("http") {
            Scheme::Http
        } else {
            return None;
        };
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let (host, port) = split_host_port(rest)?;
        let port = match port {
            Some(port) => port,
            None => default_port,
        };
        let host = host.to_ascii_lowercase();
        valid_host(&host).then_some(Self { scheme, host, port })
    }
}

/// Splits `host[:port]` (host may be a bracketed IPv6 literal). `None` if malformed.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, after) = authority.split_at(end + 1);
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) => {
            // Canonical decimal only: browsers never send leading zeros, so neither do we accept them.
            if digits.is_empty()
                || digits.len() > 5
                || digits.starts_with('0')
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    Some((host, port))
}

/// A lowercase DNS name or IPv4 address (dot-separated labels of `[a-z0-9-]`, no empty label),
/// or a bracketed IPv6 literal.
fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// Any host ending in `.{suffix}`.
    Subdomains(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginPattern {
    scheme: Scheme,
    host: HostPattern,
    port: u16,
}

impl OriginPattern {
    fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.eq_ignore_ascii_case("null") {
            return Err("the null origin can never be allowed");
        }
        if let Some((scheme, rest)) = raw.split_once("://")
            && let Some(suffix) = rest.strip_prefix("*.")
        {
            let origin = Origin::parse(&format!("{scheme}://{suffix}"))
                .ok_or("must be http(s)://*.domain[:port] with nothing after the host")?;
            if origin.host.starts_with('[') || origin.host.split('.').count() < 2 {
                return Err("a wildcard needs a domain of at least two labels after `*.`");
            }
            return Ok(Self {
                scheme: origin.scheme,
                host: HostPattern::Subdomains(origin.host),
                port: origin.port,
            });
        }
        if raw.contains('*') {
            return Err(
                "`*` is only allowed alone or as the first label (`https://*.example.com`)",
            );
        }
        let origin = Origin::parse(raw)
            .ok_or("must be an origin: http(s)://host[:port], no path or trailing slash")?;
        Ok(Self {
            scheme: origin.scheme,
            host: HostPattern::Exact(origin.host),
            port: origin.port,
        })
    }

    fn matches(&self, origin: &Origin) -> bool {
        if origin.scheme != self.scheme || origin.port != self.port {
            return false;
        }
        match &self.host {
            HostPattern::Exact(host) => origin.host == *host,
            HostPattern::Subdomains(suffix) => origin
                .host
                .strip_suffix(suffix.as_str())
                .and_then(|prefix| prefix.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_support::headers as request;
    use proptest::prelude::*;

    fn config(json: &str) -> CorsConfig {
        serde_json::from_str(json).unwrap()
    }

    fn app() -> CorsConfig {
        config(
            r#"{"allowed_origins": ["https://app.example.com", "https://*.example.org",
                "http://localhost:5173"], "allow_credentials": true}"#,
        )
    }

    fn allows(config: &CorsConfig, origin: &str) -> bool {
        config
            .allowed_origin(&request(&[("origin", origin)]))
            .is_some()
    }

    #[test]
    fn exact_origins_match_on_scheme_host_and_port() {
        let c = app();
        for ok in [
            "https://app.example.com",
            "https://APP.Example.COM",
            "https://app.example.com:443",
            "http://localhost:5173",
        ] {
            assert!(allows(&c, ok), "{ok} refused");
        }
        for bad in [
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://app.example.com/",
            "https://app.example.com/path",
            "https://user@app.example.com",
            "https://app.example.com.evil.net",
            "https://evil-app.example.com",
            "https://xapp.example.com",
            "https://example.com",
            "http://localhost",
            "http://localhost:5174",
            "null",
            "",
            "app.example.com",
        ] {
            assert!(!allows(&c, bad), "{bad} allowed");
        }
    }

    #[test]
    fn wildcards_match_subdomains_only() {
        let c = app();
        assert!(allows(&c, "https://a.example.org"));
        assert!(allows(&c, "https://a.b.example.org"));
        for bad in [
            "https://example.org",
            "https://.example.org",
            "https://evil-example.org",
            "https://example.org.evil.net",
            "https://a.example.org.evil.net",
            "http://a.example.org",
            "https://a.example.org:444",
        ] {
            assert!(!allows(&c, bad), "{bad} allowed");
        }
    }

    #[test]
    fn several_origin_headers_are_never_allowed() {
        let c = app();
        let headers = request(&[
            ("origin", "https://app.example.com"),
            ("origin", "https://app.example.com"),
        ]);
        assert!(c.allowed_origin(&headers).is_none());
    }

    #[test]
    fn bad_configurations_fail_at_load_naming_the_field() {
        for (json, field) in [
            (
                r#"{"allowed_origins": ["*"], "allow_credentials": true}"#,
                "`allowed_origins[0]`",
            ),
            (
                r#"{"allowed_origins": ["https://a.com", "null"]}"#,
                "`allowed_origins[1]`",
            ),
            (
                r#"{"allowed_origins": ["https://a.com/"]}"#,
                "`allowed_origins[0]`",
            ),
            (
                r#"{"allowed_origins": ["ftp://a.com"]}"#,
                "`allowed_origins[0]`",
            ),
            (
                r#"{"allowed_origins": ["https://*.com"]}"#,
                "`allowed_origins[0]`",
            ),
            (
                r#"{"allowed_origins": ["https://a.*.com"]}"#,
                "`allowed_origins[0]`",
            ),
            (
                r#"{"allowed_origins": ["https://*"]}"#,
                "`allowed_origins[0]`",
            ),
            (
                r#"{"allowed_origins": ["https://a.com:99999"]}"#,
                "`allowed_origins[0]`",
            ),
            (
                r#"{"allowed_origins": [], "allowed_methods": ["GET", "*"]}"#,
                "`allowed_methods[1]`",
            ),
            (
                r#"{"allowed_origins": [], "allowed_methods": ["G T"]}"#,
                "`allowed_methods[0]`",
            ),
            (
                r#"{"allowed_origins": [], "allowed_headers": ["*"]}"#,
                "`allowed_headers[0]`",
            ),
            (
                r#"{"allowed_origins": [], "exposed_headers": ["a b"]}"#,
                "`exposed_headers[0]`",
            ),
            (
                r#"{"allowed_origins": [], "max_age_secs": 86401}"#,
                "`max_age_secs`",
            ),
            (
                r#"{"allowed_origins": [], "origins": []}"#,
                "unknown field `origins`",
            ),
            (
                r#"{"allow_credentials": true}"#,
                "missing field `allowed_origins`",
            ),
        ] {
            let err = serde_json::from_str::<CorsConfig>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn a_bare_star_allows_any_origin_without_credentials_but_never_null() {
        let c = config(r#"{"allowed_origins": ["*"]}"#);
        assert!(allows(&c, "https://anything.example"));
        assert!(!allows(&c, "null"));
        let h = c.response_headers(&request(&[("origin", "https://x.test")]));
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://x.test");
        assert!(h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    }

    #[test]
    fn allowed_preflights_get_the_full_set_of_headers() {
        let c = app();
        let headers = request(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "PUT"),
            (
                "access-control-request-headers",
                "Content-Type, authorization",
            ),
        ]);
        let Preflight::Allowed(h) = c.preflight(&Method::OPTIONS, &headers) else {
            panic!("refused")
        };
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(
            h[ACCESS_CONTROL_ALLOW_METHODS],
            "GET, HEAD, POST, PUT, PATCH, DELETE"
        );
        assert_eq!(
            h[ACCESS_CONTROL_ALLOW_HEADERS],
            "authorization, content-type, x-request-id, x-session-id"
        );
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
        assert!(h[VARY].to_str().unwrap().starts_with("Origin"));

        let id = RequestId::parse(b"r-1").unwrap();
        let response = c
            .preflight_response(&Method::OPTIONS, &headers, &id)
            .unwrap();
        assert_eq!(response.status, StatusCode::NO_CONTENT);
        assert!(response.body.is_empty());
        assert_eq!(response.headers["x-request-id"], "r-1");
    }

    #[test]
    fn refused_preflights_say_why_and_get_403_forbidden() {
        let c = config(
            r#"{"allowed_origins": ["https://app.example.com"], "allowed_methods": ["GET"],
            "allowed_headers": ["content-type"]}"#,
        );
        let ask = |origin: &str, method: &str, hdrs: &str| {
            let mut pairs = vec![
                ("origin", origin),
                ("access-control-request-method", method),
            ];
            if !hdrs.is_empty() {
                pairs.push(("access-control-request-headers", hdrs));
            }
            c.preflight(&Method::OPTIONS, &request(&pairs))
        };
        assert_eq!(
            ask("https://evil.example.com", "GET", ""),
            Preflight::Rejected(PreflightRejection::OriginNotAllowed)
        );
        assert_eq!(
            ask("https://app.example.com", "DELETE", ""),
            Preflight::Rejected(PreflightRejection::MethodNotAllowed("DELETE".to_owned()))
        );
        assert_eq!(
            ask("https://app.example.com", "GET", "content-type, x-secret"),
            Preflight::Rejected(PreflightRejection::HeaderNotAllowed("x-secret".to_owned()))
        );
        // POST is CORS-safelisted, so it passes even when not configured.
        assert!(matches!(
            ask("https://app.example.com", "POST", "Content-Type"),
            Preflight::Allowed(_)
        ));

        let id = RequestId::parse(b"r-2").unwrap();
        let headers = request(&[("origin", "null"), ("access-control-request-method", "GET")]);
        let response = c
            .preflight_response(&Method::OPTIONS, &headers, &id)
            .unwrap();
        assert_eq!(response.status, StatusCode::FORBIDDEN);
        assert!(response.headers.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let body: shared_types::error::ErrorBody = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body.error.code, ErrorCode::Forbidden);
        assert!(
            body.error.message.contains("origin"),
            "{}",
            body.error.message
        );
    }

    #[test]
    fn only_options_with_origin_and_request_method_is_a_preflight() {
        let c = app();
        let full = request(&[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "GET"),
        ]);
        assert_eq!(c.preflight(&Method::GET, &full), Preflight::NotPreflight);
        let no_method = request(&[("origin", "https://app.example.com")]);
        assert_eq!(
            c.preflight(&Method::OPTIONS, &no_method),
            Preflight::NotPreflight
        );
        let no_origin = request(&[("access-control-request-method", "GET")]);
        assert_eq!(
            c.preflight(&Method::OPTIONS, &no_origin),
            Preflight::NotPreflight
        );
        let id = RequestId::parse(b"r").unwrap();
        assert!(
            c.preflight_response(&Method::OPTIONS, &no_origin, &id)
                .is_none()
        );
    }

    #[test]
    fn actual_responses_echo_only_allowlisted_origins_and_always_vary() {
        let c = app();
        let h = c.response_headers(&request(&[("origin", "https://app.example.com")]));
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(
            h[ACCESS_CONTROL_EXPOSE_HEADERS],
            "x-request-id, x-edge-cache, ratelimit, ratelimit-policy, retry-after, x-session-id"
        );
        assert_eq!(h[VARY], "Origin");

        for pairs in [vec![("origin", "https://evil.example.com")], vec![]] {
            let h = c.response_headers(&request(&pairs));
            assert_eq!(h.len(), 1, "{h:?}");
            assert_eq!(h[VARY], "Origin");
        }

        let no_credentials = config(r#"{"allowed_origins": ["https://app.example.com"]}"#);
        let h = no_credentials.response_headers(&request(&[("origin", "https://app.example.com")]));
        assert!(h.get(ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    }

    #[test]
    fn applying_replaces_the_brains_cors_headers_and_merges_vary() {
        let c = app();
        let req = request(&[("origin", "https://evil.example.com")]);
        let mut response = request(&[
            ("access-control-allow-origin", "*"),
            ("vary", "Accept-Encoding"),
            ("content-type", "application/json"),
        ]);
        c.apply_to_response(&req, &mut response);
        assert!(response.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let vary: Vec<_> = response.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
        assert_eq!(response["content-type"], "application/json");

        let mut already = request(&[("vary", "accept-encoding, origin")]);
        c.apply_to_response(
            &request(&[("origin", "https://app.example.com")]),
            &mut already,
        );
        assert_eq!(already.get_all(VARY).iter().count(), 1);
        assert_eq!(
            already[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9-]{1,10}"
    }

    /// Strings built from the pieces of `https://app.example.com` and classic spoofing parts.
    fn near_misses() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("https://".to_owned()),
            Just("http://".to_owned()),
            Just("app".to_owned()),
            Just("APP".to_owned()),
            Just(".example".to_owned()),
            Just(".com".to_owned()),
            Just(":443".to_owned()),
            Just(":8443".to_owned()),
            Just("evil-".to_owned()),
            Just(".evil.net".to_owned()),
            Just("/".to_owned()),
            Just("@".to_owned()),
            "[a-zA-Z0-9.:/@-]{0,6}",
        ];
        prop::collection::vec(piece, 0..7).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn every_subdomain_matches_and_nothing_else_does(
            labels in prop::collection::vec(label(), 1..4),
            noise in "[a-zA-Z0-9.:/@*-]{0,30}",
        ) {
            let c = config(r#"{"allowed_origins": ["https://*.example.org"]}"#);
            let sub = format!("https://{}.example.org", labels.join("."));
            prop_assert!(allows(&c, &sub));
            let candidate = format!("https://{noise}");
            if allows(&c, &candidate) {
                let host = noise.to_ascii_lowercase();
                let host = host.strip_suffix(":443").unwrap_or(&host);
                prop_assert!(host.ends_with(".example.org") && host.len() > ".example.org".len());
                prop_assert!(!host.contains(['/', '@', '*']));
            }
        }

        #[test]
        fn exact_patterns_allow_only_their_own_origin(raw in near_misses()) {
            let c = config(r#"{"allowed_origins": ["https://app.example.com"]}"#);
            let lower = raw.to_ascii_lowercase();
            let expected = lower == "https://app.example.com" || lower == "https://app.example.com:443";
            prop_assert_eq!(allows(&c, &raw), expected, "{}", raw);
        }

        #[test]
        fn arbitrary_origin_bytes_never_panic(value in prop::collection::vec(any::<u8>(), 0..60)) {
            let c = app();
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                let mut headers = HeaderMap::new();
                headers.insert(ORIGIN, value.clone());
                headers.insert(ACCESS_CONTROL_REQUEST_METHOD, value.clone());
                headers.insert(ACCESS_CONTROL_REQUEST_HEADERS, value);
                let _ = c.preflight(&Method::OPTIONS, &headers);
                let h = c.response_headers(&headers);
                prop_assert!(h.contains_key(VARY));
            }
        }
    }
}
