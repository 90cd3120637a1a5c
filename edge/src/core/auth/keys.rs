//! Verification keys: JWK parsing, and the sans-IO JWKS cache ([`KeyStore`]).
//!
//! Every key is bound to exactly one [`Algorithm`], implied by its key type (`oct` → HS256,
//! `RSA` → RS256, `EC`/P-256 → ES256, `OKP`/Ed25519 → EdDSA). A token's `alg` header only ever
//! *filters* keys; it never picks how a key is used, so an RSA public key can never be used as an
//! HMAC secret (the RS256→HS256 confusion of RFC 8725 §2.1).

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit as _, Mac as _};
use serde::Deserialize;
use sha2::Sha256;

use super::config::{AuthConfig, JwksUrlConfig};
use crate::core::shared_fetch::FetchMark;

/// The JWS algorithms the edge verifies. Anything else (including `none`) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    RS256,
    ES256,
    EdDSA,
}

impl Algorithm {
    /// Exact, case-sensitive match of the registered JWS name (RFC 7518 §3.1, RFC 8037 §3.1).
    pub fn from_jws_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Self::HS256),
            "RS256" => Some(Self::RS256),
            "ES256" => Some(Self::ES256),
            "EdDSA" => Some(Self::EdDSA),
            _ => None,
        }
    }

    pub fn jws_name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// RSA moduli below 2048 bits are refused (RFC 8725 §3.5 defers to NIST guidance); above 4096
/// bits verification gets slow enough to be a CPU-exhaustion lever for whoever serves the JWKS.
const RSA_MODULUS_BITS: core::ops::RangeInclusive<usize> = 2048..=4096;

/// HS256 secrets shorter than the hash output are refused (RFC 7518 §3.2).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// One key able to verify signatures of exactly one algorithm.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    material: KeyMaterial,
}

#[derive(Clone)]
enum KeyMaterial {
    Hmac(Vec<u8>),
    Rsa(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
    EcP256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for VerificationKey {
    // Key material stays out of logs: HMAC secrets are secrets, and public keys are just noise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// An HS256 key from a shared secret (at least [`MIN_HMAC_SECRET_BYTES`] bytes).
    pub fn hs256(kid: Option<String>, secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            return Err(KeyError::HmacSecretTooShort);
        }
        Ok(Self {
            kid,
            material: KeyMaterial::Hmac(secret.to_vec()),
        })
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        match self.material {
            KeyMaterial::Hmac(_) => Algorithm::HS256,
            KeyMaterial::Rsa(_) => Algorithm::RS256,
            KeyMaterial::EcP256(_) => Algorithm::ES256,
            KeyMaterial::Ed25519(_) => Algorithm::EdDSA,
        }
    }

    /// Whether `signature` over `signing_input` is valid for this key. Lengths are checked before
    /// any arithmetic; every failure is just `false`.
    pub(crate) fn verifies(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        match &self.material {
            KeyMaterial::Hmac(secret) => {
                let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(secret) else {
                    return false;
                };
                mac.update(signing_input);
                // Constant-time comparison; also refuses truncated tags.
                mac.verify_slice(signature).is_ok()
            }
            KeyMaterial::Rsa(key) => {
                use rsa::traits::PublicKeyParts as _;
                let public: &rsa::PublicKey = (**key).as_ref();
                if signature.len() != public.size() {
                    return false;
                }
                rsa::pkcs1v15::Signature::try_from(signature)
                    .is_ok_and(|sig| key.verify(signing_input, &sig).is_ok())
            }
            KeyMaterial::EcP256(key) => {
                // JWS carries raw r‖s (RFC 7518 §3.4), never DER.
                signature.len() == 64
                    && p256::ecdsa::Signature::from_slice(signature)
                        .is_ok_and(|sig| key.verify(signing_input, &sig).is_ok())
            }
            KeyMaterial::Ed25519(key) => {
                let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                    return false;
                };
                let sig = ed25519_dalek::Signature::from_bytes(&bytes);
                // Strict: refuses small-order keys and non-canonical signatures (malleability).
                key.verify_strict(signing_input, &sig).is_ok()
            }
        }
    }
}

