//! The edgebrain edge: what browsers talk to.
//!
//! A Cloudflare Worker (Rust compiled to `wasm32-unknown-unknown`) that answers its own health
//! checks and proxies `/api/*` to the brain, streaming responses through unbuffered.
//!
//! # Layout
//! - [`core`]: the sans-IO decision logic. It takes request parts, the typed [`core::EdgeConfig`],
//!   the current time and fresh randomness, and returns a [`core::Decision`]. It never performs
//!   I/O, never reads a clock or an RNG, and never panics; it is tested natively with `cargo test`.
//! - `worker` (wasm32 only): the thin Workers adapter. It reads wrangler `[vars]` into the config,
//!   gathers time and randomness, and carries decisions out with `fetch`, `AbortController` and
//!   timers. Tested end to end in workerd (`e2e/`).
//!
//! - [`header_text`]: header values between bytes and JS strings, by the runtime's own rule
//!   (UTF-8 on workerd, latin-1 on Node), so non-ASCII values cross the boundary unchanged.
//!   Pure; the adapter detects the runtime and calls it.
//!
//! - [`step_wire`]: the exchange's actions and the JS executor's reports as one JSON string
//!   each way per step (`edge/js/executor.mjs`). Pure.
//!
//! The adapter is the only module that imports `worker`, `web_sys` or `js_sys`.

pub mod core;
pub mod header_text;
pub mod step_wire;

#[cfg(target_arch = "wasm32")]
mod worker;
