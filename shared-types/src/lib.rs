//! Wire contracts of edgebrain: every type that crosses a process boundary lives here.
//!
//! Browsers, the edge (wasm32), the brain (native) and third-party clients all (de)serialize
//! these types, so this crate depends on nothing but `serde` (and pure RustCrypto hashing for
//! [`signature`]) and must build for
//! `wasm32-unknown-unknown` as well as native targets.
//!
//! # Layout
//! - [`error`]: the one error body every service answers with, and its stable list of codes.
//! - [`health`]: liveness and readiness reports.
//! - [`diag`]: the deployment diagnostics (SSE stream probe, request echo).
//! - [`headers`]: names of the HTTP headers that are part of the contract.
//! - [`signature`]: the HMAC signature the edge puts on every request it proxies to the brain.
//! - [`data`]: the data plane: datasets, memory statistics, SQL and typed JSON queries.
//! - [`chat`]: threads, messages, runs, usage, the AI SDK UI message stream chunks, and the
//!   schema of the LLM provider/model configuration file.
//! - [`knowledge`]: the knowledge base: documents, their chunks with char offsets, hybrid search.
//!
//! - [`agent`]: agents, the `chart` tool's Vega-Lite spec, escalations to humans, and the schema
//!   of the agents configuration file.
//! - [`api`]: the versioned HTTP surface (`/api/v1`): every public endpoint, its method and path.
//! - `typescript` (feature `ts`): writes the TypeScript definitions of every public type
//!   (`scripts/gen-types` → `clients/ts/src`).
//!
//! # Features
//! Both default off, so the edge and every wasm32 build stay lean: `ts` derives `ts_rs::TS`
//! (TypeScript definitions), `openapi` derives `utoipa::ToSchema` (the brain's OpenAPI document).
//! A new public type gets `#[cfg_attr(feature = "ts", derive(ts_rs::TS))]` and
//! `#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]`, one line in
//! `typescript::public_types!` if nothing already exported references it, and an example in the
//! round-trip table (`examples.rs`).
//!
//! # Compatibility
//! Fields are only ever added (as `Option` or with a serde default); codes are never renamed.
//! Unknown error codes from a newer server deserialize as [`error::ErrorCode::Unknown`].

pub mod agent;
pub mod api;
pub mod chat;
pub mod data;
pub mod diag;
pub mod error;
pub mod headers;
pub mod health;
pub mod knowledge;
pub mod signature;
#[cfg(feature = "ts")]
pub mod typescript;

#[cfg(test)]
mod examples;
