//! The brain: edgebrain's long-running native service.
//!
//! The edge (a WASM worker) proxies `/api/*` here. The brain is an axum + tokio HTTP server with
//! sqlx persistence on SQLite (default, a file in the data directory) or PostgreSQL. Everything
//! that goes on the wire is a `shared-types` type; brain internals are never serialized.
//!
//! # Layout
//! - [`config`]: command-line flags / environment variables ([`Config`]), and the database
//!   settings derived from them.
//! - [`telemetry`]: the global `tracing` subscriber (text or JSON lines on stdout).
//! - [`startup`]: [`Application`]: connect the store, bind the listener, serve until a shutdown
//!   signal, then drain in-flight requests for a bounded grace period.
//! - [`http`]: the router ([`http::app`]) and its middleware stack (request id, one completion
//!   log line per request, error bodies, panic catching, body limit), one module per resource:
//!   - [`http::health`]: `GET /health` (liveness) and `GET /ready` (database readiness).
//!   - [`http::diag`]: `/api/v1/diag/stream` (SSE flush probe) and `/api/v1/diag/echo`.
//!   - [`http::error`]: the one error type handlers return, rendered as `shared_types::error::ErrorBody`.
//!   - [`http::extract`]: extractors that reject in that error shape (e.g. `invalid_query`).
//!   - [`http::datasets`]: `/api/v1/datasets` (upload, import, list, describe, rename,
//!     replace, append, delete, pin, memory statistics).
//!   - [`http::queries`]: `/api/v1/queries/{sql,json}` with content negotiation.
//!   - [`http::metrics`]: `GET /metrics` (Prometheus) and the request-latency middleware.
//! - [`data`]: the data plane: datasets as Parquet + in-memory polars frames (memory manager,
//!   ingestion, SQL allowlist, typed JSON queries, sample data). No HTTP, no sqlx.
//! - [`knowledge`]: the knowledge base (retrieval): document text extraction, chunking,
//!   embeddings (local all-MiniLM-L6-v2 or an OpenAI-compatible API), BM25 + vector search
//!   fused by reciprocal rank fusion. No HTTP, no sqlx.
//!   - [`http::documents`]: `/api/v1/documents` and `/api/v1/knowledge/search`.
//! - [`metrics`]: the Prometheus registry other subsystems register their metrics with.
//!   - [`http::threads`]: `/api/v1/threads` (conversations, the streaming chat endpoint).
//!   - [`http::runs`]: `/api/v1/runs` (state, reconnect, cancel) and `/api/v1/usage`.
//! - [`llm`]: LLM providers behind one trait (OpenAI-compatible, Anthropic), the router with
//!   retries and fallback, the provider/model configuration, token counting.
//! - [`agent`]: agents as configuration: the loop's state machine and its I/O driver, typed
//!   tools (data, knowledge, escalation), guardrails, the agents file.
//! - [`chat`]: conversations and runs: context building, prompt templates, built-in tools, the
//!   run task and its event log that readers follow and reconnect to.
//! - [`store`]: persistence. The only module that may use `sqlx` (an architecture invariant
//!   checked in CI), so the database library never leaks into HTTP code.
//! - `migrations/` (crate root): embedded SQL migrations, portable across SQLite and PostgreSQL.
//!
//! `main.rs` is a thin wrapper: parse [`Config`], [`telemetry::init`], [`Application::build`],
//! [`Application::run_until_stopped`] with [`startup::shutdown_signal`].

pub mod agent;
pub mod chat;
pub mod config;
pub mod data;
pub mod http;
pub mod knowledge;
pub mod llm;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;

mod clock;

pub use config::Config;
pub use startup::{Application, Extras};

/// The version reported by `/health`, `/ready` and recorded on every start.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
