//! Live runs: each run's UI message stream is an append-only, in-memory event log that any
//! number of readers follow (the request that started the run, reconnecting clients). Readers
//! never affect the run: a closed browser drops its reader, the run goes on.
//!
//! Event ids are 1-based positions in the log (`id:` of each SSE event); a reader that saw event
//! `n` reconnects with `Last-Event-ID: n` and receives `n+1…`, then the live tail. While the run
//! goes on, its brain stores the new events in small batches (`chat_run_events`), where readers
//! on other brains follow them ([`crate::chat::remote`]); when the run finishes the log is
//! written to the database (`chat_runs.events`), and the in-memory copy is dropped after the
//! retention time; later reconnects replay the stored log.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::Stream;
use futures_util::stream;
use shared_types::chat::UiMessageChunk;
use tokio::sync::watch;

/// Why a run was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `POST /api/v1/runs/{id}/cancel`, or its thread was deleted: the run ends `cancelled`.
    Caller,
    /// The brain is shutting down: the run ends `failed` (interrupted), output kept.
    Shutdown,
    /// The brain lost the run's lease (another brain failed the run after the lease expired,
    /// or its thread was deleted through another brain): stop, store nothing more.
    LeaseLost,
}

/// One item a reader receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogItem {
    /// Event number `seq` (1-based) with its JSON data.
    Event { seq: u64, data: Arc<str> },
    /// The run is over; no more events will come.
    Done,
}

#[derive(Debug, Default)]
struct RunLog {
    events: Vec<Arc<str>>,
    finished: bool,
}

/// A run in progress (or recently finished) in this process.
#[derive(Debug)]
pub struct LiveRun {
    pub id: String,
    pub owner: String,
    pub thread_id: String,
    log: Mutex<RunLog>,
    /// Bumped on every append and at the end, waking readers.
    changed: watch::Sender<u64>,
    stop: watch::Sender<Option<StopReason>>,
}

impl LiveRun {
    pub fn new(id: String, owner: String, thread_id: String) -> Self {
        Self {
            id,
            owner,
            thread_id,
            log: Mutex::new(RunLog::default()),
            changed: watch::channel(0).0,
            stop: watch::channel(None).0,
        }
    }

    fn log(&self) -> MutexGuard<'_, RunLog> {
        // A poisoned lock only means a panic elsewhere mid-push; the Vec is still valid.
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends a chunk to the log.
    pub fn emit(&self, chunk: &UiMessageChunk) {
        let data: Arc<str> = match serde_json::to_string(chunk) {
            Ok(json) => json.into(),
            // A chunk of strings and JSON values always serializes; never lose the slot.
            Err(_) => r#"{"type":"error","errorText":"unserializable chunk"}"#.into(),
        };
        let count = {
            let mut log = self.log();
            log.events.push(data);
            log.events.len() as u64
        };
        self.changed.send_replace(count);
    }

    /// Closes the log: readers get [`LogItem::Done`] after the last event.
    pub fn finish(&self) {
        self.log().finished = true;
        self.changed.send_modify(|version| *version += 1);
    }

    pub fn is_finished(&self) -> bool {
        self.log().finished
    }

    /// Number of events in the log.
    pub fn len(&self) -> u64 {
        self.log().events.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events from position `from` (0-based) on.
    pub fn events_from(&self, from: u64) -> Vec<Arc<str>> {
        let log = self.log();
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        log.events
            .get(from..)
            .map(<[_]>::to_vec)
            .unwrap_or_default()
    }

    /// Changes with every append and at the end.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The whole log as a JSON array (for the database).
    pub fn events_json(&self) -> String {
        let log = self.log();
        let mut json = String::from("[");
        for (index, event) in log.events.iter().enumerate() {
            if index > 0 {
                json.push(',');
            }
            json.push_str(event);
        }
        json.push(']');
        json
    }

    /// Asks the run to stop; the first reason given wins.
    pub fn request_stop(&self, reason: StopReason) {
        self.stop.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Resolves with the reason once a stop was requested.
    pub fn stop_requested(&self) -> impl std::future::Future<Output = StopReason> + Send + 'static {
        let mut receiver = self.stop.subscribe();
        async move {
            let reason = match receiver.wait_for(Option::is_some).await {
                Ok(reason) => Some((*reason).unwrap_or(StopReason::Caller)),
                Err(_) => None,
            };
            match reason {
                Some(reason) => reason,
                // The run was dropped: nothing is waiting for this any more.
                None => std::future::pending().await,
            }
        }
    }

    /// Events after number `after`, then the live tail, then [`LogItem::Done`].
    pub fn follow(self: Arc<Self>, after: u64) -> impl Stream<Item = LogItem> + Send + 'static {
        let receiver = self.changed.subscribe();
        stream::unfold(
            (self, receiver, after, false),
            |(run, mut receiver, next, done)| async move {
                if done {
                    return None;
                }
                loop {
                    // Mark the current version seen *before* reading the log, so an append
                    // between the read and the wait still wakes us.
                    receiver.borrow_and_update();
                    let item = {
                        let log = run.log();
                        let index = usize::try_from(next).unwrap_or(usize::MAX);
                        if let Some(data) = log.events.get(index) {
                            Some(LogItem::Event {
                                seq: next + 1,
                                data: Arc::clone(data),
                            })
                        } else if log.finished {
                            Some(LogItem::Done)
                        } else {
                            None
                        }
                    };
                    match item {
                        Some(LogItem::Event { seq, data }) => {
                            return Some((
                                LogItem::Event { seq, data },
                                (run, receiver, seq, false),
                            ));
                        }
                        Some(LogItem::Done) => {
                            return Some((LogItem::Done, (run, receiver, next, true)));
                        }
                        None => {
                            if receiver.changed().await.is_err() {
                                return None;
                            }
                        }
                    }
                }
            },
        )
    }
}