/// Why a JWK (or HS256 secret) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    HmacSecretTooShort,
    /// `use` is not `sig`, or `key_ops` lacks `verify`: the key is not meant for verifying.
    NotForVerification,
    /// Symmetric keys are never taken from a JWK set (they would have to be public to be there).
    SymmetricKeyInJwks,
    UnsupportedKeyType(String),
    UnsupportedCurve(String),
    /// The JWK's `alg` disagrees with what its key type can do, e.g. `alg: HS256` on an RSA key.
    AlgorithmMismatch {
        declared: String,
        implied: Algorithm,
    },
    /// The key's algorithm is not in the configured `algorithms` allowlist.
    AlgorithmNotAllowed(Algorithm),
    MissingMember(&'static str),
    /// A member is not valid unpadded base64url, or has the wrong length.
    BadMember(&'static str),
    /// The RSA modulus is outside 2048..=4096 bits, or the key is otherwise invalid.
    BadRsaKey,
    /// The point is not on the curve / not a valid Ed25519 key.
    BadPoint,
    /// The JWK is not a JSON object with string members.
    Malformed(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::HmacSecretTooShort => write!(
                f,
                "HS256 secret is shorter than {MIN_HMAC_SECRET_BYTES} bytes"
            ),
            KeyError::NotForVerification => {
                write!(f, "key is not for signature verification (use/key_ops)")
            }
            KeyError::SymmetricKeyInJwks => write!(
                f,
                "symmetric (oct) keys are not accepted in a JWK set; configure HS256 secrets instead"
            ),
            KeyError::UnsupportedKeyType(kty) => write!(f, "unsupported kty {kty:?}"),
            KeyError::UnsupportedCurve(crv) => write!(f, "unsupported crv {crv:?}"),
            KeyError::AlgorithmMismatch { declared, implied } => write!(
                f,
                "alg {declared:?} does not match the key type, which verifies {}",
                implied.jws_name()
            ),
            KeyError::AlgorithmNotAllowed(alg) => write!(
                f,
                "key algorithm {} is not in the configured algorithms",
                alg.jws_name()
            ),
            KeyError::MissingMember(name) => write!(f, "missing member {name:?}"),
            KeyError::BadMember(name) => write!(f, "member {name:?} is malformed"),
            KeyError::BadRsaKey => write!(
                f,
                "invalid RSA key (modulus must be 2048 to 4096 bits, exponent valid)"
            ),
            KeyError::BadPoint => write!(f, "invalid public key point"),
            KeyError::Malformed(reason) => write!(f, "malformed JWK: {reason}"),
        }
    }
}

