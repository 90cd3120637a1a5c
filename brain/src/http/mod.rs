//! The HTTP surface: [`app`] assembles one router per resource behind one middleware stack.
//!
//! Middleware, outermost first (see [`with_middleware`]):
//! 1. request id: honour an incoming `x-request-id`, otherwise generate a UUID v4; echo it on
//!    the response;
//! 2. drain: whatever part of the body a handler leaves unread is read and discarded in the
//!    background (bounded), so early answers such as 413 reach the client;
//! 3. request log: a `request` span carrying `request_id` around the handler, then exactly one
//!    `request completed` INFO line per request (see [`crate::telemetry`] for its format);
//! 4. error bodies: every non-2xx answer gets the `ErrorBody` JSON shape with the request id,
//!    and every 5xx one log line (with its cause when known);
//! 5. panic catching: a panicking handler answers 500 `internal` and the process lives on;
//! 6. edge trust: outside the health probes, only requests signed by the edge pass, and their
//!    signed `x-edgebrain-*` headers become an [`identity::Identity`] extension
//!    ([`edge_auth`]);
//! 7. body limit: extractors refuse bodies over `max_body_bytes` (413), chunked ones included;
//! 8. (matched routes) draining: once shutdown started, new work is refused ([`lifecycle`]).

pub mod account;
pub mod agents;
pub mod datasets;
pub mod diag;
pub mod documents;
pub mod drain;
pub mod edge_auth;
pub mod error;
pub mod escalations;
pub mod extract;
pub mod health;
pub mod identity;
pub mod lifecycle;
pub mod metrics;
pub mod openapi;
pub mod queries;
pub mod runs;
pub mod threads;
mod upload_form;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use shared_types::headers::SERVED_BY_BRAIN;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::Instrument;

use crate::account::Accounts;
use crate::agent::escalations::EscalationQueue;
use crate::chat::ChatService;
use crate::config::{Config, DiagAccess};
use crate::data::DataPlane;
use crate::knowledge::KnowledgeBase;
use crate::store::Store;
use drain::DrainLimits;
use edge_auth::EdgeTrust;
use lifecycle::Lifecycle;

pub use error::{Error, Result};

/// Shared state of every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub limits: Limits,
    pub edge_trust: Arc<EdgeTrust>,
    /// Datasets, the memory manager and queries.
    pub data: DataPlane,
    /// The Prometheus registry behind `/metrics`; other subsystems register theirs here.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Conversations, runs and the LLM router.
    pub chat: Arc<ChatService>,
    /// Documents, chunks, embeddings and hybrid search.
    pub knowledge: Arc<KnowledgeBase>,
    /// The operators' queue of conversations handed to humans.
    pub escalations: EscalationQueue,
    /// Serving or draining (shutting down).
    pub lifecycle: Lifecycle,
    /// Whose is what: a visitor's session moving to its user.
    pub accounts: Accounts,
}

/// Request limits taken from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Who may call `/api/v1/diag/*`.
    pub diag_access: DiagAccess,
    pub diag_max_events: u32,
    pub diag_max_interval: Duration,
    pub drain: DrainLimits,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_body_bytes: config.server.max_body_bytes,
            diag_access: config.server.diag,
            diag_max_events: config.server.diag_max_events,
            diag_max_interval: Duration::from_millis(config.server.diag_max_interval_ms),
            drain: DrainLimits {
                max_bytes: config.server.drain_max_bytes,
                max_time: Duration::from_millis(config.server.drain_max_ms),
            },
        }
    }
}

