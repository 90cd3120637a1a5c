//! Edge sessions: every caller, anonymous or signed in, gets a session id the edge issued.
//!
//! A session id is 128 bits of fresh randomness (from [`super::Inputs`]), hex-encoded. Clients
//! never see it bare: they hold a *session token* that wraps it with an expiry and an HMAC under
//! one of the edge's session keys:
//!
//! ```text
//! v1.<key id>.<session id: 32 hex>.<expires: unix secs>.<tag: 32 hex = HMAC-SHA256(key, "v1.<kid>.<sid>.<exp>")[..16]>
//! ```
//!
//! - Browsers carry the token in the `__Host-eb_session` cookie (HttpOnly, Secure, SameSite=Lax,
//!   Path=/), which page scripts cannot read. Clients that are not browsers send it in
//!   `x-session-id` and receive it back there; the edge answers in the same channel the client
//!   used, and never puts the token in a header page scripts could read unless asked to.
//! - Expiry slides: once less than half of the TTL is left, or when the token was signed by a
//!   key that is no longer the current one (rotation), the same session id is re-wrapped with a
//!   fresh expiry under the current key and sent back.
//! - A missing, expired, malformed or tampered token, or one signed by an unknown key, is
//!   replaced by a new session — never trusted, never an error.
//!
//! Keys rotate by listing the new key first: tokens under older listed keys still verify (and
//! are re-wrapped), tokens under removed keys start a new session.

use core::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;
use shared_types::headers::CLIENT_SESSION_ID;
use shared_types::signature::hex;

/// The browser cookie. `__Host-` makes browsers refuse it unless Secure, Path=/ and host-only.
pub const COOKIE_NAME: &str = "__Host-eb_session";

/// Token format tag.
const VERSION: &str = "v1";
/// Bytes of HMAC kept in a token (128 bits: forgery needs 2^128 tries).
const TAG_BYTES: usize = 16;
/// Longest token accepted for parsing (anything longer is not ours).
const MAX_TOKEN_BYTES: usize = 160;

/// One session signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// Short public name embedded in tokens (`[A-Za-z0-9_-]{1,16}`).
    pub id: String,
    pub secret: Vec<u8>,
}

impl core::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SessionKey({}, redacted)", self.id)
    }
}

/// Session settings: the key ring (current key first) and the sliding lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub keys: Vec<SessionKey>,
    pub ttl_secs: u64,
}

impl SessionConfig {
    /// Shortest accepted key secret.
    pub const MIN_SECRET_BYTES: usize = 32;
    pub const DEFAULT_TTL_SECS: u64 = 30 * 24 * 3600;

    /// Parses `SESSION_KEYS`: comma-separated `kid:secret` pairs, the current key first.
    pub fn parse_keys(text: &str) -> Result<Vec<SessionKey>, String> {
        let mut keys = Vec::new();
        for (index, item) in text.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let (id, secret) = item
                .split_once(':')
                .ok_or_else(|| format!("key #{} is not of the form kid:secret", index + 1))?;
            if id.is_empty()
                || id.len() > 16
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "key #{}: the key id must be 1-16 characters of [A-Za-z0-9_-]",
                    index + 1
                ));
            }
            if secret.len() < Self::MIN_SECRET_BYTES {
                return Err(format!(
                    "key `{id}`: the secret must be at least {} bytes",
                    Self::MIN_SECRET_BYTES
                ));
            }
            if keys.iter().any(|k: &SessionKey| k.id == id) {
                return Err(format!("key id `{id}` appears twice"));
            }
            keys.push(SessionKey {
                id: id.to_owned(),
                secret: secret.as_bytes().to_vec(),
            });
        }
        if keys.is_empty() {
            return Err("no key given".to_owned());
        }
        Ok(keys)
    }
}

/// Which channel the client used for its session (and gets it back on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChannel {
    Cookie,
    Header,
}

/// The session of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// 32 lowercase hex characters; what the brain sees as `x-edgebrain-session`.
    pub id: String,
    pub channel: SessionChannel,
    /// A token to send back (new session, renewal or rotation); `None` when the client's one
    /// is fine as it is.
    pub issue: Option<String>,
    /// True when the client had no valid session and this one is new.
    pub is_new: bool,
}

