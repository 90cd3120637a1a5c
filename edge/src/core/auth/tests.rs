//! Unit tests of token verification and [`authenticate`]: every refused-token case of RFC 8725
//! has its own test, next to the positive cases that prove the checks are not vacuous.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use shared_types::error::ErrorCode;

use super::test_support::*;
use super::*;

fn verify(token: &str) -> Result<Principal, TokenError> {
    let config = config();
    verify_token(token, &config, &store(&config), NOW)
}

fn verify_with(config_value: &Value, token: &str) -> Result<Principal, TokenError> {
    let config = config_from(config_value);
    verify_token(token, &config, &store(&config), NOW)
}

fn hs() -> Signer<'static> {
    Signer::Hs(HS_SECRET.as_bytes())
}

fn claims_with(key: &str, value: Value) -> Value {
    let mut claims = good_claims();
    claims[key] = value;
    claims
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().unwrap().remove(key);
    value
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    headers
}

fn required() -> AuthPolicy {
    AuthPolicy::Required {
        scopes: vec![],
        any_role: vec![],
    }
}

// ---- accepted tokens -------------------------------------------------------------------------

#[test]
fn every_algorithm_verifies_a_good_token() {
    for (alg, token) in valid_tokens() {
        let principal = verify(&token).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
        assert_eq!(principal.subject, "user-42", "{alg}");
        assert_eq!(principal.expires_at, (NOW + 600) as i64);
        assert!(principal.scopes.contains("reports:read"), "{alg}");
        assert!(principal.scopes.contains("profile"), "{alg}");
        assert!(principal.roles.contains("analyst"), "{alg}");
    }
}

#[test]
fn tokens_without_kid_are_tried_against_keys_of_their_algorithm() {
    let token = mint(&json!({"alg": "ES256"}), &good_claims(), Signer::Es);
    assert_eq!(verify(&token).unwrap().subject, "user-42");
    let token = mint(&json!({"alg": "HS256"}), &good_claims(), hs());
    assert_eq!(verify(&token).unwrap().subject, "user-42");
}

#[test]
fn audience_may_be_an_array_containing_ours() {
    let claims = claims_with("aud", json!(["other", AUDIENCE]));
    let token = mint(&header("EdDSA", ED_KID), &claims, Signer::Ed);
    assert!(verify(&token).is_ok());
}

#[test]
fn scopes_come_from_scp_arrays_too() {
    let claims = claims_with("scp", json!(["files:write"]));
    let token = mint(&header("HS256", HS_KID), &claims, hs());
    let principal = verify(&token).unwrap();
    assert!(principal.scopes.contains("files:write"));
    assert!(principal.scopes.contains("reports:read"));
}

#[test]
fn scope_and_role_claim_names_are_configurable() {
    let mut config = config_json();
    config["scope_claims"] = json!(["permissions"]);
    config["role_claims"] = json!(["groups"]);
    let claims = claims_with("permissions", json!(["a:b"]));
    let claims = claims_with_value(claims, "groups", json!("ops"));
    let token = mint(&header("HS256", HS_KID), &claims, hs());
    let principal = verify_with(&config, &token).unwrap();
    assert_eq!(principal.scopes.iter().collect::<Vec<_>>(), ["a:b"]);
    assert_eq!(principal.roles.iter().collect::<Vec<_>>(), ["ops"]);
}

fn claims_with_value(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

#[test]
fn high_s_ecdsa_signatures_from_other_signers_are_accepted() {
    // Node's crypto and WebCrypto do not normalise s; JWS does not require low-s.
    let input = format!(
        "{}.{}",
        b64(header("ES256", ES_KID).to_string().as_bytes()),
        b64(good_claims().to_string().as_bytes())
    );
    let sig = p256::ecdsa::Signature::from_slice(&sign(Signer::Es, input.as_bytes())).unwrap();
    let flipped = p256::ecdsa::Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
    for candidate in [sig, flipped] {
        let token = format!("{input}.{}", b64(&candidate.to_bytes()));
        assert!(verify(&token).is_ok());
    }
}

// ---- alg: none and algorithm confusion --------------------------------------------------------

#[test]
fn alg_none_is_rejected_in_any_case() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(json!({"alg": alg}).to_string().as_bytes()),
            b64(good_claims().to_string().as_bytes())
        );
        assert_eq!(
            verify(&unsigned),
            Err(TokenError::AlgorithmNotAllowed),
            "{alg}"
        );
        // Even carrying a valid-looking HMAC under a `none` header.
        let signed = mint(&json!({"alg": alg, "kid": HS_KID}), &good_claims(), hs());
        assert_eq!(
            verify(&signed),
            Err(TokenError::AlgorithmNotAllowed),
            "{alg}"
        );
    }
}