/// The members of a JWK the edge reads (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2). Other members
/// are ignored as RFC 7517 requires; in particular `x5c`/`x5u` are never fetched or trusted.
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    public_key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Parses one JWK into a verification key, refusing anything not usable under `allowed`.
pub(crate) fn parse_jwk(
    value: &serde_json::Value,
    allowed: &[Algorithm],
) -> Result<VerificationKey, KeyError> {
    let jwk = Jwk::deserialize(value).map_err(|e| KeyError::Malformed(e.to_string()))?;
    if jwk.public_key_use.as_deref().is_some_and(|u| u != "sig")
        || jwk
            .key_ops
            .as_ref()
            .is_some_and(|ops| !ops.iter().any(|op| op == "verify"))
    {
        return Err(KeyError::NotForVerification);
    }
    let implied = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => Algorithm::RS256,
        ("EC", Some("P-256")) => Algorithm::ES256,
        ("OKP", Some("Ed25519")) => Algorithm::EdDSA,
        ("EC" | "OKP", crv) => {
            return Err(KeyError::UnsupportedCurve(crv.unwrap_or("").to_owned()));
        }
        ("oct", _) => return Err(KeyError::SymmetricKeyInJwks),
        (other, _) => return Err(KeyError::UnsupportedKeyType(other.to_owned())),
    };
    if let Some(declared) = &jwk.alg
        && Algorithm::from_jws_name(declared) != Some(implied)
    {
        return Err(KeyError::AlgorithmMismatch {
            declared: declared.clone(),
            implied,
        });
    }
    if !allowed.contains(&implied) {
        return Err(KeyError::AlgorithmNotAllowed(implied));
    }
    let material = match implied {
        Algorithm::RS256 => {
            let n = member(&jwk.n, "n")?;
            let e = member(&jwk.e, "e")?;
            let n = rsa::BoxedUint::from_be_slice_vartime(&n);
            let e = rsa::BoxedUint::from_be_slice_vartime(&e);
            let key = rsa::PublicKey::new_with_size_limits(n, e, RSA_MODULUS_BITS)
                .map_err(|_| KeyError::BadRsaKey)?;
            KeyMaterial::Rsa(Box::new(rsa::pkcs1v15::VerifyingKey::new(key)))
        }
        Algorithm::ES256 => {
            let x = fixed_member::<32>(&jwk.x, "x")?;
            let y = fixed_member::<32>(&jwk.y, "y")?;
            let mut sec1 = [0u8; 65];
            sec1[0] = 0x04; // uncompressed point
            sec1[1..33].copy_from_slice(&x);
            sec1[33..].copy_from_slice(&y);
            KeyMaterial::EcP256(
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .map_err(|_| KeyError::BadPoint)?,
            )
        }
        Algorithm::EdDSA => {
            let x = fixed_member::<32>(&jwk.x, "x")?;
            KeyMaterial::Ed25519(
                ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| KeyError::BadPoint)?,
            )
        }
        // Unreachable by construction (`oct` returned above), but an error beats a panic.
        Algorithm::HS256 => return Err(KeyError::SymmetricKeyInJwks),
    };
    Ok(VerificationKey {
        kid: jwk.kid,
        material,
    })
}

fn member(value: &Option<String>, name: &'static str) -> Result<Vec<u8>, KeyError> {
    let encoded = value.as_deref().ok_or(KeyError::MissingMember(name))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| KeyError::BadMember(name))?;
    if bytes.is_empty() {
        return Err(KeyError::BadMember(name));
    }
    Ok(bytes)
}

fn fixed_member<const N: usize>(
    value: &Option<String>,
    name: &'static str,
) -> Result<[u8; N], KeyError> {
    <[u8; N]>::try_from(member(value, name)?).map_err(|_| KeyError::BadMember(name))
}

/// A JWKS document to fetch: the adapter GETs `url`, reads at most `max_body_bytes` of the body
/// and hands it to [`KeyStore::apply_jwks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksFetch {
    pub url: String,
    pub max_body_bytes: usize,
    pub timeout_ms: u64,
}

/// Why a fetched JWKS document was not applied. The previous key set stays in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// No `jwks_url` is configured, so there is nothing to apply a document to.
    NotConfigured,
    TooLarge {
        max_body_bytes: usize,
    },
    /// Not JSON, or not `{"keys": [...]}`.
    Malformed(String),
    TooManyKeys {
        max_keys: usize,
    },
    /// No key in the document is usable (all were skipped); the reasons of the first few.
    NoUsableKeys(Vec<KeyError>),
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::NotConfigured => write!(f, "no jwks_url is configured"),
            JwksError::TooLarge { max_body_bytes } => {
                write!(f, "JWKS document is larger than {max_body_bytes} bytes")
            }
            JwksError::Malformed(reason) => write!(f, "JWKS document is malformed: {reason}"),
            JwksError::TooManyKeys { max_keys } => {
                write!(f, "JWKS document has more than {max_keys} keys")
            }
            JwksError::NoUsableKeys(reasons) => {
                write!(f, "JWKS document has no usable key")?;
                for reason in reasons {
                    write!(f, "; {reason}")?;
                }
                Ok(())
            }
        }
    }
}

