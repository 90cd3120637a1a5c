//! Compact JWS parsing and JWT validation (RFC 7515, RFC 7519, RFC 8725).
//!
//! Order of checks, cheapest and least trusting first: length; three segments; strict unpadded
//! base64url; header JSON (`alg` in the allowlist, no `crit`, `typ` if configured); key
//! selection by `kid` and algorithm; signature; only then the claims (`exp`, `nbf`, `iss`,
//! `aud`, `sub`, scopes and roles). Header members that point at keys (`jku`, `x5u`, `jwk`,
//! `x5c`) are never read.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use shared_types::headers::{MAX_SCOPES_BYTES, MAX_USER_ID_BYTES};

use super::config::AuthConfig;
use super::keys::{Algorithm, KeyStore};

/// The caller a valid token identifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub` exactly as issued: non-empty, at most [`MAX_USER_ID_BYTES`] bytes, free of control
    /// characters; spaces, `:` and non-ASCII are kept (the edge encodes it for the header).
    pub subject: String,
    /// From the configured scope claims; each visible ASCII (no `"` or `\\`), none starting
    /// with [`ROLE_PREFIX`].
    pub scopes: BTreeSet<String>,
    /// From the configured role claims; same rules.
    pub roles: BTreeSet<String>,
    /// `exp`, seconds since the epoch.
    pub expires_at: i64,
}

/// Why a token was refused. [`TokenError::description`] is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    TooLong {
        max_bytes: usize,
    },
    /// Not three `.`-separated segments.
    MalformedStructure,
    /// A segment is not strict unpadded base64url.
    MalformedBase64(Segment),
    /// The header is not a JSON object with a string `alg`.
    MalformedHeader,
    /// The claims are not a JSON object.
    MalformedClaims,
    /// `alg` is `none`, unknown, or not in the configured allowlist.
    AlgorithmNotAllowed,
    /// The header has `crit`: no extension is understood, so none may be required (RFC 7515 §4.1.11).
    CriticalHeader,
    WrongType,
    MissingSignature,
    /// No key with the token's `kid` (or, without `kid`, no key of its algorithm): refreshing
    /// the JWKS may help.
    UnknownKey,
    /// The key named by `kid` verifies another algorithm.
    KeyAlgorithmMismatch,
    InvalidSignature,
    MissingExpiry,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    MissingSubject,
    /// A registered or configured claim has the wrong type or forbidden characters.
    InvalidClaim(&'static str),
}

/// Which part of the compact serialization was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Header,
    Payload,
    Signature,
}

impl TokenError {
    /// Fixed ASCII text without quotes or backslashes (it goes into `error_description`); never
    /// echoes token contents.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::TooLong { .. } => "the token is too long",
            TokenError::MalformedStructure => "the token is not a compact JWS",
            TokenError::MalformedBase64(Segment::Header) => "the token header is not base64url",
            TokenError::MalformedBase64(Segment::Payload) => "the token payload is not base64url",
            TokenError::MalformedBase64(Segment::Signature) => {
                "the token signature is not base64url"
            }
            TokenError::MalformedHeader => "the token header is malformed",
            TokenError::MalformedClaims => "the token claims are malformed",
            TokenError::AlgorithmNotAllowed => "the token algorithm is not allowed",
            TokenError::CriticalHeader => "the token requires unsupported extensions",
            TokenError::WrongType => "the token type is not accepted",
            TokenError::MissingSignature => "the token is not signed",
            TokenError::UnknownKey => "the token signing key is unknown",
            TokenError::KeyAlgorithmMismatch => "the token algorithm does not match its key",
            TokenError::InvalidSignature => "the token signature is invalid",
            TokenError::MissingExpiry => "the token has no expiry",
            TokenError::Expired => "the token has expired",
            TokenError::NotYetValid => "the token is not valid yet",
            TokenError::WrongIssuer => "the token issuer is not accepted",
            TokenError::WrongAudience => "the token audience is not accepted",
            TokenError::MissingSubject => "the token has no subject",
            TokenError::InvalidClaim("sub") => {
                "the token's subject is longer than 1024 bytes or contains control characters"
            }
            TokenError::InvalidClaim("scope") => {
                "the token's scopes or roles are malformed or longer than 8192 bytes in all"
            }
            TokenError::InvalidClaim(_) => "the token has an invalid claim",
        }
    }
}

