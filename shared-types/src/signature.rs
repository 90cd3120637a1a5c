//! The edge → brain request signature: how the brain knows a request really came through the
//! edge, and that the identity headers on it are the edge's.
//!
//! The edge signs every proxied request with HMAC-SHA256 over a canonical string of the parts
//! that matter, and sends the result in [`EDGE_SIGNATURE`](crate::headers::EDGE_SIGNATURE):
//!
//! ```text
//! x-edgebrain-signature: t=1700000000,n=3f0c…(32 hex),d=<sha256 hex | UNSIGNED-PAYLOAD>,v1=<hex>[,v1=<hex>…]
//! ```
//!
//! - `t`: Unix seconds when the edge signed; the brain refuses signatures older (or further in
//!   the future) than its tolerance, 300 s by default.
//! - `n`: a fresh 128-bit nonce; the brain remembers nonces for the tolerance window and refuses a
//!   second request with the same one (replay).
//! - `d`: the SHA-256 of the request body (hex; the empty body has a digest too), or
//!   [`UNSIGNED_PAYLOAD`] for bodies streamed through without buffering (large uploads). Method,
//!   path, identity, time and nonce are signed either way.
//! - `v1`: one signature per active secret of the edge, so secrets can be rotated on either side
//!   independently: the brain accepts the request when any `v1` verifies under any of its secrets.
//!
//! The canonical string is [`canonical_string`]: a version tag, then `t`, `n`, the method, the
//! path with query exactly as sent, `d`, and the identity headers
//! ([`IDENTITY_HEADERS`](crate::headers::IDENTITY_HEADERS), in order, empty when absent), joined
//! by `\n`. None of these can contain a newline (header values and request targets
//! cannot), so the encoding is unambiguous.
//!
//! Pure computation (RustCrypto `hmac` + `sha2`), no I/O: the same code runs in the wasm edge
//! and the native brain.

use core::fmt::{self, Write as _};

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::headers::IDENTITY_HEADERS;

type HmacSha256 = Hmac<Sha256>;

/// The `d=` value of a request whose body was streamed through unhashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// First line of the canonical string; bumped if the canonical form ever changes (v2: the
/// network identity header joined the signed identity).
const VERSION_TAG: &str = "edgebrain-signature-v2";

/// How many identity header values a signature covers.
pub const IDENTITY_VALUES: usize = IDENTITY_HEADERS.len();

/// Most `v1=` entries accepted in one header (bounds the brain's work per request).
pub const MAX_SIGNATURES: usize = 4;

/// Longest accepted signature header value.
pub const MAX_HEADER_BYTES: usize = 512;

/// Everything a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedParts<'a> {
    pub timestamp_secs: u64,
    /// 32 lowercase hex characters.
    pub nonce: &'a str,
    /// Upper-case HTTP method.
    pub method: &'a str,
    /// Path and query exactly as on the request line, e.g. `/api/v1/x?a=1`.
    pub path_and_query: &'a str,
    /// [`body_digest`] of the body, or [`UNSIGNED_PAYLOAD`].
    pub body_digest: &'a str,
    /// Values of [`IDENTITY_HEADERS`](crate::headers::IDENTITY_HEADERS) in order; `""` when absent.
    pub identity: [&'a str; IDENTITY_VALUES],
}

/// The string that is signed (see the module docs).
pub fn canonical_string(parts: &SignedParts<'_>) -> String {
    let identity_len: usize = parts.identity.iter().map(|value| value.len() + 1).sum();
    let mut out = String::with_capacity(96 + parts.path_and_query.len() + identity_len);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{VERSION_TAG}\n{}\n{}\n{}\n{}\n{}",
        parts.timestamp_secs, parts.nonce, parts.method, parts.path_and_query, parts.body_digest
    );
    for value in parts.identity {
        out.push('\n');
        out.push_str(value);
    }
    out
}