/// The brain's complete HTTP application.
pub fn app(state: AppState) -> Router {
    let limits = state.limits;
    let edge_trust = Arc::clone(&state.edge_trust);
    let metrics = Arc::clone(&state.metrics);
    let upload_max_bytes = state.data.limits().upload_max_bytes;
    let max_document_bytes = state.knowledge.limits().max_document_bytes;
    let draining = state.lifecycle.clone();
    // Every answer names the brain that gave it (`x-edgebrain-brain`).
    let served_by = HeaderValue::from_str(&state.chat.fleet().brain_id).ok();
    let routes = Router::new()
        .merge(health::router())
        .merge(metrics::router())
        .merge(openapi::router())
        .nest("/api/v1/diag", diag::router(limits.diag_access))
        .nest("/api/v1/datasets", datasets::router(upload_max_bytes))
        .nest("/api/v1/queries", queries::router())
        .nest("/api/v1/threads", threads::router())
        .nest("/api/v1/runs", runs::router())
        .nest("/api/v1/usage", runs::usage_router())
        .nest("/api/v1/session", account::router())
        .merge(account::internal_router())
        .nest("/api/v1/agents", agents::router())
        .nest("/api/v1/escalations", escalations::router())
        .nest("/api/v1/documents", documents::router(max_document_bytes))
        .nest("/api/v1/knowledge", documents::search_router())
        .route_layer(middleware::from_fn_with_state(
            draining,
            lifecycle::refuse_new_work,
        ))
        .route_layer(middleware::from_fn_with_state(
            metrics,
            metrics::record_latency,
        ))
        .with_state(state);
    with_middleware(routes, &limits, edge_trust).layer(middleware::map_response(
        move |mut response: Response| {
            let served_by = served_by.clone();
            async move {
                if let Some(value) = served_by {
                    response.headers_mut().insert(SERVED_BY_BRAIN, value);
                }
                response
            }
        },
    ))
}

/// Adds the fallbacks (404, 405) and the middleware stack to `routes`. [`app`] uses it; it is
/// public so tests can put routes of their own (such as one that panics) behind the exact
/// production stack.
pub fn with_middleware(routes: Router, limits: &Limits, edge_trust: Arc<EdgeTrust>) -> Router {
    routes
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(middleware::from_fn_with_state(
                    limits.drain,
                    drain::drain_unread_body,
                ))
                .layer(middleware::from_fn(log_request))
                .layer(middleware::from_fn(error_body))
                .layer(middleware::from_fn(refuse_encoded_nul))
                .layer(middleware::from_fn_with_state(
                    edge_trust,
                    edge_auth::verify_edge,
                ))
                .layer(CatchPanicLayer::custom(error::panic_response)),
        )
}

/// Runs the request inside a `request` span (so every line logged while handling it names the
/// request id), then logs one completion line. For streamed responses (SSE) "completed" means
/// the head was sent; the body may flow on.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request_id(request.headers());
    let method = request.method().clone();
    // The raw path only: the query string may carry secrets.
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %request_id);
    let response = next.run(request).instrument(span).await;
    // Logged outside the span so the fields appear once, as plain event fields, in both formats.
    let latency_ms = started.elapsed().as_micros() as f64 / 1000.0;
    tracing::info!(
        request_id = %request_id,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms,
        "request completed"
    );
    response
}

/// 400 for a path or query holding a percent-encoded NUL: ids, names, cursors and search
/// text are stored or compared as text, which on PostgreSQL cannot hold NUL (a 500 there, and
/// silently accepted on SQLite). Refused here, identically on both databases.
async fn refuse_encoded_nul(request: Request, next: Next) -> Response {
    let encoded_nul = request
        .uri()
        .path_and_query()
        .is_some_and(|pq| extract::has_encoded_nul(pq.as_str()));
    if encoded_nul {
        return Error::BadRequest(
            "the path or query holds a NUL character (%00), which no id, name or text may \
             contain"
                .to_owned(),
        )
        .into_response();
    }
    next.run(request).await
}

async fn error_body(request: Request, next: Next) -> Response {
    let request_id = request_id(request.headers());
    let response = next.run(request).await;
    error::log_server_error(&response, &request_id);
    error::render_error_body(response, &request_id)
}

/// The request id set by `SetRequestIdLayer` (which runs first, so it is always present).
/// A non-UTF-8 incoming id is converted lossily.
pub(crate) fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(shared_types::headers::REQUEST_ID)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default()
}
