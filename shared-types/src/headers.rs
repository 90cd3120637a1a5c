//! HTTP header names that are part of the wire contract, and the encoding of the identity
//! values the edge asserts to the brain.

/// Correlates one request across browser, edge and brain. The edge creates it when absent and
/// both services echo it on every response and in every log line about the request.
pub const REQUEST_ID: &str = "x-request-id";

/// The edge's own verdict on how a response was produced (`proxy`, `edge`); set on every edge
/// response so deployment checks can tell which hop answered.
pub const EDGE_SOURCE: &str = "x-edge-source";

/// The session id of a non-browser client (browsers get the `__Host-` session cookie instead).
/// Sent by clients to the edge, and returned by the edge when it issues or replaces one.
pub const CLIENT_SESSION_ID: &str = "x-session-id";

/// Edge → brain: the verified user id (JWT `sub`) in [`encode_user_id`]'s form, absent for
/// anonymous callers. Only the edge may set it: the brain drops it unless it is covered by
/// [`EDGE_SIGNATURE`].
pub const IDENTITY_USER: &str = "x-edgebrain-user";

/// Edge → brain: the edge-issued session id (present for anonymous and signed-in callers).
pub const IDENTITY_SESSION: &str = "x-edgebrain-session";

/// Edge → brain: the caller's scopes/roles, space-separated (OAuth `scope` style).
pub const IDENTITY_SCOPES: &str = "x-edgebrain-scopes";

/// Edge → brain: the caller's network as the platform saw it — an IPv4 address, an IPv6 /64
/// (`2001:db8:1:2::/64`, one subscriber usually owns a whole /64) or `unknown` when the platform
/// gave no client address. Set for callers who are not signed in: sessions cost nothing to
/// mint, so per-caller quotas of anonymous callers (the brain's token budget) count by network.
pub const IDENTITY_NETWORK: &str = "x-edgebrain-network";

/// The identity headers, in the order they enter the request signature.
pub const IDENTITY_HEADERS: [&str; 4] = [
    IDENTITY_USER,
    IDENTITY_SESSION,
    IDENTITY_SCOPES,
    IDENTITY_NETWORK,
];

/// Edge → brain: `t=<unix seconds>,n=<nonce>,d=<body digest>,v1=<hex hmac>[,v1=…]`; see
/// `shared_types::signature`.
pub const EDGE_SIGNATURE: &str = "x-edgebrain-signature";

/// Brain → edge: `1` on a `503` the brain answers because it is draining (shutting down or
/// leaving the fleet) and did not process the request. The edge may then send the request to
/// the next brain in the tenant's order, for any method, as long as it can replay the body.
pub const DRAINING: &str = "x-edgebrain-draining";

/// Brain → edge → client: the id of the brain that answered (`--brain-id`, else the id of
/// that start of the brain), on every answer of the brain. For operators of a fleet: which
/// replica served a request (the edge passes it on; a cached answer names the brain that
/// filled the cache).
pub const SERVED_BY_BRAIN: &str = "x-edgebrain-brain";

/// Edge → client: how the edge cache produced this response: `HIT` (fresh from the cache),
/// `MISS` (fetched from the brain, possibly stored), `STALE` (served from the cache while it is
/// refreshed in the background) or `BYPASS` (not cacheable; the brain answered).
pub const EDGE_CACHE: &str = "x-edge-cache";

/// Longest user id (JWT `sub`, UTF-8 bytes) the edge accepts; a longer one is refused (401).
/// OpenID Connect caps `sub` at 255 ASCII characters; this leaves room for other providers.
pub const MAX_USER_ID_BYTES: usize = 1024;

/// Longest [`IDENTITY_USER`] value: every byte of the longest user id percent-encoded.
pub const MAX_ENCODED_USER_ID_BYTES: usize = 3 * MAX_USER_ID_BYTES;

/// Longest [`IDENTITY_SCOPES`] value; the edge refuses (401) a token with more.
pub const MAX_SCOPES_BYTES: usize = 8192;

