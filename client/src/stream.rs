//! Server-Sent Events responses as `Stream`s: a UI message stream (chat reply or run events) as
//! [`UiMessageChunk`]s, and the deployment stream probe as [`StreamTick`]s.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use reqwest::Response;
use reqwest::header::HeaderMap;
use shared_types::chat::{STREAM_DONE, UiMessageChunk};
use shared_types::diag::{STREAM_TICK_EVENT, StreamTick};

use crate::ClientError;
use crate::sse::{SseDecoder, SseEvent};

#[cfg(not(target_arch = "wasm32"))]
type Boxed<T> = futures_util::stream::BoxStream<'static, T>;
#[cfg(target_arch = "wasm32")]
type Boxed<T> = futures_util::stream::LocalBoxStream<'static, T>;

/// The events of a `text/event-stream` body, decoded as its bytes arrive.
struct EventSource {
    bytes: Boxed<reqwest::Result<bytes::Bytes>>,
    decoder: SseDecoder,
    pending: VecDeque<SseEvent>,
}

impl EventSource {
    fn new(response: Response) -> Self {
        Self {
            bytes: response.bytes_stream().boxed_for_target(),
            decoder: SseDecoder::new(),
            pending: VecDeque::new(),
        }
    }

    /// The next event; `None` once the body ended (whether that was early is the caller's call).
    async fn next(&mut self) -> Option<Result<SseEvent, ClientError>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            match self.bytes.next().await? {
                Ok(bytes) => {
                    let mut events = Vec::new();
                    if let Err(too_large) = self.decoder.push(&bytes, &mut events) {
                        return Some(Err(ClientError::Stream(format!(
                            "an event exceeds {} bytes",
                            too_large.limit
                        ))));
                    }
                    self.pending.extend(events);
                }
                Err(error) => return Some(Err(ClientError::Transport(error))),
            }
        }
    }
}

/// The chunks of one reply, in order. Ends after the stream's `[DONE]`; a stream that breaks
/// off before it yields a [`ClientError::Stream`]. Chunk types this client does not know (from
/// a newer server) are skipped.
pub struct ChunkStream {
    run_id: Option<String>,
    /// Id of the last event yielded; 0 before the first.
    last_event_id: Arc<AtomicU64>,
    inner: Boxed<Result<UiMessageChunk, ClientError>>,
}

impl std::fmt::Debug for ChunkStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkStream")
            .field("run_id", &self.run_id)
            .field("last_event_id", &self.last_event_id())
            .finish_non_exhaustive()
    }
}

struct State {
    source: EventSource,
    last_event_id: Arc<AtomicU64>,
    finished: bool,
}

impl ChunkStream {
    pub(crate) fn new(response: Response, run_id: fn(&HeaderMap) -> Option<String>) -> Self {
        let run_id = run_id(response.headers());
        let last_event_id = Arc::new(AtomicU64::new(0));
        let state = State {
            source: EventSource::new(response),
            last_event_id: Arc::clone(&last_event_id),
            finished: false,
        };
        let inner = futures_util::stream::unfold(state, next_chunk).boxed_for_target();
        Self {
            run_id,
            last_event_id,
            inner,
        }
    }

    /// The run this stream belongs to (the `x-edgebrain-run-id` header).
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// The id of the last event received (0 before the first): pass it to
    /// [`crate::Client::follow_run`] to resume after a disconnect.
    pub fn last_event_id(&self) -> u64 {
        self.last_event_id.load(Ordering::Relaxed)
    }
}

impl Stream for ChunkStream {
    type Item = Result<UiMessageChunk, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Boxing that is `Send` on native targets and local on wasm32 (where `fetch` streams are not
/// `Send`).
trait BoxForTarget: Stream + Sized {
    fn boxed_for_target(self) -> Boxed<Self::Item>;
}

#[cfg(not(target_arch = "wasm32"))]
impl<S: Stream + Send + 'static> BoxForTarget for S {
    fn boxed_for_target(self) -> Boxed<Self::Item> {
        self.boxed()
    }
}

#[cfg(target_arch = "wasm32")]
impl<S: Stream + 'static> BoxForTarget for S {
    fn boxed_for_target(self) -> Boxed<Self::Item> {
        self.boxed_local()
    }
}

