//! Cache keys: where a request's answer is stored.

use http::header::{CONTENT_TYPE, RANGE};
use http::{HeaderMap, Method};
use sha2::{Digest, Sha256};

use super::{BypassReason, CachePolicy, CacheScope, key_prefix};
use crate::core::target::RequestTarget;

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
pub struct CacheKey(pub(super) String);

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
pub(super) fn normalize_query(query: &str, policy: &CachePolicy) -> String {
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
pub(super) fn normalize_component(raw: &str) -> String {
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

pub(super) fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

pub(super) fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

pub(super) fn push_escape(out: &mut String, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    for nibble in [byte >> 4, byte & 0x0f] {
        if let Some(&digit) = HEX.get(usize::from(nibble)) {
            out.push(char::from(digit));
        }
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// SHA-256 (hex) of a POST body for its key: the media type (lowercase, without parameters),
/// then the body, JSON in canonical form when it parses, raw bytes otherwise.
pub(super) fn body_digest(headers: &HeaderMap, body: &[u8]) -> String {
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
pub(super) fn write_canonical_json(value: &serde_json::Value, out: &mut String) {
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
