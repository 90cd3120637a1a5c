//! Following a run through the database: for runs this brain does not hold in memory — one
//! running on another brain of the fleet, or one that ended.
//!
//! A follower subscribes to the store's run signals ([`crate::store::feed`]) *first*, then reads
//! the stored events after its cursor ([`Store::run_tail`]: state and events in one statement),
//! sends them in order, and waits for a signal about its run (or a resync after the listening
//! connection was lost, or a poll interval as a last resort) before reading again. Every read
//! starts after the last event sent, so nothing is sent twice or skipped, whatever the signals
//! do. When the run has ended, the rest comes from its complete stored log, then
//! [`LogItem::Done`].
//!
//! Latency: the running brain stores events at most `--run-event-flush-ms` after they
//! happen; on PostgreSQL the `NOTIFY` reaches followers when that write commits, plus one read.

use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use serde_json::{Value, json};
use shared_types::chat::{FinishReason, RunState, UiMessageChunk};
use tokio::sync::mpsc;

use super::INTERRUPTED;
use crate::run_log::LogItem;
use crate::store::Store;
use crate::store::feed::RunSignal;
use crate::store::runs::{StoredRun, TAIL_BATCH};

/// Items buffered between the database reader and the client's stream.
const BUFFER: usize = 64;

/// How a run that is not in this brain's memory is followed.
#[derive(Debug, Clone)]
pub struct RemoteFollow {
    pub store: Store,
    pub owner: String,
    pub run_id: String,
    /// Re-read this often even without a signal (a missed `NOTIFY` costs at most this).
    pub poll: Duration,
}

impl RemoteFollow {
    /// Events after number `after`, the live tail as the running brain stores it, then
    /// [`LogItem::Done`]. Reading stops when the returned stream is dropped.
    pub fn follow(self, after: u64) -> impl Stream<Item = LogItem> + Send + 'static {
        let (sender, receiver) = mpsc::channel(BUFFER);
        tokio::spawn(async move {
            tokio::select! {
                () = self.pump(after, &sender) => {}
                () = sender.closed() => {}
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(receiver)
    }

    async fn pump(&self, after: u64, sender: &mpsc::Sender<LogItem>) {
        let mut signals = self.store.run_signals();
        let mut next = after;
        loop {
            match self.store.run_tail(&self.owner, &self.run_id, next).await {
                Ok(None) => {
                    // The run is gone (its thread was deleted): nothing more will come.
                    let _ = sender.send(LogItem::Done).await;
                    return;
                }
                Ok(Some(tail)) => {
                    let full = tail.events.len() >= TAIL_BATCH as usize;
                    for (seq, data) in tail.events {
                        if seq != next + 1 {
                            // Never skip ahead: a gap is read again from `next`.
                            break;
                        }
                        if sender.send(LogItem::Event { seq, data }).await.is_err() {
                            return;
                        }
                        next = seq;
                    }
                    if !is_unfinished(tail.state) {
                        self.finish(next, sender).await;
                        return;
                    }
                    if full {
                        continue;
                    }
                }
                Err(error) => {
                    tracing::warn!(run_id = %self.run_id,
                        error = %crate::telemetry::error_chain(&error),
                        "cannot read a followed run's events; retrying");
                }
            }
            self.wait_for_news(&mut signals).await;
        }
    }

    /// Waits until a signal concerns this run (or all runs), or the poll interval passed.
    async fn wait_for_news(&self, signals: &mut crate::store::feed::RunSignals) {
        let poll = tokio::time::sleep(self.poll);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                () = &mut poll => return,
                signal = signals.next() => match signal {
                    RunSignal::Resync => return,
                    RunSignal::Changed { run_id } if run_id == self.run_id => return,
                    RunSignal::Changed { .. } => {}
                },
            }
        }
    }

    /// The run ended: the rest of its complete log after `next`, then Done.
    async fn finish(&self, next: u64, sender: &mpsc::Sender<LogItem>) {
        let items = match self.store.get_run(&self.owner, &self.run_id).await {
            Ok(Some(stored)) => {
                let (first_seq, events) = stored_events(&stored, next);
                events
                    .into_iter()
                    .zip(first_seq..)
                    .filter(|(_, seq)| *seq > next)
                    .map(|(data, seq)| LogItem::Event { seq, data })
                    .collect()
            }
            Ok(None) => Vec::new(),
            Err(error) => {
                tracing::warn!(run_id = %self.run_id,
                    error = %crate::telemetry::error_chain(&error),
                    "cannot read a followed run's stored log");
                Vec::new()
            }
        };
        for item in items.into_iter().chain(std::iter::once(LogItem::Done)) {
            if sender.send(item).await.is_err() {
                return;
            }
        }
    }
}

fn is_unfinished(state: RunState) -> bool {
    matches!(state, RunState::Queued | RunState::Running)
}

/// A stored run's events and the number of the first, for a reader after event `after`.
///
/// A run ended by another brain or a restart (`recovered_after_event`: its own brain had stored
/// `k` events) whose reader is at or past `k` gets the ending — error and finish — numbered
/// right after its cursor: it may have seen events of the dead brain that were never stored,
/// and must still learn how the run ended. The same for a run interrupted before any log was
/// stored. No allocation depends on the cursor.
pub(crate) fn stored_events(stored: &StoredRun, after: u64) -> (u64, Vec<Arc<str>>) {
    if let Some(events) = stored
        .events_json
        .as_deref()
        .and_then(|json| serde_json::from_str::<Vec<Value>>(json).ok())
    {
        let events: Vec<Arc<str>> = events
            .iter()
            .map(|event| Arc::from(event.to_string()))
            .collect();
        return match stored.recovered_after_event {
            Some(kept) if after >= kept => {
                let kept = usize::try_from(kept).unwrap_or(usize::MAX);
                let ending = events.get(kept..).map(<[_]>::to_vec).unwrap_or_default();
                (after.saturating_add(1), ending)
            }
            _ => (1, events),
        };
    }
    let message = stored
        .run
        .error
        .clone()
        .unwrap_or_else(|| INTERRUPTED.to_owned());
    (
        after.saturating_add(1),
        ending(&stored.run.id, stored.run.state, &message)
            .into_iter()
            .map(Arc::from)
            .collect(),
    )
}

/// The error and finish events that end a failed run, as JSON.
pub(crate) fn ending(run_id: &str, state: RunState, message: &str) -> Vec<String> {
    [
        UiMessageChunk::Error {
            error_text: message.to_owned(),
        },
        UiMessageChunk::Finish {
            finish_reason: Some(FinishReason::Error),
            message_metadata: Some(
                json!({"runId": run_id, "state": state.as_str(), "finishReason": "error"}),
            ),
        },
    ]
    .iter()
    .map(|chunk| serde_json::to_string(chunk).unwrap_or_default())
    .collect()
}