async fn next_chunk(mut state: State) -> Option<(Result<UiMessageChunk, ClientError>, State)> {
    if state.finished {
        return None;
    }
    loop {
        let event = match state.source.next().await {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                state.finished = true;
                return Some((Err(error), state));
            }
            None => {
                state.finished = true;
                return Some((
                    Err(ClientError::Stream(
                        "the stream ended before its [DONE] event".to_owned(),
                    )),
                    state,
                ));
            }
        };
        if let Some(id) = event.id.as_deref().and_then(|id| id.parse::<u64>().ok()) {
            state.last_event_id.store(id, Ordering::Relaxed);
        }
        match decode(&event.data) {
            Decoded::Done => {
                state.finished = true;
                return None;
            }
            Decoded::Skip => continue,
            Decoded::Chunk(chunk) => return Some((Ok(chunk), state)),
            Decoded::Error(error) => {
                state.finished = true;
                return Some((Err(error), state));
            }
        }
    }
}

/// The ticks of the stream probe (`GET /api/v1/diag/stream`), each yielded as it arrives (time
/// its arrival to see whether a hop buffers). Ends after the last announced tick (`seq == of`);
/// a stream that breaks off before it, or carries the edge's `error` event, yields a
/// [`ClientError::Stream`]. Events of other names are skipped.
pub struct TickStream {
    inner: Boxed<Result<StreamTick, ClientError>>,
}

impl std::fmt::Debug for TickStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TickStream").finish_non_exhaustive()
    }
}

impl TickStream {
    pub(crate) fn new(response: Response) -> Self {
        let state = TickState {
            source: EventSource::new(response),
            last: None,
            finished: false,
        };
        let inner = futures_util::stream::unfold(state, next_tick).boxed_for_target();
        Self { inner }
    }
}

