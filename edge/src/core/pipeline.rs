//! The request pipeline: what the edge does with one request, and with the brain's answer.

use core::time::Duration;

use http::header::{
    ALLOW, AUTHORIZATION, CONNECTION, CONTENT_LENGTH, COOKIE, HOST, LOCATION, ORIGIN, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use shared_types::error::ErrorCode;
use shared_types::headers::{
    CLIENT_SESSION_ID, EDGE_SIGNATURE, IDENTITY_HEADERS, IDENTITY_NETWORK, IDENTITY_SCOPES,
    IDENTITY_SESSION, IDENTITY_USER, MAX_SCOPES_BYTES, MAX_USER_ID_BYTES, REQUEST_ID,
    encode_user_id,
};
use shared_types::signature::{self, UNSIGNED_PAYLOAD};

use super::auth::AuthPolicy;
use super::auth::jwt::ROLE_PREFIX;
use super::auth::{AuthOutcome, KeyStore, Principal, authenticate};
use super::brains::{
    AttemptFailure, AttemptOutcome, Brain, BrainHealth, RetryRule, TenantKey, Upstream,
};
use super::cache::{self, CacheKey, CachePolicy, CacheRequest, CacheStatus, KeyLocation};
use super::config::EdgeConfig;
use super::ratelimit::{self, Caller, RateLimitPlan};
use super::request_id::RequestId;
use super::response::{EdgeResponse, set_request_id};
use super::routes::Route;
use super::rules::{RequestFacts, Rewrite};
use super::session::{COOKIE_NAME, Session, without_cookie};
use super::signin::flow::{self as signin_flow, CookieAuth};
use super::target::RequestTarget;

/// The parts of an incoming request the core looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a Method,
    /// The request URL as the runtime received it: absolute (`https://host/path?query`) or
    /// origin-form (`/path?query`). Percent-encoding is left as is and never decoded.
    pub url: &'a str,
    pub headers: &'a HeaderMap,
    /// The client address as asserted by the platform itself (Cloudflare's `cf-connecting-ip`),
    /// never a client-supplied header.
    pub client_ip: Option<&'a str>,
}

/// What the core needs from the outside world, passed in so decisions are deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Fresh randomness, used to mint a request id when the client sent none.
    pub random: [u8; 16],
    /// Fresh randomness for a new session id (128 bits).
    pub session_random: [u8; 16],
    /// Fresh randomness for the signature nonce of the brain request.
    pub nonce: [u8; 16],
    /// True on the second decision for a request whose token named an unknown key, after the
    /// JWKS was refreshed (`crate::core::deciding::Deciding` sets it): an unknown key is then
    /// final (401).
    pub keys_refreshed: bool,
}

/// What the adapter must do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer directly; the brain is not involved.
    Respond(EdgeResponse),
    /// Forward to the brain and stream its answer back.
    Proxy(Box<ProxyRequest>),
    /// The bearer token names a key the store lacks: refresh the JWKS
    /// (`KeyRefresh::for_unknown_key`) and decide again with `keys_refreshed` set. Asked of
    /// [`Routed::decide`] only: `crate::core::deciding::Deciding` does this itself.
    RefreshKeys,
    /// An `/auth/…` endpoint of the sign-in: the adapter asks
    /// `signin::endpoint::decide_auth`, which needs the isolate's provider metadata.
    SignIn,
    /// The caller's access cookie is missing or expired but it holds a refresh token: rotate it
    /// at the brain (`signin::flow::rotation`), then decide again with the new access cookie in
    /// the request (or, if the brain refused, without either sign-in cookie), and add the
    /// resulting `Set-Cookie`s to the answer.
    RefreshSignIn { refresh_token: String },
}

impl Decision {
    /// Adds `Set-Cookie`s (a renewed sign-in's) to whatever answer the client gets.
    pub fn with_set_cookies(mut self, cookies: &[String]) -> Self {
        let headers = match &mut self {
            Decision::Respond(response) => &mut response.headers,
            Decision::Proxy(proxy) => &mut proxy.response_headers,
            Decision::RefreshKeys | Decision::SignIn | Decision::RefreshSignIn { .. } => {
                return self;
            }
        };
        for cookie in cookies {
            if let Ok(value) = HeaderValue::from_str(cookie) {
                headers.append(http::header::SET_COOKIE, value);
            }
        }
        self
    }
}

/// The cache treatment of a proxied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheStep {
    /// Not cached: answer with `x-edge-cache: BYPASS`.
    Bypass,
    /// Look `key` up first; store a storable answer under it.
    Lookup { key: CacheKey, policy: CachePolicy },
    /// A deterministic POST: the key needs the body (read for signing anyway); the exchange
    /// calls [`ProxyRequest::cache_key_for_body`] with it. `location` is the part the URL gives.
    LookupWithBody {
        policy: CachePolicy,
        location: KeyLocation,
    },
}

/// A request to send to the brain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    pub method: Method,
    /// Absolute URL at the brain being tried: its origin plus the request's own path and
    /// query ([`ProxyRequest::next_attempt`] moves it to the next brain).
    pub url: String,
    /// The request's path and query as the brain sees them (after rewrites).
    pub path_and_query: String,
    /// The tenant's order of the brains and the attempt being made; `None` for an external
    /// rewrite, which goes to its one URL.
    pub upstream: Option<Upstream>,
    pub headers: HeaderMap,
    /// Whether to stream the client's body through (never for `GET`/`HEAD`, which have none).
    pub forward_body: bool,
    /// The most body bytes the adapter may read or forward, whatever the framing (a declared
    /// `content-length` was checked already; a chunked body is counted as it streams). Past it
    /// the adapter cuts the upload — the brain sees an aborted body, never a short complete
    /// one — and answers [`ProxyRequest::body_too_large`].
    pub max_body_bytes: u64,
    /// How the body enters the signature: the exchange has a [`BodySigning::Hash`] body read
    /// into memory and passes its SHA-256 to [`ProxyRequest::sign`]; others are not read.
    pub body_signing: BodySigning,
    /// Time and nonce of the signature the exchange completes with [`ProxyRequest::sign`].
    pub signature_timestamp_secs: u64,
    pub signature_nonce: String,
    /// Headers to add to whatever answer the client gets (session cookie, …).
    pub response_headers: HeaderMap,
    /// The caller's session.
    pub session: Session,
    /// The verified user (JWT `sub`), if any.
    pub user_id: Option<String>,
    /// Ask the rate limiter first (the caller's bucket and, for callers who are not signed in,
    /// their network's, together), when the route has a policy.
    pub rate_limit: Option<RateLimitPlan>,
    pub cache: CacheStep,
    /// The request's `Origin`, for the CORS headers of the answer.
    pub origin: Option<HeaderValue>,
    /// True when proxying to an external origin (a `vercel.json` rewrite to `https://…`):
    /// nothing is signed and no identity or credential leaves.
    pub external: bool,
    /// Give up waiting for the brain's response headers at this instant (ms since the epoch)
    /// and answer with [`upstream_failure`]`(UpstreamFailure::TimedOut, …)`.
    pub deadline_ms: u64,
    pub request_id: RequestId,
}

/// How a proxied body is covered by the edge signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySigning {
    /// No body (`GET`/`HEAD`): the digest of the empty body.
    Empty,
    /// A body of known length within `SIGN_BODY_MAX_BYTES`: buffered and hashed.
    Hash,
    /// A large or length-less body: streamed through, signed as `UNSIGNED-PAYLOAD`.
    Stream,
}

impl ProxyRequest {
    /// The cache key of a deterministic POST once its body is known ([`CacheStep::LookupWithBody`]);
    /// `None` means bypass.
    pub fn cache_key_for_body(&self, body: &[u8], config: &EdgeConfig) -> Option<CacheKey> {
        let CacheStep::LookupWithBody { policy, location } = &self.cache else {
            return None;
        };
        let identity = cache_identity(self.user_id.as_deref(), &self.session);
        cache::cache_key(
            &CacheRequest {
                method: &self.method,
                headers: &self.headers,
                identity: Some(&identity),
                body: Some(body),
            },
            location,
            policy,
            config.cache_version,
        )
        .ok()
    }

    /// Adds the `x-edgebrain-signature` header, once the body digest is known
    /// (`None` for [`BodySigning::Empty`] and [`BodySigning::Stream`]).
    pub fn sign(&mut self, body_digest: Option<&str>, config: &EdgeConfig) {
        if self.external {
            return;
        }
        let empty_digest;
        let digest = match (self.body_signing, body_digest) {
            (BodySigning::Hash, Some(digest)) => digest,
            (BodySigning::Stream, _) | (BodySigning::Hash, None) => UNSIGNED_PAYLOAD,
            (BodySigning::Empty, _) => {
                empty_digest = signature::body_digest(b"");
                &empty_digest
            }
        };
        let identity = IDENTITY_HEADERS.map(|name| {
            self.headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
        });
        // Bound to the brain it is sent to: recomputed for every attempt.
        let authority = self
            .brain(config)
            .map_or("", |brain| brain.authority.as_str());
        let parts = signature::SignedParts {
            timestamp_secs: self.signature_timestamp_secs,
            nonce: &self.signature_nonce,
            method: self.method.as_str(),
            authority,
            path_and_query: &self.path_and_query,
            body_digest: digest,
            identity,
        };
        let value =
            signature::header_value(&parts, config.signing_secrets.iter().map(Vec::as_slice));
        if let Ok(value) = HeaderValue::from_str(&value) {
            self.headers
                .insert(HeaderName::from_static(EDGE_SIGNATURE), value);
        }
    }

    /// The answer when the body turned out longer than [`ProxyRequest::max_body_bytes`] while
    /// it was read: 413 in the error shape, with the plan's response headers.
    pub fn body_too_large(&self, config: &EdgeConfig) -> EdgeResponse {
        let response = upstream_failure(UpstreamFailure::BodyTooLarge, &self.request_id, config);
        finish_edge_response(response, self, config)
    }

    /// The brain being tried (`None` for an external rewrite).
    pub fn brain<'c>(&self, config: &'c EdgeConfig) -> Option<&'c Brain> {
        config.brains.get(self.upstream.as_ref()?.current()?)
    }

    /// Before the first attempt: starts at the tenant's first brain that `health` does not pass
    /// over (`edge::core::brains::BrainHealth`: one that recently refused connections or
    /// answered "draining"); the plan's URL follows.
    pub fn avoid_suspects(&mut self, health: &BrainHealth, config: &EdgeConfig, now_ms: u64) {
        if let Some(upstream) = self.upstream.as_mut()
            && let Some(index) = upstream.avoid_suspects(&config.brains, health, now_ms)
            && let Some(brain) = config.brains.get(index)
        {
            self.target(brain);
        }
    }

    /// Points the plan at `brain` (the signature made next is bound to it).
    fn target(&mut self, brain: &Brain) {
        self.url = format!("{}{}", brain.origin, self.path_and_query);
    }

    /// Records in `health` how the attempt at the current brain ended: `Ok(draining)` when it
    /// answered — `draining` if the answer carried `x-edgebrain-draining: 1`, which a draining
    /// brain puts on the reads it still serves — else why not (timeouts and oversized bodies
    /// say nothing about the brain's health).
    pub fn observe_attempt(
        &self,
        result: Result<bool, UpstreamFailure>,
        health: &mut BrainHealth,
        config: &EdgeConfig,
        now_ms: u64,
    ) {
        let outcome = match result {
            Ok(true) => AttemptOutcome::Unavailable,
            Ok(false) => AttemptOutcome::Answered,
            Err(UpstreamFailure::Unreachable | UpstreamFailure::Draining) => {
                AttemptOutcome::Unavailable
            }
            Err(UpstreamFailure::TimedOut | UpstreamFailure::BodyTooLarge) => return,
        };
        if let Some(brain) = self.brain(config) {
            health.observe(brain, outcome, now_ms);
        }
    }

    /// After an attempt failed: whether to send the request to the next brain of the tenant's
    /// order (the plan then targets it: [`ProxyRequest::url`], and the signature the exchange
    /// makes next), or the answer to give the client. The rules are `edge::core::brains`': a
    /// connect failure is retried for `GET`, `HEAD` and `retryable` routes, a draining answer for
    /// any method, and neither once the body was streamed; timeouts and oversized bodies never.
    pub fn next_attempt(&mut self, failure: UpstreamFailure, config: &EdgeConfig) -> NextAttempt {
        let attempt_failure = match failure {
            UpstreamFailure::Unreachable => AttemptFailure::ConnectFailed,
            UpstreamFailure::Draining => AttemptFailure::Draining,
            UpstreamFailure::TimedOut | UpstreamFailure::BodyTooLarge => AttemptFailure::Final,
        };
        if let Some(upstream) = self.upstream.as_mut()
            && let Some(index) = upstream.advance(attempt_failure)
            && let Some(brain) = config.brains.get(index)
        {
            self.target(brain);
            return NextAttempt::Retry(index);
        }
        let response = upstream_failure(failure, &self.request_id, config);
        NextAttempt::GiveUp(finish_edge_response(response, self, config))
    }

    /// Time left before [`ProxyRequest::deadline_ms`] as seen at `now_ms` (zero once passed).
    pub fn remaining(&self, now_ms: u64) -> Duration {
        Duration::from_millis(self.deadline_ms.saturating_sub(now_ms))
    }
}

