//! `/api/v1/escalations`: the operator's queue of conversations agents handed to humans
//! (`escalate_to_human`).
//!
//! - `GET /?status=open|resolved&limit=` — newest first, across owners;
//! - `POST /{id}/resolve` with `{"resolution": "…"}` — 200 with the resolved escalation, 404
//!   for an unknown id, 409 when it is already resolved;
//! - `GET /{id}/messages?limit=&cursor=` — the escalated conversation, oldest first, whoever
//!   owns it (an operator reads it to take over; 404 for an unknown id or a deleted thread).
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
use shared_types::chat::{MessagePage, PageParams};

use super::extract::{Json, Query};
use super::identity::Identity;
use super::{AppState, Error, Result};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list_escalations))
        .route("/{id}/resolve", post(resolve_escalation))
        .route("/{id}/messages", get(escalation_messages))
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

async fn escalation_messages(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<MessagePage>> {
    identity.require_operator("the escalation queue")?;
    let escalation = state.escalations.get(&id).await?;
    super::threads::message_page(&state, &escalation.owner, &escalation.thread_id, &params).await
}
