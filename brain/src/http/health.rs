//! `GET /health` (liveness) and `GET /ready` (readiness: the database answers and the brain
//! is not draining).

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use shared_types::health::{DependencyCheck, HealthReport, ReadinessReport, Service, Status};

use super::AppState;
use crate::VERSION;
use crate::telemetry::error_chain;

/// A readiness probe must answer promptly even when the database hangs.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// The process is up and serving HTTP. Never touches the database, so an orchestrator does not
/// restart the brain because PostgreSQL is down.
async fn health() -> Json<HealthReport> {
    Json(HealthReport {
        status: Status::Ok,
        service: Service::Brain,
        version: VERSION.to_owned(),
    })
}

/// 200 when the database answers a trivial query within [`DATABASE_CHECK_TIMEOUT`], else 503;
/// 503 at once while draining (shutting down: send new work elsewhere). Every answer is a
/// [`ReadinessReport`].
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<ReadinessReport>) {
    if state.lifecycle.is_draining() {
        let report = ReadinessReport {
            status: Status::Unavailable,
            service: Service::Brain,
            version: VERSION.to_owned(),
            checks: vec![DependencyCheck {
                name: "draining".to_owned(),
                status: Status::Unavailable,
                latency_ms: 0,
                detail: Some(format!(
                    "{} run(s) in progress",
                    state.chat.runs_in_progress()
                )),
                error: Some(
                    "shutting down: finishing in-flight requests and runs, taking no new work"
                        .to_owned(),
                ),
            }],
        };
        return (StatusCode::SERVICE_UNAVAILABLE, Json(report));
    }
    let started = Instant::now();
    let outcome = tokio::time::timeout(DATABASE_CHECK_TIMEOUT, state.store.ping()).await;
    let (latency, error) = match outcome {
        Ok(Ok(latency)) => (latency, None),
        Ok(Err(error)) => {
            tracing::warn!(error = %error_chain(&error), "readiness: database check failed");
            // `StoreError`'s Display is a short, secret-free summary; the detail was logged.
            (started.elapsed(), Some(error.to_string()))
        }
        Err(_elapsed) => {
            tracing::warn!(
                timeout_ms = DATABASE_CHECK_TIMEOUT.as_millis(),
                "readiness: database check timed out"
            );
            let message = format!("no answer within {} ms", DATABASE_CHECK_TIMEOUT.as_millis());
            (started.elapsed(), Some(message))
        }
    };
    let status = if error.is_none() {
        Status::Ok
    } else {
        Status::Unavailable
    };
    let report = ReadinessReport {
        status,
        service: Service::Brain,
        version: VERSION.to_owned(),
        checks: vec![DependencyCheck {
            name: "database".to_owned(),
            status,
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            detail: Some(state.store.backend().as_str().to_owned()),
            error,
        }],
    };
    let http_status = match status {
        Status::Ok => StatusCode::OK,
        Status::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    (http_status, Json(report))
}
