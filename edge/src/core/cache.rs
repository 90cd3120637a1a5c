//! Edge caching decisions for the Workers Cache API: per-route [`CachePolicy`], cache keys,
//! whether a brain response may be stored, and how fresh a stored one is.
//!
//! The flow for a route with a cache policy (its order is [`super::exchange::Exchange`]'s):
//! 1. [`cache_key`] → a key, or `Bypass` (proxy as usual; `x-edge-cache: BYPASS`).
//! 2. `cache.match(key)`; for a hit, [`StoredMeta::from_headers`] and [`StoredMeta::freshness`]:
//!    `Fresh` → serve it with [`prepare_for_serve`] (`HIT`); `Stale` → serve it (`STALE`) and
//!    refresh in `ctx.waitUntil` (fetch, then step 3); `Expired` or no hit → fetch (`MISS`).
//! 3. [`storable`] on the brain's status and headers: `Storable { ttl_secs, swr_secs }` → put a
//!    copy of the body under the key with [`prepare_for_store`] headers (in `waitUntil`, while
//!    the client's copy streams on); `Bypass` → do not store, answer `x-edge-cache: BYPASS`
//!    ([`CacheStatus::after_fetch`]).
//!
//! The Cache API keeps entries by their own `Cache-Control: max-age` and ignores `s-maxage` and
//! `stale-while-revalidate`, so entries are put with `max-age = ttl + swr` and the edge decides
//! freshness itself from the metadata header written at store time. Routes without a policy
//! answer `x-edge-cache: BYPASS` too, so every response carries the header.
//!
//! Requests' own `Cache-Control`/`Pragma` are ignored on purpose: a client must not be able to
//! force cache misses onto the brain.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, EXPIRES, RANGE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use shared_types::headers::{CLIENT_SESSION_ID, EDGE_CACHE, EDGE_SOURCE, REQUEST_ID};

use super::policy_error::PolicyError;
use super::target::RequestTarget;

/// Origin of every cache key. Workers Cache API keys must be GET URLs; `.invalid` can never
/// resolve (RFC 6761), so a key can never be confused with a real URL.
pub const CACHE_KEY_ORIGIN: &str = "https://edge-cache.invalid";
/// Stored-response metadata written by [`prepare_for_store`]; never sent to clients.
pub const META_HEADER: &str = "x-edgebrain-cache-meta";
/// The brain's own `Cache-Control`, kept aside while the entry carries the edge's.
pub const ORIGIN_CACHE_CONTROL_HEADER: &str = "x-edgebrain-origin-cache-control";
/// Name of the wrangler variable whose value versions every key; bump it to purge everything.
pub const CACHE_VERSION_VAR: &str = "CACHE_VERSION";
/// Tracking parameters dropped from cache keys unless a policy lists its own (`*` = prefix).
pub const DEFAULT_TRACKING_PARAMS: [&str; 16] = [
    "utm_*",
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "igshid",
    "yclid",
    "twclid",
    "ttclid",
    "li_fat_id",
];
/// Longest accepted `ttl_secs` and `swr_secs`: one year.
pub const MAX_LIFETIME_SECS: u32 = 365 * 24 * 60 * 60;
/// Default largest POST body that is hashed into a key (larger ones bypass the cache).
pub const DEFAULT_MAX_POST_BODY_BYTES: u32 = 64 * 1024;
/// Largest accepted `max_post_body_bytes`.
pub const MAX_POST_BODY_BYTES: u32 = 1024 * 1024;

/// Whose cache entry a response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// One entry for everybody: the route's answer does not depend on who asks. The route table
    /// asserts this; the edge does not second-guess it from `Authorization` or cookies.
    Public,
    /// One entry per caller (user id, else session id); requests without one bypass.
    Identity,
}

/// Which query parameters are part of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryParams {
    /// All of them (minus the tracking parameters).
    All,
    /// Only these names (exact, after percent-decoding unreserved characters); others are
    /// dropped from the key, so they must not change the response.
    Only(Vec<String>),
}

/// A route's cache policy, validated while deserialized:
///
/// ```json
/// {"ttl_secs": 60, "swr_secs": 30, "scope": "public", "query": ["page", "q"],
///  "tracking_params": ["utm_*", "fbclid"], "deterministic_post": false,
///  "max_post_body_bytes": 65536}
/// ```
/// Only `ttl_secs` is required; `swr_secs` defaults to 0, `scope` to `public`, `query` to
/// `"all"`, `tracking_params` to [`DEFAULT_TRACKING_PARAMS`], `deterministic_post` to false.
/// The TTL is an upper bound: the brain's `Cache-Control` may shorten it, never extend it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawCachePolicy")]
pub struct CachePolicy {
    ttl_secs: u32,
    swr_secs: u32,
    scope: CacheScope,
    query: QueryParams,
    tracking_params: Vec<String>,
    deterministic_post: bool,
    max_post_body_bytes: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCachePolicy {
    ttl_secs: u32,
    #[serde(default)]
    swr_secs: u32,
    #[serde(default = "default_scope")]
    scope: CacheScope,
    #[serde(default)]
    query: Option<RawQuery>,
    #[serde(default)]
    tracking_params: Option<Vec<String>>,
    #[serde(default)]
    deterministic_post: bool,
    #[serde(default = "default_max_post_body_bytes")]
    max_post_body_bytes: u32,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawQuery {
    Keyword(String),
    List(Vec<String>),
}

fn default_scope() -> CacheScope {
    CacheScope::Public
}
fn default_max_post_body_bytes() -> u32 {
    DEFAULT_MAX_POST_BODY_BYTES
}

impl TryFrom<RawCachePolicy> for CachePolicy {
    type Error = PolicyError;

    fn try_from(raw: RawCachePolicy) -> Result<Self, PolicyError> {
        if !(1..=MAX_LIFETIME_SECS).contains(&raw.ttl_secs) {
            return Err(PolicyError::new(
                "ttl_secs",
                format!(
                    "must be between 1 and {MAX_LIFETIME_SECS}, got {}",
                    raw.ttl_secs
                ),
            ));
        }
        if raw.swr_secs > MAX_LIFETIME_SECS {
            return Err(PolicyError::new(
                "swr_secs",
                format!("must be at most {MAX_LIFETIME_SECS}, got {}", raw.swr_secs),
            ));
        }
        if !(1..=MAX_POST_BODY_BYTES).contains(&raw.max_post_body_bytes) {
            return Err(PolicyError::new(
                "max_post_body_bytes",
                format!(
                    "must be between 1 and {MAX_POST_BODY_BYTES}, got {}",
                    raw.max_post_body_bytes
                ),
            ));
        }
        let query = match raw.query {
            None => QueryParams::All,
            Some(RawQuery::Keyword(word)) if word == "all" => QueryParams::All,
            Some(RawQuery::Keyword(word)) => {
                return Err(PolicyError::new(
                    "query",
                    format!("must be \"all\" or a list of parameter names, got {word:?}"),
                ));
            }
            Some(RawQuery::List(names)) => {
                let mut normalized = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    if name.is_empty() || name.contains(['&', '=', '#']) {
                        return Err(PolicyError::new(
                            format!("query[{i}]"),
                            format!(
                                "must be a non-empty parameter name without &, = or #, got {name:?}"
                            ),
                        ));
                    }
                    normalized.push(normalize_component(name));
                }
                QueryParams::Only(normalized)
            }
        };
        let tracking_params = match raw.tracking_params {
            None => DEFAULT_TRACKING_PARAMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            Some(list) => {
                for (i, pattern) in list.iter().enumerate() {
                    let stem = pattern.strip_suffix('*').unwrap_or(pattern);
                    if stem.is_empty() || stem.contains(['*', '&', '=', '#']) {
                        return Err(PolicyError::new(
                            format!("tracking_params[{i}]"),
                            format!(
                                "must be a parameter name, optionally ending in `*` for a prefix, got {pattern:?}"
                            ),
                        ));
                    }
                }
                list.iter().map(|p| p.to_ascii_lowercase()).collect()
            }
        };
        Ok(Self {
            ttl_secs: raw.ttl_secs,
            swr_secs: raw.swr_secs,
            scope: raw.scope,
            query,
            tracking_params,
            deterministic_post: raw.deterministic_post,
            max_post_body_bytes: raw.max_post_body_bytes,
        })
    }
}

impl CachePolicy {
    pub fn ttl_secs(&self) -> u32 {
        self.ttl_secs
    }
    pub fn swr_secs(&self) -> u32 {
        self.swr_secs
    }
    pub fn scope(&self) -> CacheScope {
        self.scope
    }
    pub fn deterministic_post(&self) -> bool {
        self.deterministic_post
    }
    /// The adapter reads at most this many bytes (+1, to notice a longer body) of a POST body
    /// before calling [`cache_key`]; longer bodies bypass the cache.
    pub fn max_post_body_bytes(&self) -> u32 {
        self.max_post_body_bytes
    }