impl Session {
    /// Finds and verifies the client's session, or starts a new one from `random`.
    pub fn resolve(
        headers: &HeaderMap,
        config: &SessionConfig,
        now_secs: u64,
        random: [u8; 16],
    ) -> Session {
        // A client that speaks the header protocol gets the header back, even when its value
        // was missing or bad.
        let header_token = headers.get(CLIENT_SESSION_ID);
        let channel = if header_token.is_some() {
            SessionChannel::Header
        } else {
            SessionChannel::Cookie
        };
        let presented = match header_token {
            Some(value) => value.to_str().ok().map(str::trim).map(str::to_owned),
            None => cookie_value(headers, COOKIE_NAME),
        };
        if let Some(verified) = presented.and_then(|token| verify(&token, config, now_secs)) {
            let stale = verified.expires_secs.saturating_sub(now_secs) < config.ttl_secs / 2;
            let rotated = config.keys.first().is_none_or(|k| k.id != verified.key_id);
            let issue = (stale || rotated).then(|| mint(&verified.session_id, config, now_secs));
            return Session {
                id: verified.session_id,
                channel,
                issue: issue.flatten(),
                is_new: false,
            };
        }
        let id = hex(&random);
        let issue = mint(&id, config, now_secs);
        Session {
            id,
            channel,
            issue,
            is_new: true,
        }
    }

    /// The response header carrying a token to the client, if one must be sent.
    pub fn response_header(&self, ttl_secs: u64) -> Option<(http::HeaderName, HeaderValue)> {
        let token = self.issue.as_ref()?;
        match self.channel {
            SessionChannel::Cookie => HeaderValue::from_str(&format!(
                "{COOKIE_NAME}={token}; Path=/; Max-Age={ttl_secs}; Secure; HttpOnly; SameSite=Lax"
            ))
            .ok()
            .map(|value| (http::header::SET_COOKIE, value)),
            SessionChannel::Header => HeaderValue::from_str(token)
                .ok()
                .map(|value| (http::HeaderName::from_static(CLIENT_SESSION_ID), value)),
        }
    }
}

struct VerifiedToken {
    key_id: String,
    session_id: String,
    expires_secs: u64,
}

fn mint(session_id: &str, config: &SessionConfig, now_secs: u64) -> Option<String> {
    let key = config.keys.first()?;
    let expires = now_secs.saturating_add(config.ttl_secs);
    let body = format!("{VERSION}.{}.{session_id}.{expires}", key.id);
    let tag = tag(&key.secret, &body);
    Some(format!("{body}.{}", hex(&tag)))
}

fn verify(token: &str, config: &SessionConfig, now_secs: u64) -> Option<VerifiedToken> {
    if token.len() > MAX_TOKEN_BYTES {
        return None;
    }
    let (body, tag_hex) = token.rsplit_once('.')?;
    let mut fields = body.split('.');
    let (version, key_id, session_id, expires) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if fields.next().is_some() || version != VERSION {
        return None;
    }
    if session_id.len() != 32
        || !session_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    if expires.is_empty() || expires.len() > 12 || !expires.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let expires_secs: u64 = expires.parse().ok()?;
    let key = config.keys.iter().find(|key| key.id == key_id)?;
    let expected = tag(&key.secret, body);
    if !constant_time_eq_hex(&expected, tag_hex) {
        return None;
    }
    // Checked after the MAC so timing says nothing about which part was wrong.
    if expires_secs <= now_secs {
        return None;
    }
    Some(VerifiedToken {
        key_id: key_id.to_owned(),
        session_id: session_id.to_owned(),
        expires_secs,
    })
}

pub(crate) fn tag(secret: &[u8], body: &str) -> [u8; TAG_BYTES] {
    let mut out = [0u8; TAG_BYTES];
    if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) {
        mac.update(body.as_bytes());
        let full = mac.finalize().into_bytes();
        for (slot, byte) in out.iter_mut().zip(full.iter()) {
            *slot = *byte;
        }
    }
    out
}

/// Compares `expected` with a hex string without an early exit on the first differing byte.
pub(crate) fn constant_time_eq_hex(expected: &[u8], given_hex: &str) -> bool {
    let mut rendered = String::with_capacity(expected.len() * 2);
    for byte in expected {
        let _ = write!(rendered, "{byte:02x}");
    }
    if rendered.len() != given_hex.len() {
        return false;
    }
    rendered
        .bytes()
        .zip(given_hex.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The value of cookie `name` in the request's `Cookie` header(s), if present exactly once.
/// Two cookies with the same name (a subdomain planting one) mean neither is trusted.
///
/// Read as bytes: other cookies may carry any bytes a header value allows (`x=café` in UTF-8,
/// latin-1, or no encoding at all), and a header that is not visible ASCII must not hide the
/// session cookie beside them (its holder would get a new session on every request).
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        for (key, value) in cookie_pairs(header.as_bytes()) {
            if key == name.as_bytes() {
                if found.is_some() {
                    return None;
                }
                // A token is visible ASCII; anything else fails verification, as it should.
                found = Some(String::from_utf8_lossy(trim_quotes(value)).into_owned());
            }
        }
    }
    found
}