/// What [`KeyStore::apply_jwks`] did with a good document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksApplied {
    /// Keys now in use from the JWKS URL.
    pub usable: usize,
    /// Keys ignored (other key types or algorithms, encryption keys, malformed members).
    pub skipped: usize,
}

/// Parses `{"keys": [...]}`, keeping the keys usable under `allowed` and skipping the others
/// (RFC 7517 §5: a JWK set may hold keys the reader does not understand).
pub(crate) fn parse_jwks(
    body: &[u8],
    allowed: &[Algorithm],
    max_keys: usize,
) -> Result<(Vec<VerificationKey>, Vec<KeyError>), JwksError> {
    #[derive(Deserialize)]
    struct JwkSet {
        keys: Vec<serde_json::Value>,
    }
    let set: JwkSet =
        serde_json::from_slice(body).map_err(|e| JwksError::Malformed(e.to_string()))?;
    if set.keys.len() > max_keys {
        return Err(JwksError::TooManyKeys { max_keys });
    }
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for value in &set.keys {
        match parse_jwk(value, allowed) {
            Ok(key) => usable.push(key),
            Err(reason) => skipped.push(reason),
        }
    }
    Ok((usable, skipped))
}

/// The keys tokens are verified against: static keys from configuration plus, when a
/// `jwks_url` is configured, the last good set fetched from it.
///
/// Sans-IO: it never fetches. [`KeyStore::refresh_due`] (asked on every request, it is cheap)
/// or, after an [`AuthOutcome::UnknownKey`](super::AuthOutcome::UnknownKey),
/// [`KeyStore::refresh_for_unknown_key`] answer `Some(JwksFetch)` for "fetch this now", already
/// counted against the rate limit, so concurrent requests do not stampede the identity
/// provider; the body goes to [`KeyStore::apply_jwks`]. A failed fetch changes nothing: the last
/// good set stays in use and the next attempt waits `min_refresh_interval_secs`. Requests go
/// through [`super::KeyRefresh`], which also keeps the store's mark of the fetch running.
#[derive(Debug, Clone)]
pub struct KeyStore {
    static_keys: Vec<VerificationKey>,
    allowed: Vec<Algorithm>,
    remote: Option<RemoteKeys>,
    /// That a JWKS fetch is running: other requests wait for it rather than settle their
    /// tokens as unknown (`KeyRefresh`). Never set without a `jwks_url`.
    fetching: FetchMark,
}

#[derive(Debug, Clone)]
struct RemoteKeys {
    source: JwksUrlConfig,
    keys: Vec<VerificationKey>,
    /// When the current set was applied (seconds since the epoch); `None` before the first.
    fetched_at: Option<u64>,
    /// When a fetch was last handed out, successful or not.
    last_attempt: Option<u64>,
}

/// `now` is at least `secs` after `since`. A clock that went backwards counts as elapsed, so a
/// skewed clock can delay nothing forever.
fn elapsed(now: u64, since: u64, secs: u64) -> bool {
    now < since || now - since >= secs
}

impl KeyStore {
    pub fn new(config: &AuthConfig) -> Self {
        Self {
            static_keys: config.static_keys.clone(),
            allowed: config.algorithms.clone(),
            remote: config.jwks_url.clone().map(|source| RemoteKeys {
                source,
                keys: Vec::new(),
                fetched_at: None,
                last_attempt: None,
            }),
            fetching: FetchMark::default(),
        }
    }

    /// A fetch to perform now because the fetched set is missing or older than its TTL, unless
    /// one was handed out less than `min_refresh_interval_secs` ago.
    pub fn refresh_due(&mut self, now_secs: u64) -> Option<JwksFetch> {
        let remote = self.remote.as_mut()?;
        let stale = remote
            .fetched_at
            .is_none_or(|at| elapsed(now_secs, at, remote.source.ttl_secs));
        if !stale {
            return None;
        }
        remote.claim_attempt(now_secs)
    }