#[test]
fn algorithms_outside_the_allowlist_are_rejected() {
    for alg in ["HS512", "RS512", "PS256", "ES384", "hs256", "Ed25519"] {
        let token = mint(&json!({"alg": alg}), &good_claims(), hs());
        assert_eq!(
            verify(&token),
            Err(TokenError::AlgorithmNotAllowed),
            "{alg}"
        );
    }
    // Allowed by name, but not by this configuration.
    let mut config = config_json();
    config["algorithms"] = json!(["RS256", "ES256", "EdDSA"]);
    let config = AuthConfig::from_json(&config.to_string(), None).unwrap();
    let token = mint(&header("HS256", HS_KID), &good_claims(), hs());
    assert_eq!(
        verify_token(&token, &config, &KeyStore::new(&config), NOW),
        Err(TokenError::AlgorithmNotAllowed)
    );
}

#[test]
fn rs256_to_hs256_key_confusion_is_rejected() {
    // The attacker signs with HMAC, using the RSA *public* key in every encoding they might
    // guess the verifier would use as a secret.
    let public = rsa::PublicKey::from(&rsa_private());
    let candidates: Vec<Vec<u8>> = vec![
        rsa::traits::PublicKeyParts::n_bytes(&public).to_vec(),
        rsa_jwk().to_string().into_bytes(),
        rsa_jwk()["n"].as_str().unwrap().as_bytes().to_vec(),
    ];
    for secret in &candidates {
        // Pointing at the RSA key by kid: the key verifies RS256 only.
        let token = mint(&header("HS256", RS_KID), &good_claims(), Signer::Hs(secret));
        assert_eq!(verify(&token), Err(TokenError::KeyAlgorithmMismatch));
        // Without kid: only HS256 keys are tried, and the RSA key is not one of them.
        let token = mint(&json!({"alg": "HS256"}), &good_claims(), Signer::Hs(secret));
        assert_eq!(verify(&token), Err(TokenError::InvalidSignature));
    }
    // With no HS256 secret configured at all, there is no key to try.
    let config = AuthConfig::from_json(&config_json().to_string(), None).unwrap();
    let token = mint(
        &json!({"alg": "HS256"}),
        &good_claims(),
        Signer::Hs(&candidates[0]),
    );
    assert_eq!(
        verify_token(&token, &config, &KeyStore::new(&config), NOW),
        Err(TokenError::UnknownKey)
    );
}

#[test]
fn a_token_signed_by_another_key_of_the_same_algorithm_is_rejected() {
    let other = p256::ecdsa::SigningKey::from_slice(&[8u8; 32]).unwrap();
    let input = format!(
        "{}.{}",
        b64(header("ES256", ES_KID).to_string().as_bytes()),
        b64(good_claims().to_string().as_bytes())
    );
    let sig: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&other, input.as_bytes());
    let token = format!("{input}.{}", b64(&sig.to_bytes()));
    assert_eq!(verify(&token), Err(TokenError::InvalidSignature));
}

#[test]
fn embedded_jwk_jku_x5u_and_x5c_headers_are_not_honoured() {
    // The attacker embeds their own key and signs with it.
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[1u8; 32]);
    let attacker_jwk = json!({"kty": "OKP", "crv": "Ed25519",
                              "x": b64(&attacker.verifying_key().to_bytes())});
    let header = json!({"alg": "EdDSA", "jwk": attacker_jwk,
                        "jku": "https://evil.example/jwks", "x5u": "https://evil.example/c",
                        "x5c": ["MIIB"]});
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(good_claims().to_string().as_bytes())
    );
    let signature = ed25519_dalek::Signer::sign(&attacker, input.as_bytes());
    let token = format!("{input}.{}", b64(&signature.to_bytes()));
    assert_eq!(verify(&token), Err(TokenError::InvalidSignature));
}

#[test]
fn crit_headers_are_rejected() {
    let token = mint(
        &json!({"alg": "HS256", "kid": HS_KID, "crit": ["exp"], "exp": 1}),
        &good_claims(),
        hs(),
    );
    assert_eq!(verify(&token), Err(TokenError::CriticalHeader));
    let token = mint(&json!({"alg": "HS256", "crit": null}), &good_claims(), hs());
    assert_eq!(verify(&token), Err(TokenError::CriticalHeader));
}

// ---- signatures ------------------------------------------------------------------------------