/// What the exchange does after a failed attempt ([`ProxyRequest::next_attempt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextAttempt {
    /// Send the request again, to this brain (an index into `EdgeConfig::brains`; the plan's
    /// URL already points there), signed afresh for it.
    Retry(usize),
    /// Answer the client with this (the error shape, with the plan's response headers).
    GiveUp(EdgeResponse),
}

/// Why the brain's answer never arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// Connection refused, DNS failure, TLS failure, reset before headers…
    Unreachable,
    /// The brain answered `503` with `x-edgebrain-draining: 1`
    /// (`edge::core::brains::is_draining`): it is shutting down and did not process the request.
    Draining,
    /// No response headers before the deadline.
    TimedOut,
    /// The client's body passed [`ProxyRequest::max_body_bytes`] while it streamed to the brain,
    /// so the adapter cut the upload (413; the brain saw an aborted body and kept nothing).
    BodyTooLarge,
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and their legacy relatives: meaningful for one
/// connection only, so never forwarded in either direction.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
];

/// Client-supplied headers the edge replaces with its own trustworthy values. The identity
/// and signature headers are the edge's alone: a client sending them is ignored.
const EDGE_ASSERTED: [&str; 10] = [
    REQUEST_ID,
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    IDENTITY_USER,
    IDENTITY_SESSION,
    IDENTITY_SCOPES,
    IDENTITY_NETWORK,
    EDGE_SIGNATURE,
];

/// Decides what to do with one request: the whole edge pipeline, in order — size limits, URL
/// checks, CORS preflight, `/health`, `vercel.json` rules (redirect, rewrite, headers), the
/// route's authentication, the session, and the plan for the brain (rate limit, cache,
/// signature). `keys` is the isolate's JWT key store (`None` without `AUTH_CONFIG`).
/// The request's id: the client's `x-request-id` if valid, else one made of `random`.
pub fn request_id_of(head: &RequestHead<'_>, random: [u8; 16]) -> RequestId {
    head.headers
        .get(REQUEST_ID)
        .and_then(|value| RequestId::parse(value.as_bytes()))
        .unwrap_or_else(|| RequestId::from_random(random))
}

/// Path, query and origin (`scheme://host[:port]`) of a request; `None` for a malformed URL.
pub(crate) fn path_query_origin<'a>(head: &RequestHead<'a>) -> Option<(&'a str, &'a str, String)> {
    let target = RequestTarget::parse(head.url)?;
    Some((target.path, target.query(), request_origin(head, &target)))
}

pub fn decide(
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    keys: Option<&KeyStore>,
    inputs: Inputs,
) -> Decision {
    match route(head, config, inputs) {
        Routing::Decided(decision) => decision,
        Routing::Routed(routed) => routed.decide(head, config, keys, inputs),
    }
}

/// What [`route`] made of a request: decided already, or routed to the API and waiting for
/// [`Routed::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routing<'a> {
    Decided(Decision),
    Routed(Routed<'a>),
}

/// A request that passed every stage needing no credentials and goes to the API: what
/// [`Routed::decide`] needs to authenticate it and plan its way to a brain. Made once per
/// request: when the bearer token names an unknown key ([`Decision::RefreshKeys`]) the adapter
/// refreshes the keys and decides again from here, not from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed<'a> {
    target: RequestTarget<'a>,
    /// The path and query an internal rewrite gave the request, if any.
    rewritten: Option<String>,
    /// Headers the rules add to every answer.
    rule_headers: HeaderMap,
    request_id: RequestId,
}

/// The stages that need no credentials, in order — size limits, URL checks, CORS preflight,
/// `/health`, sign-in endpoints, `vercel.json` rules (redirect, rewrite, headers), the API
/// prefix — ending in an answer or in a [`Routed`] request.
pub fn route<'a>(head: &RequestHead<'a>, config: &EdgeConfig, inputs: Inputs) -> Routing<'a> {
    let request_id = request_id_of(head, inputs.random);
    let target = match admit(head, config) {
        Ok(target) => target,
        Err((code, message)) => {
            let response = EdgeResponse::error(code, message, &request_id);
            return Routing::Decided(finish(response, head, config, &HeaderMap::new()));
        }
    };
    if let Some(decision) = answer_at_edge(head, config, &target, &request_id) {
        return Routing::Decided(match decision {
            Decision::Respond(response) => finish(response, head, config, &HeaderMap::new()),
            other => other,
        });
    }
    match apply_rules(head, config, &target, inputs, &request_id) {
        Ok((rewritten, rule_headers)) => Routing::Routed(Routed {
            target,
            rewritten,
            rule_headers,
            request_id,
        }),
        Err(decision) => Routing::Decided(*decision),
    }
}

/// Every answer the edge makes itself carries the CORS verdict and the rules' headers, so
/// browsers can read errors and redirects too; it never comes from the cache.
fn finish(
    mut response: EdgeResponse,
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    rule_headers: &HeaderMap,
) -> Decision {
    config
        .cors
        .apply_to_response(head.headers, &mut response.headers);
    CacheStatus::Bypass.set_on(&mut response.headers);
    for (name, value) in rule_headers {
        response.headers.append(name, value.clone());
    }
    Decision::Respond(response)
}

/// The limits on the request's head (URL length, header count and bytes) and its URL: the
/// parsed target, or why the request is refused.
fn admit<'a>(
    head: &RequestHead<'a>,
    config: &EdgeConfig,
) -> Result<RequestTarget<'a>, (ErrorCode, String)> {
    if head.url.len() > config.max_url_bytes {
        return Err((
            ErrorCode::UriTooLong,
            format!(
                "the URL is {} bytes; the limit is {}",
                head.url.len(),
                config.max_url_bytes
            ),
        ));
    }
    if head.headers.len() > config.max_header_count {
        return Err((
            ErrorCode::HeadersTooLarge,
            format!(
                "the request has {} header fields; the limit is {}",
                head.headers.len(),
                config.max_header_count
            ),
        ));
    }
    let header_bytes: usize = head
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if header_bytes > config.max_header_bytes {
        return Err((
            ErrorCode::HeadersTooLarge,
            format!(
                "the request headers total {header_bytes} bytes; the limit is {}",
                config.max_header_bytes
            ),
        ));
    }
    let Some(target) = RequestTarget::parse(head.url) else {
        return Err((
            ErrorCode::BadRequest,
            "the request URL is malformed".to_owned(),
        ));
    };
    if has_dot_segment(target.path) {
        return Err((
            ErrorCode::BadRequest,
            "the path contains '.' or '..' segments".to_owned(),
        ));
    }
    Ok(target)
}

/// What the edge answers itself before any rule: CORS preflights, `/health`, and the
/// sign-in's `/auth/…` endpoints (for the adapter).
fn answer_at_edge(
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    target: &RequestTarget<'_>,
    request_id: &RequestId,
) -> Option<Decision> {
    if let Some(response) = config
        .cors
        .preflight_response(head.method, head.headers, request_id)
    {
        return Some(Decision::Respond(response));
    }
    if target.path == "/health" {
        let response = match *head.method {
            Method::GET => EdgeResponse::health(request_id),
            Method::HEAD => EdgeResponse::health(request_id).without_body(),
            _ => {
                let mut response = EdgeResponse::error(
                    ErrorCode::MethodNotAllowed,
                    format!("{} is not allowed on /health; use GET or HEAD", head.method),
                    request_id,
                );
                response
                    .headers
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
                response
            }
        };
        return Some(Decision::Respond(response));
    }
    target
        .path
        .starts_with("/auth/")
        .then_some(Decision::SignIn)
}

/// The `vercel.json` rules, then the API prefix: the internal rewrite (if any) and the rules'
/// headers for a request that goes on to the API, else the decision (a redirect, an external
/// rewrite, 404, 414 for rules too costly to evaluate).
fn apply_rules(
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    target: &RequestTarget<'_>,
    inputs: Inputs,
    request_id: &RequestId,
) -> Result<(Option<String>, HeaderMap), Box<Decision>> {
    let host = head
        .headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .or(target.authority);
    let rules = match config.rules.evaluate(&RequestFacts {
        path: target.path,
        query: target.query(),
        host,
        headers: head.headers,
    }) {
        Ok(rules) => rules,
        Err(too_costly) => {
            let response =
                EdgeResponse::error(ErrorCode::UriTooLong, too_costly.to_string(), request_id);
            return Err(Box::new(finish(response, head, config, &HeaderMap::new())));
        }
    };
    let mut rule_headers = HeaderMap::new();
    for (name, value) in rules.headers {
        rule_headers.insert(name, value);
    }
    if let Some(redirect) = rules.redirect {
        let mut response = EdgeResponse {
            status: redirect.status,
            headers: HeaderMap::new(),
            body: Vec::new(),
        };
        if let Ok(location) = HeaderValue::from_str(&redirect.location) {
            response.headers.insert(LOCATION, location);
        }
        set_request_id(&mut response.headers, request_id);
        return Err(Box::new(finish(response, head, config, &rule_headers)));
    }
    let rewritten = match rules.rewrite {
        Some(Rewrite::External { url }) => {
            return Err(Box::new(external_proxy(
                head,
                config,
                &url,
                inputs,
                request_id,
                &rule_headers,
            )));
        }
        Some(Rewrite::Internal { path_and_query }) => Some(path_and_query),
        None => None,
    };
    let path_and_query = rewritten.as_deref().unwrap_or(target.path_and_query);
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    if path != "/api" && !path.starts_with("/api/") {
        let response = EdgeResponse::error(
            ErrorCode::NotFound,
            format!("no route for {path}"),
            request_id,
        );
        return Err(Box::new(finish(response, head, config, &rule_headers)));
    }
    Ok((rewritten, rule_headers))
}

