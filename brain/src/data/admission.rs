//! Admission control for queries: at most `concurrency` queries execute at once, at most
//! `queue` more wait for a turn (first come, first served), and anything beyond is refused at
//! once with an estimate of when to retry.
//!
//! Why: polars runs every query on its one thread pool, sized to the cores. Queries admitted
//! beyond that do not finish sooner; they interleave on the same cores, thrash the caches and
//! stretch every latency (the issue measured p99 of seconds and *falling* throughput at 16
//! concurrent requests). Holding the surplus in a bounded queue keeps each running query at
//! full speed, and refusing past the queue turns overload into a fast, explicit 503 instead of
//! a timeout for everyone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Smallest `Retry-After` advertised, in seconds (the header has whole seconds).
const MIN_RETRY_AFTER_SECS: u64 = 1;
/// Weight of the newest sample in the moving average of service times, in 1/16ths.
const EWMA_NEW_SIXTEENTHS: u64 = 4;

/// The gate every query passes. Cheap to share (`Arc` inside).
#[derive(Debug, Clone)]
pub struct QueryGate {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    running: Arc<Semaphore>,
    concurrency: usize,
    queue: usize,
    waiting: AtomicUsize,
    /// Moving average of how long an admitted query holds its turn, in microseconds.
    mean_service_micros: AtomicU64,
}

/// Refused: the queue is full. `retry_after` estimates when a turn frees up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded {
    pub retry_after: Duration,
}

/// A turn to execute. Dropping it frees the turn and records how long it was held.
#[derive(Debug)]
pub struct QueryPermit {
    _permit: OwnedSemaphorePermit,
    gate: Arc<Inner>,
    admitted: Instant,
    /// How long the query waited in the queue.
    pub waited: Duration,
}

impl Drop for QueryPermit {
    fn drop(&mut self) {
        self.gate.record_service(self.admitted.elapsed());
    }
}

/// Counts a waiter while its future is alive, so a caller that gives up (a closed connection
/// drops the request's future) leaves the queue at once.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl QueryGate {
    /// `concurrency` ≥ 1 queries at once, `queue` more waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            inner: Arc::new(Inner {
                running: Arc::new(Semaphore::new(concurrency)),
                concurrency,
                queue,
                waiting: AtomicUsize::new(0),
                mean_service_micros: AtomicU64::new(0),
            }),
        }
    }

    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// Queries executing now.
    pub fn running(&self) -> usize {
        self.inner.concurrency - self.inner.running.available_permits()
    }

    /// Queries waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Acquire)
    }

    /// Waits for a turn (in arrival order), or refuses at once when the queue is full.
    pub async fn admit(&self) -> Result<QueryPermit, Overloaded> {
        let started = Instant::now();
        if let Ok(permit) = Arc::clone(&self.inner.running).try_acquire_owned() {
            return Ok(self.permit(permit, started));
        }
        let waiting = &self.inner.waiting;
        let mut current = waiting.load(Ordering::Acquire);
        loop {
            if current >= self.inner.queue {
                return Err(Overloaded {
                    retry_after: self.inner.retry_after(current),
                });
            }
            match waiting.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        let _waiting = Waiting(waiting);
        // Tokio's semaphore is fair: waiters are served in the order they started waiting.
        match Arc::clone(&self.inner.running).acquire_owned().await {
            Ok(permit) => Ok(self.permit(permit, started)),
            // Never closed; if it were, refusing is the safe answer.
            Err(_) => Err(Overloaded {
                retry_after: Duration::from_secs(MIN_RETRY_AFTER_SECS),
            }),
        }
    }

    fn permit(&self, permit: OwnedSemaphorePermit, started: Instant) -> QueryPermit {
        QueryPermit {
            _permit: permit,
            gate: Arc::clone(&self.inner),
            admitted: Instant::now(),
            waited: started.elapsed(),
        }
    }
}

impl Inner {
    fn record_service(&self, held: Duration) {
        let sample = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        // A lost update between two racing queries only skews an estimate.
        let old = self.mean_service_micros.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * (16 - EWMA_NEW_SIXTEENTHS) + sample * EWMA_NEW_SIXTEENTHS) / 16
        };
        self.mean_service_micros.store(new, Ordering::Relaxed);
    }

    /// When a newcomer could expect a turn: everyone queued ahead, plus the running ones, served
    /// `concurrency` at a time at the recent mean service time; whole seconds, at least one.
    fn retry_after(&self, waiting: usize) -> Duration {
        let mean = self.mean_service_micros.load(Ordering::Relaxed);
        let rounds = (waiting as u64 + self.concurrency as u64) / self.concurrency as u64;
        let micros = mean.saturating_mul(rounds);
        Duration::from_secs(micros.div_ceil(1_000_000).max(MIN_RETRY_AFTER_SECS))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_running_and_queue_everyone_is_refused_with_a_retry_estimate() {
        let gate = QueryGate::new(1, 2);
        let first = gate.admit().await.unwrap();
        assert_eq!(gate.running(), 1);
        // Two wait (the queue), the fourth is refused at once.
        let second = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit().await.map(|_| ()) }
        });
        let third = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit().await.map(|_| ()) }
        });
        while gate.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        let refused = gate.admit().await.expect_err("the queue is full");
        assert!(refused.retry_after >= Duration::from_secs(1));
        drop(first);
        second.await.unwrap().unwrap();
        third.await.unwrap().unwrap();
        assert_eq!((gate.running(), gate.waiting()), (0, 0));
        // With the queue empty again, the next one gets a turn.
        assert!(gate.admit().await.is_ok());
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_the_queue() {
        let gate = QueryGate::new(1, 1);
        let held = gate.admit().await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit().await.map(|_| ()) }
        });
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(gate.waiting(), 0);
        // Its place is free: another request may queue instead of being refused.
        let queued = tokio::spawn({
            let gate = gate.clone();
            async move { gate.admit().await.map(|_| ()) }
        });
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        drop(held);
        queued.await.unwrap().unwrap();
    }

    #[test]
    fn retry_after_grows_with_the_queue_and_service_time() {
        let gate = QueryGate::new(2, 100);
        gate.inner.record_service(Duration::from_millis(500));
        assert_eq!(gate.inner.retry_after(0), Duration::from_secs(1));
        // 40 ahead + 2 running, 2 at a time, 0.5 s each: 21 rounds → 10.5 s → 11 s.
        assert_eq!(gate.inner.retry_after(40), Duration::from_secs(11));
    }

    #[test]
    fn zero_concurrency_still_admits_one() {
        assert_eq!(QueryGate::new(0, 0).concurrency(), 1);
    }
}
