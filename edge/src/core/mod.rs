//! Sans-IO core of the edge: request in, [`Decision`] out.
//!
//! Nothing here performs I/O or reads a clock or an RNG: the adapter passes `now` and random bytes
//! in ([`Inputs`]). No function in this module panics on any input.
//!
//! # Layout
//! - [`auth`]: JWT bearer authentication, per-route [`auth::AuthPolicy`] and the sans-IO JWKS
//!   cache ([`auth::KeyStore`]).
//! - [`config`]: [`EdgeConfig`], parsed once from string variables (wrangler `[vars]`).
//! - [`brains`]: the brains (`BRAIN_URLS`), tenant affinity by rendezvous hashing, and when a
//!   request goes on to the next brain.
//! - [`request_id`]: validating or minting the `x-request-id`.
//! - [`pipeline`]: the request pipeline ([`decide`]) in two phases — [`route()`] (the stages that
//!   need no credentials) and [`Routed::decide`] (authentication and the plan) — and the
//!   upstream response/failure handling.
//! - [`deciding`]: one request decided as a state machine ([`deciding::Deciding`]): the JWT
//!   keys refreshed when due or when a token names an unknown key, then [`route()`] and
//!   [`Routed::decide`].
//! - [`exchange`]: a proxied request as a state machine ([`exchange::Exchange`]): rate limit,
//!   body, cache, brain attempts, answer — each step an action the adapter carries out.
//! - [`response`]: the edge's own responses (health, errors) in the shared wire shapes.
//! - [`routes`]: the route table (`ROUTES`): per-route auth, cache and rate-limit policies.
//! - [`session`]: edge-issued session ids in signed, sliding, rotating tokens (cookie or header).
//! - [`signin`]: OpenID Connect sign-in at the edge, its access credential and refresh tokens.
//! - [`shared_fetch`]: one isolate's requests sharing a fetch (JWT keys, the discovery
//!   document): one fetches, the others wait for it, at most until its timeout.
//! - [`ratelimit`]: rate-limit policies, bucket keys, the exact token bucket a Durable Object
//!   keeps, and the `RateLimit`/`RateLimit-Policy` headers and 429.
//! - [`cache`]: per-route cache policies, cache keys, storability and freshness for the Cache API.
//! - [`cors`]: the CORS allowlist, preflights answered at the edge, CORS headers on responses.
//! - [`policy_error`]: the validation error shared by the per-route policies.
//! - [`rules`]: vercel.json rewrites, redirects and headers ([`rules::Rules`]).
//! - [`target`]: the request URL, parsed once ([`target::RequestTarget`]).

pub mod auth;
pub mod brains;
pub mod cache;
pub mod config;
pub mod cors;
pub mod deciding;
pub mod exchange;
pub mod pipeline;
pub mod policy_error;
pub mod ratelimit;
pub mod request_id;
pub mod response;
pub mod routes;
pub mod rules;
pub mod session;
pub mod shared_fetch;
pub mod signin;
pub mod target;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod test_support;

pub use config::{ConfigError, EdgeConfig};
pub use pipeline::{
    BodySigning, Decision, Inputs, NextAttempt, ProxyRequest, RequestHead, Routed, Routing,
    UpstreamFailure, decide, route, upstream_failure, upstream_response_headers,
};
pub use request_id::RequestId;
pub use response::EdgeResponse;
