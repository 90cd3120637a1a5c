//! Deployment diagnostics (see `shared_types::diag`): an SSE stream that proves no hop buffers,
//! and an echo that proves requests cross every hop intact.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{Stream, StreamExt, stream};
use shared_types::diag::{EchoReport, STREAM_TICK_EVENT, StreamParams, StreamTick, WhoAmI};

use super::extract::Query;
use super::identity::Identity;
use super::{AppState, Error, Result};
use crate::clock::unix_millis;
use crate::config::DiagAccess;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;

/// Headers whose values the echo never reflects. Reflecting credentials would let any script
/// on a page read `HttpOnly` cookies and tokens through this endpoint (cross-site tracing); the
/// name still appears, so a deployment check can see that the header crossed every hop.
const REDACTED_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("x-api-key"),
];
const REDACTED: &str = "[redacted]";

/// Tells nginx-style proxies not to buffer this response.
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

pub fn router(access: DiagAccess) -> Router<AppState> {
    Router::new()
        .route("/stream", get(stream_ticks))
        .route("/whoami", get(whoami))
        .route(
            "/echo",
            get(echo).post(echo).put(echo).patch(echo).delete(echo),
        )
        .route_layer(middleware::from_fn_with_state(access, allow))
}

/// Lets a request through to a diagnostic endpoint only as `--diag` says: `off` answers 404
/// as if the endpoints did not exist, `operators` wants a signed-in operator (403 otherwise,
/// 401 without any identity), `open` lets every edge-signed caller in.
async fn allow(State(access): State<DiagAccess>, request: Request, next: Next) -> Result<Response> {
    match access {
        DiagAccess::Open => {}
        DiagAccess::Off => {
            return Err(Error::NotFound(format!(
                "no route for {}",
                request.uri().path()
            )));
        }
        DiagAccess::Operators => {
            let identity = request.extensions().get::<Identity>().ok_or_else(|| {
                Error::Unauthorized(
                    "this endpoint needs a caller identity from the edge".to_owned(),
                )
            })?;
            identity.require_operator("the diagnostic endpoints")?;
        }
    }
    Ok(next.run(request).await)
}

/// `GET /api/v1/diag/stream?events=N&interval_ms=M`: `N` `tick` events, the first at once,
/// then one every `M` ms. `axum`'s SSE body hands each event to hyper as its own frame, so each
/// is written to the socket when produced.
async fn stream_ticks(
    State(state): State<AppState>,
    Query(params): Query<StreamParams>,
) -> Result<impl IntoResponse> {
    let limits = state.limits;
    if !(1..=limits.diag_max_events).contains(&params.events) {
        return Err(Error::InvalidQuery(format!(
            "`events` must be between 1 and {}",
            limits.diag_max_events
        )));
    }
    let interval = Duration::from_millis(params.interval_ms);
    if interval > limits.diag_max_interval {
        return Err(Error::InvalidQuery(format!(
            "`interval_ms` must be between 0 and {}",
            limits.diag_max_interval.as_millis()
        )));
    }
    // `Sse` already sets `content-type: text/event-stream` and `cache-control: no-cache`.
    Ok((
        [(X_ACCEL_BUFFERING, HeaderValue::from_static("no"))],
        Sse::new(ticks(params.events, interval, params.break_after)),
    ))
}

fn ticks(
    events: u32,
    interval: Duration,
    break_after: Option<u32>,
) -> impl Stream<Item = Result<Event, axum::Error>> {
    stream::iter(1..=events).then(move |seq| async move {
        if seq > 1 {
            tokio::time::sleep(interval).await;
        }
        if break_after.is_some_and(|last| seq > last) {
            // An error item makes hyper abort the response: no terminating chunk, as when a
            // process dies mid-stream.
            return Err(axum::Error::new(std::io::Error::other(
                "stream probe broken on request (break_after)",
            )));
        }
        let tick = StreamTick {
            seq,
            of: events,
            sent_at_ms: unix_millis(),
        };
        Event::default()
            .event(STREAM_TICK_EVENT)
            .id(seq.to_string())
            .json_data(tick)
    })
}

/// `GET /api/v1/diag/whoami`: the verified caller (401 without an identity).
async fn whoami(identity: Identity) -> Json<WhoAmI> {
    Json(identity.who_am_i())
}

/// `/api/v1/diag/echo` (GET, POST, PUT, PATCH, DELETE): the request as the brain received it.
/// A non-empty body must be `application/json`. Credential headers are named but not echoed.
async fn echo(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EchoReport>> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::body_over(state.limits.max_body_bytes as u64)
        } else {
            Error::BadRequest(rejection.body_text())
        }
    })?;
    let parsed_body = if body.is_empty() {
        None
    } else {
        require_json_content_type(&headers)?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|error| Error::InvalidJson(format!("invalid JSON body: {error}")))?;
        Some(value)
    };
    let request_id = super::request_id(&headers);
    Ok(Json(EchoReport {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(name, value)| {
                let value = if REDACTED_HEADERS.contains(name) {
                    REDACTED.to_owned()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body_bytes: body.len() as u64,
        body: parsed_body,
        request_id,
    }))
}

fn require_json_content_type(headers: &HeaderMap) -> Result<()> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    match content_type {
        Some(value) if super::error::essence(&value).eq_ignore_ascii_case("application/json") => {
            Ok(())
        }
        Some(value) => Err(Error::UnsupportedMediaType(format!(
            "request body must be application/json, not `{value}`"
        ))),
        None => Err(Error::UnsupportedMediaType(
            "request body must be application/json (content-type is missing)".to_owned(),
        )),
    }
}
