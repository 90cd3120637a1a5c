//! Reads and discards whatever part of a request body a handler left unread.
//!
//! Why: when a handler answers before reading the body to its end (most often a 413 from the
//! body limit on a chunked upload), hyper closes the connection with unread bytes in the
//! socket. The peer is usually still writing; it gets a reset and may lose the answer entirely:
//! the edge's `fetch` then fails and the client sees a 502 instead of the brain's 413. Reading
//! the rest in the background, bounded in bytes and time, lets the answer arrive and the
//! connection end cleanly (the "lingering close" of nginx and Apache).

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// Bounds on the background drain of an unread request body.
#[derive(Debug, Clone, Copy)]
pub struct DrainLimits {
    /// Stop (and let the connection close) after discarding this many bytes.
    pub max_bytes: u64,
    /// Stop after this long, however much is left.
    pub max_time: Duration,
}

/// Middleware: hands the handler a shared view of the body and, once the response is ready,
/// drains whatever is left in a background task. Nothing is drained while the handler (or a
/// streaming response it returned) still holds the body.
pub async fn drain_unread_body(
    State(limits): State<DrainLimits>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let shared = SharedBody::new(body);
    let response = next
        .run(Request::from_parts(parts, Body::new(shared.clone())))
        .await;
    if let Some(rest) = shared.into_unfinished() {
        tokio::spawn(drain(rest, limits));
    }
    response
}

async fn drain(mut body: Body, limits: DrainLimits) {
    let mut drained: u64 = 0;
    let outcome = tokio::time::timeout(limits.max_time, async {
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let Ok(frame) = frame else {
                return "the client stopped sending";
            };
            if let Some(data) = frame.data_ref() {
                drained = drained.saturating_add(data.len() as u64);
                if drained > limits.max_bytes {
                    return "byte limit reached; closing the connection";
                }
            }
        }
        "body drained"
    })
    .await
    .unwrap_or("time limit reached; closing the connection");
    tracing::debug!(drained_bytes = drained, outcome, "unread request body");
}

/// A body the middleware and the handler share. The mutex is only held inside `poll_frame`,
/// never across an `.await`.
#[derive(Debug, Clone)]
struct SharedBody(Arc<Mutex<Slot>>);

#[derive(Debug)]
struct Slot {
    body: Body,
    finished: bool,
}

impl SharedBody {
    fn new(body: Body) -> Self {
        Self(Arc::new(Mutex::new(Slot {
            body,
            finished: false,
        })))
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // A panic while polling leaves the body as consistent as any other failed read.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The body, if nobody else holds it any more and it was not read to its end.
    fn into_unfinished(self) -> Option<Body> {
        let slot = Arc::into_inner(self.0)?
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (!slot.finished && !slot.body.is_end_stream()).then_some(slot.body)
    }
}

impl HttpBody for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut slot = self.slot();
        let polled = Pin::new(&mut slot.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            slot.finished = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.slot();
        slot.finished || slot.body.is_end_stream()
    }

    // Forwarded so limits see a declared content-length up front.
    fn size_hint(&self) -> SizeHint {
        self.slot().body.size_hint()
    }
}
