//! Whether a brain's answer may be stored, how fresh a stored one is, and the headers it is
//! stored and served with.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, EXPIRES, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderName, HeaderValue};
use shared_types::headers::{CLIENT_SESSION_ID, EDGE_CACHE, EDGE_SOURCE, REQUEST_ID};

use super::{BypassReason, CachePolicy, CacheStatus, META_HEADER, ORIGIN_CACHE_CONTROL_HEADER};

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

pub(super) fn lifetime(
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
pub(super) struct CacheControl {
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
pub(super) fn split_directives(text: &str) -> Vec<&str> {
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