#[test]
fn empty_signatures_are_rejected() {
    for (alg, token) in valid_tokens() {
        let (unsigned, _) = token.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&format!("{unsigned}.")),
            Err(TokenError::MissingSignature),
            "{alg}"
        );
    }
}

#[test]
fn null_signatures_are_rejected() {
    for (alg, token) in valid_tokens() {
        let (unsigned, signature) = token.rsplit_once('.').unwrap();
        let length = decode_b64(signature).len();
        let zeros = format!("{unsigned}.{}", b64(&vec![0u8; length]));
        assert_eq!(verify(&zeros), Err(TokenError::InvalidSignature), "{alg}");
        let one_zero = format!("{unsigned}.{}", b64(&[0u8]));
        assert_eq!(
            verify(&one_zero),
            Err(TokenError::InvalidSignature),
            "{alg}"
        );
    }
}

fn decode_b64(encoded: &str) -> Vec<u8> {
    base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, encoded).unwrap()
}

#[test]
fn truncated_signatures_are_rejected() {
    for (alg, token) in valid_tokens() {
        let (unsigned, signature) = token.rsplit_once('.').unwrap();
        let bytes = decode_b64(signature);
        for keep in [bytes.len() - 1, bytes.len() / 2, 1] {
            let truncated = format!("{unsigned}.{}", b64(&bytes[..keep]));
            assert_eq!(
                verify(&truncated),
                Err(TokenError::InvalidSignature),
                "{alg}"
            );
        }
        // A signature with a byte too many is no better.
        let mut longer = bytes.clone();
        longer.push(0);
        let extended = format!("{unsigned}.{}", b64(&longer));
        assert_eq!(
            verify(&extended),
            Err(TokenError::InvalidSignature),
            "{alg}"
        );
    }
}

#[test]
fn changed_payloads_fail_the_signature() {
    for (alg, token) in valid_tokens() {
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(claims_with("sub", json!("admin")).to_string().as_bytes());
        parts[1] = &forged;
        assert_eq!(
            verify(&parts.join(".")),
            Err(TokenError::InvalidSignature),
            "{alg}"
        );
    }
}

// ---- time ------------------------------------------------------------------------------------

#[test]
fn expired_tokens_are_rejected_after_the_leeway() {
    let token = mint(
        &header("HS256", HS_KID),
        &claims_with("exp", json!(NOW - 31)),
        hs(),
    );
    assert_eq!(verify(&token), Err(TokenError::Expired));
    // Within the 30 s leeway it is still accepted: the check is a boundary, not a blanket refusal.
    let token = mint(
        &header("HS256", HS_KID),
        &claims_with("exp", json!(NOW - 29)),
        hs(),
    );
    assert!(verify(&token).is_ok());
}

#[test]
fn tokens_without_exp_are_rejected() {
    let token = mint(
        &header("HS256", HS_KID),
        &without(good_claims(), "exp"),
        hs(),
    );
    assert_eq!(verify(&token), Err(TokenError::MissingExpiry));
}

#[test]
fn not_yet_valid_tokens_are_rejected() {
    let token = mint(
        &header("HS256", HS_KID),
        &claims_with("nbf", json!(NOW + 31)),
        hs(),
    );
    assert_eq!(verify(&token), Err(TokenError::NotYetValid));
    let token = mint(
        &header("HS256", HS_KID),
        &claims_with("nbf", json!(NOW + 29)),
        hs(),
    );
    assert!(verify(&token).is_ok());
}

#[test]
fn time_claims_of_the_wrong_type_or_extreme_values_never_overflow() {
    for exp in [json!("tomorrow"), json!(null), json!([1])] {
        let token = mint(&header("HS256", HS_KID), &claims_with("exp", exp), hs());
        assert_eq!(verify(&token), Err(TokenError::InvalidClaim("exp")));
    }
    for exp in [json!(i64::MIN), json!(-1.5), json!(0)] {
        let token = mint(&header("HS256", HS_KID), &claims_with("exp", exp), hs());
        assert_eq!(verify(&token), Err(TokenError::Expired));
    }
    for exp in [
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1e300),
        json!(NOW as f64 + 60.5),
    ] {
        let token = mint(&header("HS256", HS_KID), &claims_with("exp", exp), hs());
        assert!(verify(&token).is_ok());
    }
    let token = mint(
        &header("HS256", HS_KID),
        &claims_with("nbf", json!(u64::MAX)),
        hs(),
    );
    assert_eq!(verify(&token), Err(TokenError::NotYetValid));
    let config = config();
    let token = valid_tokens().remove(0).1;
    assert_eq!(
        verify_token(&token, &config, &store(&config), u64::MAX),
        Err(TokenError::Expired)
    );
}

