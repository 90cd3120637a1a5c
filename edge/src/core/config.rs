//! Typed edge configuration, parsed once from the platform's string variables.

use core::fmt;
use core::time::Duration;
use std::net::IpAddr;

use http::{HeaderMap, HeaderName};

use super::auth::AuthConfig;
use super::auth::config::vars as auth_vars;
use super::brains::Brains;
use super::cache::{CACHE_VERSION_VAR, parse_cache_version};
use super::cors::CorsConfig;
use super::policy_error::PolicyError;
use super::routes::RouteTable;
use super::rules::Rules;
use super::session::SessionConfig;
use super::signin::SigninConfig;

/// Everything the edge core needs to decide. Built by [`EdgeConfig::from_vars`].
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// The brains (`BRAIN_URLS`, or `BRAIN_URL` as a list of one): where requests go, by
    /// tenant affinity (see `edge::core::brains`).
    pub brains: Brains,
    /// How long the edge waits for the brain's response headers before answering 504.
    /// Streaming bodies are not bounded by this: a reply may stream for minutes.
    pub upstream_timeout: Duration,
    /// Largest request body the edge forwards (413 above it): a declared `content-length` is
    /// checked before anything else, a body without one is counted as it streams and cut.
    pub max_body_bytes: u64,
    /// Largest total size of request header names and values (431 above it).
    pub max_header_bytes: usize,
    /// Most request header fields (431 above it): byte totals alone let thousands of tiny
    /// fields through, which the brain's HTTP server (100 fields) would refuse outside the
    /// error shape. The edge adds at most 10 of its own.
    pub max_header_count: usize,
    /// Longest request URL (414 above it).
    pub max_url_bytes: usize,
    /// Secrets the edge signs brain requests with (HMAC-SHA256; each request carries one
    /// signature per secret, so the brain may hold either while rotating).
    pub signing_secrets: Vec<Vec<u8>>,
    /// Request bodies up to this size (by `content-length`) are buffered and their SHA-256
    /// signed; larger or length-less bodies stream through as `UNSIGNED-PAYLOAD`.
    pub sign_body_max_bytes: u64,
    /// Session keys (current first) and the sliding session lifetime.
    pub sessions: SessionConfig,
    /// Per-route policies (`ROUTES`, `RATE_LIMITS`).
    pub routes: RouteTable,
    /// Cross-origin policy (`CORS`). Without it no origin is allowed: preflights get 403 at the
    /// edge and responses carry no `Access-Control-Allow-Origin`.
    pub cors: CorsConfig,
    /// Bumped to purge every cached response (`CACHE_VERSION`, default 1).
    pub cache_version: u32,
    /// JWT verification (`AUTH_CONFIG`, `AUTH_HS256_SECRETS`); `None` when not configured.
    pub auth: Option<AuthConfig>,
    /// Sign-in at the edge (`OIDC_*`, `SIGNIN_*`); `None` when `OIDC_ISSUER` is unset.
    pub signin: Option<SigninConfig>,
    /// Rewrites, redirects and headers from `vercel.json`, embedded at build time.
    pub rules: Rules,
    /// The request header in which the platform itself states the client's address
    /// (`CLIENT_IP_HEADER`): `cf-connecting-ip` on Cloudflare (the default), `x-real-ip` on
    /// Vercel (set by `api/edge.js`). Both platforms overwrite any value a client sends.
    pub client_ip_header: HeaderName,
}

impl EdgeConfig {
    /// The client's address as the platform stated it; `None` when the header is missing or
    /// not one IP address (rate limits then share the `none` bucket, failing closed).
    pub fn client_ip<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let mut values = headers.get_all(&self.client_ip_header).iter();
        let value = values.next()?.to_str().ok()?.trim();
        (values.next().is_none() && value.parse::<IpAddr>().is_ok()).then_some(value)
    }
}

/// The rules file both platforms use, compiled into the edge.
pub const EMBEDDED_RULES: &str = include_str!("../../../vercel.json");

