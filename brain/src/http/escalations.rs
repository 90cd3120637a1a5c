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
use shared_types::agent::{Escalation, EscalationFilter, EscalationList, ResolveEscalation};

use super::extract::{Json, Query};
use super::identity::Identity;
use super::{AppState, Error, Result};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

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
    let escalations = state.escalations.list(filter.status, limit).await?;
    Ok(axum::Json(EscalationList { escalations }))
}

async fn resolve_escalation(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Json(body): Json<ResolveEscalation>,
) -> Result<axum::Json<Escalation>> {
    identity.require_operator("the escalation queue")?;
    let resolved = state
        .escalations
        .resolve(&id, &identity.owner(), body.resolution.as_deref())
        .await?;
    Ok(axum::Json(resolved))
}
