//! The brain: edgebrain's long-running native service.
//!
//! The edge (a WASM worker) proxies `/api/*` here. The brain is an axum + tokio HTTP server with
//! sqlx persistence on SQLite (default, a file in the data directory) or PostgreSQL. Everything
//! that goes on the wire is a `shared-types` type; brain internals are never serialized.
//!
//! # Layout
//! The code map (what each module holds, which may import which, and the invariants between
//! them) is `ARCHITECTURE.md`, section `brain/`, kept true with the code; each module's own
//! documentation says the rest. The README documents the endpoints and the flags.

pub mod account;
pub mod agent;
pub mod chat;
pub mod clock;
pub mod config;
pub mod data;
pub mod http;
pub mod knowledge;
pub mod llm;
pub mod metrics;
pub mod prompts;
pub mod run_log;
pub mod startup;
pub mod store;
pub mod telemetry;

pub use config::Config;
pub use startup::{Application, Extras};

/// The version reported by `/health`, `/ready` and recorded on every start.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
