//! JWT bearer authentication (RFC 6750, RFC 7519, RFC 8725 best practices), sans-IO.
//!
//! # API
//! - [`AuthConfig::from_vars`]`(lookup)` (reads `AUTH_CONFIG` and the secret
//!   `AUTH_HS256_SECRETS`) or [`AuthConfig::from_json`]`(config_json, hs256_secrets_json)` —
//!   once per isolate; validates
//!   everything (issuer, audiences, algorithm allowlist, limits, inline JWKS, HS256 secrets,
//!   JWKS URL) and names the field at fault.
//! - [`KeyStore::new`]`(&config)` — the keys tokens are checked against. Sans-IO JWKS cache:
//!   [`KeyStore::refresh_due`]`(now)` / [`KeyStore::refresh_for_unknown_key`]`(now)` return a
//!   [`JwksFetch`] to perform (already rate-limited), [`KeyStore::apply_jwks`]`(now, body)`
//!   installs the result; on any failure the last good set stays.
//! - [`AuthPolicy`] — per-route policy (serde): `public`, `optional`, `required` with optional
//!   `scopes` (all needed) and `any_role` (one needed).
//! - [`authenticate`]`(headers, &policy, &config, &keys, now_secs)` → [`AuthOutcome`]:
//!   `Anonymous`, `Authenticated(Principal)`, `Unauthorized` (401), `Forbidden` (403) or
//!   `UnknownKey`. [`AuthOutcome::rejection`] gives the error code, message and RFC 6750
//!   `WWW-Authenticate` value for the two refusals.
//!
//! # Refreshing the keys
//! [`KeyRefresh`] (`refresh.rs`) is one request's refresh as a sans-IO machine: when the
//! fetched set's TTL ran out ([`KeyRefresh::when_due`]) or a token named an unknown key
//! ([`KeyRefresh::for_unknown_key`]), this request's own fetch — or, when another request of
//! the isolate is fetching already, a wait for that fetch — then the adapter authenticates once
//! more and [`AuthOutcome::settle_unknown_key`] makes a still-unknown key a 401. The API's
//! requests run it inside `crate::core::deciding::Deciding`. A `Some(JwksFetch)` is handed out
//! at most once per `min_refresh_interval_secs`; a request that was not handed one waits for
//! the running fetch rather than settle its token as unknown (notably the first requests of an
//! isolate, before any JWKS is loaded).
//!
//! # Security properties
//! - A key verifies exactly one algorithm, fixed by its key type; the token's `alg` only
//!   filters keys (no RS256→HS256 confusion, no `none`).
//! - `jku`, `x5u`, `jwk`, `x5c` are never honoured; `crit` is refused.
//! - Everything is bounded: token length, keys tried without `kid`, JWKS size and key count,
//!   fetch rate. No function here panics on any input.
//!
//! # Layout
//! - [`config`]: [`AuthConfig`] and its JSON documents.
//! - [`keys`]: [`Algorithm`], JWK parsing, [`KeyStore`].
//! - [`jwt`]: token parsing and validation ([`verify_token`], [`Principal`], [`TokenError`]).
//! - [`policy`]: the per-route [`AuthPolicy`].

pub mod config;
pub mod jwt;
pub mod keys;
pub mod policy;
pub mod refresh;

#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use shared_types::error::ErrorCode;

pub use config::{AuthConfig, AuthConfigError, AuthConfigFile, Hs256Secret, JwksUrlConfig};
pub use jwt::{Principal, Segment, TokenError, verify_token};
pub use keys::{Algorithm, JwksApplied, JwksError, JwksFetch, KeyError, KeyStore};
pub use policy::{AuthPolicy, Missing};
pub use refresh::{KeyRefresh, RefreshAction};

/// The verdict on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// No credentials, and the route does not require any (or the route is public).
    Anonymous,
    Authenticated(Principal),
    /// 401: credentials missing (on a `required` route) or invalid.
    Unauthorized(AuthFailure),
    /// 403: a valid token lacking required scopes or roles.
    Forbidden(Missing),
    /// The token names a key the store does not have: refresh the JWKS
    /// ([`KeyRefresh::for_unknown_key`]) and authenticate once more, then call
    /// [`AuthOutcome::settle_unknown_key`] so a still-unknown key becomes a 401.
    UnknownKey,
}

/// Why a request is unauthenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header on a route that requires one.
    MissingCredentials,
    /// `Authorization` is present but not a single well-formed `Bearer <token>`.
    MalformedCredentials,
    InvalidToken(TokenError),
}

/// How to answer a refused request: the error shape's code (status fixed by it), a message,
/// and the `WWW-Authenticate` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: &'static str,
    pub www_authenticate: String,
}

