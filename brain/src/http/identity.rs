//! Who is calling: the identity the edge asserts, as handlers see it.
//!
//! The edge authenticates the caller (JWT, session cookie) and forwards the result as the
//! `x-edgebrain-*` identity headers of [`shared_types::headers`]. The `edge_identity` middleware
//! turns them into an [`Identity`] request extension; handlers take the [`Identity`] extractor,
//! which answers 401 `unauthorized` when the request carries no identity at all.
//!
//! Tenancy is keyed by [`Identity::owner`]: the user id when signed in, otherwise the session id.
//! Every resource a caller creates is stored under that key, and every read filters by it.
//! Quotas that must not reset with a new session (the token budget) use
//! [`Identity::budget_key`] instead, which counts anonymous callers by network.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use shared_types::agent::OPERATOR_SCOPE;
use shared_types::diag::WhoAmI;
use shared_types::headers::{
    IDENTITY_NETWORK, IDENTITY_SCOPES, IDENTITY_SESSION, IDENTITY_USER, MAX_SCOPES_BYTES,
    decode_user_id,
};

use super::Error;
use crate::account;

/// Longest accepted session or network header value.
const MAX_IDENTITY_VALUE_BYTES: usize = 256;

/// The caller as established by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The verified user id (JWT `sub`), exactly as the identity provider issued it (the edge
    /// sends it percent-encoded, see [`shared_types::headers::encode_user_id`]); `None` for
    /// anonymous callers.
    pub user_id: Option<String>,
    /// The edge-issued session id; present for anonymous and signed-in callers alike.
    pub session_id: Option<String>,
    /// Scopes/roles granted by the identity provider.
    pub scopes: Vec<String>,
    /// The anonymous caller's network (an IPv4 address, an IPv6 /64, or `unknown`), as the edge
    /// saw it; `None` for signed-in callers.
    pub network: Option<String>,
}