/// A user id as the [`IDENTITY_USER`] header value: its UTF-8 bytes, each one outside visible
/// ASCII (`!`..=`~`), and `%` itself, written `%XX` (upper-case hex). Every string has exactly
/// one encoding and it is a valid header value, so any `sub` an identity provider issues —
/// spaces, non-ASCII, `:` — reaches the brain as exactly that user. Ids of visible ASCII without
/// `%` are their own encoding.
pub fn encode_user_id(user_id: &str) -> String {
    let mut out = String::with_capacity(user_id.len());
    for &byte in user_id.as_bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            out.push(char::from(byte));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    out
}

/// Inverse of [`encode_user_id`], strict: `None` unless `encoded` is the one encoding of a
/// non-empty user id of at most [`MAX_USER_ID_BYTES`] bytes without control characters (the
/// edge refuses those). Strictness keeps the mapping one-to-one: no two header values name the
/// same user.
pub fn decode_user_id(encoded: &str) -> Option<String> {
    if encoded.is_empty() || encoded.len() > MAX_ENCODED_USER_ID_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut input = encoded.bytes();
    while let Some(byte) = input.next() {
        match byte {
            b'%' => {
                let high = upper_hex_value(input.next()?)?;
                let low = upper_hex_value(input.next()?)?;
                let decoded = (high << 4) | low;
                // Canonical form only: what needs no escape must not be escaped.
                if decoded.is_ascii_graphic() && decoded != b'%' {
                    return None;
                }
                bytes.push(decoded);
            }
            byte if byte.is_ascii_graphic() => bytes.push(byte),
            _ => return None,
        }
    }
    let user_id = String::from_utf8(bytes).ok()?;
    (user_id.len() <= MAX_USER_ID_BYTES && !user_id.chars().any(char::is_control))
        .then_some(user_id)
}

fn upper_hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_ids_are_their_own_encoding() {
        for id in [
            "alice",
            "user-42",
            "auth0|5f1c",
            "google-oauth2|1234",
            "a:b",
            "x@y.z",
        ] {
            assert_eq!(encode_user_id(id), id);
            assert_eq!(decode_user_id(id).as_deref(), Some(id));
        }
    }

    #[test]
    fn spaces_non_ascii_and_percent_are_escaped() {
        assert_eq!(encode_user_id("a b"), "a%20b");
        assert_eq!(encode_user_id("café"), "caf%C3%A9");
        assert_eq!(encode_user_id("50%"), "50%25");
        assert_eq!(encode_user_id("a%20b"), "a%2520b");
        assert_ne!(encode_user_id("a b"), encode_user_id("a%20b"));
    }

    #[test]
    fn decoding_refuses_everything_but_the_canonical_form() {
        for bad in [
            "",
            "a b",       // raw space
            "a%41",      // escaped letter
            "caf%c3%a9", // lower-case hex
            "a%2",       // truncated escape
            "a%zz",      // not hex
            "%FF",       // not UTF-8
            "%00",       // NUL
            "a%0Ab",     // control character
            "%7F",       // DEL
            "café",      // raw non-ASCII
        ] {
            assert_eq!(decode_user_id(bad), None, "{bad:?}");
        }
        let longest = "é".repeat(MAX_USER_ID_BYTES / 2);
        assert_eq!(decode_user_id(&encode_user_id(&longest)), Some(longest));
        let too_long = "x".repeat(MAX_USER_ID_BYTES + 1);
        assert_eq!(decode_user_id(&encode_user_id(&too_long)), None);
    }

    proptest! {
        #[test]
        fn every_id_round_trips_as_a_header_value(id in "\\PC{1,300}") {
            let encoded = encode_user_id(&id);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_graphic()));
            prop_assert!(encoded.len() <= 3 * id.len());
            prop_assert_eq!(decode_user_id(&encoded), Some(id));
        }

        #[test]
        fn distinct_ids_never_share_an_encoding(a in "\\PC{1,40}", b in "\\PC{1,40}") {
            prop_assume!(a != b);
            prop_assert_ne!(encode_user_id(&a), encode_user_id(&b));
        }

        #[test]
        fn whatever_decodes_is_canonical(value in "[ -~]{0,64}") {
            if let Some(id) = decode_user_id(&value) {
                prop_assert_eq!(encode_user_id(&id), value);
            }
        }
    }
}
