//! The `x-request-id` that correlates one request across browser, edge and brain.

use core::fmt;

/// A request id that is safe to forward, log and echo: 1 to [`RequestId::MAX_LEN`] characters
/// from `[A-Za-z0-9._:-]`. Anything else a client sends is replaced, so log lines and headers
/// cannot be forged or split through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    pub const MAX_LEN: usize = 128;

    /// Accepts a client-supplied id if it is well-formed.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        // Only ASCII bytes pass the check above, so the conversion cannot fail.
        valid.then(|| Self(String::from_utf8_lossy(raw).into_owned()))
    }

    /// Mints a new id: a UUID version 4 rendered from 16 random bytes supplied by the caller.
    pub fn from_random(mut bytes: [u8; 16]) -> Self {
        bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
        bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(36);
        for (i, byte) in bytes.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push('-');
            }
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0x0f)] as char);
        }
        Self(out)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_kept() {
        for raw in [
            "abc",
            "3f2c0a1e-1111-4222-8333-444455556666",
            "edge:1.2_x-y",
        ] {
            assert_eq!(RequestId::parse(raw.as_bytes()).unwrap().as_str(), raw);
        }
        let longest = "a".repeat(RequestId::MAX_LEN);
        assert!(RequestId::parse(longest.as_bytes()).is_some());
    }

    #[test]
    fn malformed_ids_are_refused() {
        let too_long = "a".repeat(RequestId::MAX_LEN + 1);
        for raw in [
            &b""[..],
            b"has space",
            b"new\nline",
            b"quote\"",
            b"\xff\xfe",
            "ünïcode".as_bytes(),
            too_long.as_bytes(),
        ] {
            assert!(RequestId::parse(raw).is_none(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn minted_ids_are_uuid_v4() {
        let id = RequestId::from_random([0xff; 16]);
        assert_eq!(id.as_str(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = RequestId::from_random([0; 16]);
        assert_eq!(id.as_str(), "00000000-0000-4000-8000-000000000000");
        assert!(RequestId::parse(id.as_str().as_bytes()).is_some());
    }
}
