//! Sign-in at the edge (issue 19): this edge as an OpenID Connect relying party — the
//! authorization-code flow with PKCE (S256), `state` and `nonce` against any provider named by
//! its issuer URL — and what it issues afterwards: a short-lived access credential sealed in a
//! cookie and a rotating refresh token whose state lives in the brain's database
//! (`shared_types::account`, the brain's `/internal/v1/auth/*`).
//!
//! Sans-IO like the rest of the core: [`discovery::Discovery`] caches the provider's metadata,
//! [`discovery::DiscoveryRefresh`] is one request's fetch of it (or wait for another's),
//! [`flow`] turns each step's inputs (query, cookies, the provider's and the brain's answers,
//! time, randomness) into the next request to make or the response to give.
//!
//! Why a sealed cookie and not an edge-minted JWT: only this edge ever reads the access
//! credential, so a MAC under the session keys (rotated like sessions) is all it needs; a JWT
//! would add an algorithm choice, a key distribution problem and bytes, for no reader.
//!
//! # Layout
//! - [`config`]: [`SigninConfig`] from `OIDC_*` and `SIGNIN_*` variables.
//! - [`discovery`]: the provider's discovery document, and fetching it.
//! - [`sealed`]: values sealed under the session keys for one purpose.
//! - [`flow`]: login, callback, cookie authentication and refresh, sign-out, `/auth/me`.
//! - [`endpoint`]: which step an `/auth/…` request asks for.

pub mod config;
pub mod discovery;
pub mod endpoint;
pub mod flow;
pub mod sealed;

#[cfg(test)]
mod tests;

pub use config::{PROVIDER_TIMEOUT_MS, SigninConfig, SigninConfigError};
pub use discovery::{
    Discovery, DiscoveryAction, DiscoveryError, DiscoveryFetch, DiscoveryRefresh, ProviderMetadata,
};
