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

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use shared_types::headers::EDGE_CACHE;

use super::policy_error::PolicyError;
use key::normalize_component;

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

mod key;
mod store;

pub use key::*;
pub use store::*;

#[cfg(test)]
mod tests;