impl Routed<'_> {
    /// The stages that need the caller's credentials — the route's authentication, the body's
    /// declared length, the session — and the plan for the brain (tenant order, rate limit,
    /// cache, signature). `keys` is the isolate's JWT key store (`None` without `AUTH_CONFIG`).
    pub fn decide(
        &self,
        head: &RequestHead<'_>,
        config: &EdgeConfig,
        keys: Option<&KeyStore>,
        inputs: Inputs,
    ) -> Decision {
        let request_id = &self.request_id;
        let reject = |code: ErrorCode, message: String| {
            let response = EdgeResponse::error(code, message, request_id);
            finish(response, head, config, &self.rule_headers)
        };
        let path_and_query = self
            .rewritten
            .as_deref()
            .unwrap_or(self.target.path_and_query);
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(path, _)| path);
        let route = config.routes.select(head.method, path);
        let now_secs = inputs.now_ms / 1000;
        let origin = request_origin(head, &self.target);
        let principal = match authenticate_route(
            head, route, config, keys, now_secs, inputs, &origin, request_id,
        ) {
            Ok(principal) => principal,
            Err(decision) => {
                return match *decision {
                    Decision::Respond(response) => {
                        finish(response, head, config, &self.rule_headers)
                    }
                    other => other,
                };
            }
        };
        let declared_length = match declared_content_length(head.headers) {
            Ok(length) => length,
            Err(()) => {
                return reject(
                    ErrorCode::BadRequest,
                    "the content-length header is not one number".to_owned(),
                );
            }
        };
        if let Some(n) = declared_length
            && n > config.max_body_bytes
        {
            return reject(
                ErrorCode::PayloadTooLarge,
                format!(
                    "the body is {n} bytes; the limit is {}",
                    config.max_body_bytes
                ),
            );
        }
        match self.plan(
            head,
            config,
            route,
            principal,
            declared_length,
            path_and_query,
            inputs,
        ) {
            Ok(proxy) => Decision::Proxy(Box::new(proxy)),
            Err((code, message)) => reject(code, message),
        }
    }

    /// The plan for a request allowed through: identity headers, session, tenant order, body
    /// signing, rate limit and cache steps.
    #[allow(clippy::too_many_arguments)]
    fn plan(
        &self,
        head: &RequestHead<'_>,
        config: &EdgeConfig,
        route: &Route,
        principal: Option<Principal>,
        declared_length: Option<u64>,
        path_and_query: &str,
        inputs: Inputs,
    ) -> Result<ProxyRequest, (ErrorCode, String)> {
        let request_id = &self.request_id;
        let now_secs = inputs.now_ms / 1000;
        let session = Session::resolve(
            head.headers,
            &config.sessions,
            now_secs,
            inputs.session_random,
        );
        let mut headers = forwarded_request_headers(head, self.target.scheme, request_id);
        // The session token is the edge's business; the brain gets the bare id.
        strip_session_token(&mut headers);
        // Unreachable for tokens `verify_token` accepted; never proceed without the identity.
        let identity = identity_headers(principal.as_ref(), &session, head.client_ip)
            .map_err(|message| (ErrorCode::Unauthorized, message))?;
        for (name, value) in identity {
            headers.insert(name, value);
        }
        let user_id = principal.as_ref().map(|p| p.subject.clone());

        let forward_body = !matches!(*head.method, Method::GET | Method::HEAD);
        let body_signing = match declared_length {
            _ if !forward_body => BodySigning::Empty,
            Some(length) if length <= config.sign_body_max_bytes => BodySigning::Hash,
            _ => BodySigning::Stream,
        };
        // The tenant's brains, in order. A session minted for this request counts: the client
        // presents it next time, and its first request should land where the later ones will.
        let tenant = TenantKey::of(user_id.as_deref(), Some(&session.id), head.client_ip);
        let upstream = Upstream::new(
            config.brains.order(&tenant),
            RetryRule::new(
                head.method,
                route.retryable,
                body_signing != BodySigning::Stream,
            ),
        );
        // A parsed configuration has at least one brain.
        let brain = upstream
            .current()
            .and_then(|index| config.brains.get(index))
            .ok_or((ErrorCode::Internal, "no brain is configured".to_owned()))?;
        let mut response_headers = self.rule_headers.clone();
        if let Some((name, value)) = session.response_header(config.sessions.ttl_secs) {
            response_headers.append(name, value);
        }
        let rate_limit = route.rate_limit.as_ref().map(|policy| {
            RateLimitPlan::new(
                policy,
                &Caller {
                    user_id: user_id.as_deref(),
                    // Only a session the client presented: a new one is free to mint on every
                    // request, so such callers are counted by network instead.
                    session_id: (!session.is_new).then_some(session.id.as_str()),
                    client_ip: head.client_ip,
                },
            )
        });
        let cache = cache_step(
            head,
            &self.target,
            config,
            route,
            body_signing,
            &user_id,
            &session,
        );
        Ok(ProxyRequest {
            method: head.method.clone(),
            url: format!("{}{}", brain.origin, path_and_query),
            path_and_query: path_and_query.to_owned(),
            upstream: Some(upstream),
            headers,
            forward_body,
            max_body_bytes: config.max_body_bytes,
            body_signing,
            signature_timestamp_secs: now_secs,
            signature_nonce: signature::hex(&inputs.nonce),
            response_headers,
            session,
            user_id,
            rate_limit,
            cache,
            origin: head.headers.get(ORIGIN).cloned(),
            external: false,
            deadline_ms: inputs
                .now_ms
                .saturating_add(duration_ms(config.upstream_timeout)),
            request_id: request_id.clone(),
        })
    }
}

/// The route's cache treatment of this request: its key now, once its body is known (a
/// deterministic POST with a hashed body), or none.
fn cache_step(
    head: &RequestHead<'_>,
    target: &RequestTarget<'_>,
    config: &EdgeConfig,
    route: &Route,
    body_signing: BodySigning,
    user_id: &Option<String>,
    session: &Session,
) -> CacheStep {
    let Some(policy) = &route.cache else {
        return CacheStep::Bypass;
    };
    let Ok(location) = cache::key_location(target, policy) else {
        return CacheStep::Bypass;
    };
    if *head.method == Method::POST && policy.deterministic_post() {
        return if body_signing == BodySigning::Hash {
            CacheStep::LookupWithBody {
                policy: policy.clone(),
                location,
            }
        } else {
            CacheStep::Bypass
        };
    }
    let identity = cache_identity(user_id.as_deref(), session);
    let request = CacheRequest {
        method: head.method,
        headers: head.headers,
        identity: Some(&identity),
        body: None,
    };
    match cache::cache_key(&request, &location, policy, config.cache_version) {
        Ok(key) => CacheStep::Lookup {
            key,
            policy: policy.clone(),
        },
        Err(_) => CacheStep::Bypass,
    }
}

/// `scheme://host[:port]` of this request as the browser addressed it.
fn request_origin(head: &RequestHead<'_>, target: &RequestTarget<'_>) -> String {
    let host = head
        .headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .or(target.authority)
        .unwrap_or("");
    format!("{}://{host}", target.scheme.unwrap_or("https"))
}

/// An edge-made request to the tenant's brain (the sign-in's refresh-token calls, the session
/// claim): a JSON `POST` of `body`, hashed into the signature, with the identity headers of
/// `principal` and `session`. It runs as an [`Exchange::with_body`](super::exchange::Exchange::with_body),
/// so it goes on to the next brain exactly when a proxied `POST` would.
#[allow(clippy::too_many_arguments)]
pub fn brain_call(
    path: &str,
    principal: Option<&Principal>,
    session: &Session,
    client_ip: Option<&str>,
    config: &EdgeConfig,
    now_ms: u64,
    nonce: [u8; 16],
    request_id: &RequestId,
) -> Option<ProxyRequest> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_request_id(&mut headers, request_id);
    for (name, value) in identity_headers(principal, session, client_ip).ok()? {
        headers.insert(name, value);
    }
    let user_id = principal.map(|p| p.subject.clone());
    let tenant = TenantKey::of(user_id.as_deref(), Some(&session.id), client_ip);
    let upstream = Upstream::new(
        config.brains.order(&tenant),
        RetryRule::new(&Method::POST, false, true),
    );
    let brain = config.brains.get(upstream.current()?)?;
    Some(ProxyRequest {
        method: Method::POST,
        url: format!("{}{path}", brain.origin),
        path_and_query: path.to_owned(),
        upstream: Some(upstream),
        headers,
        forward_body: true,
        max_body_bytes: config.max_body_bytes,
        body_signing: BodySigning::Hash,
        signature_timestamp_secs: now_ms / 1000,
        signature_nonce: signature::hex(&nonce),
        response_headers: HeaderMap::new(),
        session: session.clone(),
        user_id,
        rate_limit: None,
        cache: CacheStep::Bypass,
        origin: None,
        external: false,
        deadline_ms: now_ms.saturating_add(duration_ms(config.upstream_timeout)),
        request_id: request_id.clone(),
    })
}

/// Whose entry a `scope: identity` cache key names: `user:<sub>` or `session:<id>`, kinds kept
/// apart so a subject can never equal somebody's session id.
fn cache_identity(user_id: Option<&str>, session: &Session) -> String {
    match user_id {
        Some(user) => format!("user:{user}"),
        None => format!("session:{}", session.id),
    }
}

/// The request's declared body length: `Ok(None)` without `content-length`, `Err` unless every
/// `content-length` field (and every comma-separated item in one) is the same plain decimal
/// number (RFC 9110 §8.6) — a sign, spaces or two different lengths are request smuggling
/// material, never a length.
fn declared_content_length(headers: &HeaderMap) -> Result<Option<u64>, ()> {
    let mut declared = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| ())?;
        for item in text.split(',') {
            let item = item.trim_matches([' ', '\t']);
            if item.is_empty() || item.len() > 19 || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let length = item.parse::<u64>().map_err(|_| ())?;
            if declared.is_some_and(|seen| seen != length) {
                return Err(());
            }
            declared = Some(length);
        }
    }
    Ok(declared)
}

/// The identity headers the edge asserts (and signs) for the brain: the session id, and either
/// the verified user (its `sub` encoded losslessly by [`encode_user_id`], so every subject is
/// exactly that user) with its scopes and roles, or — for callers who are not signed in — their
/// network. `Err` when a value cannot be carried, which the caller answers with 401 rather than
/// letting the request continue as someone else.
fn identity_headers(
    principal: Option<&Principal>,
    session: &Session,
    client_ip: Option<&str>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let value = |text: &str, what: &str| {
        HeaderValue::from_str(text).map_err(|_| format!("the {what} cannot be passed on"))
    };
    let mut out = vec![(
        HeaderName::from_static(IDENTITY_SESSION),
        value(&session.id, "session id")?,
    )];
    let Some(principal) = principal else {
        let network = client_ip.map_or_else(|| "unknown".to_owned(), ratelimit::network_key);
        out.push((
            HeaderName::from_static(IDENTITY_NETWORK),
            value(&network, "client network")?,
        ));
        return Ok(out);
    };
    if principal.subject.len() > MAX_USER_ID_BYTES {
        return Err(format!(
            "the token's subject is longer than {MAX_USER_ID_BYTES} bytes"
        ));
    }
    out.push((
        HeaderName::from_static(IDENTITY_USER),
        value(&encode_user_id(&principal.subject), "token's subject")?,
    ));
    let scopes: Vec<String> = principal
        .scopes
        .iter()
        .cloned()
        .chain(
            principal
                .roles
                .iter()
                .map(|role| format!("{ROLE_PREFIX}{role}")),
        )
        .collect();
    if !scopes.is_empty() {
        let scopes = scopes.join(" ");
        if scopes.len() > MAX_SCOPES_BYTES {
            return Err(format!(
                "the token's scopes and roles are longer than {MAX_SCOPES_BYTES} bytes"
            ));
        }
        out.push((
            HeaderName::from_static(IDENTITY_SCOPES),
            value(&scopes, "token's scopes")?,
        ));
    }
    Ok(out)
}

/// Runs the route's authentication policy: the verified principal (or `None` for anonymous
/// callers), or the decision to answer instead.
#[allow(clippy::too_many_arguments)]
fn authenticate_route(
    head: &RequestHead<'_>,
    route: &Route,
    config: &EdgeConfig,
    keys: Option<&KeyStore>,
    now_secs: u64,
    inputs: Inputs,
    origin: &str,
    request_id: &RequestId,
) -> Result<Option<Principal>, Box<Decision>> {
    // A bearer token speaks for itself; without one, the edge's own sign-in cookies may.
    if config.signin.is_some() && !head.headers.contains_key(AUTHORIZATION) {
        match signin_flow::cookie_auth(head.headers, &config.sessions, now_secs) {
            CookieAuth::Valid(grant) => {
                if !signin_flow::same_origin(head.method, head.headers, origin) {
                    return Err(Box::new(Decision::Respond(EdgeResponse::error(
                        ErrorCode::Forbidden,
                        "a request signed in by cookie must come from this site",
                        request_id,
                    ))));
                }
                let principal = grant.principal();
                return match route.auth.check(&principal) {
                    Ok(()) => Ok(Some(principal)),
                    Err(_) => Err(Box::new(Decision::Respond(EdgeResponse::error(
                        ErrorCode::Forbidden,
                        "the signed-in user lacks a required scope or role",
                        request_id,
                    )))),
                };
            }
            CookieAuth::NeedsRefresh { refresh_token } => {
                return Err(Box::new(Decision::RefreshSignIn { refresh_token }));
            }
            CookieAuth::Absent => {}
        }
    }
    let (Some(auth), Some(keys)) = (&config.auth, keys) else {
        if matches!(route.auth, AuthPolicy::Required { .. }) {
            // Sign-in without JWT bearer tokens: a required route needs the cookie.
            return Err(Box::new(Decision::Respond(EdgeResponse::error(
                ErrorCode::Unauthorized,
                "sign in first",
                request_id,
            ))));
        }
        // No JWT configured: routes can only be public or optional (checked at load), and a
        // bearer token cannot be verified, so it is not trusted.
        return Ok(None);
    };
    let mut outcome = authenticate(head.headers, &route.auth, auth, keys, now_secs);
    if outcome == AuthOutcome::UnknownKey {
        if !inputs.keys_refreshed {
            return Err(Box::new(Decision::RefreshKeys));
        }
        outcome = outcome.settle_unknown_key();
    }
    match outcome {
        AuthOutcome::Authenticated(principal) => Ok(Some(principal)),
        AuthOutcome::Anonymous => Ok(None),
        refused => {
            let Some(rejection) = refused.rejection(auth) else {
                return Ok(None);
            };
            let mut response = EdgeResponse::error(rejection.code, rejection.message, request_id);
            if let Ok(value) = HeaderValue::from_str(&rejection.www_authenticate) {
                response.headers.insert(WWW_AUTHENTICATE, value);
            }
            Err(Box::new(Decision::Respond(response)))
        }
    }
}

