//! The edge → brain request signature: how the brain knows a request really came through the
//! edge, and that the identity headers on it are the edge's.
//!
//! The edge signs every proxied request with HMAC-SHA256 over a canonical string of the parts
//! that matter, and sends the result in [`EDGE_SIGNATURE`](crate::headers::EDGE_SIGNATURE):
//!
//! ```text
//! x-edgebrain-signature: t=1700000000,n=3f0c…(32 hex),a=brain-2.internal:8080,d=<sha256 hex | UNSIGNED-PAYLOAD>,v1=<hex>[,v1=<hex>…]
//! ```
//!
//! - `t`: Unix seconds when the edge signed; the brain refuses signatures older (or further in
//!   the future) than its tolerance, 300 s by default.
//! - `n`: a fresh 128-bit nonce; the brain remembers nonces for the tolerance window and refuses a
//!   second request with the same one (replay).
//! - `a`: the authority of the brain the request is sent to ([`brain_authority`]: `host[:port]`
//!   of its URL, lowercased, without the scheme's default port). Each brain remembers only its
//!   own nonces, so this binding is what stops a request captured on its way to one brain of a
//!   fleet from being replayed to another: the brain refuses a signature bound to an authority
//!   it was not told is its own (`--edge-authority`). Absent only in signatures of edges older
//!   than the binding (the legacy v2 form), which only a brain without `--edge-authority`
//!   accepts.
//! - `d`: the SHA-256 of the request body (hex; the empty body has a digest too), or
//!   [`UNSIGNED_PAYLOAD`] for bodies streamed through without buffering (large uploads). Method,
//!   path, identity, time and nonce are signed either way.
//! - `v1`: one signature per active secret of the edge, so secrets can be rotated on either side
//!   independently: the brain accepts the request when any `v1` verifies under any of its secrets.
//!
//! The canonical string is [`canonical_string`]: a version tag, then `t`, `n`, the method, `a`,
//! the path with query exactly as sent, `d`, and the identity headers
//! ([`IDENTITY_HEADERS`](crate::headers::IDENTITY_HEADERS), in order, empty when absent), joined
//! by `\n`. None of these can contain a newline (header values and request targets
//! cannot, and an authority is letters, digits and `.-_[]:` only), so the encoding is
//! unambiguous.
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
/// network identity header joined the signed identity; v3: the target brain's authority).
const VERSION_TAG: &str = "edgebrain-signature-v3";

/// How many identity header values a signature covers.
pub const IDENTITY_VALUES: usize = IDENTITY_HEADERS.len();

/// Most `v1=` entries accepted in one header (bounds the brain's work per request).
pub const MAX_SIGNATURES: usize = 4;

/// Longest accepted signature header value: room for `t`, `n`, `d`, an authority of
/// [`MAX_AUTHORITY_BYTES`] and [`MAX_SIGNATURES`] signatures.
pub const MAX_HEADER_BYTES: usize = 1024;

/// Longest brain authority a signature binds to (a DNS name is at most 253 bytes; a port,
/// brackets and `:` come on top).
pub const MAX_AUTHORITY_BYTES: usize = 300;

/// Everything a signature covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedParts<'a> {
    pub timestamp_secs: u64,
    /// 32 lowercase hex characters.
    pub nonce: &'a str,
    /// Upper-case HTTP method.
    pub method: &'a str,
    /// The target brain's authority as [`brain_authority`] writes it. `""` only for a
    /// signature of an edge older than the binding (the legacy v2 form, see
    /// [`SignatureHeader::verify`]).
    pub authority: &'a str,
    /// Path and query exactly as on the request line, e.g. `/api/v1/x?a=1`.
    pub path_and_query: &'a str,
    /// [`body_digest`] of the body, or [`UNSIGNED_PAYLOAD`].
    pub body_digest: &'a str,
    /// Values of [`IDENTITY_HEADERS`](crate::headers::IDENTITY_HEADERS) in order; `""` when absent.
    pub identity: [&'a str; IDENTITY_VALUES],
}