    /// Whether [`KeyStore::refresh_due`] would hand out a fetch at `now_secs` (nothing is
    /// claimed): an executor that cannot fetch keys itself hands such a request on.
    pub fn is_refresh_due(&self, now_secs: u64) -> bool {
        self.remote.as_ref().is_some_and(|remote| {
            remote
                .fetched_at
                .is_none_or(|at| elapsed(now_secs, at, remote.source.ttl_secs))
                && remote
                    .last_attempt
                    .is_none_or(|at| elapsed(now_secs, at, remote.source.min_refresh_interval_secs))
        })
    }

    /// A fetch to perform now because a token named a key we do not have (the identity provider
    /// may have rotated keys), rate-limited to one per `min_refresh_interval_secs`.
    pub fn refresh_for_unknown_key(&mut self, now_secs: u64) -> Option<JwksFetch> {
        self.remote.as_mut()?.claim_attempt(now_secs)
    }

    /// Replaces the fetched key set with `body`'s usable keys. On any error the previous set stays.
    pub fn apply_jwks(&mut self, now_secs: u64, body: &[u8]) -> Result<JwksApplied, JwksError> {
        let remote = self.remote.as_mut().ok_or(JwksError::NotConfigured)?;
        if body.len() > remote.source.max_body_bytes {
            return Err(JwksError::TooLarge {
                max_body_bytes: remote.source.max_body_bytes,
            });
        }
        let (usable, skipped) = parse_jwks(body, &self.allowed, remote.source.max_keys)?;
        if usable.is_empty() {
            return Err(JwksError::NoUsableKeys(
                skipped.into_iter().take(4).collect(),
            ));
        }
        let applied = JwksApplied {
            usable: usable.len(),
            skipped: skipped.len(),
        };
        remote.keys = usable;
        remote.fetched_at = Some(now_secs);
        Ok(applied)
    }

    /// The mark that a fetch of this store's JWKS is running.
    pub(super) fn fetch_mark(&mut self) -> &mut FetchMark {
        &mut self.fetching
    }

    /// Whether a JWKS URL is configured (so an unknown key may become known after a refresh).
    pub fn has_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// All keys, static first.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &VerificationKey> {
        let remote = self.remote.iter().flat_map(|r| r.keys.iter());
        self.static_keys.iter().chain(remote)
    }
}