/// A `vercel.json` rewrite to another origin: proxied as is, but without the caller's
/// credentials or any edge identity, and unsigned.
fn external_proxy(
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    url: &str,
    inputs: Inputs,
    request_id: &RequestId,
    extra: &HeaderMap,
) -> Decision {
    let mut headers = forwarded_request_headers(head, None, request_id);
    for name in [COOKIE, AUTHORIZATION] {
        headers.remove(name);
    }
    headers.remove(CLIENT_SESSION_ID);
    let session = Session::resolve(
        head.headers,
        &config.sessions,
        inputs.now_ms / 1000,
        inputs.session_random,
    );
    Decision::Proxy(Box::new(ProxyRequest {
        method: head.method.clone(),
        url: url.to_owned(),
        path_and_query: String::new(),
        upstream: None,
        headers,
        forward_body: !matches!(*head.method, Method::GET | Method::HEAD),
        max_body_bytes: config.max_body_bytes,
        body_signing: BodySigning::Stream,
        signature_timestamp_secs: 0,
        signature_nonce: String::new(),
        response_headers: extra.clone(),
        session,
        user_id: None,
        rate_limit: None,
        cache: CacheStep::Bypass,
        origin: head.headers.get(ORIGIN).cloned(),
        external: true,
        deadline_ms: inputs
            .now_ms
            .saturating_add(duration_ms(config.upstream_timeout)),
        request_id: request_id.clone(),
    }))
}

/// Headers to send back to the client with the brain's (or the cache's) response: the
/// upstream's own (less hop-by-hop and CORS ones), the request id, the edge's CORS verdict and
/// its additions for this request (session, rules, rate limit).
pub fn upstream_response_headers(
    upstream: &HeaderMap,
    proxy: &ProxyRequest,
    config: &EdgeConfig,
) -> HeaderMap {
    let mut headers = without_hop_by_hop(upstream);
    set_request_id(&mut headers, &proxy.request_id);
    let mut origin = HeaderMap::new();
    if let Some(value) = &proxy.origin {
        origin.insert(ORIGIN, value.clone());
    }
    config.cors.apply_to_response(&origin, &mut headers);
    for (name, value) in &proxy.response_headers {
        headers.append(name, value.clone());
    }
    headers
}

/// An answer the edge makes itself after the proxy plan was made (a 429 from the rate limiter,
/// an upstream failure): gets the plan's response headers and the CORS verdict too.
pub fn finish_edge_response(
    mut response: EdgeResponse,
    proxy: &ProxyRequest,
    config: &EdgeConfig,
) -> EdgeResponse {
    response.headers = upstream_response_headers(&response.headers, proxy, config);
    CacheStatus::Bypass.set_on(&mut response.headers);
    response
}

/// Removes the session cookie from the `Cookie` header(s) and the `x-session-id` header, so
/// the token never reaches the brain (other cookies pass, byte for byte).
fn strip_session_token(headers: &mut HeaderMap) {
    headers.remove(CLIENT_SESSION_ID);
    let cookies: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(COOKIE);
    // The sign-in's cookies are credentials too: the brain learns the user from the identity
    // headers only.
    let edge_cookies = [
        COOKIE_NAME,
        signin_flow::ACCESS_COOKIE,
        signin_flow::REFRESH_COOKIE,
        signin_flow::LOGIN_COOKIE,
    ];
    for cookie in cookies {
        let kept = edge_cookies
            .iter()
            .try_fold(cookie, |value, name| without_cookie(&value, name));
        if let Some(kept) = kept {
            headers.append(COOKIE, kept);
        }
    }
}