// ---- issuer, audience, type, subject ---------------------------------------------------------

#[test]
fn wrong_issuer_is_rejected() {
    for iss in [
        json!("https://evil.example/"),
        json!("https://idp.example"),
        json!(null),
    ] {
        let token = mint(
            &header("ES256", ES_KID),
            &claims_with("iss", iss),
            Signer::Es,
        );
        assert_eq!(verify(&token), Err(TokenError::WrongIssuer));
    }
    let token = mint(
        &header("ES256", ES_KID),
        &without(good_claims(), "iss"),
        Signer::Es,
    );
    assert_eq!(verify(&token), Err(TokenError::WrongIssuer));
}

#[test]
fn wrong_audience_is_rejected() {
    for aud in [
        json!("other"),
        json!(["other", "another"]),
        json!([]),
        json!(7),
    ] {
        let token = mint(&header("HS256", HS_KID), &claims_with("aud", aud), hs());
        assert_eq!(verify(&token), Err(TokenError::WrongAudience));
    }
    let token = mint(
        &header("HS256", HS_KID),
        &without(good_claims(), "aud"),
        hs(),
    );
    assert_eq!(verify(&token), Err(TokenError::WrongAudience));
}

#[test]
fn wrong_typ_is_rejected_where_configured() {
    let mut config = config_json();
    config["typ"] = json!("at+jwt");
    for (typ, accepted) in [
        (Some("at+jwt"), true),
        (Some("AT+JWT"), true),
        (Some("application/at+jwt"), true),
        (Some("JWT"), false),
        (Some("id+jwt"), false),
        (None, false),
    ] {
        let mut header = json!({"alg": "HS256", "kid": HS_KID});
        if let Some(typ) = typ {
            header["typ"] = json!(typ);
        }
        let token = mint(&header, &good_claims(), hs());
        let result = verify_with(&config, &token);
        if accepted {
            assert!(result.is_ok(), "{typ:?}");
        } else {
            assert_eq!(result, Err(TokenError::WrongType), "{typ:?}");
        }
    }
    // Not configured: typ is not checked.
    let token = mint(
        &json!({"alg": "HS256", "typ": "whatever"}),
        &good_claims(),
        hs(),
    );
    assert!(verify(&token).is_ok());
}

#[test]
fn missing_or_unsafe_subjects_are_rejected() {
    let token = mint(
        &header("HS256", HS_KID),
        &without(good_claims(), "sub"),
        hs(),
    );
    assert_eq!(verify(&token), Err(TokenError::MissingSubject));
    let token = mint(
        &header("HS256", HS_KID),
        &claims_with("sub", json!("")),
        hs(),
    );
    assert_eq!(verify(&token), Err(TokenError::MissingSubject));
    let token = mint(
        &header("HS256", HS_KID),
        &claims_with("sub", json!("a\r\nb")),
        hs(),
    );
    assert_eq!(verify(&token), Err(TokenError::InvalidClaim("sub")));
}

#[test]
fn subjects_are_kept_exactly_spaces_unicode_colons_and_length_included() {
    let longest = "é".repeat(512);
    for sub in [
        "a b",
        " padded ",
        "José",
        "東京",
        "a:b",
        "user:x",
        "50%",
        "x".repeat(300).as_str(),
        longest.as_str(),
    ] {
        let token = mint(
            &header("HS256", HS_KID),
            &claims_with("sub", json!(sub)),
            hs(),
        );
        assert_eq!(verify(&token).map(|p| p.subject), Ok(sub.to_owned()));
    }
}

#[test]
fn subjects_with_control_characters_or_over_1024_bytes_are_refused() {
    for sub in [
        "a\0b".to_owned(),
        "\u{1}".to_owned(),
        "tab\there".to_owned(),
        "del\u{7f}".to_owned(),
        "c1\u{85}".to_owned(),
        "x".repeat(1025),
        "é".repeat(513),
    ] {
        let token = mint(
            &header("HS256", HS_KID),
            &claims_with("sub", json!(sub)),
            hs(),
        );
        assert_eq!(
            verify(&token),
            Err(TokenError::InvalidClaim("sub")),
            "{sub:?}"
        );
    }
}

#[test]
fn scopes_of_the_wrong_shape_are_rejected() {
    for scope in [json!(42), json!([1, 2]), json!(["a b"]), json!("a \"b\"")] {
        let token = mint(&header("HS256", HS_KID), &claims_with("scope", scope), hs());
        assert_eq!(verify(&token), Err(TokenError::InvalidClaim("scope")));
    }
}

