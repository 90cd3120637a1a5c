//! `GET /api/v1/agents`: the agents a caller can choose for a thread (`CreateThread::agent`).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use shared_types::agent::AgentList;

use super::identity::Identity;
use super::{AppState, Result};

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(list_agents))
}

async fn list_agents(
    State(state): State<AppState>,
    _identity: Identity,
) -> Result<axum::Json<AgentList>> {
    Ok(axum::Json(state.chat.agents().list()))
}