/// Names of the variables [`EdgeConfig::from_vars`] reads, with their defaults.
pub mod vars {
    /// Absolute `http://` or `https://` origin of the brain: a fleet of one. Either this or
    /// [`BRAIN_URLS`] is required, never both.
    pub const BRAIN_URL: &str = "BRAIN_URL";
    /// The brains of a fleet: origins separated by commas and/or whitespace, or a JSON array
    /// (at most `edge::core::brains::MAX_BRAINS`).
    pub const BRAIN_URLS: &str = "BRAIN_URLS";
    /// Milliseconds; default 30000.
    pub const UPSTREAM_TIMEOUT_MS: &str = "UPSTREAM_TIMEOUT_MS";
    /// Bytes; default 10 MiB.
    pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
    /// Bytes; default 32 KiB.
    pub const MAX_HEADER_BYTES: &str = "MAX_HEADER_BYTES";
    /// Header fields; default 64.
    pub const MAX_HEADER_COUNT: &str = "MAX_HEADER_COUNT";
    /// Bytes; default 8 KiB.
    pub const MAX_URL_BYTES: &str = "MAX_URL_BYTES";
    /// Required secret. Comma-separated HMAC secrets (≥ 32 bytes each) shared with the brain's
    /// `BRAIN_EDGE_SECRETS`.
    pub const EDGE_SIGNING_SECRETS: &str = "EDGE_SIGNING_SECRETS";
    /// Bytes; default 1 MiB (the brain's default body limit).
    pub const SIGN_BODY_MAX_BYTES: &str = "SIGN_BODY_MAX_BYTES";
    /// Required secret. Comma-separated `kid:secret` session keys, current first.
    pub const SESSION_KEYS: &str = "SESSION_KEYS";
    /// Seconds; default 30 days.
    pub const SESSION_TTL_SECS: &str = "SESSION_TTL_SECS";
    /// JSON array of route entries (see `edge::core::routes`).
    pub const ROUTES: &str = "ROUTES";
    /// JSON array of named rate-limit policies.
    pub const RATE_LIMITS: &str = "RATE_LIMITS";
    /// JSON object: the CORS allowlist (see `edge::core::cors`).
    pub const CORS: &str = "CORS";
    /// Header name; default `cf-connecting-ip`. Must be one the platform sets itself.
    pub const CLIENT_IP_HEADER: &str = "CLIENT_IP_HEADER";
}

impl EdgeConfig {
    pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 30_000;
    pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
    pub const DEFAULT_MAX_HEADER_COUNT: usize = 64;
    /// Most header fields the brain's HTTP server (hyper) reads: past it, a bare 431 outside
    /// the error shape.
    pub const BRAIN_MAX_HEADER_FIELDS: usize = 100;
    /// Most header fields the edge adds to a proxied request (identity, signature, ids).
    pub const EDGE_ADDED_HEADER_FIELDS: usize = 10;
    /// Largest accepted `MAX_HEADER_COUNT`: a higher setting would let the edge forward
    /// requests the brain cannot read.
    pub const MAX_MAX_HEADER_COUNT: usize =
        Self::BRAIN_MAX_HEADER_FIELDS - Self::EDGE_ADDED_HEADER_FIELDS;
    pub const DEFAULT_MAX_URL_BYTES: usize = 8 * 1024;
    pub const DEFAULT_SIGN_BODY_MAX_BYTES: u64 = 1024 * 1024;
    /// Shortest accepted signing secret.
    pub const MIN_SIGNING_SECRET_BYTES: usize = 32;
    pub const DEFAULT_CLIENT_IP_HEADER: &str = "cf-connecting-ip";

