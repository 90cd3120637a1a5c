//! Values the edge hands to a browser and must get back unchanged: serde JSON, base64url,
//! authenticated with HMAC-SHA256 under the session keys (the current key seals, every listed
//! key opens — rotation as for sessions). A `purpose` enters the MAC, so a value sealed for
//! one cookie never opens as another.
//!
//! ```text
//! s1.<key id>.<base64url(JSON)>.<tag: 32 hex = HMAC-SHA256(key, "<purpose>|s1.<kid>.<payload>")[..16]>
//! ```
//!
//! Sealed values are authenticated, not encrypted: nothing secret goes into them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared_types::signature::hex;

use crate::core::session::{self, SessionConfig};

const VERSION: &str = "s1";
/// Longest sealed value opened (a cookie holds at most ~4 KB anyway).
pub const MAX_SEALED_BYTES: usize = 3072;

/// Seals `value` under the current session key; `None` without keys or past the size limit.
pub fn seal<T: Serialize>(purpose: &str, value: &T, config: &SessionConfig) -> Option<String> {
    let key = config.keys.first()?;
    let json = serde_json::to_vec(value).ok()?;
    let body = format!("{VERSION}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(json));
    let tag = tag(&key.secret, purpose, &body);
    let sealed = format!("{body}.{}", hex(&tag));
    (sealed.len() <= MAX_SEALED_BYTES).then_some(sealed)
}

/// Opens a value sealed by [`seal`] for `purpose` under any listed key; `None` for anything
/// else (tampered, another purpose, unknown key, malformed, too long).
pub fn open<T: DeserializeOwned>(purpose: &str, sealed: &str, config: &SessionConfig) -> Option<T> {
    if sealed.len() > MAX_SEALED_BYTES {
        return None;
    }
    let (body, tag_hex) = sealed.rsplit_once('.')?;
    let mut fields = body.split('.');
    let (version, key_id, payload) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() || version != VERSION {
        return None;
    }
    let key = config.keys.iter().find(|key| key.id == key_id)?;
    if !session::constant_time_eq_hex(&tag(&key.secret, purpose, body), tag_hex) {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&json).ok()
}

/// The session tag over `<purpose>|<body>`: the purpose is bound into the MAC.
fn tag(secret: &[u8], purpose: &str, body: &str) -> [u8; 16] {
    session::tag(secret, &format!("{purpose}|{body}"))
}

/// Two strings equal without an early exit (state and nonce comparisons).
pub(crate) fn equal_text(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::core::session::SessionKey;

    fn keys(ids: &[&str]) -> SessionConfig {
        SessionConfig {
            keys: ids
                .iter()
                .map(|id| SessionKey {
                    id: (*id).to_owned(),
                    secret: format!("{id}-secret-0123456789abcdef0123456789").into_bytes(),
                })
                .collect(),
            ttl_secs: 3600,
        }
    }

    #[test]
    fn a_sealed_value_opens_only_for_its_purpose_and_untouched() {
        let config = keys(&["k1"]);
        let sealed = seal("access", &vec!["a", "b"], &config).unwrap();
        assert_eq!(
            open::<Vec<String>>("access", &sealed, &config).unwrap(),
            ["a", "b"]
        );
        assert!(open::<Vec<String>>("login", &sealed, &config).is_none());
        // Any flipped character fails.
        for index in 0..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered != sealed {
                assert!(
                    open::<Vec<String>>("access", &tampered, &config).is_none(),
                    "{index}"
                );
            }
        }
        assert!(open::<Vec<String>>("access", "", &config).is_none());
        assert!(
            open::<Vec<String>>("access", &"x".repeat(MAX_SEALED_BYTES + 1), &config).is_none()
        );
    }

    #[test]
    fn rotation_opens_with_listed_keys_only() {
        let old = keys(&["k1"]);
        let sealed = seal("access", &1u8, &old).unwrap();
        assert_eq!(open::<u8>("access", &sealed, &keys(&["k2", "k1"])), Some(1));
        assert_eq!(open::<u8>("access", &sealed, &keys(&["k2"])), None);
    }
}
