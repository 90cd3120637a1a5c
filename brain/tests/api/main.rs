//! Black-box tests of the brain over real HTTP: each test builds its own [`brain::Application`]
//! on 127.0.0.1 port 0 with a fresh data directory and a fresh database (a SQLite file, or a
//! PostgreSQL database `edgebrain_test_<uuid>` on the server named by `EDGEBRAIN_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`). PostgreSQL is required: without it
//! the PostgreSQL tests fail, they do not skip. So is the S3-compatible server of the object
//! store tests (moto, installed by `scripts/setup-s3`, started once per run: `s3_server`).

// Test code: a failed expectation should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod agent;
mod chat;
mod chat_crash;
mod datasets;
mod diag;
mod edge_auth;
mod errors;
mod fleet_runs;
mod fleet_store;
mod grounded;
mod health;
mod helpers;
mod hostile;
mod identity;
mod knowledge;
mod llm_server;
mod logging;
mod openapi;
mod queries;
mod s3_server;
mod scripted_llm;
mod shutdown;
mod sql_dates;
mod store;