    /// Parses the configuration from named string variables (`lookup(name)` returns the value of
    /// a wrangler `[vars]` entry or secret, if set). Every problem names the variable at fault.
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_vars_and_rules(lookup, EMBEDDED_RULES)
    }

    /// [`EdgeConfig::from_vars`] with the given rules file instead of the embedded one.
    pub fn from_vars_and_rules(
        lookup: impl Fn(&str) -> Option<String>,
        rules_json: &str,
    ) -> Result<Self, ConfigError> {
        let policy_error = |var: &'static str| {
            move |error: PolicyError| ConfigError::Invalid {
                var,
                reason: error.to_string(),
            }
        };
        let routes = RouteTable::parse(
            lookup(vars::ROUTES).as_deref(),
            lookup(vars::RATE_LIMITS).as_deref(),
        )
        .map_err(|error| ConfigError::Invalid {
            var: if error.field.starts_with("RATE_LIMITS") {
                vars::RATE_LIMITS
            } else {
                vars::ROUTES
            },
            reason: error.to_string(),
        })?;
        let cors = match lookup(vars::CORS) {
            Some(json) => {
                serde_json::from_str::<CorsConfig>(&json).map_err(|error| ConfigError::Invalid {
                    var: vars::CORS,
                    reason: error.to_string(),
                })?
            }
            None => CorsConfig::deny_all(),
        };
        let cache_version = parse_cache_version(lookup(CACHE_VERSION_VAR).as_deref())
            .map_err(policy_error(CACHE_VERSION_VAR))?;
        let auth = AuthConfig::from_vars(&lookup).map_err(|error| ConfigError::Invalid {
            var: auth_vars::AUTH_CONFIG,
            reason: error.to_string(),
        })?;
        let signin = SigninConfig::from_vars(&lookup).map_err(|error| ConfigError::Invalid {
            var: error.var,
            reason: error.reason,
        })?;
        if auth.is_none() && signin.is_none() && routes.requires_authentication() {
            return Err(ConfigError::Invalid {
                var: vars::ROUTES,
                reason:
                    "a route requires authentication but neither AUTH_CONFIG nor OIDC_ISSUER is set"
                        .to_owned(),
            });
        }
        let rules = Rules::from_vercel_json(rules_json).map_err(|error| ConfigError::Invalid {
            var: "vercel.json",
            reason: error.to_string(),
        })?;
        let brains = Brains::from_vars(
            lookup(vars::BRAIN_URL).as_deref(),
            lookup(vars::BRAIN_URLS).as_deref(),
        )?;
        let client_ip_header = parse_client_ip_header(lookup(vars::CLIENT_IP_HEADER).as_deref())?;
        Ok(Self {
            brains,
            upstream_timeout: Duration::from_millis(parse_number(
                &lookup,
                vars::UPSTREAM_TIMEOUT_MS,
                Self::DEFAULT_UPSTREAM_TIMEOUT_MS,
            )?),
            max_body_bytes: parse_number(
                &lookup,
                vars::MAX_BODY_BYTES,
                Self::DEFAULT_MAX_BODY_BYTES,
            )?,
            max_header_bytes: parse_number(
                &lookup,
                vars::MAX_HEADER_BYTES,
                Self::DEFAULT_MAX_HEADER_BYTES,
            )?,
            max_header_count: parse_header_count(&lookup)?,
            max_url_bytes: parse_number(&lookup, vars::MAX_URL_BYTES, Self::DEFAULT_MAX_URL_BYTES)?,
            signing_secrets: parse_signing_secrets(&lookup)?,
            sign_body_max_bytes: parse_number(
                &lookup,
                vars::SIGN_BODY_MAX_BYTES,
                Self::DEFAULT_SIGN_BODY_MAX_BYTES,
            )?,
            sessions: SessionConfig {
                keys: SessionConfig::parse_keys(
                    &lookup(vars::SESSION_KEYS).ok_or(ConfigError::Missing(vars::SESSION_KEYS))?,
                )
                .map_err(|reason| ConfigError::Invalid {
                    var: vars::SESSION_KEYS,
                    reason,
                })?,
                ttl_secs: parse_number(
                    &lookup,
                    vars::SESSION_TTL_SECS,
                    SessionConfig::DEFAULT_TTL_SECS,
                )?,
            },
            routes,
            cors,
            cache_version,
            auth,
            signin,
            rules,
            client_ip_header,
        })
    }
}

