//! Persistence. The only module that may use `sqlx` (an architecture invariant checked in CI):
//! everything else sees [`Store`], [`Backend`] and [`StoreError`].
//!
//! One [`sqlx::AnyPool`] serves SQLite and PostgreSQL alike. To keep that honest, the migrations
//! in `migrations/` and every query string here are portable SQL, with `$1`-style placeholders
//! (which both SQLite and PostgreSQL accept through the Any driver).

pub mod admin;
pub mod claims;
pub mod datasets;
pub mod escalations;
pub mod feed;
pub mod knowledge;
pub mod refresh;
pub mod runs;
pub mod threads;
pub mod url;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::AnyPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;

pub use url::{DatabaseConfig, DatabaseUrl, DatabaseUrlError};

/// The schema, embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`: the `detail` of the readiness check and the `backend` log field.
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed store operation. `Display` is a short, secret-free summary (safe for readiness
/// reports); the `sqlx` detail is in [`std::error::Error::source`], for the log only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("database unreachable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database query failed")]
    Query(#[source] sqlx::Error),
    #[error("a row with the same unique key exists")]
    Conflict(#[source] sqlx::Error),
    #[error("invalid database name `{0}` (expected [a-z_][a-z0-9_]*, at most 63 bytes)")]
    InvalidDatabaseName(String),
}

impl StoreError {
    /// Whether the database could not be reached at all (as opposed to rejecting a statement):
    /// callers answer 503 rather than 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// Sorts a runtime `sqlx` error into "could not reach the database" and everything else.
    fn from_sqlx(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            other => StoreError::Query(other),
        }
    }

    /// Like [`StoreError::from_sqlx`], recognising unique-key violations as
    /// [`StoreError::Conflict`].
    fn from_write(error: sqlx::Error) -> Self {
        let unique = error
            .as_database_error()
            .is_some_and(|database| database.is_unique_violation());
        if unique {
            StoreError::Conflict(error)
        } else {
            Self::from_sqlx(error)
        }
    }
}

/// `?` on a sqlx call: "could not reach the database" or "the statement failed"
/// ([`StoreError::from_sqlx`]). Writes that may hit a unique key say so with
/// [`StoreError::from_write`] instead.
impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::from_sqlx(error)
    }
}

/// Decodes every row read with `decode`; a row that does not decode fails the read
/// ([`StoreError::Query`]).
fn decode_rows<T>(
    rows: &[AnyRow],
    decode: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(decode)
        .collect::<Result<_, _>>()
        .map_err(StoreError::Query)
}

/// Decodes the row read, if there is one, with `decode` (failing like [`decode_rows`]).
fn decode_row<T>(
    row: Option<&AnyRow>,
    decode: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Option<T>, StoreError> {
    row.map(decode).transpose().map_err(StoreError::Query)
}

/// The brain's database: a connection pool with the schema migrated.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// For the PostgreSQL `LISTEN` connection of [`feed`], which cannot be a pooled one.
    url: DatabaseUrl,
    /// Signals to followers of runs' stored events ([`feed`]).
    feed: feed::Feed,
}

/// Opens the pool's first `count` connections at once, in the background: sqlx opens
/// `min_connections` only one after another inside `connect_with` (≈ 100 ms each to PostgreSQL
/// over TLS here, a second of start-up for ten), or — lazily — not until it first reaps one.
fn open_in_background(pool: &AnyPool, count: u32) {
    let pool = pool.clone();
    tokio::spawn(async move {
        if let Err(error) = open_connections(&pool, count).await {
            tracing::warn!(error = %crate::telemetry::error_chain(&error),
                "cannot open the database pool's idle connections; they open on demand");
        }
    });
}

/// Holds `count` connections of `pool` at once (opening what is missing, concurrently), then
/// gives them back to it as idle ones.
async fn open_connections(pool: &AnyPool, count: u32) -> Result<(), sqlx::Error> {
    let opened = futures_util::future::join_all((0..count).map(|_| pool.acquire())).await;
    opened
        .into_iter()
        .try_for_each(|connection| connection.map(drop))
}

impl Store {
    /// Connects (waiting at most `acquire_timeout`), then applies pending migrations.
    ///
    /// A SQLite file is created if missing (the default URL carries `mode=rwc`), but not its
    /// directory: the caller creates that.
    pub async fn connect(config: &DatabaseConfig) -> Result<Self, StoreError> {
        // Idempotent: only the first call in the process installs the drivers.
        sqlx::any::install_default_drivers();
        let options =
            AnyConnectOptions::from_str(config.url.expose()).map_err(StoreError::InvalidUrl)?;
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections)
            // Kept from then on: sqlx replaces a connection it closes (idle, lifetime).
            .min_connections(config.min_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_lazy_with(options);
        // One connection now, so that an unreachable database fails the start.
        drop(pool.acquire().await.map_err(|error| match error {
            sqlx::Error::Configuration(_) => StoreError::InvalidUrl(error),
            other => StoreError::Unavailable(other),
        })?);
        MIGRATOR.run(&pool).await.map_err(StoreError::Migrate)?;
        open_in_background(&pool, config.min_connections);
        Ok(Self {
            pool,
            backend: config.backend,
            url: config.url.clone(),
            feed: feed::Feed::new(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs a trivial statement and returns how long the round trip took.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(started.elapsed())
    }

    /// Appends one row to the audit trail of process starts.
    pub async fn record_start(
        &self,
        id: &str,
        version: &str,
        started_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO brain_starts (id, version, started_at_ms) VALUES ($1, $2, $3)")
            .bind(id.to_owned())
            .bind(version.to_owned())
            .bind(started_at_ms)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many starts have been recorded.
    pub async fn count_starts(&self) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM brain_starts")
            .fetch_one(&self.pool)
            .await?;
        // COUNT(*) is never negative.
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// Closes every pooled connection, waiting for checked-out ones to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_pool_s_first_connections_open_together() {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str("sqlite::memory:").unwrap();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .min_connections(3)
            .connect_lazy_with(options);
        assert_eq!(pool.size(), 0, "a lazy pool opens nothing by itself");
        open_connections(&pool, 3).await.unwrap();
        // Open, and given back (sqlx returns a dropped connection to the idle queue from a
        // task of its own, so `num_idle` may lag here).
        assert_eq!(pool.size(), 3);
    }
}
