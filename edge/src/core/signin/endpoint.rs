//! The `/auth/…` endpoints: which sign-in step a request asks for.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /auth/login[?return_to=/path]` | 302 to the provider ([`super::flow::login`]) |
//! | `GET /auth/callback?code&state` | the code exchange ([`AuthDecision::Exchange`]), then 302 back |
//! | `POST /auth/logout` | the refresh family revoked at the brain, every cookie cleared (204) |
//! | `GET /auth/me` | [`shared_types::account::AuthMe`]: sign-in offered? who is signed in? |
//!
//! Without `OIDC_ISSUER` only `/auth/me` answers (sign-in not available); the rest are 404.

use http::header::ALLOW;
use http::{HeaderValue, Method};
use shared_types::error::ErrorCode;

use super::discovery::Discovery;
use super::flow::{
    self, CALLBACK_PATH, CookieAuth, LOGIN_PATH, LOGOUT_PATH, LoginRandom, ME_PATH, Provider,
    TokenRequest,
};
use crate::core::config::EdgeConfig;
use crate::core::pipeline::{RequestHead, path_query_origin};
use crate::core::request_id::RequestId;
use crate::core::response::EdgeResponse;
use shared_types::account::RevokeRefreshToken;

/// What the adapter must do for an `/auth/…` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    Respond(EdgeResponse),
    /// The provider's discovery document is needed — there is none, or it is older than its
    /// TTL and a refetch is due ([`Discovery::fetch_due`]): load it ([`super::DiscoveryRefresh`]:
    /// this request's fetch, or a wait for another's when there is no document) and decide
    /// again with `discovery_loaded`. The request that refetches answers after its fetch, with
    /// the new document or — the fetch failed — the old one: simplest, and this sign-in step
    /// uses the provider's endpoints as of now.
    Discover,
    /// POST this token request; read its answer with [`flow::read_id_token`].
    Exchange(Box<TokenRequest>),
    /// Revoke this refresh token at the brain (if any), then answer [`flow::signed_out`].
    SignOut(Option<RevokeRefreshToken>),
}

/// Decides an `/auth/…` request (one `decide` answered with `Decision::SignIn`). `discovery` is
/// the isolate's cached discovery document; `discovery_loaded` says this request has loaded it
/// already (after [`AuthDecision::Discover`]), so it goes on with whatever document there is.
pub fn decide_auth(
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    discovery: &Discovery,
    discovery_loaded: bool,
    random: &LoginRandom,
    now_secs: u64,
    request_id: &RequestId,
) -> AuthDecision {
    let Some((path, query, origin)) = path_query_origin(head) else {
        return AuthDecision::Respond(EdgeResponse::error(
            ErrorCode::BadRequest,
            "the request URL is malformed",
            request_id,
        ));
    };
    let origin = origin.as_str();
    let allow = |method: Method| {
        let mut response = EdgeResponse::error(
            ErrorCode::MethodNotAllowed,
            format!("{} is not allowed on {path}; use {method}", head.method),
            request_id,
        );
        if let Ok(value) = HeaderValue::from_str(method.as_str()) {
            response.headers.insert(ALLOW, value);
        }
        AuthDecision::Respond(response)
    };
    let Some(signin) = &config.signin else {
        return match path {
            ME_PATH if *head.method == Method::GET => {
                AuthDecision::Respond(flow::me(false, None, request_id))
            }
            ME_PATH => allow(Method::GET),
            _ => AuthDecision::Respond(EdgeResponse::error(
                ErrorCode::NotFound,
                "sign-in is not configured on this deployment",
                request_id,
            )),
        };
    };
    let expected = match path {
        LOGIN_PATH | CALLBACK_PATH | ME_PATH => Method::GET,
        LOGOUT_PATH => Method::POST,
        _ => {
            return AuthDecision::Respond(EdgeResponse::error(
                ErrorCode::NotFound,
                format!("no route for {path}"),
                request_id,
            ));
        }
    };
    if *head.method != expected {
        return allow(expected);
    }
    match path {
        ME_PATH => {
            let grant = match flow::cookie_auth(head.headers, &config.sessions, now_secs) {
                CookieAuth::Valid(grant) => Some(grant),
                // An expired access cookie: the web app's next API call refreshes it.
                CookieAuth::NeedsRefresh { .. } | CookieAuth::Absent => None,
            };
            AuthDecision::Respond(flow::me(true, grant.as_ref(), request_id))
        }
        LOGOUT_PATH => {
            // A cross-site form must not sign the user out either.
            if !flow::same_origin(head.method, head.headers, origin) {
                return AuthDecision::Respond(EdgeResponse::error(
                    ErrorCode::Forbidden,
                    "signing out must come from this site",
                    request_id,
                ));
            }
            AuthDecision::SignOut(flow::revocation(head.headers))
        }
        _ => {
            // Checked before the document is used, like the JWT keys' TTL before a token.
            if !discovery_loaded && discovery.fetch_due(now_secs, signin) {
                return AuthDecision::Discover;
            }
            let Some(metadata) = discovery.metadata() else {
                return if discovery_loaded {
                    AuthDecision::Respond(discovery_unavailable(request_id))
                } else {
                    // No fetch due: another request is fetching the first document (this one
                    // waits for it), or the last attempt was lately (it finds nothing to wait
                    // for, and decides again to a 503).
                    AuthDecision::Discover
                };
            };
            let provider = Provider {
                config: signin,
                metadata,
                sessions: &config.sessions,
                origin,
            };
            if path == LOGIN_PATH {
                AuthDecision::Respond(flow::login(query, &provider, random, now_secs, request_id))
            } else {
                match flow::callback_request(query, head.headers, &provider, now_secs) {
                    Ok(token) => AuthDecision::Exchange(Box::new(token)),
                    Err(refusal) => AuthDecision::Respond(refusal.response(request_id)),
                }
            }
        }
    }
}

/// The answer to a sign-in step when no discovery document could be loaded.
pub fn discovery_unavailable(request_id: &RequestId) -> EdgeResponse {
    EdgeResponse::error(
        ErrorCode::Unavailable,
        "the identity provider's configuration could not be loaded; retry shortly",
        request_id,
    )
}