/// Why the configuration is unusable. The edge answers every request with a 500 naming the
/// variable until it is fixed, rather than guessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Missing(&'static str),
    /// Neither of two alternative variables is set.
    MissingEither([&'static str; 2]),
    Invalid {
        var: &'static str,
        reason: String,
    },
    /// Two variables that exclude each other are both set.
    Conflict {
        vars: [&'static str; 2],
        reason: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing(var) => write!(f, "edge variable {var} is not set"),
            ConfigError::MissingEither([first, second]) => {
                write!(f, "edge variable {first} (or {second}) is not set")
            }
            ConfigError::Invalid { var, reason } => {
                write!(f, "edge variable {var} is invalid: {reason}")
            }
            ConfigError::Conflict {
                vars: [first, second],
                reason,
            } => write!(
                f,
                "edge variables {first} and {second} are both set: {reason}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

fn parse_signing_secrets(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<Vec<u8>>, ConfigError> {
    let var = vars::EDGE_SIGNING_SECRETS;
    let raw = lookup(var).ok_or(ConfigError::Missing(var))?;
    let secrets: Vec<Vec<u8>> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.as_bytes().to_vec())
        .collect();
    if secrets.is_empty() {
        return Err(ConfigError::Invalid {
            var,
            reason: "no secret given".to_owned(),
        });
    }
    if secrets.len() > shared_types::signature::MAX_SIGNATURES {
        return Err(ConfigError::Invalid {
            var,
            reason: format!(
                "at most {} secrets (the brain reads that many signatures)",
                shared_types::signature::MAX_SIGNATURES
            ),
        });
    }
    if let Some(index) = secrets
        .iter()
        .position(|s| s.len() < EdgeConfig::MIN_SIGNING_SECRET_BYTES)
    {
        return Err(ConfigError::Invalid {
            var,
            reason: format!(
                "secret #{} is shorter than {} bytes",
                index + 1,
                EdgeConfig::MIN_SIGNING_SECRET_BYTES
            ),
        });
    }
    Ok(secrets)
}

fn parse_number<T: core::str::FromStr + PartialOrd + Default>(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    let Some(raw) = lookup(var) else {
        return Ok(default);
    };
    match raw.trim().parse::<T>() {
        Ok(value) if value > T::default() => Ok(value),
        _ => Err(ConfigError::Invalid {
            var,
            reason: format!("expected a positive integer, got {raw:?}"),
        }),
    }
}

fn parse_header_count(lookup: &impl Fn(&str) -> Option<String>) -> Result<usize, ConfigError> {
    let count = parse_number(
        lookup,
        vars::MAX_HEADER_COUNT,
        EdgeConfig::DEFAULT_MAX_HEADER_COUNT,
    )?;
    if count > EdgeConfig::MAX_MAX_HEADER_COUNT {
        return Err(ConfigError::Invalid {
            var: vars::MAX_HEADER_COUNT,
            reason: format!(
                "{count} is above {}: the brain reads at most {} header fields and the edge adds \
                 up to {}",
                EdgeConfig::MAX_MAX_HEADER_COUNT,
                EdgeConfig::BRAIN_MAX_HEADER_FIELDS,
                EdgeConfig::EDGE_ADDED_HEADER_FIELDS
            ),
        });
    }
    Ok(count)
}

fn parse_client_ip_header(raw: Option<&str>) -> Result<HeaderName, ConfigError> {
    let name = raw.unwrap_or(EdgeConfig::DEFAULT_CLIENT_IP_HEADER).trim();
    let invalid = |reason: &str| ConfigError::Invalid {
        var: vars::CLIENT_IP_HEADER,
        reason: reason.to_owned(),
    };
    let header = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
        .map_err(|_| invalid("not a header name"))?;
    if header.as_str().starts_with("x-edgebrain-") {
        return Err(invalid("x-edgebrain-* headers are the edge's own"));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SIGNING: &str = "edge-signing-secret-0123456789abcdef";
    const SESSIONS: &str = "s1:session-key-0123456789abcdef0123456789";

    fn config(pairs: &[(&str, &str)]) -> Result<EdgeConfig, ConfigError> {
        let mut map: HashMap<String, String> = [
            ("EDGE_SIGNING_SECRETS", SIGNING),
            ("SESSION_KEYS", SESSIONS),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (k, v) in pairs {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
        map.retain(|_, v| !v.is_empty());
        EdgeConfig::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_only_brain_url_is_set() {
        let c = config(&[("BRAIN_URL", "http://127.0.0.1:8080/")]).unwrap();
        assert_eq!(c.brains.len(), 1);
        assert_eq!(origin(&c), "http://127.0.0.1:8080");
        assert_eq!(c.upstream_timeout, Duration::from_secs(30));
        assert_eq!(c.max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(c.max_header_bytes, 32 * 1024);
        assert_eq!(c.max_header_count, 64);
        assert_eq!(c.max_url_bytes, 8 * 1024);
        assert_eq!(c.signing_secrets, [SIGNING.as_bytes()]);
        assert_eq!(c.sign_body_max_bytes, 1024 * 1024);
        assert_eq!(c.sessions.keys.len(), 1);
        assert_eq!(c.sessions.ttl_secs, 30 * 24 * 3600);
    }

    #[test]
    fn secrets_are_required_and_must_be_strong() {
        let base = [("BRAIN_URL", "http://brain:8080")];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            config(&pairs)
        };
        assert_eq!(
            with(("EDGE_SIGNING_SECRETS", "")).unwrap_err(),
            ConfigError::Missing("EDGE_SIGNING_SECRETS")
        );
        assert_eq!(
            with(("SESSION_KEYS", "")).unwrap_err(),
            ConfigError::Missing("SESSION_KEYS")
        );
        for (var, value) in [
            ("EDGE_SIGNING_SECRETS", "short"),
            ("EDGE_SIGNING_SECRETS", " , "),
            ("SESSION_KEYS", "k1:short"),
            ("SESSION_KEYS", "no-colon"),
            ("SESSION_TTL_SECS", "0"),
            // More than the brain reads once the edge's own headers are added.
            ("MAX_HEADER_COUNT", "91"),
        ] {
            match with((var, value)) {
                Err(ConfigError::Invalid { var: named, .. }) => assert_eq!(named, var),
                other => panic!("{var}={value} gave {other:?}"),
            }
        }
        let two = format!("{SIGNING},{SIGNING}-next");
        let c = config(&[("BRAIN_URL", "http://b"), ("EDGE_SIGNING_SECRETS", &two)]).unwrap();
        assert_eq!(c.signing_secrets.len(), 2);
    }

    #[test]
    fn every_limit_is_configurable() {
        let c = config(&[
            ("BRAIN_URL", "https://brain.example:8443"),
            ("UPSTREAM_TIMEOUT_MS", "250"),
            ("MAX_BODY_BYTES", "1000"),
            ("MAX_HEADER_BYTES", "2000"),
            ("MAX_HEADER_COUNT", "20"),
            ("MAX_URL_BYTES", "300"),
        ])
        .unwrap();
        assert_eq!(c.max_header_count, 20);
        assert_eq!(origin(&c), "https://brain.example:8443");
        assert_eq!(c.upstream_timeout, Duration::from_millis(250));
        assert_eq!(
            (c.max_body_bytes, c.max_header_bytes, c.max_url_bytes),
            (1000, 2000, 300)
        );
    }

    fn origin(c: &EdgeConfig) -> &str {
        c.brains.get(0).map_or("", |brain| brain.origin.as_str())
    }

    #[test]
    fn missing_brain_url_is_named() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err, ConfigError::MissingEither(["BRAIN_URLS", "BRAIN_URL"]));
        assert_eq!(
            err.to_string(),
            "edge variable BRAIN_URLS (or BRAIN_URL) is not set"
        );
    }

    #[test]
    fn a_fleet_comes_from_brain_urls_and_never_from_both_variables() {
        let c = config(&[("BRAIN_URLS", "http://b1:8080, http://b2:8080")]).unwrap();
        let authorities: Vec<&str> = c.brains.iter().map(|b| b.authority.as_str()).collect();
        assert_eq!(authorities, ["b1:8080", "b2:8080"]);
        let err = config(&[("BRAIN_URL", "http://b0"), ("BRAIN_URLS", "http://b1")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "edge variables BRAIN_URL and BRAIN_URLS are both set: set one: BRAIN_URL names one \
             brain, BRAIN_URLS lists one or more"
        );
        match config(&[("BRAIN_URLS", "http://b1 not-a-url")]) {
            Err(ConfigError::Invalid { var, reason }) => {
                assert_eq!(var, "BRAIN_URLS");
                assert!(
                    reason.starts_with("BRAIN_URLS[1] \"not-a-url\": "),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        for (var, value) in [
            ("BRAIN_URL", "ftp://brain"),
            ("BRAIN_URL", "http://"),
            ("BRAIN_URL", "http://brain/api"),
            ("BRAIN_URL", "http://user:pw@brain"),
            ("BRAIN_URL", "http://brain:99999"),
            ("BRAIN_URL", "http://brain?x=1"),
            ("UPSTREAM_TIMEOUT_MS", "soon"),
            ("UPSTREAM_TIMEOUT_MS", "0"),
            ("MAX_BODY_BYTES", "-1"),
            ("CLIENT_IP_HEADER", "not a header"),
            ("CLIENT_IP_HEADER", "x-edgebrain-user"),
        ] {
            let mut pairs = vec![("BRAIN_URL", "http://brain:8080")];
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            match config(&pairs) {
                Err(ConfigError::Invalid { var: named, .. }) => assert_eq!(named, var, "{value}"),
                other => panic!("{var}={value} gave {other:?}"),
            }
        }
    }

    #[test]
    fn ipv6_origins_are_accepted() {
        let c = config(&[("BRAIN_URL", "http://[::1]:8080")]).unwrap();
        assert_eq!(origin(&c), "http://[::1]:8080");
        let c = config(&[("BRAIN_URL", "http://[::1]")]).unwrap();
        assert_eq!(origin(&c), "http://[::1]");
    }

    #[test]
    fn network_limits_are_validated_with_the_other_rate_limit_fields() {
        let with = |policies: &str| config(&[("BRAIN_URL", "http://b"), ("RATE_LIMITS", policies)]);
        let c = with(r#"[{"name":"default","limit":10,"window_secs":60}]"#).unwrap();
        let default = c
            .routes
            .select(&http::Method::GET, "/api/x")
            .rate_limit
            .as_ref();
        assert_eq!(default.map(|p| p.network_limit()), Some(40));
        for bad in ["0", "9", "1000001"] {
            let json = format!(
                r#"[{{"name":"default","limit":10,"window_secs":60,"network_limit":{bad}}}]"#
            );
            match with(&json) {
                Err(ConfigError::Invalid { var, reason }) => {
                    assert_eq!(var, "RATE_LIMITS");
                    assert!(reason.contains("network_limit"), "{reason}");
                }
                other => panic!("network_limit {bad} gave {other:?}"),
            }
        }
    }

    #[test]
    fn the_client_address_comes_from_the_platforms_header_only() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            map
        };
        let cloudflare = config(&[("BRAIN_URL", "http://b")]).unwrap();
        assert_eq!(cloudflare.client_ip_header, "cf-connecting-ip");
        let sent = headers(&[
            ("cf-connecting-ip", "198.51.100.7"),
            ("x-real-ip", "10.0.0.1"),
        ]);
        assert_eq!(cloudflare.client_ip(&sent), Some("198.51.100.7"));
        let vercel =
            config(&[("BRAIN_URL", "http://b"), ("CLIENT_IP_HEADER", "X-Real-IP")]).unwrap();
        assert_eq!(vercel.client_ip(&sent), Some("10.0.0.1"));
        // Anything but one address is no address (the caller then shares the `none` bucket).
        for bad in [
            headers(&[]),
            headers(&[("cf-connecting-ip", "not-an-ip")]),
            headers(&[("cf-connecting-ip", "198.51.100.7, 10.0.0.1")]),
            headers(&[
                ("cf-connecting-ip", "1.1.1.1"),
                ("cf-connecting-ip", "2.2.2.2"),
            ]),
        ] {
            assert_eq!(cloudflare.client_ip(&bad), None, "{bad:?}");
        }
        assert_eq!(
            cloudflare.client_ip(&headers(&[("cf-connecting-ip", " 2001:db8::1 ")])),
            Some("2001:db8::1")
        );
    }
}
