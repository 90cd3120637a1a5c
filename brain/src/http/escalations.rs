//! `/api/v1/escalations`: the operator's queue of conversations agents handed to humans
//! (`escalate_to_human`).
//!
//! - `GET /?status=open|resolved&limit=` — newest first, across owners;
//! - `POST /{id}/resolve` with `{"resolution": "…"}` — 200 with the resolved escalation, 404
//!   for an unknown id, 409 when it is already resolved.
//!
//! Authorization: the caller's identity must carry a user id and the scope
//! `edgebrain:operator` ([`shared_types::agent::OPERATOR_SCOPE`];
//! [`Identity::require_operator`]), which only the edge can assert (it forwards JWT scopes and
//! roles in the signed `x-edgebrain-scopes` header). Without it: 403 `forbidden`; without an
//! identity: 401.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use shared_types::agent::{
    Escalation, EscalationFilter, EscalationList, EscalationStatus, ResolveEscalation,
};

use super::extract::{Json, Query};
use super::identity::Identity;
use super::{AppState, Error, Result};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
const MAX_RESOLUTION_CHARS: usize = 2_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list_escalations))
        .route("/{id}/resolve", post(resolve_escalation))
}

async fn list_escalations(
    State(state): State<AppState>,
    identity: Identity,
    Query(filter): Query<EscalationFilter>,
) -> Result<axum::Json<EscalationList>> {
    identity.require_operator("the escalation queue")?;
    let limit = match filter.limit {
        None => DEFAULT_LIMIT,
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
        Some(_) => {
            return Err(Error::InvalidQuery(format!(
                "`limit` must be between 1 and {MAX_LIMIT}"
            )));
        }
    };
    let escalations = state.store.list_escalations(filter.status, limit).await?;
    Ok(axum::Json(EscalationList { escalations }))
}

async fn resolve_escalation(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Json(body): Json<ResolveEscalation>,
) -> Result<axum::Json<Escalation>> {
    identity.require_operator("the escalation queue")?;
    let resolution = body.resolution.as_deref().map(str::trim);
    if resolution.is_some_and(|text| text.chars().count() > MAX_RESOLUTION_CHARS) {
        return Err(Error::Unprocessable(format!(
            "`resolution` may have at most {MAX_RESOLUTION_CHARS} characters"
        )));
    }
    let not_found = || Error::NotFound(format!("no escalation with id `{id}`"));
    let existing = state
        .store
        .get_escalation(&id)
        .await?
        .ok_or_else(not_found)?;
    if existing.status == EscalationStatus::Resolved {
        return Err(Error::Conflict(format!(
            "escalation `{id}` is already resolved"
        )));
    }
    let resolved = state
        .store
        .resolve_escalation(
            &id,
            &identity.owner(),
            resolution.filter(|text| !text.is_empty()),
            crate::clock::now_ms(),
        )
        .await?;
    if !resolved {
        return Err(Error::Conflict(format!(
            "escalation `{id}` is already resolved"
        )));
    }
    let escalation = state
        .store
        .get_escalation(&id)
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(escalation_id = %id, operator = %identity.owner(), "escalation resolved");
    Ok(axum::Json(escalation))
}