    fn is_tracking(&self, name: &str) -> bool {
        self.tracking_params
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name
                    .get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
                None => name.eq_ignore_ascii_case(pattern),
            })
    }

    fn counts(&self, name: &str) -> bool {
        match &self.query {
            QueryParams::All => true,
            QueryParams::Only(names) => names.iter().any(|n| n == name),
        }
    }
}

/// Parses [`CACHE_VERSION_VAR`]: a positive integer, default 1.
pub fn parse_cache_version(raw: Option<&str>) -> Result<u32, PolicyError> {
    match raw {
        None => Ok(1),
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| {
                PolicyError::new(
                    CACHE_VERSION_VAR,
                    format!("must be a positive integer, got {raw:?}"),
                )
            }),
    }
}

/// Every key of `version` starts with this (`https://edge-cache.invalid/v{version}/`).
pub fn key_prefix(version: u32) -> String {
    format!("{CACHE_KEY_ORIGIN}/v{version}/")
}

/// Why the cache is not used for a request or a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BypassReason {
    /// Not GET/HEAD, and not a POST on a `deterministic_post` route.
    Method,
    /// `scope: identity` but the request has neither a user nor a session id.
    NoIdentity,
    /// A POST body longer than `max_post_body_bytes`.
    BodyTooLarge,
    /// A POST whose body the adapter did not supply.
    BodyMissing,
    /// A `Range` request (partial content is never cached).
    Range,
    /// The URL is not absolute `http(s)://host/…`, or has credentials.
    MalformedUrl,
    /// The brain's status is not a cacheable success (2xx except 206).
    Status(u16),
    /// The response sets a cookie.
    SetsCookie,
    /// An event stream: it must stream through, never be buffered into the cache.
    EventStream,
    /// `Vary: *`.
    VaryAll,
    /// `Vary` names a request header the key does not contain.
    Vary(String),
    /// `Cache-Control: no-store`.
    NoStore,
    /// `Cache-Control: private`.
    Private,
    /// `Cache-Control: no-cache` (would need revalidation on every use, which the edge does not do).
    NoCache,
    /// A lifetime of zero (`s-maxage=0`, or `max-age=0` without `s-maxage`).
    ZeroLifetime,
    /// A `Cache-Control` the edge cannot read (a malformed lifetime).
    MalformedCacheControl,
    /// `Expires` without `max-age`/`s-maxage`: the edge does not parse dates, so it does not guess.
    ExpiresWithoutMaxAge,
}

/// The value of `x-edge-cache` ([`EDGE_CACHE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    Stale,
    Bypass,
}

impl CacheStatus {
    pub const HEADER: &'static str = EDGE_CACHE;

    pub const fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Bypass => "BYPASS",
        }
    }

    /// The status of a response fetched from the brain after a lookup: `MISS` when it is
    /// stored, `BYPASS` when it may not be.
    pub fn after_fetch(storability: &Storability) -> Self {
        match storability {
            Storability::Storable { .. } => CacheStatus::Miss,
            Storability::Bypass(_) => CacheStatus::Bypass,
        }
    }

    /// Sets `x-edge-cache` on a response, replacing any value (the brain's included).
    pub fn set_on(self, headers: &mut HeaderMap) {
        headers.insert(
            HeaderName::from_static(EDGE_CACHE),
            HeaderValue::from_static(self.as_str()),
        );
    }
}

/// The request parts a cache key is made of, besides its [`KeyLocation`].
#[derive(Debug, Clone, Copy)]
pub struct CacheRequest<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The verified caller: user id, else session id. Used only for `scope: identity`.
    pub identity: Option<&'a str>,
    /// The POST body (at most `max_post_body_bytes` + 1 bytes of it), for deterministic POSTs.
    pub body: Option<&'a [u8]>,
}

/// A cache key: an absolute GET URL for the Workers Cache API.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The cache key for a request at `location`, or why it bypasses the cache:
/// `https://edge-cache.invalid/v{version}/{scope}/{method}/{host}{path}[?{query}]` where
///
/// - `scope` is `public` or `id-` + 32 hex digits of SHA-256 of the identity (ids never
///   appear in keys);
/// - `method` is `get`, `head` (its own entries: a HEAD response has no body, so it must never
///   be stored where a GET would find it) or `post-` + the SHA-256 of the body:
///   JSON bodies normalised first (object keys sorted, insignificant whitespace removed),
///   anything else hashed as is; the media type is hashed along;
/// - `host` is lowercased without a default port; the scheme is not part of the key;
/// - `path` and `query` have percent-escapes normalised (unreserved characters decoded, hex
///   uppercased), the query's tracking parameters and uncounted parameters are dropped and the
///   rest sorted by name, then value (`a` equals `a=`).
pub fn cache_key(
    request: &CacheRequest<'_>,
    location: &KeyLocation,
    policy: &CachePolicy,
    version: u32,
) -> Result<CacheKey, BypassReason> {
    if request.headers.contains_key(RANGE) {
        return Err(BypassReason::Range);
    }
    let method = if request.method == Method::GET {
        "get".to_owned()
    } else if request.method == Method::HEAD {
        "head".to_owned()
    } else if request.method == Method::POST && policy.deterministic_post {
        let body = request.body.ok_or(BypassReason::BodyMissing)?;
        if body.len() > usize::try_from(policy.max_post_body_bytes).unwrap_or(usize::MAX) {
            return Err(BypassReason::BodyTooLarge);
        }
        format!("post-{}", body_digest(request.headers, body))
    } else {
        return Err(BypassReason::Method);
    };
    let scope = match policy.scope {
        CacheScope::Public => "public".to_owned(),
        CacheScope::Identity => {
            let identity = request
                .identity
                .filter(|id| !id.is_empty())
                .ok_or(BypassReason::NoIdentity)?;
            let digest =
                Sha256::digest([b"edgebrain-cache-identity\0", identity.as_bytes()].concat());
            format!("id-{}", hex(&digest[..16]))
        }
    };
    Ok(CacheKey(format!(
        "{}{scope}/{method}/{}",
        key_prefix(version),
        location.0
    )))
}

