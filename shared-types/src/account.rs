//! Accounts: what becomes of a visitor's work when they sign in.
//!
//! Anonymous visitors own what they make under their edge session (threads, runs, datasets,
//! documents, escalations). On sign-in the edge asks the brain to move it to the user
//! (`POST /api/v1/session/claim`, with both the verified user and the session in the signed
//! identity headers); API clients holding a bearer token and a session may ask the same.

use serde::{Deserialize, Serialize};

/// Where a session is claimed (`POST`, no body): the edge calls it at sign-in.
pub const CLAIM_SESSION_PATH: &str = "/api/v1/session/claim";

/// `POST /api/v1/session/claim`: what moved from the caller's session to the signed-in user.
///
/// A session moves to at most one user, ever: the first claim binds it. Claiming again as the
/// same user is harmless (it moves whatever was made anonymously since, usually nothing);
/// claiming a session another user claimed is 409 `conflict` and moves nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionClaim {
    /// Whether this call bound the session to the user (`false`: an earlier claim did).
    pub first_claim: bool,
    pub threads: u64,
    pub runs: u64,
    pub datasets: u64,
    pub documents: u64,
    pub escalations: u64,
    /// Datasets whose name the user already used: they moved under a new name.
    #[serde(default)]
    pub renamed_datasets: Vec<RenamedDataset>,
}

/// A dataset that moved to the user under a new name (its SQL table name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenamedDataset {
    pub id: String,
    pub from: String,
    pub to: String,
}

// ---- refresh tokens (edge ↔ brain, internal) ----------------------------------------------
//
// After an OpenID Connect sign-in the edge hands the browser a short-lived access credential
// and an opaque refresh token. The refresh state lives in the brain's database, reached through
// the edge-signed endpoints under [`INTERNAL_AUTH_PREFIX`], which the edge calls itself and
// never proxies. The brain stores only SHA-256 hashes of refresh tokens (lower-case hex), so
// its database cannot be replayed as tokens. Every refresh rotates the token; presenting one
// that was already used revokes its whole family (OAuth 2.0 Security BCP, §4.14.2) — except
// within a short leeway, for the concurrent requests of one browser that raced to refresh.

/// The edge-only endpoints of refresh-token state.
pub const INTERNAL_AUTH_PREFIX: &str = "/internal/v1/auth";
/// `POST`: [`StartRefreshFamily`] → 201 [`RefreshGrant`].
pub const START_REFRESH_FAMILY_PATH: &str = "/internal/v1/auth/refresh-families";
/// `POST`: [`RotateRefreshToken`] → 200 [`RefreshGrant`], or 401 in the error shape.
pub const ROTATE_REFRESH_TOKEN_PATH: &str = "/internal/v1/auth/refresh";
/// `POST`: [`RevokeRefreshToken`] → 204 (also for an unknown token: logout is idempotent).
pub const REVOKE_REFRESH_TOKEN_PATH: &str = "/internal/v1/auth/revoke";

/// Length of a refresh token hash: SHA-256 in lower-case hex.
pub const TOKEN_HASH_HEX_LEN: usize = 64;
/// Longest user id, display name or scope the brain stores for a sign-in.
pub const MAX_USER_FIELD_BYTES: usize = 1024;
/// Most scopes a sign-in carries.
pub const MAX_USER_SCOPES: usize = 64;

/// What the edge learned about the user at sign-in and re-issues with every access credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SignedInUser {
    /// The identity provider's `sub`.
    pub user_id: String,
    /// Scopes and roles granted (from the ID token's claims, through the edge's policy).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A display name (`name`, else `preferred_username`, else `email`), if the IdP gave one.
    #[serde(default)]
    pub name: Option<String>,
}

/// Starts a family: the first refresh token of a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRefreshFamily {
    pub user: SignedInUser,
    /// SHA-256 (hex) of the new refresh token.
    pub token_hash: String,
    /// When this token stops being accepted.
    pub token_expires_at_ms: i64,
    /// When the whole sign-in ends, however often it is refreshed.
    pub family_expires_at_ms: i64,
}

/// Exchanges a refresh token for its successor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateRefreshToken {
    /// SHA-256 (hex) of the presented token.
    pub token_hash: String,
    /// SHA-256 (hex) of the successor the edge minted.
    pub new_token_hash: String,
    pub new_token_expires_at_ms: i64,
}

/// The user a refresh token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub user: SignedInUser,
    pub family_id: String,
    /// `true`: the successor was stored, set it as the new refresh token. `false`: the
    /// presented token had been rotated moments ago by a concurrent request of the same
    /// browser (within the reuse leeway); issue an access credential but keep the refresh
    /// token that request set.
    pub rotated: bool,
    /// When the sign-in ends (the access credential never outlives it).
    pub family_expires_at_ms: i64,
}

/// Revokes the family of a refresh token (sign-out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeRefreshToken {
    pub token_hash: String,
}

/// `GET /auth/me` (answered by the edge): whether this deployment offers sign-in, and who is
/// signed in with the edge's cookies (`None`: nobody; bearer-token clients are not described).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuthMe {
    pub signin_available: bool,
    pub user: Option<SignedInUser>,
}

/// Whether `text` has the shape of a token hash (64 lower-case hex digits).
pub fn is_token_hash(text: &str) -> bool {
    text.len() == TOKEN_HASH_HEX_LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