impl AuthOutcome {
    /// Turns a still-unknown key into a 401 (after the refresh, or when none is allowed).
    pub fn settle_unknown_key(self) -> AuthOutcome {
        match self {
            AuthOutcome::UnknownKey => {
                AuthOutcome::Unauthorized(AuthFailure::InvalidToken(TokenError::UnknownKey))
            }
            other => other,
        }
    }

    /// The answer for a refused request; `None` for `Anonymous` and `Authenticated`.
    /// `UnknownKey` is answered as an invalid token.
    pub fn rejection(&self, config: &AuthConfig) -> Option<Rejection> {
        let realm = &config.realm;
        match self {
            AuthOutcome::Anonymous | AuthOutcome::Authenticated(_) => None,
            // RFC 6750 §3.1: no error code when the request carried no credentials at all.
            AuthOutcome::Unauthorized(AuthFailure::MissingCredentials) => Some(Rejection {
                code: ErrorCode::Unauthorized,
                message: "a bearer token is required",
                www_authenticate: format!("Bearer realm=\"{realm}\""),
            }),
            // RFC 6750 §3.1 suggests 400 for invalid_request; 401 keeps one status for every
            // credential problem, which is what clients branch on.
            AuthOutcome::Unauthorized(AuthFailure::MalformedCredentials) => Some(Rejection {
                code: ErrorCode::Unauthorized,
                message: "the Authorization header must be a single Bearer token",
                www_authenticate: format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_request\", \
                     error_description=\"expected Authorization: Bearer <token>\""
                ),
            }),
            AuthOutcome::Unauthorized(AuthFailure::InvalidToken(error)) => {
                Some(invalid_token(realm, error))
            }
            AuthOutcome::UnknownKey => Some(invalid_token(realm, &TokenError::UnknownKey)),
            AuthOutcome::Forbidden(missing) => {
                let mut challenge = format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", \
                     error_description=\"the token lacks a required scope or role\""
                );
                if !missing.scopes.is_empty() {
                    challenge.push_str(&format!(", scope=\"{}\"", missing.scopes.join(" ")));
                }
                Some(Rejection {
                    code: ErrorCode::Forbidden,
                    message: "the token lacks a required scope or role",
                    www_authenticate: challenge,
                })
            }
        }
    }
}

fn invalid_token(realm: &str, error: &TokenError) -> Rejection {
    Rejection {
        code: ErrorCode::Unauthorized,
        message: error.description(),
        www_authenticate: format!(
            "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
            error.description()
        ),
    }
}

/// The token of a single `Authorization: Bearer <token>` header (scheme case-insensitive,
/// RFC 6750 §2.1 `b64token` syntax). `Ok(None)` when there is no `Authorization` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthFailure> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthFailure::MalformedCredentials);
    }
    let value = value
        .to_str()
        .map_err(|_| AuthFailure::MalformedCredentials)?;
    let (scheme, rest) = value
        .split_once(' ')
        .ok_or(AuthFailure::MalformedCredentials)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthFailure::MalformedCredentials);
    }
    let token = rest.trim_matches(' ');
    let body = token.trim_end_matches('=');
    let is_b64token = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if !is_b64token {
        return Err(AuthFailure::MalformedCredentials);
    }
    Ok(Some(token))
}

/// Decides whether a request may proceed under `policy`. Pure: `now_secs` is the adapter's
/// clock, in seconds since the Unix epoch.
pub fn authenticate(
    headers: &HeaderMap,
    policy: &AuthPolicy,
    config: &AuthConfig,
    keys: &KeyStore,
    now_secs: u64,
) -> AuthOutcome {
    if *policy == AuthPolicy::Public {
        return AuthOutcome::Anonymous;
    }
    let token = match bearer_token(headers) {
        Ok(Some(token)) => token,
        Ok(None) => {
            return match policy {
                AuthPolicy::Required { .. } => {
                    AuthOutcome::Unauthorized(AuthFailure::MissingCredentials)
                }
                AuthPolicy::Public | AuthPolicy::Optional => AuthOutcome::Anonymous,
            };
        }
        Err(failure) => return AuthOutcome::Unauthorized(failure),
    };
    let principal = match verify_token(token, config, keys, now_secs) {
        Ok(principal) => principal,
        Err(TokenError::UnknownKey) if keys.has_remote() => return AuthOutcome::UnknownKey,
        Err(error) => return AuthOutcome::Unauthorized(AuthFailure::InvalidToken(error)),
    };
    match policy.check(&principal) {
        Ok(()) => AuthOutcome::Authenticated(principal),
        Err(missing) => AuthOutcome::Forbidden(missing),
    }
}