/// The response when the brain could not be asked.
pub fn upstream_failure(
    failure: UpstreamFailure,
    request_id: &RequestId,
    config: &EdgeConfig,
) -> EdgeResponse {
    match failure {
        UpstreamFailure::Unreachable => EdgeResponse::error(
            ErrorCode::BadGateway,
            "the brain could not be reached",
            request_id,
        ),
        UpstreamFailure::Draining => {
            let mut response = EdgeResponse::error(
                ErrorCode::Unavailable,
                "the brain is draining (restarting or leaving the fleet) and no other brain could \
                 take this request; retry shortly",
                request_id,
            );
            response
                .headers
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
        UpstreamFailure::TimedOut => EdgeResponse::error(
            ErrorCode::GatewayTimeout,
            format!(
                "the brain did not answer within {} ms",
                duration_ms(config.upstream_timeout)
            ),
            request_id,
        ),
        UpstreamFailure::BodyTooLarge => EdgeResponse::error(
            ErrorCode::PayloadTooLarge,
            format!(
                "the body is longer than the limit of {} bytes",
                config.max_body_bytes
            ),
            request_id,
        ),
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn forwarded_request_headers(
    head: &RequestHead<'_>,
    scheme: Option<&str>,
    request_id: &RequestId,
) -> HeaderMap {
    let mut headers = without_hop_by_hop(head.headers);
    headers.remove(HOST);
    headers.remove("upgrade");
    for name in EDGE_ASSERTED {
        headers.remove(name);
    }
    set_request_id(&mut headers, request_id);
    if let Some(host) = head.headers.get(HOST) {
        headers.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    if let Some(scheme) = scheme.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(HeaderName::from_static("x-forwarded-proto"), scheme);
    }
    if let Some(ip) = head.client_ip.and_then(|ip| HeaderValue::from_str(ip).ok()) {
        headers.insert(HeaderName::from_static("x-forwarded-for"), ip);
    }
    headers
}

fn without_hop_by_hop(source: &HeaderMap) -> HeaderMap {
    // Headers listed in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
    let listed: Vec<String> = source
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    let mut headers = HeaderMap::with_capacity(source.len());
    for (name, value) in source {
        let name_str = name.as_str();
        if HOP_BY_HOP.contains(&name_str) || listed.iter().any(|l| l == name_str) {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    headers
}

/// True when a segment is `.` or `..`, also percent-encoded (`%2e`), which some platforms do
/// not normalise before the worker sees the path.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::test_support::{config_with, headers};
    use http::StatusCode;
    use shared_types::error::ErrorBody;
    use shared_types::health::{HealthReport, Service};

    const RANDOM: [u8; 16] = [7; 16];
    const MINTED_ID: &str = "07070707-0707-4707-8707-070707070707";

    fn config() -> EdgeConfig {
        config_with(&[], "{}")
    }

    /// Fixed randomness (session id `03…`, nonce `04…`) at `now_ms`.
    fn inputs_at(now_ms: u64) -> Inputs {
        Inputs {
            now_ms,
            random: RANDOM,
            session_random: [3; 16],
            nonce: [4; 16],
            keys_refreshed: false,
        }
    }

    fn decide_with(method: Method, url: &str, headers: &HeaderMap) -> Decision {
        let head = RequestHead {
            method: &method,
            url,
            headers,
            client_ip: Some("203.0.113.9"),
        };
        decide(&head, &config(), None, inputs_at(1_000_000))
    }

    fn responded(decision: Decision) -> EdgeResponse {
        match decision {
            Decision::Respond(response) => response,
            Decision::Proxy(proxy) => panic!("expected a response, got a proxy to {}", proxy.url),
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn proxied(decision: Decision) -> ProxyRequest {
        match decision {
            Decision::Proxy(proxy) => *proxy,
            Decision::Respond(response) => panic!("expected a proxy, got {:?}", response.status),
            other => panic!("expected a proxy, got {other:?}"),
        }
    }

    fn error_of(response: &EdgeResponse) -> ErrorBody {
        assert_eq!(response.headers["content-type"], "application/json");
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn health_is_answered_by_the_edge() {
        let response = responded(decide_with(
            Method::GET,
            "https://edge.example/health",
            &HeaderMap::new(),
        ));
        assert_eq!(response.status, StatusCode::OK);
        let report: HealthReport = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(report.service, Service::Edge);
        assert_eq!(response.headers[REQUEST_ID], MINTED_ID);

        let head = responded(decide_with(
            Method::HEAD,
            "https://edge.example/health",
            &HeaderMap::new(),
        ));
        assert_eq!(head.status, StatusCode::OK);
        assert!(head.body.is_empty());
    }

    #[test]
    fn health_refuses_other_methods_with_allow() {
        let response = responded(decide_with(Method::POST, "/health", &HeaderMap::new()));
        assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers[ALLOW], "GET, HEAD");
        assert_eq!(error_of(&response).error.code, ErrorCode::MethodNotAllowed);
    }

    #[test]
    fn api_requests_are_proxied_with_method_path_query_and_headers() {
        let incoming = headers(&[
            ("accept", "text/event-stream"),
            ("x-custom", "one"),
            ("x-custom", "two"),
            ("host", "edge.example"),
            ("content-length", "12"),
        ]);
        let proxy = proxied(decide_with(
            Method::PATCH,
            "https://edge.example/api/v1/things/%F0%9F%A6%80?b=2&a=1&a=3#frag",
            &incoming,
        ));
        assert_eq!(proxy.method, Method::PATCH);
        assert_eq!(
            proxy.url,
            "http://brain.internal:8080/api/v1/things/%F0%9F%A6%80?b=2&a=1&a=3"
        );
        assert!(proxy.forward_body);
        assert_eq!(proxy.deadline_ms, 1_001_500);
        assert_eq!(proxy.remaining(1_001_000), Duration::from_millis(500));
        assert_eq!(proxy.remaining(2_000_000), Duration::ZERO);
        let custom: Vec<_> = proxy.headers.get_all("x-custom").iter().collect();
        assert_eq!(custom, ["one", "two"]);
        assert_eq!(proxy.headers["accept"], "text/event-stream");
        assert_eq!(proxy.headers["content-length"], "12");
        assert_eq!(proxy.headers["x-forwarded-host"], "edge.example");
        assert_eq!(proxy.headers["x-forwarded-proto"], "https");
        assert_eq!(proxy.headers["x-forwarded-for"], "203.0.113.9");
        assert!(proxy.headers.get(HOST).is_none());
        assert_eq!(proxy.headers[REQUEST_ID], MINTED_ID);
    }

    /// The brain's HTTP server reads at most 100 header fields; a request at the largest
    /// `MAX_HEADER_COUNT` the edge accepts, with every header the edge adds (identity of a
    /// minted session, request id, forwarded-*, signature), must still fit.
    #[test]
    fn a_request_at_the_largest_header_count_reaches_the_brain_within_100_fields() {
        let max = EdgeConfig::MAX_MAX_HEADER_COUNT.to_string();
        let config = config_with(
            &[("MAX_HEADER_COUNT", &max), ("MAX_HEADER_BYTES", "8192")],
            "{}",
        );
        let mut incoming = headers(&[("host", "edge.example"), ("x-session-id", "new")]);
        while incoming.len() < EdgeConfig::MAX_MAX_HEADER_COUNT {
            let name = format!("x-filler-{}", incoming.len());
            incoming.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("1"),
            );
        }
        let head = RequestHead {
            method: &Method::GET,
            url: "https://edge.example/api/v1/datasets",
            headers: &incoming,
            client_ip: Some("2001:db8::1"),
        };
        let mut proxy = proxied(decide(&head, &config, None, inputs_at(1_000_000)));
        proxy.sign(None, &config);
        assert!(proxy.headers.get(EDGE_SIGNATURE).is_some());
        assert!(proxy.headers.len() <= 100, "{} fields", proxy.headers.len());
    }

    #[test]
    fn bodies_are_forwarded_except_for_get_and_head() {
        for (method, forward) in [
            (Method::GET, false),
            (Method::HEAD, false),
            (Method::POST, true),
            (Method::PUT, true),
            (Method::DELETE, true),
            (Method::OPTIONS, true),
        ] {
            let proxy = proxied(decide_with(
                method.clone(),
                "/api/v1/diag/echo",
                &HeaderMap::new(),
            ));
            assert_eq!(proxy.forward_body, forward, "{method}");
        }
    }

    #[test]
    fn a_valid_request_id_is_kept_and_an_invalid_one_replaced() {
        let proxy = proxied(decide_with(
            Method::GET,
            "/api/x",
            &headers(&[("x-request-id", "client-id-42")]),
        ));
        assert_eq!(proxy.request_id.as_str(), "client-id-42");
        assert_eq!(proxy.headers[REQUEST_ID], "client-id-42");

        let forged = "a\"b";
        let mut map = HeaderMap::new();
        map.insert(REQUEST_ID, HeaderValue::from_str(forged).unwrap());
        let proxy = proxied(decide_with(Method::GET, "/api/x", &map));
        assert_eq!(proxy.request_id.as_str(), MINTED_ID);
        assert_eq!(proxy.headers.get_all(REQUEST_ID).iter().count(), 1);
    }

    #[test]
    fn hop_by_hop_and_spoofable_headers_are_not_forwarded() {
        let incoming = headers(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic eA=="),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("authorization", "Bearer kept"),
        ]);
        let proxy = proxied(decide_with(Method::POST, "/api/x", &incoming));
        for gone in [
            "connection",
            "keep-alive",
            "x-secret-hop",
            "te",
            "transfer-encoding",
            "upgrade",
            "proxy-authorization",
            "forwarded",
        ] {
            assert!(proxy.headers.get(gone).is_none(), "{gone} was forwarded");
        }
        assert_eq!(proxy.headers["x-forwarded-for"], "203.0.113.9");
        assert_eq!(proxy.headers["authorization"], "Bearer kept");
    }

    #[test]
    fn a_spoofed_forwarded_for_is_dropped_when_the_platform_names_no_client() {
        let method = Method::GET;
        let incoming = headers(&[("x-forwarded-for", "6.6.6.6")]);
        let head = RequestHead {
            method: &method,
            url: "/api/x",
            headers: &incoming,
            client_ip: None,
        };
        let proxy = proxied(decide(&head, &config(), None, inputs_at(0)));
        assert!(proxy.headers.get("x-forwarded-for").is_none());
    }

    #[test]
    fn response_headers_get_the_request_id_and_lose_hop_by_hop() {
        let upstream = headers(&[
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("x-request-id", "brain-made-this"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        let mut proxy = proxied(decide_with(
            Method::GET,
            "/api/x",
            &headers(&[("x-request-id", "edge-id")]),
        ));
        proxy.response_headers = headers(&[("set-cookie", "edge=1")]);
        let out = upstream_response_headers(&upstream, &proxy, &config());
        assert_eq!(out["content-type"], "text/event-stream");
        assert_eq!(out[REQUEST_ID], "edge-id");
        assert_eq!(out.get_all("set-cookie").iter().count(), 3);
        assert!(out.get("connection").is_none() && out.get("transfer-encoding").is_none());
    }

    #[test]
    fn upstream_failures_map_to_502_and_504_in_the_error_shape() {
        let id = RequestId::parse(b"rid").unwrap();
        let bad = upstream_failure(UpstreamFailure::Unreachable, &id, &config());
        assert_eq!(bad.status, StatusCode::BAD_GATEWAY);
        let body = error_of(&bad);
        assert_eq!(
            (body.error.code, body.error.request_id.as_str()),
            (ErrorCode::BadGateway, "rid")
        );

        let slow = upstream_failure(UpstreamFailure::TimedOut, &id, &config());
        assert_eq!(slow.status, StatusCode::GATEWAY_TIMEOUT);
        let body = error_of(&slow);
        assert_eq!(body.error.code, ErrorCode::GatewayTimeout);
        assert!(
            body.error.message.contains("1500 ms"),
            "{}",
            body.error.message
        );
    }

    #[test]
    fn unknown_paths_are_404_in_the_error_shape() {
        for url in [
            "/",
            "/apix",
            "/healthz",
            "https://edge.example",
            "https://edge.example/static/app.js",
        ] {
            let response = responded(decide_with(Method::GET, url, &HeaderMap::new()));
            assert_eq!(response.status, StatusCode::NOT_FOUND, "{url}");
            assert_eq!(error_of(&response).error.code, ErrorCode::NotFound);
        }
    }

    #[test]
    fn limits_give_their_own_status() {
        let long = format!("/api/{}", "a".repeat(3000));
        let response = responded(decide_with(Method::GET, &long, &HeaderMap::new()));
        assert_eq!(response.status, StatusCode::URI_TOO_LONG);
        assert_eq!(error_of(&response).error.code, ErrorCode::UriTooLong);

        let big = "b".repeat(5000);
        let response = responded(decide_with(
            Method::GET,
            "/api/x",
            &headers(&[("x-big", &big)]),
        ));
        assert_eq!(response.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

        // Many tiny fields, far under the byte limit, are refused by count.
        let names: Vec<String> = (0..65).map(|i| format!("x-{i}")).collect();
        let many: Vec<(&str, &str)> = names.iter().map(|name| (name.as_str(), "1")).collect();
        let response = responded(decide_with(Method::GET, "/api/x", &headers(&many)));
        assert_eq!(response.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert!(
            error_of(&response)
                .error
                .message
                .contains("65 header fields")
        );
        let response = decide_with(Method::GET, "/api/x", &headers(&many[..64]));
        assert!(matches!(response, Decision::Proxy(_)));

        let response = responded(decide_with(
            Method::POST,
            "/api/x",
            &headers(&[("content-length", "1001")]),
        ));
        assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(error_of(&response).error.code, ErrorCode::PayloadTooLarge);
        proxied(decide_with(
            Method::POST,
            "/api/x",
            &headers(&[("content-length", "1000")]),
        ));

        let response = responded(decide_with(
            Method::POST,
            "/api/x",
            &headers(&[("content-length", "lots")]),
        ));
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn malformed_urls_are_400_not_panics() {
        for url in [
            "",
            "api/x",
            "//evil.example/api",
            "https://edge.example/api/a b",
            "https://edge.example/api/\u{1F980}",
            "1http://edge.example/api",
            "https://edge.example/api/../health",
            "/api/%2e%2E/admin",
            "/api/./x",
            "\u{0}",
        ] {
            let response = responded(decide_with(Method::GET, url, &HeaderMap::new()));
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{url:?}");
            assert_eq!(error_of(&response).error.code, ErrorCode::BadRequest);
        }
    }

    #[test]
    fn percent_encoded_invalid_utf8_is_passed_through_untouched() {
        let proxy = proxied(decide_with(
            Method::GET,
            "https://e.example/api/v1/%FF%FE?q=%C3%28",
            &HeaderMap::new(),
        ));
        assert_eq!(
            proxy.url,
            "http://brain.internal:8080/api/v1/%FF%FE?q=%C3%28"
        );
    }

    #[test]
    fn non_ascii_header_values_do_not_break_the_pipeline() {
        let mut map = HeaderMap::new();
        map.insert("x-latin1", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        map.insert(REQUEST_ID, HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        let proxy = proxied(decide_with(Method::GET, "/api/x", &map));
        assert_eq!(proxy.headers["x-latin1"].as_bytes(), b"caf\xe9");
        assert_eq!(proxy.request_id.as_str(), MINTED_ID);
    }

    // ---- The integrated pipeline: rules, CORS, auth, session, signing, rate limit, cache ----

    use crate::core::auth::test_support as jwt;
    use shared_types::signature::SignatureHeader;

    const PIPELINE_RULES: &str = r#"{
        "redirects": [{"source": "/old/:path*", "destination": "/api/:path*", "permanent": true}],
        "rewrites": [{"source": "/v1/:path*", "destination": "/api/v1/:path*"}],
        "headers": [{"source": "/(.*)", "headers": [{"key": "X-Frame-Options", "value": "DENY"}]}]
    }"#;

    fn pipeline_config() -> EdgeConfig {
        let auth = jwt::config_json().to_string();
        let secrets = jwt::secrets_json();
        config_with(
            &[
                ("AUTH_CONFIG", auth.as_str()),
                ("AUTH_HS256_SECRETS", secrets.as_str()),
                (
                    "CORS",
                    r#"{"allowed_origins": ["https://app.example"], "allow_credentials": true}"#,
                ),
                (
                    "RATE_LIMITS",
                    r#"[{"name": "default", "limit": 100, "window_secs": 60},
                                    {"name": "chat", "limit": 3, "window_secs": 60}]"#,
                ),
                (
                    "ROUTES",
                    r#"[
                    {"path": "/api/v1/admin/*", "auth": {"mode": "required", "scopes": ["admin"]}},
                    {"path": "/api/v1/private/*", "auth": {"mode": "required"}, "rate_limit": "chat"},
                    {"path": "/api/v1/reports/*", "methods": ["GET"], "cache": {"ttl_secs": 60, "swr_secs": 30}},
                    {"path": "/api/v1/answers", "methods": ["POST"],
                     "cache": {"ttl_secs": 60, "deterministic_post": true, "scope": "identity"}}
                ]"#,
                ),
            ],
            PIPELINE_RULES,
        )
    }

    fn decide_pipeline(method: Method, url: &str, headers: &HeaderMap) -> Decision {
        let config = pipeline_config();
        let keys = jwt::store(config.auth.as_ref().unwrap());
        let head = RequestHead {
            method: &method,
            url,
            headers,
            client_ip: Some("203.0.113.9"),
        };
        decide(&head, &config, Some(&keys), inputs_at(jwt::NOW * 1000))
    }

    fn bearer(token: &str) -> HeaderMap {
        headers(&[("authorization", &format!("Bearer {token}"))])
    }

    /// `header`'s signature over `parts`, checked with the test configuration's signing secret
    /// at [`jwt::NOW`] as the brain checks it (300 s of skew).
    fn verify_at_now(
        header: &SignatureHeader,
        parts: &shared_types::signature::SignedParts<'_>,
    ) -> Result<(), shared_types::signature::SignatureError> {
        header.verify(
            parts,
            [&b"edge-signing-secret-0123456789abcdef"[..]],
            jwt::NOW,
            300,
        )
    }

    fn hs_token(claims: &serde_json::Value) -> String {
        jwt::mint(
            &jwt::header("HS256", jwt::HS_KID),
            claims,
            jwt::Signer::Hs(jwt::HS_SECRET.as_bytes()),
        )
    }

    #[test]
    fn the_edges_own_answers_say_bypass() {
        for (method, url) in [
            (Method::GET, "/health"),
            (Method::GET, "/nope"),
            (Method::GET, "/old/x"),
        ] {
            let response = responded(decide_pipeline(method, url, &HeaderMap::new()));
            assert_eq!(response.headers["x-edge-cache"], "BYPASS", "{url}");
        }
    }

    #[test]
    fn a_vercel_json_redirect_is_answered_at_the_edge_without_the_header_rules() {
        let response = responded(decide_pipeline(
            Method::GET,
            "https://edge.example/old/v1/x?q=1",
            &HeaderMap::new(),
        ));
        assert_eq!(response.status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(response.headers[LOCATION], "/api/v1/x?q=1");
        // As on Vercel: redirects are answered before the header rules are reached.
        assert!(!response.headers.contains_key("x-frame-options"));
    }

    #[test]
    fn a_vercel_json_rewrite_is_proxied_to_the_brain_path() {
        let proxy = proxied(decide_pipeline(
            Method::GET,
            "https://edge.example/v1/diag/echo?a=1",
            &HeaderMap::new(),
        ));
        assert_eq!(proxy.url, "http://brain.internal:8080/api/v1/diag/echo?a=1");
        assert_eq!(proxy.response_headers["x-frame-options"], "DENY");
    }

    #[test]
    fn preflights_are_answered_at_the_edge_for_allowlisted_origins_only() {
        let preflight = |origin: &str| {
            responded(decide_pipeline(
                Method::OPTIONS,
                "https://edge.example/api/v1/private/x",
                &headers(&[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "content-type, authorization",
                    ),
                ]),
            ))
        };
        let allowed = preflight("https://app.example");
        assert_eq!(allowed.status, StatusCode::NO_CONTENT);
        assert_eq!(
            allowed.headers["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(allowed.headers["access-control-allow-credentials"], "true");
        let refused = preflight("https://evil.example");
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.headers.get("access-control-allow-origin").is_none());
    }

    #[test]
    fn required_routes_refuse_missing_or_bad_tokens_with_www_authenticate() {
        let missing = responded(decide_pipeline(
            Method::GET,
            "/api/v1/private/x",
            &headers(&[("origin", "https://app.example")]),
        ));
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
        assert!(
            missing.headers[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        // Errors carry CORS headers so the page can read them.
        assert_eq!(
            missing.headers["access-control-allow-origin"],
            "https://app.example"
        );

        let mut expired = jwt::good_claims();
        expired["exp"] = serde_json::json!(jwt::NOW - 3600);
        let refused = responded(decide_pipeline(
            Method::GET,
            "/api/v1/private/x",
            &bearer(&hs_token(&expired)),
        ));
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(
            refused.headers[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );

        let forbidden = responded(decide_pipeline(
            Method::GET,
            "/api/v1/admin/x",
            &bearer(&hs_token(&jwt::good_claims())),
        ));
        assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

        // An invalid token on an optional route is refused, not downgraded to anonymous.
        let optional = responded(decide_pipeline(
            Method::GET,
            "/api/v1/anything",
            &bearer(&hs_token(&expired)),
        ));
        assert_eq!(optional.status, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_verified_token_becomes_signed_identity_headers() {
        let mut incoming = bearer(&hs_token(&jwt::good_claims()));
        // Whatever the client claims itself is dropped.
        incoming.insert("x-edgebrain-user", HeaderValue::from_static("mallory"));
        incoming.insert("x-edgebrain-scopes", HeaderValue::from_static("admin"));
        incoming.insert("x-edgebrain-signature", HeaderValue::from_static("t=1"));
        let mut proxy = proxied(decide_pipeline(
            Method::GET,
            "/api/v1/private/x?y=2",
            &incoming,
        ));
        assert_eq!(proxy.headers[IDENTITY_USER], "user-42");
        assert_eq!(
            proxy.headers[IDENTITY_SCOPES],
            "profile reports:read role:analyst"
        );
        assert_eq!(proxy.headers[IDENTITY_SESSION], "03".repeat(16));
        assert!(proxy.headers.get(EDGE_SIGNATURE).is_none());

        let config = pipeline_config();
        let session = "03".repeat(16);
        proxy.sign(None, &config);
        let header =
            SignatureHeader::parse(proxy.headers[EDGE_SIGNATURE].to_str().unwrap()).unwrap();
        let parts = header.parts(
            "GET",
            "/api/v1/private/x?y=2",
            ["user-42", &session, "profile reports:read role:analyst", ""],
        );
        verify_at_now(&header, &parts).unwrap();
        let forged = header.parts(
            "GET",
            "/api/v1/private/x?y=2",
            ["mallory", &session, "", ""],
        );
        assert!(verify_at_now(&header, &forged).is_err());
    }

    #[test]
    fn bodies_are_hashed_when_small_and_streamed_unsigned_when_large() {
        let small = proxied(decide_pipeline(
            Method::POST,
            "/api/v1/x",
            &headers(&[("content-length", "100")]),
        ));
        assert_eq!(small.body_signing, BodySigning::Hash);
        let large = proxied(decide_pipeline(
            Method::POST,
            "/api/v1/x",
            &headers(&[("content-length", "101")]),
        ));
        assert_eq!(large.body_signing, BodySigning::Stream);
        let chunked = proxied(decide_pipeline(
            Method::POST,
            "/api/v1/x",
            &HeaderMap::new(),
        ));
        assert_eq!(chunked.body_signing, BodySigning::Stream);
        let mut chunked = chunked;
        chunked.sign(None, &pipeline_config());
        assert!(
            chunked.headers[EDGE_SIGNATURE]
                .to_str()
                .unwrap()
                .contains("d=UNSIGNED-PAYLOAD")
        );
    }

    #[test]
    fn the_session_cookie_and_token_never_reach_the_brain_but_the_answer_sets_it() {
        let proxy = proxied(decide_pipeline(
            Method::GET,
            "/api/v1/x",
            &headers(&[("cookie", "theme=dark; __Host-eb_session=forged")]),
        ));
        assert_eq!(proxy.headers[COOKIE], "theme=dark");
        assert!(proxy.session.is_new);
        let set_cookie = proxy.response_headers[http::header::SET_COOKIE]
            .to_str()
            .unwrap();
        assert!(
            set_cookie.starts_with("__Host-eb_session=v1.k1."),
            "{set_cookie}"
        );
    }

    #[test]
    fn non_ascii_cookies_neither_hide_the_session_nor_carry_its_token_to_the_brain() {
        let first = proxied(decide_pipeline(Method::GET, "/api/v1/x", &HeaderMap::new()));
        let session = session_cookie_of(&first)[COOKIE].clone();
        let session = session.as_bytes();
        for other in [
            &b"x=caf\xc3\xa9"[..],
            b"x=caf\xe9",
            b"x=\xff\xfe\xc3(",
            b"\xe9t\xe9=\x80",
        ] {
            let mut value = b"theme=dark; ".to_vec();
            value.extend_from_slice(session);
            value.extend_from_slice(b"; ");
            value.extend_from_slice(other);
            let mut incoming = HeaderMap::new();
            incoming.insert(COOKIE, HeaderValue::from_bytes(&value).unwrap());
            let proxy = proxied(decide_pipeline(Method::GET, "/api/v1/x", &incoming));
            assert!(!proxy.session.is_new, "{value:?}");
            assert_eq!(proxy.session.id, first.session.id);
            let mut forwarded = b"theme=dark; ".to_vec();
            forwarded.extend_from_slice(other);
            assert_eq!(proxy.headers[COOKIE].as_bytes(), forwarded.as_slice());
            assert_eq!(proxy.headers.get_all(COOKIE).iter().count(), 1);
        }
    }

    #[test]
    fn routes_plan_rate_limits_and_cache_lookups() {
        let token = hs_token(&jwt::good_claims());
        let private = proxied(decide_pipeline(
            Method::GET,
            "/api/v1/private/x",
            &bearer(&token),
        ));
        let plan = private.rate_limit.unwrap();
        assert_eq!(plan.policy.name(), "chat");
        assert_eq!(plan.caller_key, "rl:chat:user:user-42");
        // A signed-in user has no network bucket.
        assert_eq!(plan.network_key, None);
        // A caller without a session is counted by network; with the session it was given, by
        // that session.
        let anonymous = proxied(decide_pipeline(
            Method::GET,
            "/api/v1/other",
            &HeaderMap::new(),
        ));
        assert_eq!(
            anonymous.rate_limit.as_ref().unwrap().caller_key,
            "rl:default:ip:203.0.113.9"
        );
        assert_eq!(
            anonymous
                .rate_limit
                .as_ref()
                .unwrap()
                .network_key
                .as_deref(),
            Some("rl:default:network:203.0.113.9")
        );
        let established = proxied(decide_pipeline(
            Method::GET,
            "/api/v1/other",
            &session_cookie_of(&anonymous),
        ));
        let plan = established.rate_limit.unwrap();
        assert_eq!(
            plan.caller_key,
            format!("rl:default:session:{}", "03".repeat(16))
        );
        assert_eq!(
            plan.network_key.as_deref(),
            Some("rl:default:network:203.0.113.9")
        );

        let report = proxied(decide_pipeline(
            Method::GET,
            "https://edge.example/api/v1/reports/q?utm_source=x&b=2&a=1",
            &HeaderMap::new(),
        ));
        let CacheStep::Lookup { key, .. } = &report.cache else {
            panic!("expected a cache lookup, got {:?}", report.cache);
        };
        assert!(
            key.as_str().ends_with("/api/v1/reports/q?a=1&b=2"),
            "{}",
            key.as_str()
        );
        let post = proxied(decide_pipeline(
            Method::POST,
            "/api/v1/reports/q",
            &HeaderMap::new(),
        ));
        assert_eq!(post.cache, CacheStep::Bypass);
        let answer = proxied(decide_pipeline(
            Method::POST,
            "https://edge.example/api/v1/answers",
            &headers(&[
                ("content-length", "20"),
                ("content-type", "application/json"),
            ]),
        ));
        assert!(matches!(answer.cache, CacheStep::LookupWithBody { .. }));
        let a = answer
            .cache_key_for_body(br#"{"q": 1, "p": 2}"#, &pipeline_config())
            .unwrap();
        let b = answer
            .cache_key_for_body(br#"{"p":2,"q":1}"#, &pipeline_config())
            .unwrap();
        assert_eq!(a, b, "normalised JSON bodies share a key");
    }

    /// The `Cookie` header that presents `proxy`'s new session back to the edge.
    fn session_cookie_of(proxy: &ProxyRequest) -> HeaderMap {
        let set_cookie = proxy.response_headers[http::header::SET_COOKIE]
            .to_str()
            .unwrap();
        let pair = set_cookie.split(';').next().unwrap();
        headers(&[("cookie", pair)])
    }

    fn decide_from(ip: Option<&str>, incoming: &HeaderMap) -> ProxyRequest {
        let config = pipeline_config();
        let keys = jwt::store(config.auth.as_ref().unwrap());
        let method = Method::GET;
        let head = RequestHead {
            method: &method,
            url: "/api/v1/other",
            headers: incoming,
            client_ip: ip,
        };
        proxied(decide(
            &head,
            &config,
            Some(&keys),
            inputs_at(jwt::NOW * 1000),
        ))
    }

    #[test]
    fn callers_without_an_established_session_are_counted_by_network() {
        let key = |ip: Option<&str>, incoming: &HeaderMap| {
            decide_from(ip, incoming).rate_limit.unwrap().caller_key
        };
        let v4 = Some("198.51.100.7");
        // No cookie, a new-session request, a forged or foreign token: all the network's bucket.
        for incoming in [
            HeaderMap::new(),
            headers(&[("x-session-id", "new")]),
            headers(&[(
                "x-session-id",
                "v1.k1.0123456789abcdef0123456789abcdef.9999999999.00",
            )]),
            headers(&[("cookie", "__Host-eb_session=v1.k9.x.1.y")]),
        ] {
            assert_eq!(
                key(v4, &incoming),
                "rl:default:ip:198.51.100.7",
                "{incoming:?}"
            );
        }
        // IPv6: one bucket per /64, whatever the interface id.
        let a = key(Some("2001:db8:1:2::1"), &HeaderMap::new());
        let b = key(Some("2001:db8:1:2:ffff:ffff:ffff:fffe"), &HeaderMap::new());
        let other = key(Some("2001:db8:1:3::1"), &HeaderMap::new());
        assert_eq!(a, "rl:default:ip:2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(
            key(Some("::ffff:198.51.100.7"), &HeaderMap::new()),
            "rl:default:ip:198.51.100.7"
        );
        // A session the client was given and presents back is its own bucket.
        let first = decide_from(v4, &HeaderMap::new());
        let established = decide_from(v4, &session_cookie_of(&first));
        assert!(!established.session.is_new);
        assert_eq!(
            established.rate_limit.unwrap().caller_key,
            format!("rl:default:session:{}", first.session.id)
        );
    }

    #[test]
    fn every_caller_but_a_signed_in_user_also_draws_from_its_networks_bucket() {
        let network = |ip: Option<&str>, incoming: &HeaderMap| {
            decide_from(ip, incoming).rate_limit.unwrap().network_key
        };
        let v4 = Some("198.51.100.7");
        let first = decide_from(v4, &HeaderMap::new());
        let harvested = session_cookie_of(&first);
        // Session-less and established callers of one network share one network bucket.
        for incoming in [HeaderMap::new(), harvested.clone()] {
            assert_eq!(
                network(v4, &incoming).as_deref(),
                Some("rl:default:network:198.51.100.7")
            );
        }
        // The same established session from another network draws from that one's.
        assert_eq!(
            network(Some("198.51.100.8"), &harvested).as_deref(),
            Some("rl:default:network:198.51.100.8")
        );
        // IPv6 by /64; IPv4-mapped IPv6 as IPv4; no address: one shared bucket.
        assert_eq!(
            network(Some("2001:db8:1:2:aaaa::1"), &harvested),
            network(Some("2001:db8:1:2:bbbb::2"), &HeaderMap::new())
        );
        assert_eq!(
            network(Some("::ffff:198.51.100.7"), &HeaderMap::new()),
            network(v4, &HeaderMap::new())
        );
        assert_eq!(
            network(None, &harvested).as_deref(),
            Some("rl:default:network:-")
        );
        // A verified user keeps its own bucket only, whatever session it carries.
        let mut user = bearer(&hs_token(&jwt::good_claims()));
        user.extend(harvested);
        let plan = decide_from(v4, &user).rate_limit.unwrap();
        assert_eq!(plan.caller_key, "rl:default:user:user-42");
        assert_eq!(plan.network_key, None);
    }

    #[test]
    fn anonymous_callers_carry_their_network_to_the_brain_signed_users_do_not() {
        let mut incoming = HeaderMap::new();
        incoming.insert(IDENTITY_NETWORK, HeaderValue::from_static("10.0.0.1"));
        let network = |ip: Option<&str>| {
            decide_from(ip, &incoming).headers[IDENTITY_NETWORK]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(network(Some("198.51.100.7")), "198.51.100.7");
        assert_eq!(network(Some("2001:db8:1:2::99")), "2001:db8:1:2::/64");
        assert_eq!(network(None), "unknown");

        let user = decide_from(
            Some("198.51.100.7"),
            &bearer(&hs_token(&jwt::good_claims())),
        );
        assert!(user.headers.get(IDENTITY_NETWORK).is_none());
    }

    #[test]
    fn any_subject_reaches_the_brain_as_exactly_that_user() {
        let longest = "é".repeat(512);
        for sub in [
            "a b",
            "José",
            "東京",
            "a:b",
            "50%",
            "x".repeat(300).as_str(),
            &longest,
        ] {
            let mut claims = jwt::good_claims();
            claims["sub"] = serde_json::json!(sub);
            let mut proxy = proxied(decide_pipeline(
                Method::GET,
                "/api/v1/private/x",
                &bearer(&hs_token(&claims)),
            ));
            let header = proxy.headers[IDENTITY_USER].to_str().unwrap().to_owned();
            assert_eq!(
                shared_types::headers::decode_user_id(&header).as_deref(),
                Some(sub)
            );
            assert!(proxy.headers.get(IDENTITY_NETWORK).is_none());
            // The encoded value is what the signature covers, and what the brain verifies.
            proxy.sign(None, &pipeline_config());
            let signature =
                SignatureHeader::parse(proxy.headers[EDGE_SIGNATURE].to_str().unwrap()).unwrap();
            let session = "03".repeat(16);
            let scopes = "profile reports:read role:analyst";
            let parts =
                signature.parts("GET", "/api/v1/private/x", [&header, &session, scopes, ""]);
            verify_at_now(&signature, &parts).unwrap();
        }
    }

    #[test]
    fn subjects_that_cannot_be_carried_are_refused_never_downgraded_to_the_session() {
        for sub in ["nul\0".to_owned(), "bell\u{7}".to_owned(), "x".repeat(1025)] {
            let mut claims = jwt::good_claims();
            claims["sub"] = serde_json::json!(sub);
            // Even on a route where anonymous callers are welcome.
            let response = responded(decide_pipeline(
                Method::GET,
                "/api/v1/anything",
                &bearer(&hs_token(&claims)),
            ));
            assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{sub:?}");
            assert_eq!(error_of(&response).error.code, ErrorCode::Unauthorized);
            assert!(
                response.headers[WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .contains("invalid_token")
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever `sub` a valid token carries, the brain gets exactly that user or the client
        /// gets a 401: never the anonymous session.
        #[test]
        fn a_token_yields_exactly_its_user_or_a_refusal(
            sub in proptest::prelude::any::<String>(),
        ) {
            let mut claims = jwt::good_claims();
            claims["sub"] = serde_json::json!(sub);
            match decide_pipeline(Method::GET, "/api/v1/anything", &bearer(&hs_token(&claims))) {
                Decision::Proxy(proxy) => {
                    let header = proxy.headers.get(IDENTITY_USER).and_then(|v| v.to_str().ok());
                    proptest::prop_assert_eq!(
                        header.and_then(shared_types::headers::decode_user_id),
                        Some(sub)
                    );
                }
                Decision::Respond(response) => {
                    proptest::prop_assert_eq!(response.status, StatusCode::UNAUTHORIZED);
                }
                other => proptest::prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn identity_cache_keys_keep_users_and_sessions_apart() {
        // A user whose `sub` equals somebody's session id must not share that session's entries.
        let session_id = "03".repeat(16);
        let mut claims = jwt::good_claims();
        claims["sub"] = serde_json::json!(session_id);
        let incoming = headers(&[
            ("content-length", "2"),
            ("content-type", "application/json"),
        ]);
        let mut as_user = incoming.clone();
        as_user.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", hs_token(&claims))).unwrap(),
        );
        let url = "https://edge.example/api/v1/answers";
        let anonymous = proxied(decide_pipeline(Method::POST, url, &incoming));
        let user = proxied(decide_pipeline(Method::POST, url, &as_user));
        assert_eq!(anonymous.session.id, session_id);
        assert_ne!(
            anonymous.cache_key_for_body(b"{}", &pipeline_config()),
            user.cache_key_for_body(b"{}", &pipeline_config())
        );
    }

    #[test]
    fn content_length_must_be_one_plain_number() {
        for bad in [
            &["+5"][..],
            &["-1"],
            &["5, 6"],
            &["5", "6"],
            &["0x10"],
            &[""],
            &["1e3"],
        ] {
            let pairs: Vec<(&str, &str)> = bad.iter().map(|v| ("content-length", *v)).collect();
            let response = responded(decide_with(Method::POST, "/api/v1/x", &headers(&pairs)));
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad:?}");
        }
        for (good, length) in [
            (&["5"][..], 5),
            (&["5, 5"], 5),
            (&["7", "7"], 7),
            (&[" 9 "], 9),
        ] {
            let pairs: Vec<(&str, &str)> = good.iter().map(|v| ("content-length", *v)).collect();
            let proxy = proxied(decide_with(Method::POST, "/api/v1/x", &headers(&pairs)));
            assert_eq!(proxy.body_signing, BodySigning::Hash, "{good:?} = {length}");
        }
        // Two lengths that disagree, one within and one past the limit, are refused (400),
        // whichever comes first.
        let response = responded(decide_with(
            Method::POST,
            "/api/v1/x",
            &headers(&[("content-length", "5"), ("content-length", "99999999")]),
        ));
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn every_forwarded_body_is_bounded_whatever_its_framing() {
        // Chunked (no length), declared and external-rewrite bodies all carry the limit the
        // adapter counts against as the body streams.
        for incoming in [HeaderMap::new(), headers(&[("content-length", "500")])] {
            let proxy = proxied(decide_with(Method::POST, "/api/v1/upload", &incoming));
            assert_eq!(proxy.max_body_bytes, 1000);
        }
        let response = responded(decide_with(
            Method::POST,
            "/api/v1/upload",
            &headers(&[("content-length", "1001")]),
        ));
        assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);

        // Cut mid-stream: 413 in the error shape, with the plan's headers (the session cookie).
        let proxy = proxied(decide_pipeline(
            Method::POST,
            "https://edge.example/api/v1/x",
            &headers(&[("origin", "https://app.example")]),
        ));
        let response = proxy.body_too_large(&pipeline_config());
        assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
        let body = error_of(&response);
        assert_eq!(body.error.code, ErrorCode::PayloadTooLarge);
        assert!(
            body.error.message.contains("1000 bytes"),
            "{}",
            body.error.message
        );
        assert_eq!(body.error.request_id, proxy.request_id.as_str());
        assert!(response.headers.get(http::header::SET_COOKIE).is_some());
        assert_eq!(
            response.headers["access-control-allow-origin"],
            "https://app.example"
        );
        assert_eq!(response.headers["x-edge-cache"], "BYPASS");
    }

    #[test]
    fn an_unknown_key_asks_for_a_refresh_once_then_is_final() {
        let mut auth = jwt::config_json();
        auth["jwks_url"] = serde_json::json!({"url": "https://idp.example/jwks.json"});
        let auth = auth.to_string();
        let config = config_with(&[("AUTH_CONFIG", auth.as_str())], "{}");
        let keys = jwt::store(config.auth.as_ref().unwrap());
        let token = jwt::mint(
            &jwt::header("ES256", "rotated-key"),
            &jwt::good_claims(),
            jwt::Signer::Es,
        );
        let incoming = bearer(&token);
        let method = Method::GET;
        let head = RequestHead {
            method: &method,
            url: "/api/v1/x",
            headers: &incoming,
            client_ip: None,
        };
        let mut inputs = inputs_at(jwt::NOW * 1000);
        assert_eq!(
            decide(&head, &config, Some(&keys), inputs),
            Decision::RefreshKeys
        );
        inputs.keys_refreshed = true;
        let response = responded(decide(&head, &config, Some(&keys), inputs));
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);

        // The adapter routes once and decides again from the routed request only.
        let Routing::Routed(routed) = route(&head, &config, inputs_at(jwt::NOW * 1000)) else {
            panic!("an API request is routed");
        };
        let mut inputs = inputs_at(jwt::NOW * 1000);
        assert_eq!(
            routed.decide(&head, &config, Some(&keys), inputs),
            Decision::RefreshKeys
        );
        inputs.keys_refreshed = true;
        let again = responded(routed.decide(&head, &config, Some(&keys), inputs));
        assert_eq!(
            again, response,
            "the same answer as deciding from the start"
        );
    }

    #[test]
    fn answers_before_the_api_are_decided_by_routing_alone() {
        let config = config();
        for (method, url, status) in [
            (Method::GET, "/health", StatusCode::OK),
            (Method::GET, "/nowhere", StatusCode::NOT_FOUND),
            (Method::GET, "/api/../x", StatusCode::BAD_REQUEST),
        ] {
            let incoming = HeaderMap::new();
            let head = RequestHead {
                method: &method,
                url,
                headers: &incoming,
                client_ip: None,
            };
            match route(&head, &config, inputs_at(1_000_000)) {
                Routing::Decided(decision) => assert_eq!(responded(decision).status, status),
                Routing::Routed(_) => panic!("{url} is answered by the edge"),
            }
        }
    }

    #[test]
    fn a_route_requiring_auth_without_auth_config_fails_at_load() {
        let error = EdgeConfig::from_vars_and_rules(
            |name| match name {
                "BRAIN_URL" => Some("http://b".to_owned()),
                "EDGE_SIGNING_SECRETS" => Some("edge-signing-secret-0123456789abcdef".to_owned()),
                "SESSION_KEYS" => Some("k1:session-key-0123456789abcdef0123456789".to_owned()),
                "ROUTES" => {
                    Some(r#"[{"path": "/api/*", "auth": {"mode": "required"}}]"#.to_owned())
                }
                _ => None,
            },
            "{}",
        )
        .unwrap_err();
        assert!(error.to_string().contains("AUTH_CONFIG"), "{error}");
    }

    /// Many brains: where a request goes first, and where it goes when that brain fails.
    mod fleet {
        use super::*;
        use crate::core::brains::{Brains, MAX_ATTEMPTS, TenantKey};
        use shared_types::signature::SignatureHeader;

        const FLEET: &str = "http://b1.internal:8080, http://b2.internal:8080 \
                             http://b3.internal:8080 http://b4.internal:8080";
        const SECRET: &[u8] = b"edge-signing-secret-0123456789abcdef";

        fn fleet_config() -> EdgeConfig {
            config_with(
                &[
                    ("BRAIN_URL", ""),
                    ("BRAIN_URLS", FLEET),
                    (
                        "ROUTES",
                        r#"[{"path": "/api/v1/queries/*", "methods": ["POST"], "retryable": true}]"#,
                    ),
                ],
                "{}",
            )
        }

        fn plan(
            config: &EdgeConfig,
            method: Method,
            url: &str,
            extra: &[(&str, &str)],
        ) -> ProxyRequest {
            plan_with(config, method, url, extra, [3; 16])
        }

        fn plan_with(
            config: &EdgeConfig,
            method: Method,
            url: &str,
            extra: &[(&str, &str)],
            session_random: [u8; 16],
        ) -> ProxyRequest {
            let incoming = headers(extra);
            let head = RequestHead {
                method: &method,
                url,
                headers: &incoming,
                client_ip: Some("203.0.113.9"),
            };
            let inputs = Inputs {
                session_random,
                ..inputs_at(1_000_000)
            };
            proxied(decide(&head, config, None, inputs))
        }

        /// The authority the plan's signature is bound to (signing it first).
        fn signed_for(proxy: &mut ProxyRequest, config: &EdgeConfig) -> String {
            proxy.sign(Some(&signature::body_digest(b"0123456789")), config);
            let header =
                SignatureHeader::parse(proxy.headers[EDGE_SIGNATURE].to_str().unwrap()).unwrap();
            header.authority.unwrap_or_default()
        }

        fn authorities(config: &EdgeConfig, order: &[usize]) -> Vec<String> {
            order
                .iter()
                .map(|&i| config.brains.get(i).unwrap().authority.clone())
                .collect()
        }

        #[test]
        fn each_tenant_goes_to_its_own_brain_and_tenants_spread() {
            let config = fleet_config();
            let mut firsts = std::collections::BTreeSet::new();
            for i in 0..64u8 {
                let proxy = plan_with(&config, Method::GET, "/api/v1/x?a=1", &[], [i; 16]);
                // A session minted for this request is the tenant.
                let tenant = TenantKey::of(None, Some(&proxy.session.id), None);
                let order = config.brains.order(&tenant);
                let upstream = proxy.upstream.as_ref().unwrap();
                assert_eq!(upstream.order(), &order);
                let first = config.brains.get(order.first().unwrap()).unwrap();
                assert_eq!(proxy.url, format!("{}/api/v1/x?a=1", first.origin));
                assert_eq!(proxy.path_and_query, "/api/v1/x?a=1");
                // The same tenant, the same brain, every time.
                let again = plan_with(&config, Method::GET, "/api/v1/y", &[], [i; 16]);
                assert_eq!(again.upstream.as_ref().unwrap().current(), order.first());
                firsts.insert(first.authority.clone());
            }
            assert_eq!(firsts.len(), 4, "64 tenants reach every one of 4 brains");
        }

        #[test]
        fn a_brain_that_refused_is_passed_over_and_the_signature_follows() {
            use crate::core::brains::{BrainHealth, SUSPECT_PROBE_AFTER_MS};
            let config = fleet_config();
            let mut health = BrainHealth::default();
            let first = plan(&config, Method::POST, "/api/v1/threads", &[]);
            let own = first.brain(&config).unwrap().clone();
            // The tenant's own brain refuses the connection: noted.
            first.observe_attempt(
                Err(UpstreamFailure::Unreachable),
                &mut health,
                &config,
                1_000,
            );
            assert_eq!(health.suspects(), 1);

            // The tenant's next write starts at its second brain, signed for that brain.
            let mut write = plan(&config, Method::POST, "/api/v1/threads", &[]);
            write.avoid_suspects(&health, &config, 2_000);
            let second = write.brain(&config).unwrap().clone();
            assert_ne!(second, own);
            assert_eq!(write.url, format!("{}/api/v1/threads", second.origin));
            assert_eq!(signed_for(&mut write, &config), second.authority);
            let order = write.upstream.as_ref().unwrap().order().as_slice().to_vec();
            assert_eq!(
                authorities(&config, &order).last(),
                Some(&own.authority),
                "still in the order, last"
            );

            // A read a while later tries the tenant's own brain again; its answer clears it.
            let mut read = plan(&config, Method::GET, "/api/v1/threads", &[]);
            read.avoid_suspects(&health, &config, 1_000 + SUSPECT_PROBE_AFTER_MS);
            assert_eq!(read.brain(&config), Some(&own));
            read.observe_attempt(Ok(true), &mut health, &config, 6_500);
            assert_eq!(
                health.suspects(),
                1,
                "a read served while draining keeps it suspect"
            );
            read.observe_attempt(Ok(false), &mut health, &config, 7_000);
            assert_eq!(health.suspects(), 0);
            let mut again = plan(&config, Method::POST, "/api/v1/threads", &[]);
            again.avoid_suspects(&health, &config, 7_001);
            assert_eq!(again.brain(&config), Some(&own));

            // A timeout says nothing about health.
            again.observe_attempt(Err(UpstreamFailure::TimedOut), &mut health, &config, 8_000);
            assert_eq!(health.suspects(), 0);
        }

        #[test]
        fn the_order_does_not_depend_on_how_brain_urls_lists_them() {
            let config = fleet_config();
            let reversed = Brains::from_origins([
                "http://b4.internal:8080",
                "http://b3.internal:8080",
                "http://b2.internal:8080",
                "http://b1.internal:8080",
            ])
            .unwrap();
            for i in 0..32 {
                let tenant = TenantKey::of(None, Some(&format!("s{i}")), None);
                let here = authorities(&config, config.brains.order(&tenant).as_slice());
                let there: Vec<String> = reversed
                    .order(&tenant)
                    .as_slice()
                    .iter()
                    .map(|&b| reversed.get(b).unwrap().authority.clone())
                    .collect();
                assert_eq!(here, there);
            }
        }

        #[test]
        fn a_retry_goes_to_the_next_brain_signed_for_it() {
            let config = fleet_config();
            let mut proxy = plan(&config, Method::GET, "/api/v1/x", &[]);
            let order = proxy.upstream.as_ref().unwrap().order().as_slice().to_vec();
            let expected = authorities(&config, &order);
            assert_eq!(signed_for(&mut proxy, &config), expected[0]);
            for (attempt, failure) in [UpstreamFailure::Unreachable, UpstreamFailure::Draining]
                .into_iter()
                .enumerate()
            {
                let next = order[attempt + 1];
                assert_eq!(
                    proxy.next_attempt(failure, &config),
                    NextAttempt::Retry(next)
                );
                let brain = config.brains.get(next).unwrap();
                assert_eq!(proxy.url, format!("{}/api/v1/x", brain.origin));
                // The signature is made again, bound to the new brain, and verifies there only.
                assert_eq!(signed_for(&mut proxy, &config), expected[attempt + 1]);
                let header =
                    SignatureHeader::parse(proxy.headers[EDGE_SIGNATURE].to_str().unwrap())
                        .unwrap();
                let identity = IDENTITY_HEADERS.map(|name| {
                    proxy
                        .headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                });
                let parts = header.parts("GET", "/api/v1/x", identity);
                assert!(header.verify(&parts, [SECRET], 1_000, 300).is_ok());
            }
            // At most MAX_ATTEMPTS brains, then the failure is the answer.
            assert_eq!(MAX_ATTEMPTS, 3);
            match proxy.next_attempt(UpstreamFailure::Unreachable, &config) {
                NextAttempt::GiveUp(response) => {
                    assert_eq!(response.status, StatusCode::BAD_GATEWAY);
                    assert_eq!(error_of(&response).error.code, ErrorCode::BadGateway);
                }
                other => panic!("{other:?}"),
            }
        }

        fn outcome(
            config: &EdgeConfig,
            method: Method,
            path: &str,
            extra: &[(&str, &str)],
            failure: UpstreamFailure,
        ) -> Result<usize, Box<EdgeResponse>> {
            let mut proxy = plan(config, method, path, extra);
            match proxy.next_attempt(failure, config) {
                NextAttempt::Retry(brain) => Ok(brain),
                NextAttempt::GiveUp(response) => Err(Box::new(response)),
            }
        }

        #[test]
        fn only_safe_requests_are_retried_after_a_connect_failure() {
            let config = fleet_config();
            let hashed = [("content-length", "10")];
            let streamed = [("content-length", "500")];
            let unreachable = UpstreamFailure::Unreachable;
            for (method, path, extra, retried) in [
                (Method::GET, "/api/v1/datasets", &[][..], true),
                (Method::HEAD, "/api/v1/datasets", &[][..], true),
                // A read-only POST its route marks retryable, with a buffered body.
                (Method::POST, "/api/v1/queries/sql", &hashed[..], true),
                // The same with a streamed body: gone once sent.
                (Method::POST, "/api/v1/queries/sql", &streamed[..], false),
                (Method::POST, "/api/v1/queries/sql", &[][..], false),
                // Chat messages, uploads, deletes: the brain may have acted on them.
                (
                    Method::POST,
                    "/api/v1/threads/t/messages",
                    &hashed[..],
                    false,
                ),
                (Method::POST, "/api/v1/datasets", &streamed[..], false),
                (Method::DELETE, "/api/v1/datasets/d", &[][..], false),
                (Method::PUT, "/api/v1/queries/sql", &hashed[..], false),
            ] {
                let result = outcome(&config, method.clone(), path, extra, unreachable);
                assert_eq!(result.is_ok(), retried, "{method} {path} {extra:?}");
                if let Err(response) = result {
                    assert_eq!(response.status, StatusCode::BAD_GATEWAY);
                    // The plan's own headers come with it (the new session's cookie, the id).
                    assert!(response.headers.contains_key("set-cookie"));
                    assert_eq!(response.headers[REQUEST_ID], MINTED_ID);
                }
            }
        }

        #[test]
        fn a_draining_brain_passes_any_replayable_request_on() {
            let config = fleet_config();
            let hashed = [("content-length", "10")];
            let streamed = [("content-length", "500")];
            let draining = UpstreamFailure::Draining;
            for (method, path, extra, retried) in [
                (Method::GET, "/api/v1/datasets", &[][..], true),
                (
                    Method::POST,
                    "/api/v1/threads/t/messages",
                    &hashed[..],
                    true,
                ),
                (
                    Method::DELETE,
                    "/api/v1/datasets/d",
                    &[("content-length", "0")][..],
                    true,
                ),
                // Without a length the body streams through (it may be chunked): not replayable.
                (Method::DELETE, "/api/v1/datasets/d", &[][..], false),
                (Method::POST, "/api/v1/datasets", &streamed[..], false),
                (Method::POST, "/api/v1/queries/sql", &[][..], false),
            ] {
                let result = outcome(&config, method.clone(), path, extra, draining);
                assert_eq!(result.is_ok(), retried, "{method} {path} {extra:?}");
                if let Err(response) = result {
                    // The client gets the draining answer in the error shape.
                    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
                    assert_eq!(error_of(&response).error.code, ErrorCode::Unavailable);
                    assert_eq!(response.headers[RETRY_AFTER], "1");
                }
            }
        }

        #[test]
        fn timeouts_and_oversized_bodies_are_never_retried() {
            let config = fleet_config();
            let slow = outcome(
                &config,
                Method::GET,
                "/api/v1/x",
                &[],
                UpstreamFailure::TimedOut,
            );
            assert_eq!(slow.unwrap_err().status, StatusCode::GATEWAY_TIMEOUT);
            let large = outcome(
                &config,
                Method::POST,
                "/api/v1/queries/sql",
                &[("content-length", "10")],
                UpstreamFailure::BodyTooLarge,
            );
            assert_eq!(large.unwrap_err().status, StatusCode::PAYLOAD_TOO_LARGE);
        }

        #[test]
        fn a_fleet_of_one_has_nowhere_else_to_go() {
            let mut proxy = plan(&config(), Method::GET, "/api/v1/x", &[]);
            assert_eq!(signed_for(&mut proxy, &config()), "brain.internal:8080");
            assert!(matches!(
                proxy.next_attempt(UpstreamFailure::Draining, &config()),
                NextAttempt::GiveUp(_)
            ));
        }
    }
}
