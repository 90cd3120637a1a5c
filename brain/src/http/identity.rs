//! Who is calling: the identity the edge asserts, as handlers see it.
//!
//! The edge authenticates the caller (JWT, session cookie) and forwards the result as the
//! `x-edgebrain-*` identity headers of [`shared_types::headers`]. The `edge_identity` middleware
//! turns them into an [`Identity`] request extension; handlers take the [`Identity`] extractor,
//! which answers 401 `unauthorized` when the request carries no identity at all.
//!
//! Tenancy is keyed by [`Identity::owner`]: the user id when signed in, otherwise the session id.
//! Every resource a caller creates is stored under that key, and every read filters by it.

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use shared_types::headers::{IDENTITY_SCOPES, IDENTITY_SESSION, IDENTITY_USER};

use super::Error;

/// Longest accepted identity header value; longer ones are treated as absent.
const MAX_IDENTITY_VALUE_BYTES: usize = 256;

/// The caller as established by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The verified user id (JWT `sub`); `None` for anonymous callers.
    pub user_id: Option<String>,
    /// The edge-issued session id; present for anonymous and signed-in callers alike.
    pub session_id: Option<String>,
    /// Scopes/roles granted by the identity provider.
    pub scopes: Vec<String>,
}

impl Identity {
    /// Reads the identity headers. Values that are empty, too long or not visible ASCII are
    /// ignored (never trusted half-way). `None` when neither a user nor a session is present.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let value = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
                .filter(|value| {
                    !value.is_empty()
                        && value.len() <= MAX_IDENTITY_VALUE_BYTES
                        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
                })
                .map(str::to_owned)
        };
        let user_id = value(IDENTITY_USER).filter(|v| !v.contains(' '));
        let session_id = value(IDENTITY_SESSION).filter(|v| !v.contains(' '));
        if user_id.is_none() && session_id.is_none() {
            return None;
        }
        let scopes = value(IDENTITY_SCOPES)
            .map(|scopes| {
                scopes
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            user_id,
            session_id,
            scopes,
        })
    }

    /// The tenancy key: `user:<id>` when signed in, else `session:<id>`. Stable for a user
    /// across sessions; an anonymous caller's data belongs to its session.
    pub fn owner(&self) -> String {
        match (&self.user_id, &self.session_id) {
            (Some(user), _) => format!("user:{user}"),
            (None, Some(session)) => format!("session:{session}"),
            // `from_headers` never builds an identity with neither.
            (None, None) => String::from("nobody:"),
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
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

/// Middleware: puts the [`Identity`] asserted by the identity headers into the request
/// extensions (nothing when there is none).
pub(crate) async fn edge_identity(mut request: Request, next: Next) -> Response {
    if let Some(identity) = Identity::from_headers(request.headers()) {
        request.extensions_mut().insert(identity);
    }
    next.run(request).await
}
