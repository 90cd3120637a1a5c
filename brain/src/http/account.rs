//! `/api/v1/session`: the caller's edge session; `/internal/v1/auth`: the edge's sign-ins.
//!
//! - `GET /api/v1/session`: the caller as the brain sees it (`WhoAmI`), for every caller — the
//!   web app's "who is signed in" (the operators' `diag/whoami` says the same).
//! - `POST /api/v1/session/claim`: moves what the session made anonymously to the signed-in
//!   caller ([`crate::account::Accounts::claim_session`]). The edge calls it at sign-in; an
//!   API client holding a bearer token and its session may too. 401 without a signed-in user,
//!   400 without a session, 409 when another user claimed the session.
//! - `POST /internal/v1/auth/refresh-families`, `/refresh`, `/revoke`: refresh-token state
//!   (see [`shared_types::account`]). Edge-signed like every request; the edge calls them
//!   itself and never proxies a client's request to `/internal/`. Not part of the public API
//!   (`api::ENDPOINTS`, OpenAPI, clients).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use shared_types::account::{
    REVOKE_REFRESH_TOKEN_PATH, ROTATE_REFRESH_TOKEN_PATH, RefreshGrant, RevokeRefreshToken,
    RotateRefreshToken, START_REFRESH_FAMILY_PATH, SessionClaim, StartRefreshFamily,
};
use shared_types::diag::WhoAmI;

use super::extract::Json;
use super::identity::Identity;
use super::{AppState, Error, Result};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(session))
        .route("/claim", post(claim))
}

/// `GET /api/v1/session`: the caller as the brain sees it (who is signed in, which session).
async fn session(identity: Identity) -> axum::Json<WhoAmI> {
    axum::Json(identity.who_am_i())
}

/// The edge-only refresh-token endpoints, at their full paths.
pub fn internal_router() -> Router<AppState> {
    Router::new()
        .route(START_REFRESH_FAMILY_PATH, post(start_family))
        .route(ROTATE_REFRESH_TOKEN_PATH, post(rotate))
        .route(REVOKE_REFRESH_TOKEN_PATH, post(revoke))
}

async fn start_family(
    State(state): State<AppState>,
    Json(request): Json<StartRefreshFamily>,
) -> Result<(StatusCode, axum::Json<RefreshGrant>)> {
    let grant = state.accounts.start_refresh_family(&request).await?;
    Ok((StatusCode::CREATED, axum::Json(grant)))
}

async fn rotate(
    State(state): State<AppState>,
    Json(request): Json<RotateRefreshToken>,
) -> Result<axum::Json<RefreshGrant>> {
    Ok(axum::Json(
        state.accounts.rotate_refresh_token(&request).await?,
    ))
}

async fn revoke(
    State(state): State<AppState>,
    Json(request): Json<RevokeRefreshToken>,
) -> Result<StatusCode> {
    state.accounts.revoke_refresh_token(&request).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn claim(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<axum::Json<SessionClaim>> {
    let Some(user_id) = identity.user_id.as_deref() else {
        return Err(Error::Unauthorized(
            "sign in first: a session's work moves to a signed-in user".to_owned(),
        ));
    };
    let Some(session_id) = identity.session_id.as_deref() else {
        return Err(Error::BadRequest(
            "no session to claim: send the edge's session (cookie or `x-session-id`)".to_owned(),
        ));
    };
    Ok(axum::Json(
        state.accounts.claim_session(user_id, session_id).await?,
    ))
}
