//! Draining: from the shutdown signal on, the brain finishes what it has and takes nothing new.
//!
//! While draining, `/ready` answers 503 (so load balancers and the edge stop sending work),
//! `/health` stays 200 (the process is fine; do not restart it), and requests that would start
//! new work — every `POST`, `PUT`, `PATCH` and `DELETE` except cancelling a run: new runs,
//! uploads, queries — are answered 503 `unavailable` with `x-edgebrain-draining: 1`, which tells
//! the edge that nothing was done and another brain may take the request. Reads, run
//! reconnects and in-flight requests go on (their answers carry `x-edgebrain-draining: 1` too,
//! so the edge passes this brain over for new work before its port closes); `startup` bounds
//! it all by the shutdown grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared_types::headers::DRAINING;

use super::Error;

/// Serving or draining; clones share the state.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
}

impl Lifecycle {
    /// From now on: not ready, no new work.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Middleware: while draining, requests that would start new work get [`Error::Draining`].
pub(crate) async fn refuse_new_work(
    State(lifecycle): State<Lifecycle>,
    request: Request,
    next: Next,
) -> Response {
    if !lifecycle.is_draining() {
        return next.run(request).await;
    }
    if starts_work(request.method(), request.uri().path()) {
        return Error::Draining.into_response();
    }
    // Reads are still served, marked: the edge passes a draining brain over for new work.
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .insert(DRAINING, HeaderValue::from_static("1"));
    response
}

/// Whether a request changes or computes something (as opposed to reading, or stopping a run).
fn starts_work(method: &Method, path: &str) -> bool {
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    let cancels_a_run =
        *method == Method::POST && path.starts_with("/api/v1/runs/") && path.ends_with("/cancel");
    !reads && !cancels_a_run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_work_is_what_writes_or_computes() {
        assert!(starts_work(&Method::POST, "/api/v1/threads/t/messages"));
        assert!(starts_work(&Method::POST, "/api/v1/queries/sql"));
        assert!(starts_work(&Method::POST, "/api/v1/datasets"));
        assert!(starts_work(&Method::DELETE, "/api/v1/threads/t"));
        assert!(!starts_work(&Method::GET, "/api/v1/runs/r/events"));
        assert!(!starts_work(&Method::POST, "/api/v1/runs/r/cancel"));
    }

    #[test]
    fn draining_is_shared_by_clones() {
        let lifecycle = Lifecycle::default();
        let copy = lifecycle.clone();
        assert!(!copy.is_draining());
        lifecycle.start_draining();
        assert!(copy.is_draining());
    }
}
