//! `GET /metrics`: everything registered with [`crate::metrics::Metrics`], in the Prometheus
//! text format; and the middleware that times every routed request.
//!
//! Mounted at the root, not under `/api`, so the edge (which proxies only `/api/*`) never
//! exposes it: scrape the brain directly.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{AppState, Error, Result};
use crate::metrics::{self, Metrics};

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

async fn render(State(state): State<AppState>) -> Result<Response> {
    let text = state
        .metrics
        .render()
        .map_err(|error| Error::Internal(error.into()))?;
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(metrics::CONTENT_TYPE),
    );
    Ok(response)
}

/// Route-layer middleware: observes `brain_http_request_duration_seconds` with the matched
/// route pattern (so ids in paths do not multiply the series).
pub(crate) async fn record_latency(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    metrics
        .http_request_duration
        .with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}