fn decode(segment: &str, which: Segment) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::MalformedBase64(which))
}

/// Verifies `token` (the part after `Bearer `) and returns who it identifies.
pub fn verify_token(
    token: &str,
    config: &AuthConfig,
    keys: &KeyStore,
    now_secs: u64,
) -> Result<Principal, TokenError> {
    if token.len() > config.max_token_bytes {
        return Err(TokenError::TooLong {
            max_bytes: config.max_token_bytes,
        });
    }
    let mut segments = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(TokenError::MalformedStructure);
    };
    if header_b64.is_empty() || payload_b64.is_empty() {
        return Err(TokenError::MalformedStructure);
    }

    let header: Map<String, Value> = serde_json::from_slice(&decode(header_b64, Segment::Header)?)
        .map_err(|_| TokenError::MalformedHeader)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::MalformedHeader)?;
    // `none`, `None`, `NONE`, `HS512`…: anything but an allowlisted exact name is refused.
    let alg = Algorithm::from_jws_name(alg)
        .filter(|alg| config.algorithms.contains(alg))
        .ok_or(TokenError::AlgorithmNotAllowed)?;
    if header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    if let Some(expected) = &config.typ {
        let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
        if !type_matches(typ, expected) {
            return Err(TokenError::WrongType);
        }
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(TokenError::MalformedHeader),
    };

    // Decoded (not parsed) before the signature check, so malformed base64 is reported as such.
    let payload = decode(payload_b64, Segment::Payload)?;
    if signature_b64.is_empty() {
        return Err(TokenError::MissingSignature);
    }
    let signature = decode(signature_b64, Segment::Signature)?;
    // The signing input is the first two segments as sent, with the dot between them.
    let signing_input = token
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or(TokenError::MalformedStructure)?
        .as_bytes();

    let verified = match kid {
        Some(kid) => {
            let mut named = keys.keys().filter(|key| key.kid() == Some(kid)).peekable();
            if named.peek().is_none() {
                return Err(TokenError::UnknownKey);
            }
            let mut matching = named.filter(|key| key.algorithm() == alg).peekable();
            if matching.peek().is_none() {
                return Err(TokenError::KeyAlgorithmMismatch);
            }
            matching.any(|key| key.verifies(signing_input, &signature))
        }
        None => {
            let mut candidates = keys
                .keys()
                .filter(|key| key.algorithm() == alg)
                .take(config.max_keys_without_kid)
                .peekable();
            if candidates.peek().is_none() {
                return Err(TokenError::UnknownKey);
            }
            candidates.any(|key| key.verifies(signing_input, &signature))
        }
    };
    if !verified {
        return Err(TokenError::InvalidSignature);
    }

    let claims: Map<String, Value> =
        serde_json::from_slice(&payload).map_err(|_| TokenError::MalformedClaims)?;
    validate_claims(&claims, config, now_secs)
}

/// The claims of a token [`verify_token`] accepted, for the claims it does not check itself
/// (an ID token's `nonce`, `azp`, `name`). Never call it on a token that was not verified.
pub fn verified_claims(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// `typ` comparison per RFC 7515 §4.1.9: case-insensitive, `application/` prefix optional.
fn type_matches(typ: &str, expected: &str) -> bool {
    let strip = |s: &str| -> String {
        let lower = s.to_ascii_lowercase();
        match lower.strip_prefix("application/") {
            Some(rest) => rest.to_owned(),
            None => lower,
        }
    };
    !typ.is_empty() && strip(typ) == strip(expected)
}

/// A NumericDate (RFC 7519 §2): any JSON number; fractions are truncated towards the past,
/// huge values saturate.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else if n.as_u64().is_some() {
                Ok(Some(i64::MAX))
            } else {
                match n.as_f64() {
                    // `as` saturates for floats; finite is guaranteed by JSON.
                    Some(f) if f.is_finite() => Ok(Some(f.floor() as i64)),
                    _ => Err(TokenError::InvalidClaim(name)),
                }
            }
        }
        Some(_) => Err(TokenError::InvalidClaim(name)),
    }
}