impl Stream for TickStream {
    type Item = Result<StreamTick, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

struct TickState {
    source: EventSource,
    /// The last tick yielded.
    last: Option<StreamTick>,
    finished: bool,
}

async fn next_tick(mut state: TickState) -> Option<(Result<StreamTick, ClientError>, TickState)> {
    if state.finished {
        return None;
    }
    loop {
        let outcome = match state.source.next().await {
            Some(Ok(event)) => match decode_tick(&event) {
                Some(outcome) => outcome,
                None => continue,
            },
            Some(Err(error)) => Err(error),
            None => match state.last {
                Some(last) if last.seq >= last.of => return None,
                Some(last) => Err(ClientError::Stream(format!(
                    "the stream ended after {} of {} events",
                    last.seq, last.of
                ))),
                None => Err(ClientError::Stream(
                    "the stream ended before its first event".to_owned(),
                )),
            },
        };
        match &outcome {
            Ok(tick) => state.last = Some(*tick),
            Err(_) => state.finished = true,
        }
        return Some((outcome, state));
    }
}

/// A tick, the edge's error event as an error, or `None` for an event to skip.
fn decode_tick(event: &SseEvent) -> Option<Result<StreamTick, ClientError>> {
    match event.event.as_deref() {
        Some(STREAM_TICK_EVENT) => Some(serde_json::from_str(&event.data).map_err(|error| {
            ClientError::Stream(format!(
                "a tick is not a StreamTick ({error}): {}",
                event.data
            ))
        })),
        Some("error") => {
            let value: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
            let text = value
                .get("errorText")
                .and_then(|text| text.as_str())
                .unwrap_or(&event.data);
            let code = value.get("code").and_then(|code| code.as_str());
            Some(Err(ClientError::Stream(match code {
                Some(code) => format!("{text} ({code})"),
                None => text.to_owned(),
            })))
        }
        _ => None,
    }
}

enum Decoded {
    Done,
    Skip,
    Chunk(UiMessageChunk),
    Error(ClientError),
}

fn decode(data: &str) -> Decoded {
    if data == STREAM_DONE {
        return Decoded::Done;
    }
    let value: serde_json::Value = match serde_json::from_str(data) {
        Ok(value) => value,
        Err(error) => {
            return Decoded::Error(ClientError::Stream(format!(
                "an event is not JSON ({error})"
            )));
        }
    };
    match serde_json::from_value::<UiMessageChunk>(value.clone()) {
        Ok(chunk) => Decoded::Chunk(chunk),
        // A chunk type from a newer server: not ours to interpret.
        Err(_)
            if value
                .get("type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| !is_known(t)) =>
        {
            Decoded::Skip
        }
        Err(error) => Decoded::Error(ClientError::Stream(format!(
            "a chunk does not match the protocol ({error}): {data}"
        ))),
    }
}

/// The chunk types [`UiMessageChunk`] models: the serialized tag of each variant.
fn is_known(kind: &str) -> bool {
    const KNOWN: [&str; 15] = [
        "start",
        "start-step",
        "finish-step",
        "text-start",
        "text-delta",
        "text-end",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
        "tool-output-available",
        "tool-output-error",
        "error",
        "message-metadata",
        "finish",
        "abort",
    ];
    KNOWN.contains(&kind)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn data_decodes_to_chunks_done_skips_and_errors() {
        assert!(matches!(decode("[DONE]"), Decoded::Done));
        assert!(matches!(
            decode(r#"{"type":"text-delta","id":"t","delta":"hi"}"#),
            Decoded::Chunk(UiMessageChunk::TextDelta { .. })
        ));
        assert!(matches!(
            decode(r#"{"type":"reasoning-delta","id":"r","delta":"…"}"#),
            Decoded::Skip
        ));
        assert!(matches!(
            decode(r#"{"type":"text-delta","id":"t"}"#),
            Decoded::Error(_)
        ));
        assert!(matches!(decode("not json"), Decoded::Error(_)));
    }

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: name.map(str::to_owned),
            id: None,
            data: data.to_owned(),
        }
    }

    #[test]
    fn probe_events_decode_to_ticks_errors_and_skips() {
        let tick = decode_tick(&event(Some("tick"), r#"{"seq":2,"of":3,"sent_at_ms":7}"#));
        assert_eq!(
            tick.unwrap().unwrap(),
            StreamTick {
                seq: 2,
                of: 3,
                sent_at_ms: 7
            }
        );
        let broken = decode_tick(&event(
            Some("error"),
            r#"{"type":"error","errorText":"the brain's stream broke off","code":"bad_gateway","request_id":"r"}"#,
        ));
        match broken {
            Some(Err(ClientError::Stream(message))) => {
                assert_eq!(message, "the brain's stream broke off (bad_gateway)");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode_tick(&event(Some("tick"), r#"{"seq":1}"#)),
            Some(Err(ClientError::Stream(_)))
        ));
        assert!(decode_tick(&event(None, "keep-alive")).is_none());
        assert!(decode_tick(&event(Some("other"), "{}")).is_none());
    }

    #[test]
    fn the_known_list_matches_the_chunk_type() {
        use serde_json::json;
        let samples = [
            json!({"type": "start"}),
            json!({"type": "start-step"}),
            json!({"type": "finish-step"}),
            json!({"type": "text-start", "id": "t"}),
            json!({"type": "text-delta", "id": "t", "delta": ""}),
            json!({"type": "text-end", "id": "t"}),
            json!({"type": "tool-input-start", "toolCallId": "c", "toolName": "n"}),
            json!({"type": "tool-input-delta", "toolCallId": "c", "inputTextDelta": ""}),
            json!({"type": "tool-input-available", "toolCallId": "c", "toolName": "n", "input": {}}),
            json!({"type": "tool-output-available", "toolCallId": "c", "output": 1}),
            json!({"type": "tool-output-error", "toolCallId": "c", "errorText": "e"}),
            json!({"type": "error", "errorText": "e"}),
            json!({"type": "message-metadata", "messageMetadata": {}}),
            json!({"type": "finish"}),
            json!({"type": "abort"}),
        ];
        for sample in samples {
            let chunk: UiMessageChunk = serde_json::from_value(sample.clone()).unwrap();
            let tag = serde_json::to_value(&chunk).unwrap()["type"].clone();
            assert!(is_known(tag.as_str().unwrap()), "{sample}");
        }
    }
}