/// HMAC-SHA256 of the canonical string under `secret`.
pub fn sign(secret: &[u8], parts: &SignedParts<'_>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Some(mac) = mac(secret, parts) {
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// HMAC accepts keys of any length, so this is `None` only in theory; callers then produce
/// a signature that never verifies rather than panicking.
fn mac(secret: &[u8], parts: &SignedParts<'_>) -> Option<HmacSha256> {
    mac_of(secret, &canonical_string(parts))
}

fn mac_of(secret: &[u8], canonical: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(canonical.as_bytes());
    Some(mac)
}

/// The canonical string of edges older than the network identity header (v1: user, session
/// and scopes only). The brain still accepts it while a request carries no network header —
/// then v1 covers everything v2 would — so a brain upgraded first keeps serving the old edge
/// until the edge is deployed. Remove once no v1 edge is left.
fn legacy_v1_string(parts: &SignedParts<'_>) -> Option<String> {
    let [user, session, scopes, network] = parts.identity;
    network.is_empty().then(|| {
        format!(
            "edgebrain-signature-v1\n{}\n{}\n{}\n{}\n{}\n{user}\n{session}\n{scopes}",
            parts.timestamp_secs,
            parts.nonce,
            parts.method,
            parts.path_and_query,
            parts.body_digest
        )
    })
}

/// Lowercase hex SHA-256 of a request body: the `d=` value for a buffered body.
pub fn body_digest(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

/// Renders the header value for `parts` signed with each of `secrets` (in order).
pub fn header_value<'s>(
    parts: &SignedParts<'_>,
    secrets: impl IntoIterator<Item = &'s [u8]>,
) -> String {
    let mut out = format!(
        "t={},n={},d={}",
        parts.timestamp_secs, parts.nonce, parts.body_digest
    );
    for secret in secrets {
        out.push_str(",v1=");
        out.push_str(&hex(&sign(secret, parts)));
    }
    out
}

/// A parsed signature header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp_secs: u64,
    pub nonce: String,
    pub body_digest: String,
    pub signatures: Vec<[u8; 32]>,
}

/// Why a signature header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// Not of the `t=…,n=…,d=…,v1=…` form (the reason says which part).
    Malformed(&'static str),
    /// `t` is further than the tolerance from now (seconds of skew given).
    Stale { skew_secs: u64 },
    /// No `v1` entry verifies under any configured secret.
    Mismatch,
    /// The nonce was already used within the tolerance window.
    Replayed,
    /// `d` does not match the body that arrived.
    BodyMismatch,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Malformed(what) => write!(f, "malformed edge signature: {what}"),
            SignatureError::Stale { skew_secs } => write!(
                f,
                "edge signature timestamp is {skew_secs} s away from the brain's clock"
            ),
            SignatureError::Mismatch => f.write_str("edge signature does not verify"),
            SignatureError::Replayed => f.write_str("edge signature nonce was already used"),
            SignatureError::BodyMismatch => {
                f.write_str("request body does not match the signed digest")
            }
        }
    }
}

impl SignatureHeader {
    /// Parses `t=…,n=…,d=…,v1=…[,v1=…]`. Strict: every key once (except `v1`, 1 to
    /// [`MAX_SIGNATURES`] times), no unknown keys, canonical lowercase hex.
    pub fn parse(value: &str) -> Result<Self, SignatureError> {
        use SignatureError::Malformed;
        if value.len() > MAX_HEADER_BYTES {
            return Err(Malformed("too long"));
        }
        let (mut t, mut n, mut d) = (None, None, None);
        let mut signatures = Vec::new();
        for item in value.split(',') {
            let (key, val) = item
                .trim()
                .split_once('=')
                .ok_or(Malformed("item without '='"))?;
            match key {
                "t" if t.is_none() => {
                    if val.is_empty() || val.len() > 12 || !val.bytes().all(|b| b.is_ascii_digit())
                    {
                        return Err(Malformed("t is not a Unix time"));
                    }
                    t = Some(
                        val.parse::<u64>()
                            .map_err(|_| Malformed("t is not a Unix time"))?,
                    );
                }
                "n" if n.is_none() => {
                    if val.len() != 32 || !is_lower_hex(val) {
                        return Err(Malformed("n is not 32 hex digits"));
                    }
                    n = Some(val.to_owned());
                }
                "d" if d.is_none() => {
                    if val != UNSIGNED_PAYLOAD && (val.len() != 64 || !is_lower_hex(val)) {
                        return Err(Malformed("d is not a SHA-256 hex digest"));
                    }
                    d = Some(val.to_owned());
                }
                "v1" => {
                    if signatures.len() == MAX_SIGNATURES {
                        return Err(Malformed("too many v1 signatures"));
                    }
                    signatures.push(unhex32(val).ok_or(Malformed("v1 is not 64 hex digits"))?);
                }
                _ => return Err(Malformed("unknown or repeated key")),
            }
        }
        if signatures.is_empty() {
            return Err(Malformed("no v1 signature"));
        }
        Ok(Self {
            timestamp_secs: t.ok_or(Malformed("missing t"))?,
            nonce: n.ok_or(Malformed("missing n"))?,
            body_digest: d.ok_or(Malformed("missing d"))?,
            signatures,
        })
    }

