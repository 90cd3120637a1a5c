//! A fetch the requests of one isolate share: one request fetches, the others that need its
//! result wait for it instead of going on without (or fetching again), each on its own timer.
//!
//! Used for the JWT keys ([`crate::core::auth::KeyRefresh`]) and for sign-in's discovery
//! document ([`crate::core::signin::DiscoveryRefresh`]); each keeps a [`FetchMark`] next to what
//! the fetch refreshes, and each request's part in it is a [`SharedFetch`].
//!
//! Requests never share the fetch itself: Workers forbid awaiting I/O that another request
//! started, and a request whose client went away is cancelled with everything it awaits. They
//! share only the mark that a fetch is running, which counts for that fetch's timeout at most
//! (a cancelled fetch never reports back). A clock that went backwards ends a wait, so a skewed
//! clock can hold no request up.

/// How long a request waiting for another request's fetch sleeps between looks.
pub const LOOK_AGAIN_MS: u64 = 10;

/// What the adapter does next for a request's part in a shared fetch; `F` says what to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAction<F> {
    /// Make this fetch and report how it went.
    Fetch(F),
    /// Another request is fetching: sleep `ms`, then look again.
    LookAgainIn { ms: u64 },
    /// What was fetched is as fresh as this request can have it: go on. `problem` is for the
    /// log — why this request's fetch brought nothing new.
    Done { problem: Option<String> },
}

/// The isolate's mark that a fetch is running, kept with what the fetch refreshes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchMark {
    running: Option<Running>,
}

/// A fetch handed out and not yet reported (ms since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Running {
    started_ms: u64,
    /// When the fetch times out: no request waits for it past then.
    until_ms: u64,
}

impl FetchMark {
    /// When the running fetch will have timed out, if one is running at `now_ms`.
    pub fn running_until(&self, now_ms: u64) -> Option<u64> {
        let running = self.running?;
        (running.started_ms <= now_ms && now_ms < running.until_ms).then_some(running.until_ms)
    }

    fn start(&mut self, now_ms: u64, timeout_ms: u64) {
        self.running = Some(Running {
            started_ms: now_ms,
            until_ms: now_ms.saturating_add(timeout_ms),
        });
    }

    /// Clears the mark of the fetch handed out at `started_ms` — only that one's: a later fetch
    /// may have been handed out meanwhile (the earlier one having timed out).
    fn end(&mut self, started_ms: u64) {
        if self
            .running
            .is_some_and(|running| running.started_ms == started_ms)
        {
            self.running = None;
        }
    }
}

/// One request's part in a shared fetch: its own fetch, or a wait for another request's.
#[derive(Debug)]
pub struct SharedFetch {
    /// When this request's own fetch was handed out (ms since the epoch); `None` while it
    /// waits for another request's fetch, and once its fetch has ended.
    own_fetch_ms: Option<u64>,
}

impl SharedFetch {
    /// This request's own fetch, handed out at `now_ms` and timing out `timeout_ms` later:
    /// marked running, so that other requests wait for it.
    pub fn own(mark: &mut FetchMark, now_ms: u64, timeout_ms: u64) -> Self {
        mark.start(now_ms, timeout_ms);
        Self {
            own_fetch_ms: Some(now_ms),
        }
    }

    /// A wait for whatever fetch another request is running.
    pub fn waiting() -> Self {
        Self { own_fetch_ms: None }
    }

    /// Whether this request's own fetch is out.
    pub fn is_fetching(&self) -> bool {
        self.own_fetch_ms.is_some()
    }

    /// This request's own fetch ended — it reported, or the adapter will not report it — so
    /// nobody waits for it any more; whether there was one (a report without one is not to be
    /// applied: it was not asked for).
    pub fn end(&mut self, mark: &mut FetchMark) -> bool {
        let Some(started_ms) = self.own_fetch_ms.take() else {
            return false;
        };
        mark.end(started_ms);
        true
    }

    /// Looks again whether another request's fetch is still running: wait on (never past its
    /// timeout), or go on with whatever it brought.
    pub fn look_again<F>(&mut self, mark: &mut FetchMark, now_ms: u64) -> FetchAction<F> {
        if self.end(mark) {
            // Waiting on our own fetch would wait for nothing: its outcome comes as a report.
            // Ended, so that nobody waits for it either.
            return FetchAction::Done {
                problem: Some("looked again while this request's own fetch runs".to_owned()),
            };
        }
        match mark.running_until(now_ms) {
            Some(until_ms) => FetchAction::LookAgainIn {
                ms: LOOK_AGAIN_MS.min(until_ms.saturating_sub(now_ms)),
            },
            None => FetchAction::Done { problem: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;
    const TIMEOUT_MS: u64 = 2_000;

    type Action = FetchAction<()>;

    #[test]
    fn a_wait_lasts_while_the_fetch_runs_and_never_past_its_timeout() {
        let mut mark = FetchMark::default();
        let _running = SharedFetch::own(&mut mark, T0, TIMEOUT_MS);
        let mut waiting = SharedFetch::waiting();
        for (now_ms, expected) in [
            (T0, Action::LookAgainIn { ms: LOOK_AGAIN_MS }),
            (T0 + 1_000, Action::LookAgainIn { ms: LOOK_AGAIN_MS }),
            (T0 + TIMEOUT_MS - 3, Action::LookAgainIn { ms: 3 }),
            (T0 + TIMEOUT_MS, Action::Done { problem: None }),
            (u64::MAX, Action::Done { problem: None }),
            (T0 - 1, Action::Done { problem: None }),
        ] {
            assert_eq!(
                waiting.look_again(&mut mark, now_ms),
                expected,
                "at {now_ms}"
            );
        }
    }

    #[test]
    fn a_fetch_at_the_end_of_time_neither_overflows_nor_waits_forever() {
        let mut mark = FetchMark::default();
        let _running = SharedFetch::own(&mut mark, u64::MAX - 1, TIMEOUT_MS);
        assert_eq!(mark.running_until(u64::MAX - 1), Some(u64::MAX));
        assert_eq!(mark.running_until(u64::MAX), None);
    }

    #[test]
    fn only_the_fetch_that_set_the_mark_clears_it() {
        let mut mark = FetchMark::default();
        let mut early = SharedFetch::own(&mut mark, T0, TIMEOUT_MS);
        let mut late = SharedFetch::own(&mut mark, T0 + TIMEOUT_MS, TIMEOUT_MS);
        assert!(early.end(&mut mark));
        assert_eq!(
            mark.running_until(T0 + TIMEOUT_MS + 1),
            Some(T0 + 2 * TIMEOUT_MS)
        );
        assert!(!early.end(&mut mark), "ended once");
        assert!(late.end(&mut mark));
        assert_eq!(mark.running_until(T0 + TIMEOUT_MS + 1), None);
    }

    #[test]
    fn looking_again_during_the_own_fetch_ends_it_and_says_so() {
        let mut mark = FetchMark::default();
        let mut own = SharedFetch::own(&mut mark, T0, TIMEOUT_MS);
        assert!(matches!(
            own.look_again::<()>(&mut mark, T0 + 1),
            Action::Done { problem: Some(_) }
        ));
        assert!(!own.is_fetching());
        assert_eq!(mark.running_until(T0 + 1), None, "nobody waits for it");
    }
}