/// Replays a stored log whose first event has number `first_seq`: the events numbered after
/// `after`, then [`LogItem::Done`].
pub fn replay(
    events: Vec<Arc<str>>,
    first_seq: u64,
    after: u64,
) -> impl Stream<Item = LogItem> + Send + 'static {
    let items: Vec<LogItem> = events
        .into_iter()
        .zip(first_seq..)
        .filter(|(_, seq)| *seq > after)
        .map(|(data, seq)| LogItem::Event { seq, data })
        .chain(std::iter::once(LogItem::Done))
        .collect();
    stream::iter(items)
}

/// Runs alive in this process, and the threads that have one (one run per thread at a time,
/// so a thread's history is never written by two replies at once).
#[derive(Debug, Default)]
pub struct RunRegistry {
    inner: Mutex<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    runs: HashMap<String, Arc<LiveRun>>,
    busy_threads: HashSet<String>,
}

impl RunRegistry {
    fn inner(&self) -> MutexGuard<'_, RegistryInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims `thread_id` for a new run; `false` if it already has one.
    pub fn claim_thread(&self, thread_id: &str) -> bool {
        self.inner().busy_threads.insert(thread_id.to_owned())
    }

    pub fn release_thread(&self, thread_id: &str) {
        self.inner().busy_threads.remove(thread_id);
    }

    pub fn insert(&self, run: Arc<LiveRun>) {
        self.inner().runs.insert(run.id.clone(), run);
    }

    pub fn get(&self, id: &str) -> Option<Arc<LiveRun>> {
        self.inner().runs.get(id).cloned()
    }

    pub fn remove(&self, id: &str) {
        self.inner().runs.remove(id);
    }

    /// Every live run (for shutdown).
    pub fn all(&self) -> Vec<Arc<LiveRun>> {
        self.inner().runs.values().cloned().collect()
    }

    /// Runs in memory that have not finished.
    pub fn unfinished(&self) -> Vec<Arc<LiveRun>> {
        self.all()
            .into_iter()
            .filter(|run| !run.is_finished())
            .collect()
    }

    /// Live runs of one thread (for cancelling before a delete).
    pub fn of_thread(&self, thread_id: &str) -> Vec<Arc<LiveRun>> {
        self.inner()
            .runs
            .values()
            .filter(|run| run.thread_id == thread_id)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn collect(stream: impl Stream<Item = LogItem>) -> Vec<LogItem> {
        futures_util::StreamExt::collect(stream).await
    }

    fn delta(text: &str) -> UiMessageChunk {
        UiMessageChunk::TextDelta {
            id: "t".into(),
            delta: text.into(),
        }
    }

    fn seqs(items: &[LogItem]) -> Vec<u64> {
        items
            .iter()
            .filter_map(|item| match item {
                LogItem::Event { seq, .. } => Some(*seq),
                LogItem::Done => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_late_reader_gets_the_rest_then_the_live_tail_without_duplicates() {
        let run = Arc::new(LiveRun::new("r".into(), "o".into(), "t".into()));
        run.emit(&delta("a"));
        run.emit(&delta("b"));
        let reader = tokio::spawn(collect(Arc::clone(&run).follow(1)));
        run.emit(&delta("c"));
        run.finish();
        let items = reader.await.unwrap();
        assert_eq!(seqs(&items), vec![2, 3]);
        assert_eq!(items.last(), Some(&LogItem::Done));
        assert_eq!(run.events_json().matches("text-delta").count(), 3);
    }

    #[tokio::test]
    async fn replay_skips_what_the_reader_has() {
        let events: Vec<Arc<str>> = vec!["1".into(), "2".into(), "3".into()];
        let items = collect(replay(events.clone(), 1, 2)).await;
        assert_eq!(seqs(&items), vec![3]);
        assert_eq!(items.last(), Some(&LogItem::Done));
        // A log numbered from far along (an interrupted run's ending after a large cursor).
        let items = collect(replay(events, 9_007_199_254_740_990, 9_007_199_254_740_990)).await;
        assert_eq!(
            seqs(&items),
            vec![9_007_199_254_740_991, 9_007_199_254_740_992]
        );
    }

    #[test]
    fn a_thread_holds_one_run_at_a_time() {
        let registry = RunRegistry::default();
        assert!(registry.claim_thread("t"));
        assert!(!registry.claim_thread("t"));
        registry.release_thread("t");
        assert!(registry.claim_thread("t"));
    }
}
