//! Sign-in settings: the OpenID provider, this edge as its client, and the lifetimes of what the
//! edge issues after a sign-in. Read once per isolate from string variables.

use core::fmt;

use crate::core::auth::config::{NotHttps, https_or_loopback};

/// Names of the variables [`SigninConfig::from_vars`] reads.
pub mod vars {
    /// The provider's issuer URL (`https://…`; `http://` only for loopback hosts). Unset: no
    /// sign-in (the `/auth/*` endpoints answer 404, `/auth/me` says so).
    pub const OIDC_ISSUER: &str = "OIDC_ISSUER";
    /// This edge's client id at the provider (required with `OIDC_ISSUER`).
    pub const OIDC_CLIENT_ID: &str = "OIDC_CLIENT_ID";
    /// The client secret (a **secret**); unset for a public client (PKCE alone).
    pub const OIDC_CLIENT_SECRET: &str = "OIDC_CLIENT_SECRET";
    /// Space-separated scopes asked for (default `openid profile email`; `openid` is added
    /// when missing).
    pub const OIDC_SCOPES: &str = "OIDC_SCOPES";
    /// ID-token claims whose values become the user's scopes (default `scope`; JSON array or
    /// comma-separated), and whose values become roles (default `roles`).
    pub const OIDC_SCOPE_CLAIMS: &str = "OIDC_SCOPE_CLAIMS";
    pub const OIDC_ROLE_CLAIMS: &str = "OIDC_ROLE_CLAIMS";
    /// Lifetime of the edge's access credential (default 300 s).
    pub const SIGNIN_ACCESS_TTL_SECS: &str = "SIGNIN_ACCESS_TTL_SECS";
    /// Lifetime of one refresh token (default 14 days; every refresh issues a new one).
    pub const SIGNIN_REFRESH_TTL_SECS: &str = "SIGNIN_REFRESH_TTL_SECS";
    /// Longest a sign-in lasts however often it is refreshed (default 30 days).
    pub const SIGNIN_MAX_AGE_SECS: &str = "SIGNIN_MAX_AGE_SECS";
    /// How long the discovery document is cached (default 3600 s).
    pub const OIDC_DISCOVERY_TTL_SECS: &str = "OIDC_DISCOVERY_TTL_SECS";
}

/// How long a call to the provider (discovery document, token endpoint) may take.
pub const PROVIDER_TIMEOUT_MS: u64 = 10_000;

/// The provider and this edge's registration with it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigninConfig {
    /// Exactly as configured, without a trailing slash; the ID token's `iss` must equal it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Always contains `openid`.
    pub scopes: Vec<String>,
    pub scope_claims: Vec<String>,
    pub role_claims: Vec<String>,
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    pub max_age_secs: u64,
    pub discovery_ttl_secs: u64,
}

impl fmt::Debug for SigninConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigninConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "redacted"),
            )
            .field("scopes", &self.scopes)
            .field("access_ttl_secs", &self.access_ttl_secs)
            .field("refresh_ttl_secs", &self.refresh_ttl_secs)
            .field("max_age_secs", &self.max_age_secs)
            .finish_non_exhaustive()
    }
}

/// A bad sign-in setting: the variable and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigninConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl fmt::Display for SigninConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.reason)
    }
}

impl SigninConfig {
    pub const DEFAULT_ACCESS_TTL_SECS: u64 = 300;
    pub const DEFAULT_REFRESH_TTL_SECS: u64 = 14 * 24 * 3600;
    pub const DEFAULT_MAX_AGE_SECS: u64 = 30 * 24 * 3600;
    pub const DEFAULT_DISCOVERY_TTL_SECS: u64 = 3600;

    /// `Ok(None)` when `OIDC_ISSUER` is unset or empty.
    pub fn from_vars(
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, SigninConfigError> {
        let set = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let Some(issuer) = set(vars::OIDC_ISSUER) else {
            return Ok(None);
        };
        let issuer = issuer.trim().trim_end_matches('/').to_owned();
        check_url(&issuer).map_err(|reason| SigninConfigError {
            var: vars::OIDC_ISSUER,
            reason,
        })?;
        let client_id = set(vars::OIDC_CLIENT_ID)
            .map(|id| id.trim().to_owned())
            .ok_or_else(|| SigninConfigError {
                var: vars::OIDC_CLIENT_ID,
                reason: "required with OIDC_ISSUER".to_owned(),
            })?;
        if !client_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SigninConfigError {
                var: vars::OIDC_CLIENT_ID,
                reason: "must be visible ASCII".to_owned(),
            });
        }
        let mut scopes: Vec<String> = set(vars::OIDC_SCOPES)
            .unwrap_or_else(|| "openid profile email".to_owned())
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !scopes.iter().any(|scope| scope == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        if scopes.iter().any(|scope| {
            !scope
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return Err(SigninConfigError {
                var: vars::OIDC_SCOPES,
                reason: "scopes must be visible ASCII without quotes or backslashes".to_owned(),
            });
        }
        let list = |name: &'static str, default: &str| -> Vec<String> {
            set(name)
                .unwrap_or_else(|| default.to_owned())
                .split(',')
                .map(|claim| claim.trim().to_owned())
                .filter(|claim| !claim.is_empty())
                .collect()
        };
        let number = |name: &'static str, default: u64| -> Result<u64, SigninConfigError> {
            match set(name) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=10 * 365 * 24 * 3600).contains(n))
                    .ok_or_else(|| SigninConfigError {
                        var: name,
                        reason: format!(
                            "expected whole seconds between 1 and ten years, got {text:?}"
                        ),
                    }),
            }
        };
        let config = Self {
            issuer,
            client_id,
            client_secret: set(vars::OIDC_CLIENT_SECRET),
            scopes,
            scope_claims: list(vars::OIDC_SCOPE_CLAIMS, "scope"),
            role_claims: list(vars::OIDC_ROLE_CLAIMS, "roles"),
            access_ttl_secs: number(vars::SIGNIN_ACCESS_TTL_SECS, Self::DEFAULT_ACCESS_TTL_SECS)?,
            refresh_ttl_secs: number(
                vars::SIGNIN_REFRESH_TTL_SECS,
                Self::DEFAULT_REFRESH_TTL_SECS,
            )?,
            max_age_secs: number(vars::SIGNIN_MAX_AGE_SECS, Self::DEFAULT_MAX_AGE_SECS)?,
            discovery_ttl_secs: number(
                vars::OIDC_DISCOVERY_TTL_SECS,
                Self::DEFAULT_DISCOVERY_TTL_SECS,
            )?,
        };
        if config.access_ttl_secs > config.max_age_secs {
            return Err(SigninConfigError {
                var: vars::SIGNIN_ACCESS_TTL_SECS,
                reason: "longer than SIGNIN_MAX_AGE_SECS".to_owned(),
            });
        }
        Ok(Some(config))
    }

    /// Where the provider's discovery document is (OpenID Connect Discovery 1.0 §4).
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }
}

/// `https://…`, or `http://` to a loopback host (local development and tests); no userinfo,
/// query or fragment.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let rest = match https_or_loopback(url) {
        Ok(rest) => rest,
        Err(NotHttps::PlainHttpElsewhere) => {
            return Err(format!(
                "{url:?}: plain http is only allowed to a loopback host"
            ));
        }
        Err(NotHttps::OtherScheme) => return Err(format!("{url:?} is not an https:// URL")),
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty()
        || authority.contains('@')
        || url.contains(['?', '#'])
        || !url.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(format!("{url:?} is not a plain URL (host, optional path)"));
    }
    Ok(())
}