#[test]
fn a_scope_spelled_like_a_role_is_refused() {
    // Roles reach the brain as `role:<name>` scopes: this token must not pass for an admin.
    for scope in [json!("read role:admin"), json!(["role:admin"])] {
        let token = mint(&header("HS256", HS_KID), &claims_with("scope", scope), hs());
        assert_eq!(verify(&token), Err(TokenError::InvalidClaim("scope")));
    }
}

#[test]
fn scopes_and_roles_past_the_header_budget_are_refused() {
    let mut config = config_json();
    config["max_token_bytes"] = json!(65536);
    // 11 bytes per scope with its separator; the roles add `role:analyst`.
    let scopes = |n: usize| -> Vec<String> { (0..n).map(|i| format!("scope-{i:04}")).collect() };
    let token = mint(
        &header("HS256", HS_KID),
        &claims_with("scope", json!(scopes(743))),
        hs(),
    );
    assert!(verify_with(&config, &token).is_ok());
    let token = mint(
        &header("HS256", HS_KID),
        &claims_with("scope", json!(scopes(744))),
        hs(),
    );
    assert_eq!(
        verify_with(&config, &token),
        Err(TokenError::InvalidClaim("scope"))
    );
}

// ---- malformed tokens ------------------------------------------------------------------------

#[test]
fn wrong_segment_counts_are_rejected() {
    let token = valid_tokens().remove(0).1;
    let parts: Vec<&str> = token.split('.').collect();
    for bad in [
        parts[0].to_owned(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{token}.{}", parts[2]),
        format!("{token}."),
        format!(".{}.{}", parts[1], parts[2]),
        format!("{}..{}", parts[0], parts[2]),
        String::new(),
        "..".to_owned(),
    ] {
        assert_eq!(verify(&bad), Err(TokenError::MalformedStructure), "{bad}");
    }
}

#[test]
fn malformed_base64url_is_rejected() {
    let token = valid_tokens().remove(0).1;
    let parts: Vec<&str> = token.split('.').collect();
    let standard_alphabet = |s: &str| s.replace('-', "+").replace('_', "/");
    let cases = [
        // Padding is not allowed in JWS (RFC 7515 §2).
        (
            format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
            Segment::Header,
        ),
        (
            format!("{}.{}==.{}", parts[0], parts[1], parts[2]),
            Segment::Payload,
        ),
        (
            format!("{}.{}.{}=", parts[0], parts[1], parts[2]),
            Segment::Signature,
        ),
        // Characters outside the base64url alphabet.
        (
            format!("{}!.{}.{}", parts[0], parts[1], parts[2]),
            Segment::Header,
        ),
        (
            format!("{}.{} .{}", parts[0], parts[1], parts[2]),
            Segment::Payload,
        ),
        (
            format!("{}.{}.{}*", parts[0], parts[1], parts[2]),
            Segment::Signature,
        ),
        // An impossible length (1 mod 4).
        (format!("{}.{}.A", parts[0], parts[1]), Segment::Signature),
        // Non-canonical trailing bits: "AB" decodes to one byte only if the low bits are zero.
        (format!("{}.{}.AB", parts[0], parts[1]), Segment::Signature),
    ];
    for (bad, segment) in cases {
        assert_eq!(
            verify(&bad),
            Err(TokenError::MalformedBase64(segment)),
            "{bad}"
        );
    }
    // The standard alphabet's `+`/`/` instead of `-`/`_` (only matters where they occur).
    let signature = standard_alphabet(parts[2]);
    if signature != parts[2] {
        let bad = format!("{}.{}.{signature}", parts[0], parts[1]);
        assert_eq!(
            verify(&bad),
            Err(TokenError::MalformedBase64(Segment::Signature))
        );
    }
}

#[test]
fn malformed_header_json_is_rejected() {
    for header in [
        &b"not json"[..],
        b"[\"alg\", \"HS256\"]",
        b"{\"alg\": \"HS256\"",
        b"{\"alg\": 256}",
        b"{\"typ\": \"JWT\"}",
        b"{\"alg\": \"HS256\", \"kid\": 7}",
        b"\xff\xfe",
    ] {
        let token = mint_raw(header, good_claims().to_string().as_bytes(), hs());
        assert_eq!(verify(&token), Err(TokenError::MalformedHeader));
    }
}

#[test]
fn malformed_claims_json_is_rejected_even_when_signed() {
    for payload in [
        &b"not json"[..],
        b"[1, 2]",
        b"{\"sub\": \"x\"",
        b"\"string\"",
        b"",
    ] {
        let token = mint_raw(
            header("HS256", HS_KID).to_string().as_bytes(),
            payload,
            hs(),
        );
        let expected = if payload.is_empty() {
            TokenError::MalformedStructure
        } else {
            TokenError::MalformedClaims
        };
        assert_eq!(verify(&token), Err(expected));
    }
}

#[test]
fn oversized_tokens_are_rejected_before_decoding() {
    let mut config = config_json();
    config["max_token_bytes"] = json!(256);
    let long_claims = claims_with("pad", json!("x".repeat(300)));
    let token = mint(&header("HS256", HS_KID), &long_claims, hs());
    assert_eq!(
        verify_with(&config, &token),
        Err(TokenError::TooLong { max_bytes: 256 })
    );
    // The same limit applies to garbage, which is never decoded.
    assert_eq!(
        verify_with(&config, &"A".repeat(257)),
        Err(TokenError::TooLong { max_bytes: 256 })
    );
    // And a short token passes under the same configuration.
    let token = mint(
        &json!({"alg": "HS256"}),
        &json!({"iss": ISSUER, "aud": AUDIENCE,
        "sub": "u", "exp": NOW + 60}),
        hs(),
    );
    assert!(token.len() <= 256);
    assert!(verify_with(&config, &token).is_ok());
}

// ---- keys ------------------------------------------------------------------------------------

#[test]
fn unknown_kid_is_rejected() {
    let token = mint(&header("HS256", "rotated-away"), &good_claims(), hs());
    assert_eq!(verify(&token), Err(TokenError::UnknownKey));
    // Through authenticate, without a JWKS URL to refresh from, it is a plain 401.
    let config = config();
    let outcome = authenticate(&bearer(&token), &required(), &config, &store(&config), NOW);
    assert_eq!(
        outcome,
        AuthOutcome::Unauthorized(AuthFailure::InvalidToken(TokenError::UnknownKey))
    );
}

#[test]
fn unknown_kid_with_a_jwks_url_asks_for_a_refresh_then_succeeds() {
    let mut config_value = json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256", "EdDSA"],
        "jwks_url": {"url": "https://idp.example/jwks.json", "ttl_secs": 600,
                     "min_refresh_interval_secs": 30}
    });
    let config = config_from_without_secrets(&mut config_value);
    let mut keys = KeyStore::new(&config);
    let token = mint(&header("EdDSA", ED_KID), &good_claims(), Signer::Ed);
    let headers = bearer(&token);

    assert_eq!(
        authenticate(&headers, &required(), &config, &keys, NOW),
        AuthOutcome::UnknownKey
    );
    let fetch = keys
        .refresh_for_unknown_key(NOW)
        .expect("first refresh allowed");
    assert_eq!(fetch.url, "https://idp.example/jwks.json");
    let jwks = json!({"keys": [rsa_jwk(), ed_jwk()]}).to_string();
    assert_eq!(
        keys.apply_jwks(NOW, jwks.as_bytes()),
        Ok(JwksApplied {
            usable: 2,
            skipped: 0
        })
    );
    let outcome = authenticate(&headers, &required(), &config, &keys, NOW);
    assert!(matches!(outcome, AuthOutcome::Authenticated(ref p) if p.subject == "user-42"));

    // A kid that stays unknown: the next refresh is rate-limited, and settling gives a 401.
    let unknown = mint(&header("EdDSA", "nope"), &good_claims(), Signer::Ed);
    let outcome = authenticate(&bearer(&unknown), &required(), &config, &keys, NOW + 1);
    assert_eq!(outcome, AuthOutcome::UnknownKey);
    assert_eq!(keys.refresh_for_unknown_key(NOW + 1), None);
    let settled = outcome.settle_unknown_key();
    assert_eq!(
        settled.rejection(&config).unwrap().code,
        ErrorCode::Unauthorized
    );
}

