//! Wall-clock helpers.

use std::time::{SystemTime, UNIX_EPOCH};

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