impl Identity {
    /// Reads the identity headers. `Ok(None)` when neither a user nor a session is present.
    /// A header that is present but malformed — a user id not in the edge's encoding, a value
    /// too long or not visible ASCII — is an error (401), never skipped: skipping the user
    /// header would turn a signed-in caller into its anonymous session.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, Error> {
        let malformed = |name: &str| {
            Error::Unauthorized(format!("the edge's `{name}` identity header is malformed"))
        };
        let text = |name: &'static str, max_bytes: usize| -> Result<Option<&str>, Error> {
            let Some(value) = headers.get(name) else {
                return Ok(None);
            };
            let text = value.to_str().map_err(|_| malformed(name))?;
            if text.is_empty()
                || text.len() > max_bytes
                || !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
                || text.starts_with(' ')
                || text.ends_with(' ')
            {
                return Err(malformed(name));
            }
            Ok(Some(text))
        };
        let token = |name: &'static str| -> Result<Option<String>, Error> {
            match text(name, MAX_IDENTITY_VALUE_BYTES)? {
                Some(value) if value.contains(' ') => Err(malformed(name)),
                value => Ok(value.map(str::to_owned)),
            }
        };
        let user_id = match headers.get(IDENTITY_USER) {
            None => None,
            Some(value) => Some(
                value
                    .to_str()
                    .ok()
                    .and_then(decode_user_id)
                    .ok_or_else(|| malformed(IDENTITY_USER))?,
            ),
        };
        let session_id = token(IDENTITY_SESSION)?;
        let network = token(IDENTITY_NETWORK)?;
        let scopes = text(IDENTITY_SCOPES, MAX_SCOPES_BYTES)?
            .map(|scopes| {
                scopes
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if user_id.is_none() && session_id.is_none() {
            return Ok(None);
        }
        Ok(Some(Self {
            user_id,
            session_id,
            scopes,
            network,
        }))
    }

    /// The tenancy key: `user:<id>` when signed in, else `session:<id>`. Stable for a user
    /// across sessions; an anonymous caller's data belongs to its session. One-to-one: the
    /// kinds never share a key, and a user id is the exact `sub` (the edge refuses control
    /// characters, so the key is valid text for either database).
    pub fn owner(&self) -> String {
        match (&self.user_id, &self.session_id) {
            (Some(user), _) => account::user_owner(user),
            (None, Some(session)) => account::session_owner(session),
            // `from_headers` never builds an identity with neither.
            (None, None) => String::from("nobody:"),
        }
    }

    /// The key quotas that accumulate across requests (the token budget) count under: the
    /// user when signed in, else the anonymous caller's network (`network:<addr or /64>`) —
    /// a new session is free to mint, so per-session budgets would reset with every
    /// conversation. Without a network (requests not from the edge, `--insecure-local`) the
    /// owner.
    pub fn budget_key(&self) -> String {
        match (&self.user_id, &self.network) {
            (None, Some(network)) => format!("network:{network}"),
            _ => self.owner(),
        }
    }

    /// The caller as `GET /api/v1/session` (and the operators' `diag/whoami`) report it.
    pub fn who_am_i(&self) -> WhoAmI {
        WhoAmI {
            owner: self.owner(),
            budget_key: Some(self.budget_key()),
            user_id: self.user_id.clone(),
            session_id: self.session_id.clone(),
            scopes: self.scopes.clone(),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// A signed-in user whose identity provider granted [`OPERATOR_SCOPE`] (see
    /// [`Self::require_operator`]).
    pub fn is_operator(&self) -> bool {
        self.user_id.is_some() && self.has_scope(OPERATOR_SCOPE)
    }

    /// Ok for a signed-in user whose identity provider granted [`OPERATOR_SCOPE`]; otherwise
    /// 403 `forbidden` naming `what` (an anonymous caller never has scopes: the edge forwards
    /// them only from a verified token, but a user id is required too so that no header
    /// combination makes an anonymous session an operator).
    pub fn require_operator(&self, what: &str) -> Result<(), Error> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "{what} is for signed-in operators (scope `{OPERATOR_SCOPE}`)"
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Identity>().cloned().ok_or_else(|| {
            Error::Unauthorized("this endpoint needs a caller identity from the edge".to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;
    use shared_types::headers::encode_user_id;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn identity(pairs: &[(&'static str, &str)]) -> Result<Option<Identity>, Error> {
        Identity::from_headers(&headers(pairs))
    }

    #[test]
    fn any_subject_the_edge_encodes_is_exactly_that_user() {
        let long = "x".repeat(300);
        for sub in [
            "alice",
            "a b",
            "José",
            "東京",
            "a:b",
            "50%",
            long.as_str(),
            "user:x",
        ] {
            let encoded = encode_user_id(sub);
            let who = identity(&[(IDENTITY_USER, &encoded), (IDENTITY_SESSION, "s1")])
                .unwrap()
                .unwrap();
            assert_eq!(who.user_id.as_deref(), Some(sub));
            assert_eq!(who.owner(), format!("user:{sub}"));
            assert_eq!(who.budget_key(), who.owner());
        }
    }

    #[test]
    fn a_malformed_user_header_is_refused_not_skipped() {
        for bad in ["a b", "caf%c3%a9", "%00", "%FF", "a%41", " alice"] {
            let result = identity(&[(IDENTITY_USER, bad), (IDENTITY_SESSION, "s1")]);
            assert!(
                matches!(result, Err(Error::Unauthorized(_))),
                "{bad:?}: {result:?}"
            );
        }
        let too_long = "x".repeat(3 * 1024 + 1);
        assert!(identity(&[(IDENTITY_USER, &too_long), (IDENTITY_SESSION, "s1")]).is_err());
        assert!(identity(&[(IDENTITY_SESSION, "a b")]).is_err());
        assert!(identity(&[(IDENTITY_SESSION, "s1"), (IDENTITY_NETWORK, "")]).is_err());
        let many_scopes = "s ".repeat(MAX_SCOPES_BYTES);
        assert!(identity(&[(IDENTITY_SESSION, "s1"), (IDENTITY_SCOPES, &many_scopes)]).is_err());
    }

    #[test]
    fn owners_are_one_to_one() {
        let owners: Vec<String> = [
            identity(&[(IDENTITY_USER, "s1"), (IDENTITY_SESSION, "s1")]),
            identity(&[(IDENTITY_SESSION, "s1")]),
            identity(&[(IDENTITY_USER, &encode_user_id("session:s1"))]),
            identity(&[(IDENTITY_USER, &encode_user_id("a b"))]),
            identity(&[(IDENTITY_USER, &encode_user_id("a%20b"))]),
        ]
        .into_iter()
        .map(|who| who.unwrap().unwrap().owner())
        .collect();
        for (i, a) in owners.iter().enumerate() {
            for b in &owners[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn anonymous_budgets_count_by_network_users_by_themselves() {
        let anonymous = identity(&[
            (IDENTITY_SESSION, "s1"),
            (IDENTITY_NETWORK, "2001:db8::/64"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(anonymous.owner(), "session:s1");
        assert_eq!(anonymous.budget_key(), "network:2001:db8::/64");
        let other_session = identity(&[
            (IDENTITY_SESSION, "s2"),
            (IDENTITY_NETWORK, "2001:db8::/64"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(other_session.budget_key(), anonymous.budget_key());
        let user = identity(&[
            (IDENTITY_USER, "alice"),
            (IDENTITY_SESSION, "s1"),
            (IDENTITY_NETWORK, "2001:db8::/64"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(user.budget_key(), "user:alice");
        let no_network = identity(&[(IDENTITY_SESSION, "s1")]).unwrap().unwrap();
        assert_eq!(no_network.budget_key(), "session:s1");
    }

    #[test]
    fn no_user_and_no_session_is_no_identity() {
        assert_eq!(identity(&[]).unwrap(), None);
        assert_eq!(identity(&[(IDENTITY_SCOPES, "admin")]).unwrap(), None);
    }
}