impl RemoteKeys {
    fn claim_attempt(&mut self, now_secs: u64) -> Option<JwksFetch> {
        let allowed = self
            .last_attempt
            .is_none_or(|at| elapsed(now_secs, at, self.source.min_refresh_interval_secs));
        if !allowed {
            return None;
        }
        self.last_attempt = Some(now_secs);
        Some(JwksFetch {
            url: self.source.url.clone(),
            max_body_bytes: self.source.max_body_bytes,
            timeout_ms: self.source.fetch_timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::super::test_support::*;
    use super::*;

    const TTL: u64 = 600;
    const MIN_INTERVAL: u64 = 30;

    fn remote_store() -> KeyStore {
        let config = AuthConfig::from_json(
            &json!({
                "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256", "ES256", "EdDSA"],
                "jwks_url": {"url": "https://idp.example/jwks", "ttl_secs": TTL,
                             "min_refresh_interval_secs": MIN_INTERVAL, "max_body_bytes": 4096,
                             "max_keys": 3}
            })
            .to_string(),
            None,
        )
        .unwrap();
        KeyStore::new(&config)
    }

    fn jwks(keys: &[serde_json::Value]) -> Vec<u8> {
        json!({ "keys": keys }).to_string().into_bytes()
    }

    fn kids(store: &KeyStore) -> Vec<String> {
        store
            .keys()
            .filter_map(|k| k.kid().map(str::to_owned))
            .collect()
    }

    #[test]
    fn first_fetch_is_due_at_once_then_rate_limited_until_it_succeeds() {
        let mut store = remote_store();
        assert!(store.is_refresh_due(NOW));
        let fetch = store.refresh_due(NOW).expect("nothing fetched yet");
        assert_eq!(
            fetch,
            JwksFetch {
                url: "https://idp.example/jwks".into(),
                max_body_bytes: 4096,
                timeout_ms: 5_000,
            }
        );
        // The fetch is in flight (or failed): nobody else is told to fetch within the interval.
        assert!(!store.is_refresh_due(NOW + 1));
        assert_eq!(store.refresh_due(NOW + 1), None);
        assert_eq!(store.refresh_for_unknown_key(NOW + MIN_INTERVAL - 1), None);
        // After the interval the (still missing) set is due again.
        assert!(store.is_refresh_due(NOW + MIN_INTERVAL));
        assert!(store.refresh_due(NOW + MIN_INTERVAL).is_some());
    }

    #[test]
    fn a_good_set_is_kept_for_its_ttl_then_refreshed() {
        let mut store = remote_store();
        store.refresh_due(NOW).unwrap();
        store.apply_jwks(NOW, &jwks(&[es_jwk()])).unwrap();
        assert_eq!(kids(&store), [ES_KID]);
        assert_eq!(store.refresh_due(NOW + MIN_INTERVAL), None);
        assert_eq!(store.refresh_due(NOW + TTL - 1), None);
        assert!(!store.is_refresh_due(NOW + TTL - 1));
        assert!(store.is_refresh_due(NOW + TTL));
        assert!(store.refresh_due(NOW + TTL).is_some());
    }

    #[test]
    fn unknown_kid_refreshes_are_rate_limited() {
        let mut store = remote_store();
        store.apply_jwks(NOW, &jwks(&[es_jwk()])).unwrap();
        assert!(store.refresh_for_unknown_key(NOW).is_some());
        for later in [NOW, NOW + 1, NOW + MIN_INTERVAL - 1] {
            assert_eq!(store.refresh_for_unknown_key(later), None);
        }
        assert!(store.refresh_for_unknown_key(NOW + MIN_INTERVAL).is_some());
    }

    type ErrorCheck = fn(&JwksError) -> bool;

    #[test]
    fn a_failed_or_bad_fetch_keeps_the_last_good_set() {
        let mut store = remote_store();
        store.apply_jwks(NOW, &jwks(&[es_jwk(), ed_jwk()])).unwrap();
        let bad_documents: Vec<(Vec<u8>, ErrorCheck)> = vec![
            (b"<html>502</html>".to_vec(), |e| {
                matches!(e, JwksError::Malformed(_))
            }),
            (b"{\"keys\": {}}".to_vec(), |e| {
                matches!(e, JwksError::Malformed(_))
            }),
            (jwks(&[]), |e| matches!(e, JwksError::NoUsableKeys(_))),
            (
                jwks(&[json!({"kty": "oct", "k": "c2VjcmV0"})]),
                |e| matches!(e, JwksError::NoUsableKeys(r) if r == &[KeyError::SymmetricKeyInJwks]),
            ),
            (jwks(&[es_jwk(), es_jwk(), es_jwk(), es_jwk()]), |e| {
                matches!(e, JwksError::TooManyKeys { max_keys: 3 })
            }),
            (vec![b' '; 4097], |e| {
                matches!(
                    e,
                    JwksError::TooLarge {
                        max_body_bytes: 4096
                    }
                )
            }),
        ];
        for (body, expected) in bad_documents {
            let error = store.apply_jwks(NOW + 5, &body).unwrap_err();
            assert!(expected(&error), "{error:?}");
            assert_eq!(kids(&store), [ES_KID, ED_KID]);
        }
        // The failures did not count as a refresh: the TTL still runs from the good fetch.
        assert!(store.refresh_due(NOW + TTL).is_some());
    }

    #[test]
    fn unusable_keys_in_a_set_are_skipped_not_fatal() {
        let mut store = remote_store();
        let encryption_key = {
            let mut k = rsa_jwk();
            k["use"] = json!("enc");
            k
        };
        let rs384 = {
            let mut k = rsa_jwk();
            k["alg"] = json!("RS384");
            k["kid"] = json!("rs384");
            k
        };
        let applied = store
            .apply_jwks(NOW, &jwks(&[encryption_key, rs384, ed_jwk()]))
            .unwrap();
        assert_eq!(
            applied,
            JwksApplied {
                usable: 1,
                skipped: 2
            }
        );
        assert_eq!(kids(&store), [ED_KID]);
    }

    #[test]
    fn stores_without_a_jwks_url_never_fetch() {
        let mut store = KeyStore::new(&config());
        assert_eq!(store.refresh_due(NOW), None);
        assert_eq!(store.refresh_for_unknown_key(NOW), None);
        assert_eq!(
            store.apply_jwks(NOW, &jwks(&[es_jwk()])),
            Err(JwksError::NotConfigured)
        );
    }

    #[test]
    fn a_clock_going_backwards_does_not_freeze_refreshes() {
        let mut store = remote_store();
        store.apply_jwks(NOW, &jwks(&[es_jwk()])).unwrap();
        assert!(store.refresh_for_unknown_key(NOW).is_some());
        assert!(store.refresh_for_unknown_key(NOW - 1000).is_some());
    }

    #[test]
    fn jwk_parsing_binds_each_key_to_its_one_algorithm() {
        let all = [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ];
        assert_eq!(
            parse_jwk(&rsa_jwk(), &all).unwrap().algorithm(),
            Algorithm::RS256
        );
        assert_eq!(
            parse_jwk(&es_jwk(), &all).unwrap().algorithm(),
            Algorithm::ES256
        );
        assert_eq!(
            parse_jwk(&ed_jwk(), &all).unwrap().algorithm(),
            Algorithm::EdDSA
        );

        let mut lying = rsa_jwk();
        lying["alg"] = json!("HS256");
        assert!(matches!(
            parse_jwk(&lying, &all),
            Err(KeyError::AlgorithmMismatch {
                implied: Algorithm::RS256,
                ..
            })
        ));
        assert_eq!(
            parse_jwk(&es_jwk(), &[Algorithm::RS256]).unwrap_err(),
            KeyError::AlgorithmNotAllowed(Algorithm::ES256)
        );
    }

    #[test]
    fn malformed_jwk_members_are_refused() {
        let all = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];
        let with = |mut key: serde_json::Value, member: &str, value: serde_json::Value| {
            key[member] = value;
            key
        };
        let cases = [
            (
                with(es_jwk(), "crv", json!("P-384")),
                KeyError::UnsupportedCurve("P-384".into()),
            ),
            (
                with(es_jwk(), "x", json!(b64(&[1u8; 31]))),
                KeyError::BadMember("x"),
            ),
            (
                with(es_jwk(), "y", json!("not base64!")),
                KeyError::BadMember("y"),
            ),
            // A valid encoding of a point that is not on the curve.
            (
                with(es_jwk(), "y", json!(b64(&[1u8; 32]))),
                KeyError::BadPoint,
            ),
            (
                with(ed_jwk(), "x", json!(b64(&[0u8; 33]))),
                KeyError::BadMember("x"),
            ),
            (
                with(rsa_jwk(), "n", json!(b64(&[0xffu8; 128]))),
                KeyError::BadRsaKey,
            ),
            (with(rsa_jwk(), "e", json!("")), KeyError::BadMember("e")),
            (
                json!({"kty": "RSA", "e": "AQAB"}),
                KeyError::MissingMember("n"),
            ),
            (
                json!({"kty": "PQC"}),
                KeyError::UnsupportedKeyType("PQC".into()),
            ),
            (
                with(ed_jwk(), "key_ops", json!(["sign"])),
                KeyError::NotForVerification,
            ),
        ];
        for (jwk, expected) in cases {
            assert_eq!(parse_jwk(&jwk, &all).unwrap_err(), expected, "{jwk}");
        }
        assert!(matches!(
            parse_jwk(&json!([1]), &all),
            Err(KeyError::Malformed(_))
        ));
        assert!(matches!(
            parse_jwk(&json!({"kty": 1}), &all),
            Err(KeyError::Malformed(_))
        ));
    }
}
