//! Property tests (standing in for cargo-fuzz): the token parser and verifier never panic on
//! arbitrary input, and never accept a token whose signature or signed bytes were changed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::test_support::*;
use super::{AuthOutcome, AuthPolicy, KeyStore, authenticate, verify_token};

/// Token-shaped strings: real segments, base64url noise, dots, and arbitrary text.
fn token_like() -> impl Strategy<Value = String> {
    let valid = valid_tokens();
    let piece = prop_oneof![
        Just(".".to_owned()),
        Just("eyJhbGciOiJub25lIn0".to_owned()), // {"alg":"none"}
        Just("eyJhbGciOiJIUzI1NiJ9".to_owned()), // {"alg":"HS256"}
        Just("=".to_owned()),
        "[A-Za-z0-9_-]{0,40}",
        any::<String>(),
        proptest::sample::select(valid).prop_map(|(_, t)| t),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn verify_never_panics_on_arbitrary_tokens(token in token_like(), now in any::<u64>()) {
        let config = config();
        let _ = verify_token(&token, &config, &store(&config), now);
    }

    #[test]
    fn authenticate_never_panics_on_arbitrary_headers(value in prop::collection::vec(any::<u8>(), 0..200)) {
        let config = config();
        let keys = store(&config);
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            headers.insert(AUTHORIZATION, value);
        }
        let policy = AuthPolicy::Required { scopes: vec!["a".into()], any_role: vec![] };
        let outcome = authenticate(&headers, &policy, &config, &keys, NOW);
        prop_assert!(!matches!(outcome, AuthOutcome::Authenticated(_)));
        // Every refusal comes with a usable challenge.
        if let Some(rejection) = outcome.rejection(&config) {
            prop_assert!(HeaderValue::from_str(&rejection.www_authenticate).is_ok());
        }
    }

    #[test]
    fn jwks_documents_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let config = super::AuthConfig::from_json(&serde_json::json!({
            "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256", "EdDSA", "RS256"],
            "jwks_url": {"url": "https://idp.example/jwks"}
        }).to_string(), None).unwrap();
        let mut keys = KeyStore::new(&config);
        let _ = keys.apply_jwks(NOW, &body);
    }
}

/// JWK-shaped objects: real key types and curves, members of random (often wrong) lengths.
fn jwk_like() -> impl Strategy<Value = serde_json::Value> {
    let member = prop_oneof![
        // Exactly 32 bytes: about half decode as Ed25519 points, so some sets are accepted.
        prop::collection::vec(any::<u8>(), 32..=32).prop_map(|bytes| b64(&bytes)),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|bytes| b64(&bytes)),
        "[A-Za-z0-9_=+/-]{0,12}",
    ];
    (
        proptest::sample::select(vec!["RSA", "EC", "OKP", "oct", "x"]),
        proptest::sample::select(vec!["P-256", "Ed25519", "X25519", "P-384"]),
        proptest::sample::select(vec!["RS256", "ES256", "EdDSA", "HS256", "none"]),
        member.clone(),
        member.clone(),
        member,
    )
        .prop_map(|(kty, crv, alg, a, b, c)| {
            serde_json::json!({"kty": kty, "crv": crv, "alg": alg, "kid": "k",
                               "n": a, "e": b, "x": b.clone(), "y": c})
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn jwk_sets_of_random_keys_never_panic(keys in prop::collection::vec(jwk_like(), 0..4)) {
        let config = super::AuthConfig::from_json(&serde_json::json!({
            "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256", "EdDSA", "RS256"],
            "jwks_url": {"url": "https://idp.example/jwks"}
        }).to_string(), None).unwrap();
        let mut store = KeyStore::new(&config);
        let body = serde_json::json!({"keys": keys}).to_string();
        if store.apply_jwks(NOW, body.as_bytes()).is_ok() {
            // Whatever was accepted must still refuse tokens it did not sign (signed by the
            // fixture keys, but naming the random keys' kid).
            for (alg, signer) in [("EdDSA", Signer::Ed), ("ES256", Signer::Es)] {
                let token = mint(&header(alg, "k"), &good_claims(), signer);
                prop_assert!(verify_token(&token, &config, &store, NOW).is_err());
            }
        }
    }
}

proptest! {
    // Each case verifies real signatures (RSA included), so fewer cases keep this in seconds.
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn changed_signature_bytes_are_never_accepted(
        which in 0usize..4,
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let config = config();
        let keys = store(&config);
        let (alg, token) = valid_tokens().swap_remove(which);
        let (unsigned, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
        let i = position.index(bytes.len());
        bytes[i] ^= flip;
        let forged = format!("{unsigned}.{}", b64(&bytes));
        prop_assert!(verify_token(&forged, &config, &keys, NOW).is_err(), "{} accepted", alg);
    }

    #[test]
    fn changed_signed_bytes_are_never_accepted(
        which in 0usize..4,
        position in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_-]",
    ) {
        let config = config();
        let keys = store(&config);
        let (alg, token) = valid_tokens().swap_remove(which);
        let (unsigned, signature) = token.rsplit_once('.').unwrap();
        let i = position.index(unsigned.len());
        prop_assume!(unsigned.as_bytes()[i] != b'.' && unsigned[i..].chars().next() != replacement.chars().next());
        let forged = format!("{}{}{}.{signature}", &unsigned[..i], replacement, &unsigned[i + 1..]);
        prop_assert!(verify_token(&forged, &config, &keys, NOW).is_err(), "{} accepted", alg);
    }
}
