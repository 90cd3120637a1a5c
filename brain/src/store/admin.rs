//! Provisioning of whole PostgreSQL databases.
//!
//! The service never calls these: they exist for provisioning scripts and for the test-suite,
//! which gives every test its own database (and must not use `sqlx` itself, see [`super`]).

use std::str::FromStr;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, AssertSqlSafe, ConnectOptions, Connection};

use super::DatabaseUrl;
use super::StoreError;

/// Creates the database `name` on the PostgreSQL server `server` is connected to.
pub async fn create_postgres_database(server: &DatabaseUrl, name: &str) -> Result<(), StoreError> {
    // `template0` accepts no connections, so concurrent creations never trip over
    // "source database is being accessed by other users".
    execute_on_server(
        server,
        &format!(
            r#"CREATE DATABASE "{}" TEMPLATE template0"#,
            checked_name(name)?
        ),
    )
    .await
}

/// Drops the database `name` if it exists, terminating any connection still open to it.
pub async fn drop_postgres_database(server: &DatabaseUrl, name: &str) -> Result<(), StoreError> {
    execute_on_server(
        server,
        &format!(
            r#"DROP DATABASE IF EXISTS "{}" WITH (FORCE)"#,
            checked_name(name)?
        ),
    )
    .await
}

/// How many connections to the database `name` listen for run events (one per brain; see
/// [`super::feed`]).
pub async fn count_run_event_listeners(
    server: &DatabaseUrl,
    name: &str,
) -> Result<u64, StoreError> {
    listeners(server, name, "CAST(COUNT(*) AS BIGINT)").await
}

/// Terminates the connections to the database `name` that listen for run events, as a network
/// failure or an idle-connection reaper would (tests of the listener's reconnect). Returns how
/// many there were.
pub async fn terminate_run_event_listeners(
    server: &DatabaseUrl,
    name: &str,
) -> Result<u64, StoreError> {
    listeners(
        server,
        name,
        "CAST(COUNT(pg_terminate_backend(pid)) AS BIGINT)",
    )
    .await
}

async fn listeners(server: &DatabaseUrl, name: &str, select: &str) -> Result<u64, StoreError> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(server.expose()).map_err(StoreError::InvalidUrl)?;
    let mut connection: AnyConnection = options.connect().await.map_err(StoreError::Unavailable)?;
    let sql = format!(
        "SELECT {select} FROM pg_stat_activity WHERE datname = $1 AND query LIKE $2 \
         AND pid <> pg_backend_pid()"
    );
    let count: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(checked_name(name)?.to_owned())
        .bind(format!("LISTEN \"{}\"%", super::feed::RUN_EVENTS_CHANNEL))
        .fetch_one(&mut connection)
        .await?;
    let _ = connection.close().await;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// DDL cannot bind identifiers as parameters, so names are restricted to a safe alphabet.
fn checked_name(name: &str) -> Result<&str, StoreError> {
    let mut chars = name.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid_start && valid_rest && name.len() <= 63 {
        Ok(name)
    } else {
        Err(StoreError::InvalidDatabaseName(name.to_owned()))
    }
}

async fn execute_on_server(server: &DatabaseUrl, statement: &str) -> Result<(), StoreError> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(server.expose()).map_err(StoreError::InvalidUrl)?;
    let mut connection: AnyConnection = options.connect().await.map_err(StoreError::Unavailable)?;
    sqlx::raw_sql(AssertSqlSafe(statement))
        .execute(&mut connection)
        .await
        .map_err(StoreError::Query)?;
    connection.close().await.map_err(StoreError::Query)
}