/// Any non-empty `sub` up to [`MAX_USER_ID_BYTES`] without control characters: the edge
/// passes it on losslessly (`shared_types::headers::encode_user_id`), spaces, `:` and non-ASCII
/// included. Control characters (NUL among them) and longer ones are refused, never trimmed.
fn is_valid_subject(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_USER_ID_BYTES && !s.chars().any(char::is_control)
}

// The refusal messages above name these limits.
const _: () = assert!(MAX_USER_ID_BYTES == 1024 && MAX_SCOPES_BYTES == 8192);

/// How roles are told apart from scopes in `x-edgebrain-scopes`.
pub const ROLE_PREFIX: &str = "role:";

fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

/// Collects scope-like values from `names`: each claim a space-separated string or an array of
/// strings. Absent claims contribute nothing.
fn collect_tokens(
    claims: &Map<String, Value>,
    names: &[String],
) -> Result<BTreeSet<String>, TokenError> {
    let mut out = BTreeSet::new();
    for name in names {
        match claims.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(list)) => {
                for token in list.split(' ').filter(|t| !t.is_empty()) {
                    if !is_scope_token(token) {
                        return Err(TokenError::InvalidClaim("scope"));
                    }
                    out.insert(token.to_owned());
                }
            }
            Some(Value::Array(items)) => {
                for item in items {
                    match item.as_str() {
                        Some(token) if is_scope_token(token) => {
                            out.insert(token.to_owned());
                        }
                        _ => return Err(TokenError::InvalidClaim("scope")),
                    }
                }
            }
            Some(_) => return Err(TokenError::InvalidClaim("scope")),
        }
    }
    Ok(out)
}

fn validate_claims(
    claims: &Map<String, Value>,
    config: &AuthConfig,
    now_secs: u64,
) -> Result<Principal, TokenError> {
    // i128 cannot overflow on any i64 claim plus a u64 clock and leeway.
    let now = i128::from(now_secs);
    let leeway = i128::from(config.leeway_secs);
    let expires_at = numeric_date(claims, "exp")?.ok_or(TokenError::MissingExpiry)?;
    if now >= i128::from(expires_at) + leeway {
        return Err(TokenError::Expired);
    }
    if let Some(not_before) = numeric_date(claims, "nbf")?
        && now + leeway < i128::from(not_before)
    {
        return Err(TokenError::NotYetValid);
    }
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == config.issuer => {}
        _ => return Err(TokenError::WrongIssuer),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => config.audiences.contains(aud),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| config.audiences.iter().any(|a| a == aud)),
        _ => false,
    };
    if !audience_ok {
        return Err(TokenError::WrongAudience);
    }
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if is_valid_subject(sub) => sub.clone(),
        Some(Value::String(sub)) if !sub.is_empty() => {
            return Err(TokenError::InvalidClaim("sub"));
        }
        _ => return Err(TokenError::MissingSubject),
    };
    let scopes = collect_tokens(claims, &config.scope_claims)?;
    // Roles reach the brain as `role:<name>` among the scopes: a scope spelled like that would
    // pass for a role.
    if scopes.iter().any(|scope| scope.starts_with(ROLE_PREFIX)) {
        return Err(TokenError::InvalidClaim("scope"));
    }
    let roles = collect_tokens(claims, &config.role_claims)?;
    let asserted_bytes: usize = scopes.iter().map(|s| s.len() + 1).sum::<usize>()
        + roles
            .iter()
            .map(|r| ROLE_PREFIX.len() + r.len() + 1)
            .sum::<usize>();
    if asserted_bytes > MAX_SCOPES_BYTES + 1 {
        return Err(TokenError::InvalidClaim("scope"));
    }
    Ok(Principal {
        subject,
        scopes,
        roles,
        expires_at,
    })
}
