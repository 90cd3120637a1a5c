//! `/api/v1/runs` and `/api/v1/usage`.
//!
//! - `GET /api/v1/runs/{id}`: state, provider, usage.
//! - `GET /api/v1/runs/{id}/events`: the run's UI message stream from the event after
//!   `Last-Event-ID` (header, or `?after=` query) on: the rest, then the live tail, then
//!   `[DONE]`. Works during the run and after it (replayed from the database).
//! - `POST /api/v1/runs/{id}/cancel`: 202 when cancellation was requested, 409 when the run
//!   already finished.
//! - `GET /api/v1/usage`: the caller's runs, tokens, cost, budget and grounding verdicts.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use shared_types::chat::{Run, RunEventsParams, UsageReport};

use super::extract::Query;
use super::identity::Identity;
use super::threads::ui_message_stream;
use super::{AppState, Error, Result};

/// The largest event number a client may resume after: 2^53 - 1, the largest integer a
/// JavaScript number holds exactly.
const MAX_EVENT_CURSOR: u64 = (1 << 53) - 1;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/{id}", get(get_run))
        .route("/{id}/events", get(run_events))
        .route("/{id}/cancel", post(cancel_run))
}

pub fn usage_router() -> Router<AppState> {
    Router::new().route("/", get(usage))
}

async fn get_run(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<axum::Json<Run>> {
    Ok(axum::Json(
        state.chat.get_run(&identity.owner(), &id).await?.run,
    ))
}

async fn run_events(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(params): Query<RunEventsParams>,
) -> Result<Response> {
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .ok_or_else(|| {
                Error::BadRequest("`Last-Event-ID` must be an event number".to_owned())
            })?,
        None => params.after.unwrap_or(0),
    };
    // Event numbers are counts of events a run wrote; a browser's EventSource keeps them as
    // JavaScript numbers. Anything beyond that range is no event a client was ever sent.
    if after > MAX_EVENT_CURSOR {
        return Err(Error::BadRequest(format!(
            "event cursor {after} is beyond any event number (at most {MAX_EVENT_CURSOR})"
        )));
    }
    let events = state.chat.follow(&identity.owner(), &id, after).await?;
    Ok(ui_message_stream(events, &id))
}

async fn cancel_run(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    if state.chat.cancel(&identity.owner(), &id).await? {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(Error::Conflict("the run already finished".to_owned()))
    }
}

async fn usage(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<axum::Json<UsageReport>> {
    Ok(axum::Json(state.chat.usage(&identity.owner()).await?))
}