/// One `Cookie` header value without the cookie `name` (every occurrence); `None` when nothing
/// else is left. Other pairs pass byte for byte, whatever their encoding, joined by `; `.
pub fn without_cookie(value: &HeaderValue, name: &str) -> Option<HeaderValue> {
    let mut kept: Vec<u8> = Vec::with_capacity(value.len());
    for pair in raw_cookie_pairs(value.as_bytes()) {
        if split_cookie_pair(pair).0 == name.as_bytes() {
            continue;
        }
        if !kept.is_empty() {
            kept.extend_from_slice(b"; ");
        }
        kept.extend_from_slice(pair);
    }
    // The bytes all came from a valid header value (no CR, LF or NUL), so this cannot fail;
    // if it did, dropping the header is the safe way: the token must never pass.
    (!kept.is_empty())
        .then(|| HeaderValue::from_bytes(&kept).ok())
        .flatten()
}

/// The `name=value` pairs of one `Cookie` header value (RFC 6265 §5.2, on bytes).
fn cookie_pairs(value: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    raw_cookie_pairs(value).map(split_cookie_pair)
}

/// The pairs of a `Cookie` header value as sent: split at `;`, trimmed of spaces and tabs
/// (`trim_ascii`: a header value holds no other ASCII whitespace), empty ones skipped.
fn raw_cookie_pairs(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .filter(|pair| !pair.is_empty())
}

/// Name and value of one pair, each trimmed; a pair without `=` is a name with no value.
fn split_cookie_pair(pair: &[u8]) -> (&[u8], &[u8]) {
    match pair.iter().position(|&b| b == b'=') {
        Some(at) => (pair[..at].trim_ascii(), pair[at + 1..].trim_ascii()),
        None => (pair, &[]),
    }
}