fn config_from_without_secrets(value: &mut Value) -> AuthConfig {
    AuthConfig::from_json(&value.to_string(), None).unwrap()
}

#[test]
fn kid_less_tokens_try_a_bounded_number_of_keys() {
    // Five HS256 secrets, the right one last; only the first `max_keys_without_kid` are tried.
    let secrets: Vec<Value> = (0..5)
        .map(|i| json!({"kid": format!("k{i}"), "secret": format!("{HS_SECRET}-{i}")}))
        .collect();
    let mut value = json!({"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["HS256"],
                           "max_keys_without_kid": 4});
    let secrets = Value::Array(secrets).to_string();
    let token = mint(
        &json!({"alg": "HS256"}),
        &good_claims(),
        Signer::Hs(format!("{HS_SECRET}-4").as_bytes()),
    );
    let config = AuthConfig::from_json(&value.to_string(), Some(&secrets)).unwrap();
    assert_eq!(
        verify_token(&token, &config, &KeyStore::new(&config), NOW),
        Err(TokenError::InvalidSignature)
    );
    value["max_keys_without_kid"] = json!(5);
    let config = AuthConfig::from_json(&value.to_string(), Some(&secrets)).unwrap();
    assert!(verify_token(&token, &config, &KeyStore::new(&config), NOW).is_ok());
}

