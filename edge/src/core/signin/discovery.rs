//! The provider's discovery document (OpenID Connect Discovery 1.0), sans-IO: [`Discovery`]
//! caches it — the last good document survives failed refreshes — and [`DiscoveryRefresh`] is
//! one request's part in fetching it, as a machine whose [`DiscoveryAction`]s the adapter
//! carries out: this request's own fetch, or a wait for the fetch another request of the
//! isolate runs (a cold isolate's first sign-ins arrive together), never past that fetch's
//! timeout ([`crate::core::shared_fetch`]).
//!
//! A document older than `OIDC_DISCOVERY_TTL_SECS` is refetched by the next sign-in step that
//! needs it ([`super::endpoint::decide_auth`] asks [`Discovery::fetch_due`] first, as the
//! bearer-token path asks `KeyRefresh::when_due`), and that request answers after its fetch:
//! with the new document, or with the old one when the fetch failed. Only a request without
//! any document waits for another request's fetch; with one — stale while another request
//! refetches it — a request goes on at once. Fetches are at least [`MIN_REFETCH_SECS`] apart
//! whatever the TTL, so a failing provider is not asked again on every sign-in.

use serde::Deserialize;

use super::config::{PROVIDER_TIMEOUT_MS, SigninConfig, check_url};
use crate::core::shared_fetch::{FetchAction, FetchMark, SharedFetch};

/// Largest discovery document accepted.
pub const MAX_DISCOVERY_BYTES: usize = 64 * 1024;
/// At most one fetch per this many seconds, whatever asks for it.
pub const MIN_REFETCH_SECS: u64 = 30;

// The rate limit also stands for "no fetch is running": a fetch handed out within it may still
// be out, none handed out before it can be (its timeout is shorter).
const _: () = assert!(PROVIDER_TIMEOUT_MS <= MIN_REFETCH_SECS * 1000);

/// What the edge needs from the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub end_session_endpoint: Option<String>,
    /// `client_secret_basic` unless the provider supports only `client_secret_post`.
    pub secret_in_body: bool,
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// Why a document was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    Status(u16),
    TooLarge,
    Malformed(String),
    /// `issuer` differs from the configured one (Discovery §4.3: never use such a document).
    WrongIssuer,
    /// The provider says it cannot do PKCE with S256.
    NoPkce,
    BadEndpoint(String),
}

impl ProviderMetadata {
    /// Parses and checks a discovery document for `config`'s issuer.
    pub fn parse(body: &[u8], config: &SigninConfig) -> Result<Self, DiscoveryError> {
        if body.len() > MAX_DISCOVERY_BYTES {
            return Err(DiscoveryError::TooLarge);
        }
        let raw: RawMetadata = serde_json::from_slice(body)
            .map_err(|error| DiscoveryError::Malformed(error.to_string()))?;
        if raw.issuer.trim_end_matches('/') != config.issuer {
            return Err(DiscoveryError::WrongIssuer);
        }
        if raw
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|methods| !methods.iter().any(|m| m == "S256"))
        {
            return Err(DiscoveryError::NoPkce);
        }
        for url in [
            &raw.authorization_endpoint,
            &raw.token_endpoint,
            &raw.jwks_uri,
        ]
        .into_iter()
        .chain(raw.end_session_endpoint.as_ref())
        {
            // The authorization endpoint may carry a query of its own; the check is on the rest.
            let base = url.split('?').next().unwrap_or(url);
            check_url(base).map_err(DiscoveryError::BadEndpoint)?;
        }
        let secret_in_body = raw
            .token_endpoint_auth_methods_supported
            .is_some_and(|methods| {
                !methods.iter().any(|m| m == "client_secret_basic")
                    && methods.iter().any(|m| m == "client_secret_post")
            });
        Ok(Self {
            issuer: raw.issuer,
            authorization_endpoint: raw.authorization_endpoint,
            token_endpoint: raw.token_endpoint,
            jwks_uri: raw.jwks_uri,
            end_session_endpoint: raw.end_session_endpoint,
            secret_in_body,
        })
    }
}

/// The cached document of one isolate.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    metadata: Option<ProviderMetadata>,
    fetched_at_secs: Option<u64>,
    last_attempt_secs: Option<u64>,
    /// That a request of the isolate is fetching the document (its timeout bounds the mark: a
    /// cancelled request's fetch never reports).
    fetching: FetchMark,
}

impl Discovery {
    /// The document, if one was ever fetched (a stale one is still used while refetching).
    pub fn metadata(&self) -> Option<&ProviderMetadata> {
        self.metadata.as_ref()
    }

