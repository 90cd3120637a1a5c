//! Signals that runs' stored events changed, for clients following a run through a brain other
//! than the one running it.
//!
//! Every write of run events (an append, a run's end) signals `"<run id> <last event number>"`.
//! On PostgreSQL the signal is a `NOTIFY` on [`RUN_EVENTS_CHANNEL`] sent by the writing
//! transaction (delivered to every brain when it commits); each brain holds one `LISTEN`
//! connection ([`Store::listen_for_run_events`], sqlx's `PgListener`) and fans the signals out
//! to its followers. On SQLite (a fleet of one) the store signals its own followers after each
//! commit.
//!
//! A signal only says "read again": followers re-read the stored events after their cursor, so
//! a lost, late or duplicated signal never loses or repeats an event. When the listening
//! connection was lost (notifications sent meanwhile are gone), the listener reconnects and
//! then sends [`RunSignal::Resync`]: every follower re-reads. A follower that falls behind the
//! fan-out buffer is told the same way (`Lagged`).

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

use super::Store;

/// The PostgreSQL notification channel of run event writes.
pub const RUN_EVENTS_CHANNEL: &str = "edgebrain_run_events";

/// Signals buffered per follower before it has to re-read everything it follows.
const FEED_CAPACITY: usize = 1024;

/// Wait before reconnecting a lost listening connection (doubled per failure, up to the max).
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// What a follower is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunSignal {
    /// Events of this run were stored, or the run ended.
    Changed { run_id: String },
    /// Signals may have been missed: re-read every run followed.
    Resync,
}

/// One follower's receiving end.
#[derive(Debug)]
pub struct RunSignals {
    receiver: broadcast::Receiver<RunSignal>,
}

impl RunSignals {
    /// The next signal; a follower that fell behind gets [`RunSignal::Resync`]. Pending
    /// forever once the store is gone.
    pub async fn next(&mut self) -> RunSignal {
        match self.receiver.recv().await {
            Ok(signal) => signal,
            Err(broadcast::error::RecvError::Lagged(_)) => RunSignal::Resync,
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// The sending side, one per [`Store`].
#[derive(Debug, Clone)]
pub(super) struct Feed {
    sender: broadcast::Sender<RunSignal>,
}

impl Feed {
    pub(super) fn new() -> Self {
        Self {
            sender: broadcast::channel(FEED_CAPACITY).0,
        }
    }

    pub(super) fn send(&self, signal: RunSignal) {
        // No follower listening is fine.
        let _ = self.sender.send(signal);
    }
}

/// The payload of a signal: run id and the number of its last stored event.
pub(super) fn payload(run_id: &str, last_event: u64) -> String {
    format!("{run_id} {last_event}")
}

fn run_id_of(payload: &str) -> &str {
    payload.split_once(' ').map_or(payload, |(id, _)| id)
}

impl Store {
    /// Subscribes to run event signals. Subscribe *before* reading the stored events, so that
    /// no write after the read goes unsignalled.
    pub fn run_signals(&self) -> RunSignals {
        RunSignals {
            receiver: self.feed.sender.subscribe(),
        }
    }

    /// On PostgreSQL: listens for run event notifications until `stop` resolves, reconnecting
    /// (with backoff) whenever the connection is lost, and sends [`RunSignal::Resync`] after
    /// each (re)connection. On SQLite: returns at once (the store signals its followers itself).
    pub async fn listen_for_run_events(&self, stop: impl Future<Output = ()>) {
        if self.backend != super::Backend::Postgres {
            return;
        }
        tokio::pin!(stop);
        let mut backoff = RECONNECT_MIN;
        loop {
            let listener = tokio::select! {
                () = &mut stop => return,
                listener = self.connect_listener() => listener,
            };
            let mut listener = match listener {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(error = %crate::telemetry::error_chain(&error),
                        retry_in_ms = backoff.as_millis(),
                        "cannot listen for run events; followers of runs on other brains poll");
                    tokio::select! {
                        () = &mut stop => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                    continue;
                }
            };
            backoff = RECONNECT_MIN;
            // Whatever was sent while no connection listened is read again.
            self.feed.send(RunSignal::Resync);
            loop {
                let received = tokio::select! {
                    () = &mut stop => return,
                    received = listener.try_recv() => received,
                };
                match received {
                    Ok(Some(notification)) => self.feed.send(RunSignal::Changed {
                        run_id: run_id_of(notification.payload()).to_owned(),
                    }),
                    // The connection was lost: reconnect explicitly, then resync.
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(error = %crate::telemetry::error_chain(&error),
                            "the run events listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }

    async fn connect_listener(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect(self.url.expose()).await?;
        listener.listen(RUN_EVENTS_CHANNEL).await?;
        Ok(listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_the_run() {
        assert_eq!(run_id_of(&payload("r-1", 7)), "r-1");
        assert_eq!(run_id_of("bare"), "bare");
    }
}
