//! Provisioning of whole PostgreSQL databases.
//!
//! The service never calls these: they exist for provisioning scripts and for the test-suite,
//! which gives every test its own database (and must not use `sqlx` itself, see [`super`]).

use std::str::FromStr;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, AssertSqlSafe, ConnectOptions, Connection};

use super::StoreError;
use crate::config::DatabaseUrl;

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