// ---- authenticate and policies ---------------------------------------------------------------

#[test]
fn public_routes_ignore_credentials_entirely() {
    let config = config();
    let keys = store(&config);
    let mut headers = bearer("garbage");
    assert_eq!(
        authenticate(&headers, &AuthPolicy::Public, &config, &keys, NOW),
        AuthOutcome::Anonymous
    );
    headers.clear();
    assert_eq!(
        authenticate(&headers, &AuthPolicy::Public, &config, &keys, NOW),
        AuthOutcome::Anonymous
    );
}

#[test]
fn optional_routes_admit_anonymous_callers_but_not_invalid_tokens() {
    let config = config();
    let keys = store(&config);
    assert_eq!(
        authenticate(
            &HeaderMap::new(),
            &AuthPolicy::Optional,
            &config,
            &keys,
            NOW
        ),
        AuthOutcome::Anonymous
    );
    let expired = mint(
        &header("HS256", HS_KID),
        &claims_with("exp", json!(NOW - 100)),
        hs(),
    );
    let outcome = authenticate(
        &bearer(&expired),
        &AuthPolicy::Optional,
        &config,
        &keys,
        NOW,
    );
    assert_eq!(
        outcome,
        AuthOutcome::Unauthorized(AuthFailure::InvalidToken(TokenError::Expired))
    );
    let good = valid_tokens().remove(1).1;
    assert!(matches!(
        authenticate(&bearer(&good), &AuthPolicy::Optional, &config, &keys, NOW),
        AuthOutcome::Authenticated(_)
    ));
}

#[test]
fn required_routes_answer_401_with_rfc6750_challenges() {
    let config = config();
    let keys = store(&config);
    let missing = authenticate(&HeaderMap::new(), &required(), &config, &keys, NOW);
    assert_eq!(
        missing,
        AuthOutcome::Unauthorized(AuthFailure::MissingCredentials)
    );
    let rejection = missing.rejection(&config).unwrap();
    assert_eq!(rejection.code, ErrorCode::Unauthorized);
    assert_eq!(rejection.www_authenticate, "Bearer realm=\"edgebrain\"");

    let wrong_aud = mint(
        &header("HS256", HS_KID),
        &claims_with("aud", json!("x")),
        hs(),
    );
    let outcome = authenticate(&bearer(&wrong_aud), &required(), &config, &keys, NOW);
    let rejection = outcome.rejection(&config).unwrap();
    assert_eq!(rejection.code, ErrorCode::Unauthorized);
    assert_eq!(
        rejection.www_authenticate,
        "Bearer realm=\"edgebrain\", error=\"invalid_token\", \
         error_description=\"the token audience is not accepted\""
    );
    // Every challenge is a valid header value.
    assert!(HeaderValue::from_str(&rejection.www_authenticate).is_ok());
}

#[test]
fn malformed_authorization_headers_are_invalid_requests() {
    let config = config();
    let keys = store(&config);
    let good = valid_tokens().remove(0).1;
    for value in [
        format!("Basic {good}"),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Bearer {good} extra"),
        format!("Bearer\t{good}"),
        "Bearer a\"b".to_owned(),
    ] {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&value).unwrap());
        for policy in [AuthPolicy::Optional, required()] {
            let outcome = authenticate(&headers, &policy, &config, &keys, NOW);
            assert_eq!(
                outcome,
                AuthOutcome::Unauthorized(AuthFailure::MalformedCredentials),
                "{value}"
            );
            let challenge = outcome.rejection(&config).unwrap().www_authenticate;
            assert!(challenge.contains("error=\"invalid_request\""));
        }
    }
    // Two Authorization headers are ambiguous.
    let mut headers = bearer(&good);
    headers.append(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {good}")).unwrap(),
    );
    assert_eq!(
        authenticate(&headers, &required(), &config, &keys, NOW),
        AuthOutcome::Unauthorized(AuthFailure::MalformedCredentials)
    );
    // The scheme is case-insensitive.
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("bEaReR {good}")).unwrap(),
    );
    assert!(matches!(
        authenticate(&headers, &required(), &config, &keys, NOW),
        AuthOutcome::Authenticated(_)
    ));
}

