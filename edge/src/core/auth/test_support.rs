//! Fixed key material and a token minter for the auth tests. Nothing here is generated at
//! random: the RSA key is a checked-in fixture (no slow keygen), the others come from fixed seeds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit as _, Mac as _};
use p256::ecdsa::signature::Signer as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use std::sync::LazyLock;

use serde_json::{Value, json};
use sha2::Sha256;

use super::{AuthConfig, KeyStore};

pub(crate) const ISSUER: &str = "https://idp.example/";
pub(crate) const AUDIENCE: &str = "edgebrain-api";
/// A fixed clock: 2026-11-23T00:00:00Z.
pub(crate) const NOW: u64 = 1_795_392_000;
pub(crate) const HS_SECRET: &str = "test-secret-0123456789abcdef0123456789";
pub(crate) const HS_KID: &str = "hs-1";
pub(crate) const RS_KID: &str = "rs-1";
pub(crate) const ES_KID: &str = "es-1";
pub(crate) const ED_KID: &str = "ed-1";

const RSA_PRIVATE_PKCS8_DER: &[u8] = include_bytes!("testdata/rsa2048-private.pk8.der");

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

// Fixtures are built once per test binary: RSA arithmetic is slow in debug builds.
static RSA_PRIVATE: LazyLock<rsa::PrivateKey> = LazyLock::new(|| {
    rsa::PrivateKey::from_pkcs8_der(RSA_PRIVATE_PKCS8_DER).expect("RSA fixture parses")
});
static CONFIG: LazyLock<AuthConfig> = LazyLock::new(|| config_from(&config_json()));
static VALID_TOKENS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(mint_valid_tokens);

pub(crate) fn rsa_private() -> rsa::PrivateKey {
    RSA_PRIVATE.clone()
}

pub(crate) fn es_signing_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("fixed P-256 scalar")
}

pub(crate) fn ed_signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
}

pub(crate) fn rsa_jwk() -> Value {
    let public = rsa::PublicKey::from(&*RSA_PRIVATE);
    json!({"kty": "RSA", "kid": RS_KID, "use": "sig", "alg": "RS256",
           "n": b64(&public.n_bytes()), "e": b64(&public.e_bytes())})
}

pub(crate) fn es_jwk() -> Value {
    let point = es_signing_key().verifying_key().to_sec1_point(false);
    let point = point.as_bytes();
    assert_eq!(point.len(), 65, "uncompressed SEC1 point");
    json!({"kty": "EC", "crv": "P-256", "kid": ES_KID,
           "x": b64(&point[1..33]), "y": b64(&point[33..65])})
}

pub(crate) fn ed_jwk() -> Value {
    let public = ed_signing_key().verifying_key().to_bytes();
    json!({"kty": "OKP", "crv": "Ed25519", "kid": ED_KID, "x": b64(&public)})
}

/// All four algorithms, every kind of key, no JWKS URL.
pub(crate) fn config_json() -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "algorithms": ["HS256", "RS256", "ES256", "EdDSA"],
        "leeway_secs": 30,
        "max_token_bytes": 4096,
        "jwks": {"keys": [rsa_jwk(), es_jwk(), ed_jwk()]}
    })
}

pub(crate) fn secrets_json() -> String {
    json!([{"kid": HS_KID, "secret": HS_SECRET}]).to_string()
}

pub(crate) fn config_from(value: &Value) -> AuthConfig {
    AuthConfig::from_json(&value.to_string(), Some(&secrets_json())).expect("test config is valid")
}

pub(crate) fn config() -> AuthConfig {
    CONFIG.clone()
}

pub(crate) fn store(config: &AuthConfig) -> KeyStore {
    KeyStore::new(config)
}

/// Claims that pass every check at [`NOW`].
pub(crate) fn good_claims() -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "exp": NOW + 600, "nbf": NOW - 10,
           "iat": NOW - 10, "scope": "reports:read profile", "roles": ["analyst"]})
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Signer<'a> {
    Hs(&'a [u8]),
    Rs,
    Es,
    Ed,
}

pub(crate) fn sign(signer: Signer<'_>, input: &[u8]) -> Vec<u8> {
    match signer {
        Signer::Hs(secret) => {
            let mut mac = hmac::Hmac::<Sha256>::new_from_slice(secret).unwrap();
            mac.update(input);
            mac.finalize().into_bytes().to_vec()
        }
        Signer::Rs => {
            let key = rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa_private());
            let sig: rsa::pkcs1v15::Signature = key.sign(input);
            Box::<[u8]>::from(sig).to_vec()
        }
        Signer::Es => {
            let sig: p256::ecdsa::Signature = es_signing_key().sign(input);
            sig.to_bytes().to_vec()
        }
        Signer::Ed => ed_signing_key().sign(input).to_bytes().to_vec(),
    }
}

/// `header.payload.signature` from raw header and payload bytes.
pub(crate) fn mint_raw(header: &[u8], payload: &[u8], signer: Signer<'_>) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = sign(signer, input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

pub(crate) fn mint(header: &Value, claims: &Value, signer: Signer<'_>) -> String {
    mint_raw(
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
        signer,
    )
}

pub(crate) fn header(alg: &str, kid: &str) -> Value {
    json!({"alg": alg, "typ": "JWT", "kid": kid})
}

/// A valid token for each algorithm: HS256, RS256, ES256, EdDSA (in this order).
pub(crate) fn valid_tokens() -> Vec<(&'static str, String)> {
    VALID_TOKENS.clone()
}

fn mint_valid_tokens() -> Vec<(&'static str, String)> {
    let secret = HS_SECRET.as_bytes();
    vec![
        (
            "HS256",
            mint(&header("HS256", HS_KID), &good_claims(), Signer::Hs(secret)),
        ),
        (
            "RS256",
            mint(&header("RS256", RS_KID), &good_claims(), Signer::Rs),
        ),
        (
            "ES256",
            mint(&header("ES256", ES_KID), &good_claims(), Signer::Es),
        ),
        (
            "EdDSA",
            mint(&header("EdDSA", ED_KID), &good_claims(), Signer::Ed),
        ),
    ]
}