    /// The parts this header claims to sign, completed with the request's own.
    pub fn parts<'a>(
        &'a self,
        method: &'a str,
        path_and_query: &'a str,
        identity: [&'a str; IDENTITY_VALUES],
    ) -> SignedParts<'a> {
        SignedParts {
            timestamp_secs: self.timestamp_secs,
            nonce: &self.nonce,
            method,
            path_and_query,
            body_digest: &self.body_digest,
            identity,
        }
    }

    /// Checks freshness against `now_secs` with `tolerance_secs` either way, then that some
    /// `v1` verifies (in constant time) under some secret — over the current canonical form,
    /// or the legacy one of older edges when that covers the same parts
    /// ([`legacy_v1_string`]).
    pub fn verify<'s>(
        &self,
        parts: &SignedParts<'_>,
        secrets: impl IntoIterator<Item = &'s [u8]>,
        now_secs: u64,
        tolerance_secs: u64,
    ) -> Result<(), SignatureError> {
        let skew_secs = now_secs.abs_diff(self.timestamp_secs);
        if skew_secs > tolerance_secs {
            return Err(SignatureError::Stale { skew_secs });
        }
        let forms: Vec<String> = core::iter::once(canonical_string(parts))
            .chain(legacy_v1_string(parts))
            .collect();
        for secret in secrets {
            for form in &forms {
                let Some(expected) = mac_of(secret, form) else {
                    continue;
                };
                for signature in &self.signatures {
                    if expected.clone().verify_slice(signature).is_ok() {
                        return Ok(());
                    }
                }
            }
        }
        Err(SignatureError::Mismatch)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn is_lower_hex(value: &str) -> bool {
    value
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn unhex32(value: &str) -> Option<[u8; 32]> {
    if value.len() != 64 || !is_lower_hex(value) {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(value.as_bytes().chunks_exact(2)) {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        *slot = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const NONCE: &str = "0123456789abcdef0123456789abcdef";
    const IDENTITY: [&str; IDENTITY_VALUES] = ["alice", "sess-1", "read write", "203.0.113.0"];

    fn parts(digest: &str) -> SignedParts<'_> {
        SignedParts {
            timestamp_secs: 1_700_000_000,
            nonce: NONCE,
            method: "POST",
            path_and_query: "/api/v1/x?a=1",
            body_digest: digest,
            identity: IDENTITY,
        }
    }

    #[test]
    fn known_answer_pins_the_canonical_form() {
        // Recomputed independently: printf 'edgebrain-signature-v2\n1700000000\n…' |
        // Python's hmac module. Changing the canonical form breaks every deployed
        // edge/brain pair, so it is pinned.
        let digest = body_digest(b"");
        assert_eq!(
            digest,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            canonical_string(&parts(&digest)),
            format!(
                "edgebrain-signature-v2\n1700000000\n{NONCE}\nPOST\n/api/v1/x?a=1\n{digest}\nalice\nsess-1\nread write\n203.0.113.0"
            )
        );
        assert_eq!(
            hex(&sign(b"secret", &parts(&digest))),
            "45f4aad2fd0bb118e271a07c28443a6fc15d6e1688c04f226b71a867b8df2a6f"
        );
    }

    #[test]
    fn an_older_edges_v1_signature_verifies_only_without_a_network() {
        // What an edge before the network header sent (recomputed with Python's hmac over the
        // v1 form: tag v1, then t, n, method, path, d, user, session, scopes).
        let digest = body_digest(b"");
        let v1 = "d7c573656472d19aa426954877d83d3754e0bb534dadd914940efdc5ac8ff191";
        let header =
            SignatureHeader::parse(&format!("t=1700000000,n={NONCE},d={digest},v1={v1}")).unwrap();
        let without_network = header.parts(
            "POST",
            "/api/v1/x?a=1",
            ["alice", "sess-1", "read write", ""],
        );
        assert!(
            header
                .verify(&without_network, [&b"secret"[..]], 1_700_000_000, 300)
                .is_ok()
        );
        // A network the v1 signature never covered: refused.
        let with_network = header.parts("POST", "/api/v1/x?a=1", IDENTITY);
        assert_eq!(
            header.verify(&with_network, [&b"secret"[..]], 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn round_trip_verifies_under_any_active_secret() {
        let digest = body_digest(b"{}");
        let value = header_value(&parts(&digest), [&b"new"[..], &b"old"[..]]);
        let header = SignatureHeader::parse(&value).unwrap();
        assert_eq!(header.signatures.len(), 2);
        let p = header.parts("POST", "/api/v1/x?a=1", IDENTITY);
        for secrets in [
            &[&b"new"[..]][..],
            &[&b"old"[..]],
            &[&b"other"[..], &b"old"[..]],
        ] {
            header
                .verify(&p, secrets.iter().copied(), 1_700_000_100, 300)
                .unwrap();
        }
        assert_eq!(
            header.verify(&p, [&b"other"[..]], 1_700_000_100, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn every_signed_part_matters() {
        let digest = body_digest(b"{}");
        let value = header_value(&parts(&digest), [&b"k"[..]]);
        let header = SignatureHeader::parse(&value).unwrap();
        let ok = header.parts("POST", "/api/v1/x?a=1", IDENTITY);
        assert!(header.verify(&ok, [&b"k"[..]], 1_700_000_000, 300).is_ok());
        // Each identity value replaced in turn, then the method and the path.
        let changed = |index: usize, value: &'static str| {
            let mut identity = IDENTITY;
            identity[index] = value;
            ("POST", "/api/v1/x?a=1", identity)
        };
        let tampered = [
            ("GET", "/api/v1/x?a=1", IDENTITY),
            ("POST", "/api/v1/x?a=2", IDENTITY),
            changed(0, "mallory"),
            changed(0, ""),
            changed(1, "sess-2"),
            changed(2, "read write admin"),
            changed(3, "198.51.100.7"),
        ];
        for (method, path, identity) in tampered {
            let parts = header.parts(method, path, identity);
            assert_eq!(
                header.verify(&parts, [&b"k"[..]], 1_700_000_000, 300),
                Err(SignatureError::Mismatch),
                "{parts:?}"
            );
        }
        let mut other_body = header.clone();
        other_body.body_digest = body_digest(b"{\"x\":1}");
        let p = other_body.parts("POST", "/api/v1/x?a=1", IDENTITY);
        assert_eq!(
            other_body.verify(&p, [&b"k"[..]], 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let digest = body_digest(b"");
        let header = SignatureHeader::parse(&header_value(&parts(&digest), [&b"k"[..]])).unwrap();
        let p = header.parts("POST", "/api/v1/x?a=1", IDENTITY);
        assert!(header.verify(&p, [&b"k"[..]], 1_700_000_300, 300).is_ok());
        assert_eq!(
            header.verify(&p, [&b"k"[..]], 1_700_000_301, 300),
            Err(SignatureError::Stale { skew_secs: 301 })
        );
        assert_eq!(
            header.verify(&p, [&b"k"[..]], 1_699_999_000, 300),
            Err(SignatureError::Stale { skew_secs: 1000 })
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let sig = "a".repeat(64);
        for value in [
            "",
            "garbage",
            &format!("t=1,n={NONCE},d={UNSIGNED_PAYLOAD}"),
            &format!("n={NONCE},d={UNSIGNED_PAYLOAD},v1={sig}"),
            &format!("t=1,d={UNSIGNED_PAYLOAD},v1={sig}"),
            &format!("t=1,n={NONCE},v1={sig}"),
            &format!("t=x,n={NONCE},d={UNSIGNED_PAYLOAD},v1={sig}"),
            &format!("t=1,t=2,n={NONCE},d={UNSIGNED_PAYLOAD},v1={sig}"),
            &format!("t=1,n=short,d={UNSIGNED_PAYLOAD},v1={sig}"),
            &format!(
                "t=1,n={},d={UNSIGNED_PAYLOAD},v1={sig}",
                NONCE.to_uppercase()
            ),
            &format!("t=1,n={NONCE},d=abc,v1={sig}"),
            &format!("t=1,n={NONCE},d={UNSIGNED_PAYLOAD},v1={}", "A".repeat(64)),
            &format!("t=1,n={NONCE},d={UNSIGNED_PAYLOAD},v1=abc"),
            &format!("t=1,n={NONCE},d={UNSIGNED_PAYLOAD},v2={sig}"),
            &format!(
                "t=1,n={NONCE},d={UNSIGNED_PAYLOAD}{}",
                format!(",v1={sig}").repeat(5)
            ),
        ] {
            assert!(
                matches!(
                    SignatureHeader::parse(value),
                    Err(SignatureError::Malformed(_))
                ),
                "{value}"
            );
        }
    }
}