#[test]
fn missing_scopes_or_roles_are_forbidden_with_insufficient_scope() {
    let config = config();
    let keys = store(&config);
    let token = valid_tokens().remove(2).1; // scopes: reports:read profile; roles: analyst
    let headers = bearer(&token);
    let policy = |scopes: &[&str], roles: &[&str]| AuthPolicy::Required {
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        any_role: roles.iter().map(|s| (*s).to_owned()).collect(),
    };

    let ok = [
        policy(&["reports:read"], &[]),
        policy(&["reports:read", "profile"], &["admin", "analyst"]),
        policy(&[], &["analyst"]),
    ];
    for p in &ok {
        assert!(matches!(
            authenticate(&headers, p, &config, &keys, NOW),
            AuthOutcome::Authenticated(_)
        ));
    }

    let outcome = authenticate(
        &headers,
        &policy(&["reports:write", "profile"], &[]),
        &config,
        &keys,
        NOW,
    );
    assert_eq!(
        outcome,
        AuthOutcome::Forbidden(Missing {
            scopes: vec!["reports:write".into()],
            any_role: vec![]
        })
    );
    let rejection = outcome.rejection(&config).unwrap();
    assert_eq!(rejection.code, ErrorCode::Forbidden);
    assert!(
        rejection
            .www_authenticate
            .contains("error=\"insufficient_scope\"")
    );
    assert!(
        rejection
            .www_authenticate
            .contains("scope=\"reports:write\"")
    );

    let outcome = authenticate(&headers, &policy(&[], &["admin"]), &config, &keys, NOW);
    assert_eq!(
        outcome,
        AuthOutcome::Forbidden(Missing {
            scopes: vec![],
            any_role: vec!["admin".into()]
        })
    );
}

#[test]
fn policies_parse_from_route_table_json() {
    let parse = |s: &str| serde_json::from_str::<AuthPolicy>(s);
    assert_eq!(parse(r#"{"mode":"public"}"#).unwrap(), AuthPolicy::Public);
    assert_eq!(
        parse(r#"{"mode":"optional"}"#).unwrap(),
        AuthPolicy::Optional
    );
    assert_eq!(parse(r#"{"mode":"required"}"#).unwrap(), required());
    assert_eq!(
        parse(r#"{"mode":"required","scopes":["a:b"],"any_role":["admin"]}"#).unwrap(),
        AuthPolicy::Required {
            scopes: vec!["a:b".into()],
            any_role: vec!["admin".into()]
        }
    );
    for bad in [
        r#"{"mode":"private"}"#,
        r#"{"mode":"required","scope":["a"]}"#,
        r#"{"mode":"public","scopes":["a"]}"#,
        r#"{"mode":"required","scopes":["a b"]}"#,
        r#"{"mode":"required","scopes":[""]}"#,
        r#"{"mode":"required","any_role":["a\"b"]}"#,
        r#"{}"#,
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

// ---- interoperability ------------------------------------------------------------------------

#[test]
fn tokens_signed_by_nodes_crypto_verify() {
    // Minted by testdata/node-tokens.mjs with Node's `crypto` only, as the e2e suite will.
    let fixture: Value = serde_json::from_str(include_str!("testdata/node-tokens.json")).unwrap();
    let config_value = json!({
        "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["HS256", "ES256", "EdDSA"],
        "jwks": fixture["jwks"],
    });
    let secrets = json!([{"kid": "node-hs", "secret": fixture["hs256_secret"]}]).to_string();
    let config = AuthConfig::from_json(&config_value.to_string(), Some(&secrets)).unwrap();
    let keys = KeyStore::new(&config);
    for alg in ["HS256", "ES256", "EdDSA"] {
        let token = fixture["tokens"][alg].as_str().unwrap();
        let principal =
            verify_token(token, &config, &keys, NOW).unwrap_or_else(|e| panic!("{alg}: {e:?}"));
        assert_eq!(principal.subject, "node-user", "{alg}");
        assert!(principal.scopes.contains("reports:read"), "{alg}");
        // And the same token with one signature character changed is refused.
        let (unsigned, signature) = token.rsplit_once('.').unwrap();
        let first = if signature.starts_with('A') { 'B' } else { 'A' };
        let forged = format!("{unsigned}.{first}{}", &signature[1..]);
        assert!(verify_token(&forged, &config, &keys, NOW).is_err(), "{alg}");
    }
}