/// The string that is signed (see the module docs). Parts without an authority give the
/// legacy v2 form of edges older than the binding ([`legacy_v2_string`]), so that signing and
/// verifying always agree on the form.
pub fn canonical_string(parts: &SignedParts<'_>) -> String {
    if parts.authority.is_empty() {
        return legacy_v2_string(parts);
    }
    let identity_len: usize = parts.identity.iter().map(|value| value.len() + 1).sum();
    let mut out = String::with_capacity(
        96 + parts.authority.len() + parts.path_and_query.len() + identity_len,
    );
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{VERSION_TAG}\n{}\n{}\n{}\n{}\n{}\n{}",
        parts.timestamp_secs,
        parts.nonce,
        parts.method,
        parts.authority,
        parts.path_and_query,
        parts.body_digest
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

/// The canonical string of edges older than the brain binding (v2: no authority). The brain
/// accepts it only without `--edge-authority` (a fleet of one that has not opted in to the
/// binding), so a brain upgraded first keeps serving the old edge. Remove once no v2 edge is
/// left.
fn legacy_v2_string(parts: &SignedParts<'_>) -> String {
    let mut out = format!(
        "edgebrain-signature-v2\n{}\n{}\n{}\n{}\n{}",
        parts.timestamp_secs, parts.nonce, parts.method, parts.path_and_query, parts.body_digest
    );
    for value in parts.identity {
        out.push('\n');
        out.push_str(value);
    }
    out
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
    let mut out = format!("t={},n={}", parts.timestamp_secs, parts.nonce);
    if !parts.authority.is_empty() {
        out.push_str(",a=");
        out.push_str(parts.authority);
    }
    out.push_str(",d=");
    out.push_str(parts.body_digest);
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
    /// The brain authority the signature is bound to; `None` from an edge older than the
    /// binding.
    pub authority: Option<String>,
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
    /// Parses `t=…,n=…[,a=…],d=…,v1=…[,v1=…]`. Strict: every key once (except `v1`, 1 to
    /// [`MAX_SIGNATURES`] times), no unknown keys, canonical lowercase hex, an authority in
    /// [`brain_authority`]'s form.
    pub fn parse(value: &str) -> Result<Self, SignatureError> {
        use SignatureError::Malformed;
        if value.len() > MAX_HEADER_BYTES {
            return Err(Malformed("too long"));
        }
        let (mut t, mut n, mut a, mut d) = (None, None, None, None);
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
                "a" if a.is_none() => {
                    if !is_canonical_authority(val) {
                        return Err(Malformed("a is not a brain authority"));
                    }
                    a = Some(val.to_owned());
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
            authority: a,
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
            authority: self.authority.as_deref().unwrap_or(""),
            path_and_query,
            body_digest: &self.body_digest,
            identity,
        }
    }

    /// Checks freshness against `now_secs` with `tolerance_secs` either way, then that some
    /// `v1` verifies (in constant time) under some secret — over [`canonical_string`] (v3 when
    /// the parts name a brain authority, else the legacy v2 form of edges older than the
    /// binding, and then also [`legacy_v1_string`] when that covers the same parts). Which
    /// authorities a brain accepts, and whether it accepts none (the legacy forms), is the
    /// caller's decision.
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
            .chain(
                parts
                    .authority
                    .is_empty()
                    .then(|| legacy_v1_string(parts))
                    .flatten(),
            )
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

/// The authority a signature binds to, from a brain origin `http(s)://host[:port]` (a trailing
/// `/` allowed, scheme in any case) or a bare `host[:port]`: ASCII-lowercased, and without the
/// scheme's default port (80 for `http`, 443 for `https`; a bare authority has no scheme, so it
/// keeps whatever port it names). The port is written as a plain number (`:080` → `:80`).
///
/// `None` unless the host is ASCII letters, digits, `.`, `-` and `_` (an internationalised
/// name in its `xn--` form) or a bracketed IPv6 literal, the port (if any) is a number up to
/// 65535, and the result is at most [`MAX_AUTHORITY_BYTES`]: the edge and the brain both
/// normalise through here, so they agree byte for byte.
pub fn brain_authority(origin_or_authority: &str) -> Option<String> {
    let text = origin_or_authority.trim();
    let scheme_rest = |scheme: &str| {
        text.get(..scheme.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(scheme))
            .and_then(|_| text.get(scheme.len()..))
    };
    let (default_port, rest) = if let Some(rest) = scheme_rest("http://") {
        (Some(80), rest)
    } else if let Some(rest) = scheme_rest("https://") {
        (Some(443), rest)
    } else {
        (None, text)
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (inner, after) = bracketed.split_once(']')?;
            let valid_inner = !inner.is_empty()
                && inner.contains(':')
                && inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
            if !valid_inner {
                return None;
            }
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (&authority[..inner.len() + 2], port)
        }
        None => {
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let valid_host = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
            if !valid_host {
                return None;
            }
            (host, port)
        }
    };
    let port = match port {
        None => None,
        Some(digits) => {
            if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    let mut out = host.to_ascii_lowercase();
    if let Some(port) = port.filter(|port| Some(*port) != default_port) {
        // Writing to a String cannot fail.
        let _ = write!(out, ":{port}");
    }
    (out.len() <= MAX_AUTHORITY_BYTES).then_some(out)
}

/// True when `value` is already in [`brain_authority`]'s form (as a bare authority).
fn is_canonical_authority(value: &str) -> bool {
    brain_authority(value).as_deref() == Some(value)
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
    const BRAIN: &str = "brain-1.internal:8080";

    fn parts(digest: &str) -> SignedParts<'_> {
        SignedParts {
            timestamp_secs: 1_700_000_000,
            nonce: NONCE,
            method: "POST",
            authority: BRAIN,
            path_and_query: "/api/v1/x?a=1",
            body_digest: digest,
            identity: IDENTITY,
        }
    }

    #[test]
    fn known_answer_pins_the_canonical_form() {
        // Recomputed independently: printf 'edgebrain-signature-v3\n1700000000\n…' |
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
                "edgebrain-signature-v3\n1700000000\n{NONCE}\nPOST\nbrain-1.internal:8080\n/api/v1/x?a=1\n{digest}\nalice\nsess-1\nread write\n203.0.113.0"
            )
        );
        assert_eq!(
            hex(&sign(b"secret", &parts(&digest))),
            "86930ba461f78ef72dde3fb5e204c05fb368d754e3a3aacb0dc62843bc7176ec"
        );
        assert_eq!(
            header_value(&parts(&digest), [&b"secret"[..]]),
            format!(
                "t=1700000000,n={NONCE},a=brain-1.internal:8080,d={digest},\
                 v1=86930ba461f78ef72dde3fb5e204c05fb368d754e3a3aacb0dc62843bc7176ec"
            )
        );
    }

    #[test]
    fn an_older_edges_v2_signature_verifies_only_without_an_authority() {
        // What an edge before the brain binding sent (the v2 form, recomputed with Python's
        // hmac: tag v2, then t, n, method, path, d and the four identity values).
        let digest = body_digest(b"");
        let v2 = "45f4aad2fd0bb118e271a07c28443a6fc15d6e1688c04f226b71a867b8df2a6f";
        let header =
            SignatureHeader::parse(&format!("t=1700000000,n={NONCE},d={digest},v1={v2}")).unwrap();
        assert_eq!(header.authority, None);
        let unbound = header.parts("POST", "/api/v1/x?a=1", IDENTITY);
        assert_eq!(unbound.authority, "");
        // Signing parts without an authority gives exactly that legacy signature.
        assert_eq!(hex(&sign(b"secret", &unbound)), v2);
        assert!(
            header
                .verify(&unbound, [&b"secret"[..]], 1_700_000_000, 300)
                .is_ok()
        );
        // The same MAC claimed for a brain: the v3 form never matches a v2 signature.
        let mut claimed = header.clone();
        claimed.authority = Some(BRAIN.to_owned());
        let bound = claimed.parts("POST", "/api/v1/x?a=1", IDENTITY);
        assert_eq!(
            claimed.verify(&bound, [&b"secret"[..]], 1_700_000_000, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_signature_bound_to_one_brain_fails_for_any_other_and_without_the_binding() {
        let digest = body_digest(b"{}");
        let header = SignatureHeader::parse(&header_value(&parts(&digest), [&b"k"[..]])).unwrap();
        assert_eq!(header.authority.as_deref(), Some(BRAIN));
        let ok = header.parts("POST", "/api/v1/x?a=1", IDENTITY);
        assert!(header.verify(&ok, [&b"k"[..]], 1_700_000_000, 300).is_ok());
        for other in [
            Some("brain-2.internal:8080"),
            Some("brain-1.internal:8081"),
            None,
        ] {
            let mut moved = header.clone();
            moved.authority = other.map(str::to_owned);
            let parts = moved.parts("POST", "/api/v1/x?a=1", IDENTITY);
            assert_eq!(
                moved.verify(&parts, [&b"k"[..]], 1_700_000_000, 300),
                Err(SignatureError::Mismatch),
                "{other:?}"
            );
        }
    }

    #[test]
    fn brain_authorities_are_normalised_alike_from_urls_and_bare_forms() {
        for (input, expected) in [
            ("http://127.0.0.1:8080", Some("127.0.0.1:8080")),
            ("http://127.0.0.1:8080/", Some("127.0.0.1:8080")),
            ("HTTP://Brain.Example:80", Some("brain.example")),
            ("https://brain.example:443/", Some("brain.example")),
            ("https://brain.example:80", Some("brain.example:80")),
            ("http://brain.example:443", Some("brain.example:443")),
            ("http://brain:080", Some("brain")),
            ("http://[::1]:8080", Some("[::1]:8080")),
            ("https://[2001:DB8::1]", Some("[2001:db8::1]")),
            ("brain_2.internal:9000", Some("brain_2.internal:9000")),
            (" brain:443 ", Some("brain:443")),
            ("xn--bcher-kva.example", Some("xn--bcher-kva.example")),
            ("http://", None),
            ("http://brain:", None),
            ("http://brain:99999", None),
            ("http://brain:+80", None),
            ("http://brain/api", None),
            ("http://user@brain", None),
            ("http://bücher.example", None),
            ("http://brain,evil", None),
            ("http://a:b:c", None),
            ("http://[::1", None),
            ("http://[]:80", None),
            ("http://[::1]x", None),
            ("ftp://brain", None),
        ] {
            assert_eq!(brain_authority(input).as_deref(), expected, "{input:?}");
        }
        let longest = format!("{}:65535", "a".repeat(MAX_AUTHORITY_BYTES - 6));
        assert_eq!(brain_authority(&longest).as_deref(), Some(longest.as_str()));
        assert_eq!(brain_authority(&format!("a{longest}")), None);
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
            &format!("t=1,n={NONCE},a=,d={UNSIGNED_PAYLOAD},v1={sig}"),
            &format!("t=1,n={NONCE},a=Brain:80,d={UNSIGNED_PAYLOAD},v1={sig}"),
            &format!("t=1,n={NONCE},a=b:1,a=b:2,d={UNSIGNED_PAYLOAD},v1={sig}"),
            &format!("t=1,n={NONCE},a=b c,d={UNSIGNED_PAYLOAD},v1={sig}"),
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

    proptest::proptest! {
        /// Whatever normalises is a fixed point, fits a header item and never carries the
        /// header's or the canonical string's separators.
        #[test]
        fn normalised_authorities_are_canonical_and_separator_free(
            input in "(https?://|HTTPS?://)?(\\[[0-9a-fA-F:.]{0,8}\\]|[a-zA-Z0-9._,=\n -]{0,12})(:[0-9+]{0,6})?/?"
        ) {
            if let Some(authority) = brain_authority(&input) {
                proptest::prop_assert!(is_canonical_authority(&authority));
                proptest::prop_assert!(!authority.contains([',', '=', '\n', ' ']));
                proptest::prop_assert!(authority.len() <= MAX_AUTHORITY_BYTES);
            }
        }
    }
}