    /// Whether a sign-in step should fetch the document before it goes on: there is none, or
    /// it was fetched `discovery_ttl_secs` or more ago — and no fetch was handed out within
    /// [`MIN_REFETCH_SECS`] (so none is running either). A clock that went backwards makes
    /// the document look fresh and the last attempt recent: it starts no fetch.
    pub(super) fn fetch_due(&self, now_secs: u64, config: &SigninConfig) -> bool {
        let fresh = self.metadata.is_some()
            && self
                .fetched_at_secs
                .is_some_and(|at| now_secs.saturating_sub(at) < config.discovery_ttl_secs);
        let tried_lately = self
            .last_attempt_secs
            .is_some_and(|at| now_secs.saturating_sub(at) < MIN_REFETCH_SECS);
        !fresh && !tried_lately
    }

    /// The URL to fetch now, if [`Discovery::fetch_due`]. Marks the attempt.
    pub(super) fn hand_out_fetch(
        &mut self,
        now_secs: u64,
        config: &SigninConfig,
    ) -> Option<String> {
        if !self.fetch_due(now_secs, config) {
            return None;
        }
        self.last_attempt_secs = Some(now_secs);
        Some(config.discovery_url())
    }

    /// Installs a fetched document; on any failure the previous one stays.
    pub(super) fn apply(
        &mut self,
        now_secs: u64,
        status: u16,
        body: &[u8],
        config: &SigninConfig,
    ) -> Result<(), DiscoveryError> {
        if status != 200 {
            return Err(DiscoveryError::Status(status));
        }
        let metadata = ProviderMetadata::parse(body, config)?;
        self.metadata = Some(metadata);
        self.fetched_at_secs = Some(now_secs);
        Ok(())
    }
}

/// A discovery fetch to make: GET `url` (redirects not followed, like every call to the
/// provider) within `timeout_ms`, reading at most `max_body_bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryFetch {
    pub url: String,
    pub timeout_ms: u64,
    pub max_body_bytes: usize,
}

/// What the adapter does next for a [`DiscoveryRefresh`]: [`FetchAction::Fetch`] — make the
/// [`DiscoveryFetch`] and report with [`DiscoveryRefresh::fetched`];
/// [`FetchAction::LookAgainIn`] — sleep, then [`DiscoveryRefresh::look_again`];
/// [`FetchAction::Done`] — read [`Discovery::metadata`] again and go on.
pub type DiscoveryAction = FetchAction<DiscoveryFetch>;

/// One request's part in loading the discovery document: its own fetch, or a wait for
/// another request's.
#[derive(Debug)]
pub struct DiscoveryRefresh {
    fetch: SharedFetch,
}

impl DiscoveryRefresh {
    /// For a sign-in step that needs the document ([`super::endpoint::AuthDecision::Discover`]):
    /// this request's own fetch when [`Discovery::fetch_due`]; otherwise, without a document, a
    /// wait for the fetch another request is running (or — none running — nothing to do); with
    /// one, nothing to do: a stale document is used while another request refetches it.
    pub fn start(
        discovery: &mut Discovery,
        config: &SigninConfig,
        now_ms: u64,
    ) -> (Self, DiscoveryAction) {
        let Some(url) = discovery.hand_out_fetch(now_ms / 1000, config) else {
            let mut waiting = Self {
                fetch: SharedFetch::waiting(),
            };
            let action = if discovery.metadata.is_some() {
                DiscoveryAction::Done { problem: None }
            } else {
                waiting.look_again(discovery, now_ms)
            };
            return (waiting, action);
        };
        let refresh = Self {
            fetch: SharedFetch::own(&mut discovery.fetching, now_ms, PROVIDER_TIMEOUT_MS),
        };
        let fetch = DiscoveryFetch {
            url,
            timeout_ms: PROVIDER_TIMEOUT_MS,
            max_body_bytes: MAX_DISCOVERY_BYTES,
        };
        (refresh, DiscoveryAction::Fetch(fetch))
    }

    /// This request's fetch ended: with the answer's status and body, or with why there is
    /// none. Only a good document replaces the cached one; the problem, if any, is for the log.
    pub fn fetched(
        &mut self,
        discovery: &mut Discovery,
        config: &SigninConfig,
        now_ms: u64,
        outcome: Result<(u16, Vec<u8>), String>,
    ) -> DiscoveryAction {
        if !self.fetch.end(&mut discovery.fetching) {
            return DiscoveryAction::Done {
                problem: Some("a discovery fetch reported that was not asked for".to_owned()),
            };
        }
        let url = config.discovery_url();
        let problem = match outcome {
            Ok((status, body)) => discovery
                .apply(now_ms / 1000, status, &body, config)
                .err()
                .map(|error| format!("OIDC discovery {url} refused: {error:?}")),
            Err(error) => Some(format!("OIDC discovery {url} failed: {error}")),
        };
        DiscoveryAction::Done { problem }
    }

    /// Looks again whether another request's fetch is still running: wait on (never past its
    /// timeout), or go on with whatever document there is now.
    pub fn look_again(&mut self, discovery: &mut Discovery, now_ms: u64) -> DiscoveryAction {
        self.fetch.look_again(&mut discovery.fetching, now_ms)
    }
}

#[cfg(test)]
mod tests;