/// A cookie value without the double quotes RFC 6265 allows around it.
fn trim_quotes(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| b != b'"').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b'"')
        .map_or(start, |i| i + 1);
    &value[start..end]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_700_000_000;
    const DAY: u64 = 86_400;

    fn config() -> SessionConfig {
        SessionConfig {
            keys: SessionConfig::parse_keys(&format!(
                "k2:{},k1:{}",
                "b".repeat(32),
                "a".repeat(32)
            ))
            .unwrap(),
            ttl_secs: 30 * DAY,
        }
    }

    fn with_cookie(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("theme=dark; {COOKIE_NAME}={token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn a_new_visitor_gets_a_fresh_random_session_in_a_host_only_cookie() {
        let session = Session::resolve(&HeaderMap::new(), &config(), NOW, [0xab; 16]);
        assert!(session.is_new);
        assert_eq!(session.id, "ab".repeat(16));
        assert_eq!(session.channel, SessionChannel::Cookie);
        let (name, value) = session.response_header(30 * DAY).unwrap();
        assert_eq!(name, http::header::SET_COOKIE);
        let value = value.to_str().unwrap();
        assert!(value.starts_with("__Host-eb_session=v1.k2."), "{value}");
        for attribute in [
            "Path=/",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Max-Age=2592000",
        ] {
            assert!(value.contains(attribute), "{attribute} missing: {value}");
        }
        assert!(!value.contains("Domain"), "{value}");
    }

    #[test]
    fn a_valid_session_is_honoured_without_reissuing() {
        let first = Session::resolve(&HeaderMap::new(), &config(), NOW, [1; 16]);
        let token = first.issue.unwrap();
        let again = Session::resolve(&with_cookie(&token), &config(), NOW + DAY, [2; 16]);
        assert_eq!(again.id, first.id);
        assert!(!again.is_new);
        assert_eq!(again.issue, None);
    }

    #[test]
    fn expiry_slides_once_half_the_ttl_is_used() {
        let token = Session::resolve(&HeaderMap::new(), &config(), NOW, [1; 16])
            .issue
            .unwrap();
        let later = Session::resolve(&with_cookie(&token), &config(), NOW + 16 * DAY, [2; 16]);
        assert_eq!(later.id, "01".repeat(16));
        let renewed = later.issue.expect("renewed");
        assert!(
            renewed.contains(&format!(".{}.", NOW + 16 * DAY + 30 * DAY)),
            "{renewed}"
        );
        // Past expiry: a new session.
        let expired = Session::resolve(&with_cookie(&token), &config(), NOW + 30 * DAY, [3; 16]);
        assert!(expired.is_new);
        assert_eq!(expired.id, "03".repeat(16));
    }

    #[test]
    fn tokens_under_an_older_listed_key_are_rewrapped_under_the_current_one() {
        let old = SessionConfig {
            keys: vec![config().keys[1].clone()],
            ttl_secs: 30 * DAY,
        };
        let token = Session::resolve(&HeaderMap::new(), &old, NOW, [9; 16])
            .issue
            .unwrap();
        assert!(token.starts_with("v1.k1."));
        let session = Session::resolve(&with_cookie(&token), &config(), NOW, [1; 16]);
        assert_eq!(session.id, "09".repeat(16));
        assert!(session.issue.unwrap().starts_with("v1.k2."));
        // Once k1 is removed from the ring, its tokens start new sessions.
        let only_new = SessionConfig {
            keys: vec![config().keys[0].clone()],
            ttl_secs: 30 * DAY,
        };
        assert!(Session::resolve(&with_cookie(&token), &only_new, NOW, [1; 16]).is_new);
    }

    #[test]
    fn tampered_or_malformed_tokens_are_replaced_never_trusted() {
        let token = Session::resolve(&HeaderMap::new(), &config(), NOW, [1; 16])
            .issue
            .unwrap();
        let other_id = token.replacen(&"01".repeat(16), &"02".repeat(16), 1);
        let longer = token.replacen(
            &format!("{}", NOW + 30 * DAY),
            &format!("{}", NOW + 300 * DAY),
            1,
        );
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        let forged = {
            let evil = SessionConfig {
                keys: SessionConfig::parse_keys(&format!("k2:{}", "e".repeat(32))).unwrap(),
                ttl_secs: 30 * DAY,
            };
            Session::resolve(&HeaderMap::new(), &evil, NOW, [1; 16])
                .issue
                .unwrap()
        };
        for bad in [
            other_id.as_str(),
            longer.as_str(),
            flipped.as_str(),
            forged.as_str(),
            "",
            "v1",
            "v1.k2.x.y.z",
            "v2.k2.01010101010101010101010101010101.1800000000.00",
            &"x".repeat(1000),
        ] {
            let session = Session::resolve(&with_cookie(bad), &config(), NOW, [7; 16]);
            assert!(session.is_new, "{bad:?} was trusted");
            assert_eq!(session.id, "07".repeat(16));
            assert!(session.issue.is_some());
        }
    }

    #[test]
    fn duplicate_session_cookies_are_not_trusted() {
        let token = Session::resolve(&HeaderMap::new(), &config(), NOW, [1; 16])
            .issue
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{COOKIE_NAME}={token}; {COOKIE_NAME}={token}"))
                .unwrap(),
        );
        assert!(Session::resolve(&headers, &config(), NOW, [7; 16]).is_new);
    }

    /// A `Cookie` header of these byte strings joined by `; `.
    fn cookie_header(pairs: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_bytes(&pairs.join(&b"; "[..])).unwrap(),
        );
        headers
    }

    /// Cookies in any encoding, or none: UTF-8, latin-1, invalid UTF-8 (all NUL-free, as header
    /// values are), in names and values.
    const FOREIGN_COOKIES: [&[u8]; 5] = [
        b"x=caf\xc3\xa9",
        b"x=caf\xe9",
        b"x=\xff\xfe\xc3(\x80",
        b"\xe9t\xe9=\xe9t\xe9",
        b"\xc3\xa9\t=\t\"\xa0\"",
    ];

    #[test]
    fn the_session_cookie_is_found_beside_cookies_in_any_encoding() {
        let token = Session::resolve(&HeaderMap::new(), &config(), NOW, [1; 16])
            .issue
            .unwrap();
        let session = format!("{COOKIE_NAME}={token}");
        for other in FOREIGN_COOKIES {
            for pairs in [[session.as_bytes(), other], [other, session.as_bytes()]] {
                let headers = cookie_header(&pairs);
                let found = Session::resolve(&headers, &config(), NOW + 1, [9; 16]);
                assert!(!found.is_new, "{pairs:?}");
                assert_eq!(found.id, "01".repeat(16));
            }
        }
        // Whitespace around name and value, and quotes around the value, as RFC 6265 allows.
        let spaced = format!(" {COOKIE_NAME} =\t\"{token}\" ");
        let headers = cookie_header(&[b"x=caf\xe9", spaced.as_bytes()]);
        assert!(!Session::resolve(&headers, &config(), NOW, [9; 16]).is_new);
        // Planted twice, even in a header beside foreign bytes: neither is trusted.
        let headers = cookie_header(&[session.as_bytes(), b"x=caf\xe9", session.as_bytes()]);
        assert!(Session::resolve(&headers, &config(), NOW, [9; 16]).is_new);
    }

    #[test]
    fn stripping_the_session_cookie_keeps_every_other_byte() {
        let session = format!("{COOKIE_NAME}=v1.k1.token");
        for other in FOREIGN_COOKIES {
            let value =
                HeaderValue::from_bytes(&[&b"a=1"[..], session.as_bytes(), other].join(&b"; "[..]))
                    .unwrap();
            let kept = without_cookie(&value, COOKIE_NAME).unwrap();
            assert_eq!(
                kept.as_bytes(),
                [&b"a=1"[..], other].join(&b"; "[..]).as_slice()
            );
        }
        let only = HeaderValue::from_bytes(format!(" {COOKIE_NAME} = x ;; ").as_bytes()).unwrap();
        assert_eq!(without_cookie(&only, COOKIE_NAME), None);
        let untouched = HeaderValue::from_bytes(b"x=caf\xe9;y").unwrap();
        // Without the session cookie the pairs pass as they were, separators normalised.
        assert_eq!(
            without_cookie(&untouched, COOKIE_NAME).unwrap().as_bytes(),
            b"x=caf\xe9; y"
        );
    }

    #[test]
    fn non_browser_clients_use_the_header_both_ways() {
        let mut headers = HeaderMap::new();
        headers.insert(CLIENT_SESSION_ID, HeaderValue::from_static("new"));
        let session = Session::resolve(&headers, &config(), NOW, [5; 16]);
        assert!(session.is_new);
        assert_eq!(session.channel, SessionChannel::Header);
        let (name, token) = session.response_header(30 * DAY).unwrap();
        assert_eq!(name.as_str(), CLIENT_SESSION_ID);

        headers.insert(CLIENT_SESSION_ID, token);
        let again = Session::resolve(&headers, &config(), NOW + 1, [6; 16]);
        assert_eq!(again.id, "05".repeat(16));
        assert!(again.response_header(30 * DAY).is_none());
    }

    #[test]
    fn key_parsing_rejects_weak_or_ambiguous_rings() {
        let good = "a".repeat(32);
        assert!(SessionConfig::parse_keys(&format!("k1:{good}")).is_ok());
        for bad in [
            String::new(),
            "k1".to_owned(),
            "k1:short".to_owned(),
            format!("bad id:{good}"),
            format!("k1:{good},k1:{good}"),
            format!(":{good}"),
        ] {
            assert!(SessionConfig::parse_keys(&bad).is_err(), "{bad:?}");
        }
    }

    /// Any byte a header value may hold except `;` (which would split the pair).
    fn cookie_byte() -> impl Strategy<Value = u8> {
        prop_oneof![Just(b'\t'), 0x20u8..=0x3a, 0x3cu8..=0x7e, 0x80u8..=0xff]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_bytes_beside_the_session_cookie_neither_hide_nor_leak_it(
            before in prop::collection::vec(prop::collection::vec(cookie_byte(), 0..12), 0..4),
            after in prop::collection::vec(prop::collection::vec(cookie_byte(), 0..12), 0..4),
        ) {
            let token = Session::resolve(&HeaderMap::new(), &config(), NOW, [1; 16]).issue.unwrap();
            // Only other cookies: none of them may be named like the session cookie.
            let others = |pairs: &[Vec<u8>]| -> Vec<Vec<u8>> {
                pairs.iter().map(|p| [&b"o"[..], p].concat()).collect()
            };
            let (before, after) = (others(&before), others(&after));
            let session = format!("{COOKIE_NAME}={token}").into_bytes();
            let mut pairs: Vec<&[u8]> = before.iter().map(Vec::as_slice).collect();
            pairs.push(&session);
            pairs.extend(after.iter().map(Vec::as_slice));
            let headers = cookie_header(&pairs);
            prop_assert!(!Session::resolve(&headers, &config(), NOW, [9; 16]).is_new);
            let kept = without_cookie(&headers[COOKIE], COOKIE_NAME);
            let kept = kept.as_ref().map_or(&[][..], HeaderValue::as_bytes);
            prop_assert!(!kept.windows(token.len()).any(|w| w == token.as_bytes()));
        }
        #[test]
        fn arbitrary_cookies_never_panic_and_never_verify(value in "\\PC{0,200}") {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&format!("{COOKIE_NAME}={value}")) {
                headers.insert(COOKIE, value);
            }
            let session = Session::resolve(&headers, &config(), NOW, [4; 16]);
            prop_assert!(session.is_new);
        }
    }
}
