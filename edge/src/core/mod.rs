//! Sans-IO core of the edge: request in, [`Decision`] out.
//!
//! Nothing here performs I/O or reads a clock or an RNG: the adapter passes `now` and random bytes
//! in ([`Inputs`]). No function in this module panics on any input.
//!
//! # Layout
//! - [`auth`]: JWT bearer authentication, per-route [`auth::AuthPolicy`] and the sans-IO JWKS
//!   cache ([`auth::KeyStore`]).
//! - [`config`]: [`EdgeConfig`], parsed once from string variables (wrangler `[vars]`).
//! - [`request_id`]: validating or minting the `x-request-id`.
//! - [`route`]: the request pipeline ([`decide`]) and the upstream response/failure handling.
//! - [`response`]: the edge's own responses (health, errors) in the shared wire shapes.

pub mod auth;
pub mod config;
pub mod request_id;
pub mod response;
pub mod route;

#[cfg(test)]
mod properties;

pub use config::{ConfigError, EdgeConfig};
pub use request_id::RequestId;
pub use response::EdgeResponse;
pub use route::{
    Decision, Inputs, ProxyRequest, RequestHead, UpstreamFailure, decide, upstream_failure,
    upstream_response_headers,
};
