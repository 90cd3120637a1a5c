//! Wall-clock helpers, and [`Clock`]: the one clock the run leases read, injected so that
//! tests (and simulations) can move it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch. A clock set before 1970 reads as 0 rather than failing:
/// timestamps are informational here, never used for ordering.
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// [`unix_millis`] as the `i64` the database stores.
pub(crate) fn now_ms() -> i64 {
    i64::try_from(unix_millis()).unwrap_or(i64::MAX)
}

/// The application's clock: the system clock plus an offset that only [`Clock::advance`]
/// changes. Clones share the offset. Leases (who runs a run, until when) are timestamps of this
/// clock compared across brains, so brains of one fleet need synchronised clocks (NTP); the
/// lease is many seconds long, so ordinary skew of milliseconds does not matter.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Milliseconds since the Unix epoch, as the database stores them.
    pub fn now_ms(&self) -> i64 {
        now_ms().saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and its clones) forward by `by`: tests let leases expire this way
    /// instead of waiting.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(by, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let copy = clock.clone();
        let before = copy.now_ms();
        clock.advance(Duration::from_secs(3600));
        assert!(copy.now_ms() >= before + 3_600_000);
    }
}