/// The part of a cache key the request URL gives: `{host}{path}[?{query}]`, normalised as
/// [`cache_key`] describes. Made from the request's parsed target when the request is
/// planned; a deterministic POST keeps it until its body is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLocation(String);

/// The [`KeyLocation`] of a request, or [`BypassReason::MalformedUrl`] when its URL is not
/// absolute `http(s)://host/…` with a plain host.
pub fn key_location(
    target: &RequestTarget<'_>,
    policy: &CachePolicy,
) -> Result<KeyLocation, BypassReason> {
    let default_port = match target.scheme {
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => ":443",
        Some(scheme) if scheme.eq_ignore_ascii_case("http") => ":80",
        _ => return Err(BypassReason::MalformedUrl),
    };
    let authority = target
        .authority
        .filter(|authority| {
            !authority.is_empty()
                && authority.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .ok_or(BypassReason::MalformedUrl)?
        .to_ascii_lowercase();
    let host = authority.strip_suffix(default_port).unwrap_or(&authority);
    let path = normalize_component(target.path);
    let query = normalize_query(target.query(), policy);
    let mut location = format!("{host}{path}");
    if !query.is_empty() {
        location.push('?');
        location.push_str(&query);
    }
    Ok(KeyLocation(location))
}

/// The query part of a key: see [`cache_key`].
fn normalize_query(query: &str, policy: &CachePolicy) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (normalize_component(name), normalize_component(value))
        })
        .filter(|(name, _)| !policy.is_tracking(name) && policy.counts(name))
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len());
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Normalises percent-encoding so equivalent spellings give one key: escapes of unreserved
/// characters are decoded, other escapes get uppercase hex, a stray `%` becomes `%25`, and
/// bytes that may not appear in a URL are escaped. Idempotent.
fn normalize_component(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(&hi), Some(&lo)) if byte == b'%' => hex_value(hi).zip(hex_value(lo)),
            _ => None,
        };
        match escaped {
            Some((hi, lo)) => {
                let decoded = hi << 4 | lo;
                if is_unreserved(decoded) {
                    out.push(char::from(decoded));
                } else {
                    push_escape(&mut out, decoded);
                }
                i += 3;
            }
            None => {
                if is_unreserved(byte) || b"!$&'()*+,;=:@/?".contains(&byte) {
                    out.push(char::from(byte));
                } else {
                    push_escape(&mut out, byte);
                }
                i += 1;
            }
        }
    }
    out
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    for nibble in [byte >> 4, byte & 0x0f] {
        if let Some(&digit) = HEX.get(usize::from(nibble)) {
            out.push(char::from(digit));
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// SHA-256 (hex) of a POST body for its key: the media type (lowercase, without parameters),
/// then the body, JSON in canonical form when it parses, raw bytes otherwise.
fn body_digest(headers: &HeaderMap, body: &[u8]) -> String {
    let media_type = headers
        .get(CONTENT_TYPE)
        .map(|value| {
            let raw = value.as_bytes();
            let end = raw.iter().position(|&b| b == b';').unwrap_or(raw.len());
            String::from_utf8_lossy(raw.get(..end).unwrap_or(raw))
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(media_type.as_bytes());
    hasher.update(b"\0");
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => {
            let mut canonical = String::with_capacity(body.len());
            write_canonical_json(&value, &mut canonical);
            hasher.update(b"json\0");
            hasher.update(canonical.as_bytes());
        }
        Err(_) => {
            hasher.update(b"raw\0");
            hasher.update(body);
        }
    }
    hex(&hasher.finalize())
}

/// JSON with object keys sorted and no whitespace. Written by hand because serde_json's map
/// order depends on a crate feature another workspace member may switch on.
/// Recursion is bounded by serde_json's own nesting limit (128) at parse time.
fn write_canonical_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical_json(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Whether a brain response may be stored, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storability {
    /// Store it; it is fresh for `ttl_secs` and may be served stale (while being refreshed)
    /// for `swr_secs` more.
    Storable {
        ttl_secs: u32,
        swr_secs: u32,
    },
    Bypass(BypassReason),
}

/// Decides whether the brain's response may be stored under `policy`.
///
/// Never stored: non-2xx and 206, `Set-Cookie`, `text/event-stream`, `Vary: *` or a `Vary` on
/// anything but `Accept-Encoding`/`Origin` (the key holds neither other headers, and CORS is
/// the edge's own), `Cache-Control` `no-store`, `private` or `no-cache` (also in their
/// field-list forms), a malformed lifetime, `Expires` without a `max-age`/`s-maxage`.
///
/// Lifetime: the route's `ttl_secs`, lowered to `s-maxage` when present, else to `max-age`;
/// a lifetime of 0 is not stored. Stale serving: the route's `swr_secs`, lowered to the brain's
/// `stale-while-revalidate`, and 0 under `must-revalidate`/`proxy-revalidate`.
pub fn storable(status: u16, headers: &HeaderMap, policy: &CachePolicy) -> Storability {
    match lifetime(status, headers, policy) {
        Ok((ttl_secs, swr_secs)) => Storability::Storable { ttl_secs, swr_secs },
        Err(reason) => Storability::Bypass(reason),
    }
}

fn lifetime(
    status: u16,
    headers: &HeaderMap,
    policy: &CachePolicy,
) -> Result<(u32, u32), BypassReason> {
    if !(200..300).contains(&status) || status == 206 {
        return Err(BypassReason::Status(status));
    }
    if headers.contains_key(SET_COOKIE) {
        return Err(BypassReason::SetsCookie);
    }
    let is_event_stream = headers.get_all(CONTENT_TYPE).iter().any(|value| {
        value
            .as_bytes()
            .get(..17)
            .is_some_and(|head| head.eq_ignore_ascii_case(b"text/event-stream"))
    });
    if is_event_stream {
        return Err(BypassReason::EventStream);
    }
    for value in headers.get_all(VARY) {
        for token in value
            .as_bytes()
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
        {
            if token == b"*" {
                return Err(BypassReason::VaryAll);
            }
            if !token.is_empty()
                && !token.eq_ignore_ascii_case(b"accept-encoding")
                && !token.eq_ignore_ascii_case(b"origin")
            {
                return Err(BypassReason::Vary(
                    String::from_utf8_lossy(token).into_owned(),
                ));
            }
        }
    }

    let directives = CacheControl::parse(headers)?;
    if directives.no_store {
        return Err(BypassReason::NoStore);
    }
    if directives.private {
        return Err(BypassReason::Private);
    }
    if directives.no_cache {
        return Err(BypassReason::NoCache);
    }
    let brain_lifetime = match (directives.s_maxage, directives.max_age) {
        (Some(shared), _) => Some(shared),
        (None, Some(any)) => Some(any),
        (None, None) if headers.contains_key(EXPIRES) => {
            return Err(BypassReason::ExpiresWithoutMaxAge);
        }
        (None, None) => None,
    };
    let ttl = brain_lifetime.map_or(policy.ttl_secs, |secs| secs.min(policy.ttl_secs));
    if ttl == 0 {
        return Err(BypassReason::ZeroLifetime);
    }
    let swr = if directives.must_revalidate {
        0
    } else {
        directives
            .stale_while_revalidate
            .map_or(policy.swr_secs, |secs| secs.min(policy.swr_secs))
    };
    Ok((ttl, swr))
}

#[derive(Debug, Default)]
struct CacheControl {
    no_store: bool,
    private: bool,
    no_cache: bool,
    must_revalidate: bool,
    max_age: Option<u32>,
    s_maxage: Option<u32>,
    stale_while_revalidate: Option<u32>,
}

impl CacheControl {
    /// Reads every `Cache-Control` line. Unknown directives are ignored (RFC 9111 §5.2.3);
    /// a repeated lifetime keeps the smallest; a lifetime that is not a number is refused.
    fn parse(headers: &HeaderMap) -> Result<Self, BypassReason> {
        let mut cc = Self::default();
        for value in headers.get_all(CACHE_CONTROL) {
            let text = value
                .to_str()
                .map_err(|_| BypassReason::MalformedCacheControl)?;
            for directive in split_directives(text) {
                let (name, argument) = match directive.split_once('=') {
                    Some((name, argument)) => {
                        (name.trim(), Some(argument.trim().trim_matches('"')))
                    }
                    None => (directive, None),
                };
                let name = name.to_ascii_lowercase();
                let seconds = || -> Result<u32, BypassReason> {
                    let digits = argument.ok_or(BypassReason::MalformedCacheControl)?;
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(BypassReason::MalformedCacheControl);
                    }
                    // RFC 9111 §1.2.2: too large a delta means "a very long time".
                    Ok(digits.parse::<u32>().unwrap_or(u32::MAX))
                };
                let keep_min = |slot: &mut Option<u32>, secs: u32| {
                    *slot = Some(slot.map_or(secs, |old| old.min(secs)));
                };
                match name.as_str() {
                    "no-store" => cc.no_store = true,
                    "private" => cc.private = true,
                    "no-cache" => cc.no_cache = true,
                    "must-revalidate" | "proxy-revalidate" => cc.must_revalidate = true,
                    "max-age" => keep_min(&mut cc.max_age, seconds()?),
                    "s-maxage" => keep_min(&mut cc.s_maxage, seconds()?),
                    "stale-while-revalidate" => {
                        keep_min(&mut cc.stale_while_revalidate, seconds()?);
                    }
                    _ => {}
                }
            }
        }
        Ok(cc)
    }
}

/// Splits a `Cache-Control` value on commas outside quoted strings (`private="a, b"`).
fn split_directives(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(text.get(start..i).unwrap_or("").trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or("").trim());
    parts.retain(|part| !part.is_empty());
    parts
}

/// How usable a stored response is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than its TTL: serve it (`HIT`).
    Fresh,
    /// Past its TTL, within the stale-while-revalidate window: serve it (`STALE`) and refresh.
    Stale,
    /// Past both: fetch from the brain (`MISS`).
    Expired,
}

/// Freshness of a response stored at `stored_at_ms`. A clock that went backwards (a stored-at
/// in the future, e.g. from another machine) counts as age 0.
pub fn freshness(stored_at_ms: u64, ttl_secs: u32, swr_secs: u32, now_ms: u64) -> Freshness {
    let age_ms = now_ms.saturating_sub(stored_at_ms);
    let ttl_ms = u64::from(ttl_secs) * 1000;
    let stale_ms = ttl_ms + u64::from(swr_secs) * 1000;
    if age_ms < ttl_ms {
        Freshness::Fresh
    } else if age_ms < stale_ms {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
}

/// What the edge records with a stored response ([`META_HEADER`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMeta {
    pub stored_at_ms: u64,
    pub ttl_secs: u32,
    pub swr_secs: u32,
}

impl StoredMeta {
    /// `stored_at_ms=…;ttl=…;swr=…`
    pub fn to_header_value(&self) -> HeaderValue {
        let text = format!(
            "stored_at_ms={};ttl={};swr={}",
            self.stored_at_ms, self.ttl_secs, self.swr_secs
        );
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// Reads the metadata of a stored response; `None` if absent or malformed (treat the entry
    /// as expired).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let text = headers.get(META_HEADER)?.to_str().ok()?;
        let mut fields = text.split(';');
        let mut field = |name: &str| fields.next()?.strip_prefix(name)?.strip_prefix('=');
        let stored_at_ms = field("stored_at_ms")?.parse().ok()?;
        let ttl_secs = field("ttl")?.parse().ok()?;
        let swr_secs = field("swr")?.parse().ok()?;
        fields.next().is_none().then_some(Self {
            stored_at_ms,
            ttl_secs,
            swr_secs,
        })
    }

    pub fn freshness(&self, now_ms: u64) -> Freshness {
        freshness(self.stored_at_ms, self.ttl_secs, self.swr_secs, now_ms)
    }
}

/// Headers never stored with a response: per-connection, per-request or per-caller ones, the
/// edge's own per-response headers (recomputed on every serve), and the edge's internal
/// metadata names (so the brain can never forge them).
pub const STRIPPED_BEFORE_STORE: [&str; 19] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "set-cookie",
    "age",
    REQUEST_ID,
    CLIENT_SESSION_ID,
    EDGE_CACHE,
    EDGE_SOURCE,
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
    META_HEADER,
    ORIGIN_CACHE_CONTROL_HEADER,
    "cache-control",
];

/// The headers to `cache.put` a storable brain response with: [`STRIPPED_BEFORE_STORE`] and
/// every `Access-Control-*` header removed, the brain's `Cache-Control` kept aside in
/// [`ORIGIN_CACHE_CONTROL_HEADER`], `Cache-Control: max-age={ttl + swr}` for the Cache API, and
/// the [`META_HEADER`].
pub fn prepare_for_store(
    response: &HeaderMap,
    ttl_secs: u32,
    swr_secs: u32,
    now_ms: u64,
) -> HeaderMap {
    let mut stored = HeaderMap::new();
    for (name, value) in response {
        let drop = STRIPPED_BEFORE_STORE.contains(&name.as_str())
            || name.as_str().starts_with("access-control-");
        if !drop {
            stored.append(name.clone(), value.clone());
        }
    }
    let original: Vec<&str> = response
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !original.is_empty()
        && let Ok(value) = HeaderValue::from_str(&original.join(", "))
    {
        stored.insert(HeaderName::from_static(ORIGIN_CACHE_CONTROL_HEADER), value);
    }
    let keep_secs = u64::from(ttl_secs) + u64::from(swr_secs);
    if let Ok(value) = HeaderValue::from_str(&format!("max-age={keep_secs}")) {
        stored.insert(CACHE_CONTROL, value);
    }
    let meta = StoredMeta {
        stored_at_ms: now_ms,
        ttl_secs,
        swr_secs,
    };
    stored.insert(HeaderName::from_static(META_HEADER), meta.to_header_value());
    stored
}

/// The headers to serve a cached response with: the internal metadata removed, the brain's
/// own `Cache-Control` restored, `Age` set from the stored-at time, and `x-edge-cache`.
/// (CORS, rate-limit, request-id and session headers are added afterwards as for any response.)
pub fn prepare_for_serve(stored: &HeaderMap, status: CacheStatus, now_ms: u64) -> HeaderMap {
    let mut headers = stored.clone();
    let meta = StoredMeta::from_headers(stored);
    headers.remove(META_HEADER);
    headers.remove(CACHE_CONTROL);
    if let Some(original) = headers.remove(ORIGIN_CACHE_CONTROL_HEADER) {
        headers.insert(CACHE_CONTROL, original);
    }
    if let Some(meta) = meta {
        let age_secs = now_ms.saturating_sub(meta.stored_at_ms) / 1000;
        headers.insert(http::header::AGE, HeaderValue::from(age_secs));
    }
    status.set_on(&mut headers);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_support::headers;
    use proptest::prelude::*;

    fn policy(json: &str) -> CachePolicy {
        serde_json::from_str(json).unwrap()
    }

    fn public() -> CachePolicy {
        policy(r#"{"ttl_secs": 60, "swr_secs": 30}"#)
    }

    /// [`cache_key`] for `request` at `url`: parsed, located, keyed.
    fn key_at(
        url: &str,
        request: &CacheRequest<'_>,
        policy: &CachePolicy,
        version: u32,
    ) -> Result<CacheKey, BypassReason> {
        let target = RequestTarget::parse(url).ok_or(BypassReason::MalformedUrl)?;
        cache_key(request, &key_location(&target, policy)?, policy, version)
    }

    fn key_for(method: &Method, url: &str, policy: &CachePolicy) -> Result<CacheKey, BypassReason> {
        let empty = HeaderMap::new();
        let request = CacheRequest {
            method,
            headers: &empty,
            identity: None,
            body: None,
        };
        key_at(url, &request, policy, 3)
    }

    fn get_key(url: &str, policy: &CachePolicy) -> String {
        key_for(&Method::GET, url, policy).unwrap().0
    }

    #[test]
    fn policies_deserialize_with_defaults() {
        let p = policy(r#"{"ttl_secs": 60}"#);
        assert_eq!(
            (p.ttl_secs(), p.swr_secs(), p.scope()),
            (60, 0, CacheScope::Public)
        );
        assert_eq!(p.query, QueryParams::All);
        assert!(!p.deterministic_post());
        assert_eq!(p.max_post_body_bytes(), DEFAULT_MAX_POST_BODY_BYTES);
        assert!(
            p.is_tracking("utm_source") && p.is_tracking("UTM_Campaign") && p.is_tracking("fbclid")
        );
        assert!(!p.is_tracking("utm") && !p.is_tracking("page"));
        let p = policy(
            r#"{"ttl_secs": 5, "scope": "identity", "query": ["q", "page"],
            "tracking_params": ["ref*"], "deterministic_post": true, "max_post_body_bytes": 10}"#,
        );
        assert_eq!(p.scope(), CacheScope::Identity);
        assert_eq!(
            p.query,
            QueryParams::Only(vec!["q".to_owned(), "page".to_owned()])
        );
        assert!(p.is_tracking("referrer") && !p.is_tracking("utm_source"));
        assert_eq!(
            policy(r#"{"ttl_secs": 5, "query": "all"}"#).query,
            QueryParams::All
        );
    }

    #[test]
    fn bad_policies_fail_at_load_naming_the_field() {
        for (json, field) in [
            (r#"{"ttl_secs": 0}"#, "`ttl_secs`"),
            (r#"{"ttl_secs": 31536001}"#, "`ttl_secs`"),
            (r#"{"ttl_secs": 1, "swr_secs": 31536001}"#, "`swr_secs`"),
            (r#"{"ttl_secs": 1, "query": "some"}"#, "`query`"),
            (r#"{"ttl_secs": 1, "query": ["a", ""]}"#, "`query[1]`"),
            (r#"{"ttl_secs": 1, "query": ["a=b"]}"#, "`query[0]`"),
            (
                r#"{"ttl_secs": 1, "tracking_params": ["*"]}"#,
                "`tracking_params[0]`",
            ),
            (
                r#"{"ttl_secs": 1, "tracking_params": ["a*b"]}"#,
                "`tracking_params[0]`",
            ),
            (
                r#"{"ttl_secs": 1, "max_post_body_bytes": 0}"#,
                "`max_post_body_bytes`",
            ),
            (
                r#"{"ttl_secs": 1, "max_post_body_bytes": 1048577}"#,
                "`max_post_body_bytes`",
            ),
            (
                r#"{"ttl_secs": 1, "scope": "user"}"#,
                "unknown variant `user`",
            ),
            (r#"{"ttl_secs": 1, "tll": 2}"#, "unknown field `tll`"),
            (r#"{"swr_secs": 1}"#, "missing field `ttl_secs`"),
        ] {
            let err = serde_json::from_str::<CachePolicy>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn cache_versions_parse_with_a_default() {
        assert_eq!(parse_cache_version(None), Ok(1));
        assert_eq!(parse_cache_version(Some(" 7 ")), Ok(7));
        for bad in ["0", "-1", "x", ""] {
            let err = parse_cache_version(Some(bad)).unwrap_err();
            assert_eq!(err.field, "CACHE_VERSION");
        }
    }

    #[test]
    fn keys_are_versioned_scoped_and_normalised() {
        let p = public();
        let key = get_key(
            "https://API.Example.com:443/api/v1/items?b=2&a=1&utm_source=x&fbclid=y#frag",
            &p,
        );
        assert_eq!(
            key,
            "https://edge-cache.invalid/v3/public/get/api.example.com/api/v1/items?a=1&b=2"
        );
        assert!(key.starts_with(&key_prefix(3)));
        // Same request, other spellings.
        for url in [
            "https://api.example.com/api/v1/items?a=1&b=2",
            "http://api.example.com:80/api/v1/items?a=1&&b=2&gclid=z",
            "https://api.example.com/api/v1/%69tems?a=%31&b=2&UTM_medium=m",
        ] {
            assert_eq!(get_key(url, &p), key, "{url}");
        }
        // Different requests.
        for url in [
            "https://api.example.com:8443/api/v1/items?a=1&b=2",
            "https://api.example.com/api/v1/Items?a=1&b=2",
            "https://api.example.com/api/v1/items?a=1&b=3",
            "https://api.example.com/api/v1/items?a=1&b=2&b=2",
            "https://other.example.com/api/v1/items?a=1&b=2",
        ] {
            assert_ne!(get_key(url, &p), key, "{url}");
        }
        assert_eq!(
            get_key("https://h/p?a&b=", &p),
            get_key("https://h/p?b&a=", &p),
        );
        assert_eq!(
            get_key("https://h", &p),
            "https://edge-cache.invalid/v3/public/get/h/"
        );
    }

    #[test]
    fn bumping_the_version_changes_every_key() {
        let p = public();
        let empty = HeaderMap::new();
        let request = CacheRequest {
            method: &Method::GET,
            headers: &empty,
            identity: None,
            body: None,
        };
        let v1 = key_at("https://h/p", &request, &p, 1).unwrap();
        let v2 = key_at("https://h/p", &request, &p, 2).unwrap();
        assert_ne!(v1, v2);
        assert!(v2.as_str().starts_with("https://edge-cache.invalid/v2/"));
    }

    #[test]
    fn only_listed_query_params_count() {
        let p = policy(r#"{"ttl_secs": 60, "query": ["q", "page"]}"#);
        assert_eq!(
            get_key("https://h/s?sid=1&page=2&q=x&utm_x=1", &p),
            "https://edge-cache.invalid/v3/public/get/h/s?page=2&q=x"
        );
        assert_eq!(
            get_key("https://h/s?sid=9", &p),
            "https://edge-cache.invalid/v3/public/get/h/s"
        );
    }

    #[test]
    fn escapes_are_normalised_and_unsafe_bytes_escaped() {
        assert_eq!(normalize_component("%7e%41%2f%2F%zz%"), "~A%2F%2F%25zz%25");
        assert_eq!(normalize_component("a b\"<>"), "a%20b%22%3C%3E");
        assert_eq!(normalize_component("é"), "%C3%A9");
    }

    #[test]
    fn identity_scope_keys_per_caller_without_exposing_ids() {
        let p = policy(r#"{"ttl_secs": 60, "scope": "identity"}"#);
        let empty = HeaderMap::new();
        let key = |identity| {
            key_at(
                "https://h/me",
                &CacheRequest {
                    method: &Method::GET,
                    headers: &empty,
                    identity,
                    body: None,
                },
                &p,
                1,
            )
        };
        let alice = key(Some("alice")).unwrap();
        let bob = key(Some("bob")).unwrap();
        assert_ne!(alice, bob);
        assert!(!alice.as_str().contains("alice"));
        assert!(
            alice
                .as_str()
                .starts_with("https://edge-cache.invalid/v1/id-")
        );
        assert_eq!(key(None), Err(BypassReason::NoIdentity));
        assert_eq!(key(Some("")), Err(BypassReason::NoIdentity));
    }

    #[test]
    fn only_get_head_and_opted_in_posts_are_cached() {
        let p = public();
        assert_eq!(
            key_for(&Method::HEAD, "https://h/x", &p).unwrap().0,
            "https://edge-cache.invalid/v3/public/head/h/x"
        );
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            assert_eq!(
                key_for(&method, "https://h/x", &p),
                Err(BypassReason::Method)
            );
        }
        let ranged = headers(&[("range", "bytes=0-1")]);
        let request = CacheRequest {
            method: &Method::GET,
            headers: &ranged,
            identity: None,
            body: None,
        };
        assert_eq!(
            key_at("https://h/x", &request, &p, 1),
            Err(BypassReason::Range)
        );
        for url in [
            "/relative",
            "ftp://h/x",
            "https://user@h/x",
            "https:///x",
            "https://h h/x",
        ] {
            assert_eq!(
                key_for(&Method::GET, url, &p),
                Err(BypassReason::MalformedUrl),
                "{url}"
            );
        }
    }

    fn post_key(
        body: &[u8],
        content_type: &str,
        policy: &CachePolicy,
    ) -> Result<CacheKey, BypassReason> {
        let h = headers(&[("content-type", content_type)]);
        let request = CacheRequest {
            method: &Method::POST,
            headers: &h,
            identity: None,
            body: Some(body),
        };
        key_at("https://h/api/v1/complete", &request, policy, 1)
    }

    #[test]
    fn deterministic_posts_are_keyed_by_their_normalised_body() {
        let p =
            policy(r#"{"ttl_secs": 60, "deterministic_post": true, "max_post_body_bytes": 128}"#);
        let json = "application/json";
        let a = post_key(
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            json,
            &p,
        )
        .unwrap();
        let b = post_key(
            b"{ \"messages\" : [ {\"content\":\"hi\", \"role\":\"user\"} ],\n \"model\":\"m\" }",
            json,
            &p,
        )
        .unwrap();
        assert_eq!(a, b);
        assert!(a.as_str().contains("/post-"), "{}", a.as_str());
        let other = post_key(
            br#"{"model":"m","messages":[{"role":"user","content":"ho"}]}"#,
            json,
            &p,
        )
        .unwrap();
        assert_ne!(a, other);
        // Array order is significant; the media type counts; parameters do not.
        assert_ne!(post_key(b"[1,2]", json, &p), post_key(b"[2,1]", json, &p));
        assert_ne!(
            post_key(b"[1]", json, &p),
            post_key(b"[1]", "text/plain", &p)
        );
        assert_eq!(
            post_key(b"[1]", json, &p),
            post_key(b"[1]", "Application/JSON; charset=utf-8", &p)
        );
        // Non-JSON bodies are hashed as they are.
        assert_ne!(
            post_key(b"a  b", "text/plain", &p),
            post_key(b"a b", "text/plain", &p)
        );
        assert_eq!(
            post_key(&[b'x'; 129], json, &p),
            Err(BypassReason::BodyTooLarge)
        );
        let h = HeaderMap::new();
        let request = CacheRequest {
            method: &Method::POST,
            headers: &h,
            identity: None,
            body: None,
        };
        assert_eq!(
            key_at("https://h/x", &request, &p, 1),
            Err(BypassReason::BodyMissing)
        );
    }

    fn decide(status: u16, pairs: &[(&str, &str)]) -> Storability {
        storable(status, &headers(pairs), &public())
    }

    #[test]
    fn the_route_ttl_applies_when_the_brain_says_nothing() {
        assert_eq!(
            decide(200, &[]),
            Storability::Storable {
                ttl_secs: 60,
                swr_secs: 30
            }
        );
        assert_eq!(
            decide(204, &[("vary", "Accept-Encoding, Origin")]),
            Storability::Storable {
                ttl_secs: 60,
                swr_secs: 30
            }
        );
    }

    #[test]
    fn the_brains_cache_control_can_only_shorten() {
        let store = |ttl_secs, swr_secs| Storability::Storable { ttl_secs, swr_secs };
        assert_eq!(
            decide(200, &[("cache-control", "max-age=10")]),
            store(10, 30)
        );
        assert_eq!(
            decide(200, &[("cache-control", "public, max-age=600")]),
            store(60, 30)
        );
        assert_eq!(
            decide(200, &[("cache-control", "max-age=0, s-maxage=20")]),
            store(20, 30)
        );
        assert_eq!(
            decide(
                200,
                &[
                    ("cache-control", "s-maxage=\"5\""),
                    ("cache-control", "max-age=50")
                ]
            ),
            store(5, 30)
        );
        assert_eq!(
            decide(200, &[("cache-control", "max-age=9, max-age=7")]),
            store(7, 30)
        );
        assert_eq!(
            decide(200, &[("cache-control", "max-age=99999999999")]),
            store(60, 30)
        );
        assert_eq!(
            decide(
                200,
                &[("cache-control", "max-age=10, stale-while-revalidate=5")]
            ),
            store(10, 5)
        );
        assert_eq!(
            decide(
                200,
                &[("cache-control", "max-age=10, stale-while-revalidate=500")]
            ),
            store(10, 30)
        );
        assert_eq!(
            decide(200, &[("cache-control", "max-age=10, must-revalidate")]),
            store(10, 0)
        );
        assert_eq!(
            decide(200, &[("cache-control", "s-maxage=10, proxy-revalidate")]),
            store(10, 0)
        );
        assert_eq!(
            decide(200, &[("cache-control", "max-age=10, x-unknown=\"a,b\"")]),
            store(10, 30)
        );
        assert_eq!(
            decide(200, &[("cache-control", "max-age=10"), ("expires", "0")]),
            store(10, 30)
        );
    }

    #[test]
    fn uncacheable_responses_bypass_with_the_reason() {
        use BypassReason as R;
        for (status, pairs, reason) in [
            (404, vec![], R::Status(404)),
            (500, vec![], R::Status(500)),
            (301, vec![], R::Status(301)),
            (206, vec![], R::Status(206)),
            (200, vec![("set-cookie", "a=b")], R::SetsCookie),
            (
                200,
                vec![("content-type", "text/event-stream; charset=utf-8")],
                R::EventStream,
            ),
            (200, vec![("vary", "*")], R::VaryAll),
            (
                200,
                vec![("vary", "Origin, Accept-Language")],
                R::Vary("Accept-Language".to_owned()),
            ),
            (200, vec![("cache-control", "no-store")], R::NoStore),
            (
                200,
                vec![("cache-control", "max-age=60, Private")],
                R::Private,
            ),
            (
                200,
                vec![("cache-control", "private=\"x-user, x-org\", max-age=60")],
                R::Private,
            ),
            (
                200,
                vec![("cache-control", "no-cache=\"set-cookie\"")],
                R::NoCache,
            ),
            (
                200,
                vec![("cache-control", "s-maxage=0, max-age=60")],
                R::ZeroLifetime,
            ),
            (200, vec![("cache-control", "max-age=0")], R::ZeroLifetime),
            (
                200,
                vec![("cache-control", "max-age=soon")],
                R::MalformedCacheControl,
            ),
            (
                200,
                vec![("cache-control", "max-age")],
                R::MalformedCacheControl,
            ),
            (
                200,
                vec![("cache-control", "max-age=-1")],
                R::MalformedCacheControl,
            ),
            (
                200,
                vec![("expires", "Thu, 01 Jan 1970 00:00:00 GMT")],
                R::ExpiresWithoutMaxAge,
            ),
        ] {
            assert_eq!(
                decide(status, &pairs),
                Storability::Bypass(reason),
                "{status} {pairs:?}"
            );
        }
    }

    #[test]
    fn freshness_runs_fresh_then_stale_then_expired() {
        assert_eq!(freshness(1_000, 60, 30, 1_000), Freshness::Fresh);
        assert_eq!(freshness(1_000, 60, 30, 60_999), Freshness::Fresh);
        assert_eq!(freshness(1_000, 60, 30, 61_000), Freshness::Stale);
        assert_eq!(freshness(1_000, 60, 30, 90_999), Freshness::Stale);
        assert_eq!(freshness(1_000, 60, 30, 91_000), Freshness::Expired);
        assert_eq!(freshness(1_000, 60, 0, 61_000), Freshness::Expired);
        // A stored-at in the future (clock skew) is fresh, not a panic.
        assert_eq!(freshness(u64::MAX, u32::MAX, u32::MAX, 0), Freshness::Fresh);
        assert_eq!(
            freshness(0, u32::MAX, u32::MAX, u64::MAX),
            Freshness::Expired
        );
    }

    #[test]
    fn the_status_header_has_the_documented_values() {
        let values: Vec<_> = [
            CacheStatus::Hit,
            CacheStatus::Miss,
            CacheStatus::Stale,
            CacheStatus::Bypass,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        assert_eq!(values, ["HIT", "MISS", "STALE", "BYPASS"]);
        assert_eq!(CacheStatus::HEADER, "x-edge-cache");
        assert_eq!(
            CacheStatus::after_fetch(&decide(200, &[])),
            CacheStatus::Miss
        );
        assert_eq!(
            CacheStatus::after_fetch(&decide(500, &[])),
            CacheStatus::Bypass
        );
        let mut h = headers(&[("x-edge-cache", "HIT")]);
        CacheStatus::Bypass.set_on(&mut h);
        assert_eq!(
            h.get_all("x-edge-cache").iter().collect::<Vec<_>>(),
            ["BYPASS"]
        );
    }

    #[test]
    fn stored_entries_drop_per_request_headers_and_carry_metadata() {
        let brain = headers(&[
            ("content-type", "application/json"),
            ("cache-control", "public, s-maxage=60"),
            ("x-request-id", "req-1"),
            ("x-session-id", "s-1"),
            ("access-control-allow-origin", "*"),
            ("ratelimit", "\"default\";r=1;t=2"),
            ("connection", "keep-alive"),
            ("x-edgebrain-cache-meta", "stored_at_ms=0;ttl=999999;swr=0"),
            ("etag", "\"v1\""),
        ]);
        let stored = prepare_for_store(&brain, 60, 30, 5_000);
        let names: Vec<_> = stored.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "etag",
                ORIGIN_CACHE_CONTROL_HEADER,
                "cache-control",
                META_HEADER
            ]
        );
        assert_eq!(stored[CACHE_CONTROL], "max-age=90");
        assert_eq!(stored[ORIGIN_CACHE_CONTROL_HEADER], "public, s-maxage=60");
        let meta = StoredMeta::from_headers(&stored).unwrap();
        assert_eq!(
            meta,
            StoredMeta {
                stored_at_ms: 5_000,
                ttl_secs: 60,
                swr_secs: 30
            }
        );
        assert_eq!(meta.freshness(64_999), Freshness::Fresh);
        assert_eq!(meta.freshness(65_000), Freshness::Stale);

        let served = prepare_for_serve(&stored, CacheStatus::Hit, 17_500);
        assert_eq!(served[CACHE_CONTROL], "public, s-maxage=60");
        assert_eq!(served["age"], "12");
        assert_eq!(served["x-edge-cache"], "HIT");
        assert!(
            served.get(META_HEADER).is_none() && served.get(ORIGIN_CACHE_CONTROL_HEADER).is_none()
        );
        assert_eq!(served["etag"], "\"v1\"");
    }

    #[test]
    fn missing_or_forged_metadata_reads_as_absent() {
        for value in [
            "",
            "stored_at_ms=1;ttl=2",
            "stored_at_ms=1;ttl=2;swr=3;x=4",
            "stored_at_ms=-1;ttl=2;swr=3",
            "ttl=2;stored_at_ms=1;swr=3",
            "stored_at_ms=1;ttl=99999999999;swr=3",
        ] {
            assert_eq!(
                StoredMeta::from_headers(&headers(&[(META_HEADER, value)])),
                None,
                "{value}"
            );
        }
        assert_eq!(StoredMeta::from_headers(&HeaderMap::new()), None);
        let served = prepare_for_serve(&headers(&[("etag", "x")]), CacheStatus::Stale, 1);
        assert!(served.get("age").is_none());
        assert_eq!(served["x-edge-cache"], "STALE");
    }

    fn pair() -> impl Strategy<Value = (String, String)> {
        let part = prop_oneof![
            "[a-z]{1,3}",
            Just("utm_source".to_owned()),
            Just("%41".to_owned()),
            Just("%e9".to_owned()),
            Just("%".to_owned()),
            Just("+".to_owned()),
            "[ -~&&[^&#]]{0,4}",
            any::<String>().prop_map(|s| s.replace(['&', '#'], "")),
        ];
        (part.clone(), part)
    }

    fn query(pairs: &[(String, String)]) -> String {
        pairs
            .iter()
            .map(|(n, v)| format!("{}={}", n.replace('=', ""), v))
            .collect::<Vec<_>>()
            .join("&")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn query_normalisation_is_idempotent_and_order_insensitive(
            pairs in prop::collection::vec(pair(), 0..8),
            seed in any::<u64>(),
        ) {
            let p = public();
            let once = normalize_query(&query(&pairs), &p);
            prop_assert_eq!(normalize_query(&once, &p), once.clone());
            let mut shuffled = pairs.clone();
            let len = shuffled.len().max(1);
            shuffled.rotate_left(usize::try_from(seed).unwrap_or(0) % len);
            shuffled.reverse();
            prop_assert_eq!(normalize_query(&query(&shuffled), &p), once.clone());
            prop_assert!(once.bytes().all(|b| b.is_ascii_graphic()), "{}", once);
            prop_assert!(!once.split('&').any(|pair| pair.starts_with("utm_source=")));
        }

        #[test]
        fn keys_are_fixed_points_and_never_panic(
            host in "[a-zA-Z0-9.-]{1,12}",
            path in "(/[ -~]{0,8}){0,3}",
            pairs in prop::collection::vec(pair(), 0..5),
        ) {
            let p = public();
            let url = format!("https://{host}{}?{}", path.replace(['?', '#'], ""), query(&pairs));
            if let Ok(key) = key_for(&Method::GET, &url, &p) {
                prop_assert!(key.as_str().bytes().all(|b| b.is_ascii_graphic()), "{}", key.as_str());
                let rest = key.as_str().strip_prefix("https://edge-cache.invalid/v3/public/get/").unwrap();
                let again = key_for(&Method::GET, &format!("https://{rest}"), &p).unwrap();
                prop_assert_eq!(again, key.clone());
                let upper = url.replacen(&host, &host.to_ascii_uppercase(), 1);
                let upper_key = key_for(&Method::GET, &upper, &p).unwrap();
                prop_assert_eq!(upper_key, key);
            }
        }

        #[test]
        fn json_bodies_hash_the_same_whatever_their_key_order(
            entries in prop::collection::btree_map("[a-z\"\\\\é]{0,4}", any::<i32>(), 0..6),
            spaces in "[ \n\t]{0,2}",
        ) {
            let p = policy(r#"{"ttl_secs": 1, "deterministic_post": true}"#);
            let render = |items: Vec<(&String, &i32)>| {
                let body: Vec<String> = items
                    .iter()
                    .map(|(k, v)| format!("{}{spaces}:{spaces}{v}", serde_json::to_string(k).unwrap()))
                    .collect();
                format!("{{{spaces}{}}}", body.join(&format!(",{spaces}")))
            };
            let forward = render(entries.iter().collect());
            let backward = render(entries.iter().rev().collect());
            prop_assert_eq!(
                post_key(forward.as_bytes(), "application/json", &p),
                post_key(backward.as_bytes(), "application/json", &p)
            );
        }

        #[test]
        fn stored_headers_never_keep_per_request_or_forged_headers(
            names in prop::collection::vec(
                prop_oneof![
                    prop::sample::select(STRIPPED_BEFORE_STORE.to_vec()).prop_map(str::to_owned),
                    Just("access-control-allow-origin".to_owned()),
                    "[a-z][a-z0-9-]{0,12}",
                ],
                0..10,
            ),
            ttl in 1u32..=MAX_LIFETIME_SECS,
            swr in 0u32..=MAX_LIFETIME_SECS,
            now in any::<u64>(),
        ) {
            let mut brain = HeaderMap::new();
            for name in &names {
                brain.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("v"));
            }
            let stored = prepare_for_store(&brain, ttl, swr, now);
            for name in stored.keys() {
                let internal = [META_HEADER, ORIGIN_CACHE_CONTROL_HEADER, "cache-control"].contains(&name.as_str());
                prop_assert!(internal || !STRIPPED_BEFORE_STORE.contains(&name.as_str()), "{}", name);
                prop_assert!(!name.as_str().starts_with("access-control-"));
            }
            prop_assert_eq!(
                StoredMeta::from_headers(&stored),
                Some(StoredMeta { stored_at_ms: now, ttl_secs: ttl, swr_secs: swr })
            );
            let served = prepare_for_serve(&stored, CacheStatus::Hit, now);
            prop_assert!(served.get(META_HEADER).is_none());
            prop_assert_eq!(served.get_all("cache-control").iter().count(), usize::from(brain.contains_key("cache-control")));
        }

        #[test]
        fn storable_never_panics_and_never_extends_the_route(
            status in 100u16..600,
            cc in prop::collection::vec(any::<u8>(), 0..40),
            ttl in 1u32..=1000,
            swr in 0u32..=1000,
        ) {
            let p = policy(&format!(r#"{{"ttl_secs": {ttl}, "swr_secs": {swr}}}"#));
            let mut h = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&cc) {
                h.insert(CACHE_CONTROL, value);
            }
            if let Storability::Storable { ttl_secs, swr_secs } = storable(status, &h, &p) {
                prop_assert!((1..=ttl).contains(&ttl_secs) && swr_secs <= swr);
                prop_assert!((200..300).contains(&status));
            }
        }
    }
}
