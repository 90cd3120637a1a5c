//! The request pipeline: what the edge does with one request, and with the brain's answer.

use core::time::Duration;

use http::header::{ALLOW, CONNECTION, CONTENT_LENGTH, COOKIE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use shared_types::error::ErrorCode;
use shared_types::headers::{
    CLIENT_SESSION_ID, EDGE_SIGNATURE, IDENTITY_HEADERS, IDENTITY_SCOPES, IDENTITY_SESSION,
    IDENTITY_USER, REQUEST_ID,
};
use shared_types::signature::{self, UNSIGNED_PAYLOAD};

use super::config::EdgeConfig;
use super::request_id::RequestId;
use super::response::{EdgeResponse, set_request_id};
use super::session::{COOKIE_NAME, Session};

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
}

/// What the adapter must do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer directly; the brain is not involved.
    Respond(EdgeResponse),
    /// Forward to the brain and stream its answer back.
    Proxy(Box<ProxyRequest>),
}

/// A request to send to the brain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    pub method: Method,
    /// Absolute URL at the brain: its origin plus the request's own path and query.
    pub url: String,
    pub headers: HeaderMap,
    /// Whether to stream the client's body through (never for `GET`/`HEAD`, which have none).
    pub forward_body: bool,
    /// How the body enters the signature: the adapter reads a [`BodySigning::Hash`] body into
    /// memory and passes its SHA-256 to [`ProxyRequest::sign`]; others are not read.
    pub body_signing: BodySigning,
    /// Time and nonce of the signature the adapter completes with [`ProxyRequest::sign`].
    pub signature_timestamp_secs: u64,
    pub signature_nonce: String,
    /// Headers to add to whatever answer the client gets (session cookie, …).
    pub response_headers: HeaderMap,
    /// The caller's session.
    pub session: Session,
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
    /// Adds the `x-edgebrain-signature` header, once the adapter knows the body digest
    /// (`None` for [`BodySigning::Empty`] and [`BodySigning::Stream`]).
    pub fn sign(&mut self, body_digest: Option<&str>, config: &EdgeConfig) {
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
        let path_and_query = self
            .url
            .get(config.brain_origin.len()..)
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or("/");
        let parts = signature::SignedParts {
            timestamp_secs: self.signature_timestamp_secs,
            nonce: &self.signature_nonce,
            method: self.method.as_str(),
            path_and_query,
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

    /// Time left before [`ProxyRequest::deadline_ms`] as seen at `now_ms` (zero once passed).
    pub fn remaining(&self, now_ms: u64) -> Duration {
        Duration::from_millis(self.deadline_ms.saturating_sub(now_ms))
    }
}

/// Why the brain's answer never arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// Connection refused, DNS failure, TLS failure, reset before headers…
    Unreachable,
    /// No response headers before the deadline.
    TimedOut,
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
const EDGE_ASSERTED: [&str; 9] = [
    REQUEST_ID,
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    IDENTITY_USER,
    IDENTITY_SESSION,
    IDENTITY_SCOPES,
    EDGE_SIGNATURE,
];

/// Decides what to do with one request.
pub fn decide(head: &RequestHead<'_>, config: &EdgeConfig, inputs: Inputs) -> Decision {
    let request_id = head
        .headers
        .get(REQUEST_ID)
        .and_then(|value| RequestId::parse(value.as_bytes()))
        .unwrap_or_else(|| RequestId::from_random(inputs.random));
    let reject = |code: ErrorCode, message: String| {
        Decision::Respond(EdgeResponse::error(code, message, &request_id))
    };

    if head.url.len() > config.max_url_bytes {
        return reject(
            ErrorCode::UriTooLong,
            format!(
                "the URL is {} bytes; the limit is {}",
                head.url.len(),
                config.max_url_bytes
            ),
        );
    }
    let header_bytes: usize = head
        .headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    if header_bytes > config.max_header_bytes {
        return reject(
            ErrorCode::HeadersTooLarge,
            format!(
                "the request headers total {header_bytes} bytes; the limit is {}",
                config.max_header_bytes
            ),
        );
    }
    let Some(target) = RequestTarget::parse(head.url) else {
        return reject(
            ErrorCode::BadRequest,
            "the request URL is malformed".to_owned(),
        );
    };
    if has_dot_segment(target.path) {
        return reject(
            ErrorCode::BadRequest,
            "the path contains '.' or '..' segments".to_owned(),
        );
    }

    if target.path == "/health" {
        return match *head.method {
            Method::GET => Decision::Respond(EdgeResponse::health(&request_id)),
            Method::HEAD => Decision::Respond(EdgeResponse::health(&request_id).without_body()),
            _ => {
                let mut response = EdgeResponse::error(
                    ErrorCode::MethodNotAllowed,
                    format!("{} is not allowed on /health; use GET or HEAD", head.method),
                    &request_id,
                );
                response
                    .headers
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
                Decision::Respond(response)
            }
        };
    }

    if target.path == "/api" || target.path.starts_with("/api/") {
        let mut declared_length = None;
        if let Some(length) = head.headers.get(CONTENT_LENGTH) {
            declared_length = length
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            match declared_length {
                None => {
                    return reject(
                        ErrorCode::BadRequest,
                        "the content-length header is not a number".to_owned(),
                    );
                }
                Some(n) if n > config.max_body_bytes => {
                    return reject(
                        ErrorCode::PayloadTooLarge,
                        format!(
                            "the body is {n} bytes; the limit is {}",
                            config.max_body_bytes
                        ),
                    );
                }
                Some(_) => {}
            }
        }
        let now_secs = inputs.now_ms / 1000;
        let session = Session::resolve(
            head.headers,
            &config.sessions,
            now_secs,
            inputs.session_random,
        );
        let mut headers = forwarded_request_headers(head, target.scheme, &request_id);
        // The session token is the edge's business; the brain gets the bare id.
        strip_session_token(&mut headers);
        if let Ok(value) = HeaderValue::from_str(&session.id) {
            headers.insert(HeaderName::from_static(IDENTITY_SESSION), value);
        }
        let forward_body = !matches!(*head.method, Method::GET | Method::HEAD);
        let body_signing = match declared_length {
            _ if !forward_body => BodySigning::Empty,
            Some(length) if length <= config.sign_body_max_bytes => BodySigning::Hash,
            _ => BodySigning::Stream,
        };
        let mut response_headers = HeaderMap::new();
        if let Some((name, value)) = session.response_header(config.sessions.ttl_secs) {
            response_headers.insert(name, value);
        }
        return Decision::Proxy(Box::new(ProxyRequest {
            method: head.method.clone(),
            url: format!("{}{}", config.brain_origin, target.path_and_query),
            headers,
            forward_body,
            body_signing,
            signature_timestamp_secs: now_secs,
            signature_nonce: signature::hex(&inputs.nonce),
            response_headers,
            session,
            deadline_ms: inputs
                .now_ms
                .saturating_add(duration_ms(config.upstream_timeout)),
            request_id,
        }));
    }

    reject(ErrorCode::NotFound, format!("no route for {}", target.path))
}

/// Headers to send back to the client with the brain's response: the brain's own (less
/// hop-by-hop ones), the request id, and the edge's additions for this request.
pub fn upstream_response_headers(upstream: &HeaderMap, proxy: &ProxyRequest) -> HeaderMap {
    let mut headers = without_hop_by_hop(upstream);
    set_request_id(&mut headers, &proxy.request_id);
    for (name, value) in &proxy.response_headers {
        headers.append(name, value.clone());
    }
    headers
}

/// Removes the session cookie from the `Cookie` header(s) and the `x-session-id` header, so
/// the token never reaches the brain (other cookies pass).
fn strip_session_token(headers: &mut HeaderMap) {
    headers.remove(CLIENT_SESSION_ID);
    let cookies: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(COOKIE);
    for cookie in cookies {
        let Ok(text) = cookie.to_str() else {
            headers.append(COOKIE, cookie);
            continue;
        };
        let kept: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|pair| {
                !pair.is_empty() && pair.split_once('=').map_or(*pair, |(k, _)| k) != COOKIE_NAME
            })
            .collect();
        if !kept.is_empty()
            && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
        {
            headers.append(COOKIE, value);
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
        UpstreamFailure::TimedOut => EdgeResponse::error(
            ErrorCode::GatewayTimeout,
            format!(
                "the brain did not answer within {} ms",
                duration_ms(config.upstream_timeout)
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

/// The parts of a request URL the core routes on, borrowed from the raw string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RequestTarget<'a> {
    scheme: Option<&'a str>,
    /// Path only, starting with `/`.
    path: &'a str,
    /// Path plus `?query` if present; the fragment removed.
    path_and_query: &'a str,
}

impl<'a> RequestTarget<'a> {
    fn parse(url: &'a str) -> Option<Self> {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let (scheme, path_and_query) = match url.split_once("://") {
            Some((scheme, rest)) if !scheme.contains('/') => {
                let valid_scheme = scheme
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic())
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
                if !valid_scheme {
                    return None;
                }
                // An absolute URL without a path means the root.
                (Some(scheme), rest.find('/').map_or("/", |i| &rest[i..]))
            }
            _ => (None, url),
        };
        if !path_and_query.starts_with('/') || path_and_query.starts_with("//") {
            return None;
        }
        // The runtime hands over serialized URLs: anything outside visible ASCII is malformed.
        if !path_and_query.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(path, _)| path);
        Some(Self {
            scheme,
            path,
            path_and_query,
        })
    }
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
    use http::StatusCode;
    use shared_types::error::ErrorBody;
    use shared_types::health::{HealthReport, Service};

    const RANDOM: [u8; 16] = [7; 16];
    const MINTED_ID: &str = "07070707-0707-4707-8707-070707070707";

    fn config() -> EdgeConfig {
        EdgeConfig {
            brain_origin: "http://brain.internal:8080".to_owned(),
            upstream_timeout: Duration::from_millis(1500),
            max_body_bytes: 1000,
            max_header_bytes: 4096,
            max_url_bytes: 2048,
            signing_secrets: vec![b"edge-signing-secret-0123456789abcdef".to_vec()],
            sign_body_max_bytes: 100,
            sessions: crate::core::session::SessionConfig {
                keys: crate::core::session::SessionConfig::parse_keys(
                    "k1:session-key-0123456789abcdef0123456789",
                )
                .unwrap(),
                ttl_secs: 3600,
            },
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn decide_with(method: Method, url: &str, headers: &HeaderMap) -> Decision {
        let head = RequestHead {
            method: &method,
            url,
            headers,
            client_ip: Some("203.0.113.9"),
        };
        decide(
            &head,
            &config(),
            Inputs {
                now_ms: 1_000_000,
                random: RANDOM,
                session_random: [3; 16],
                nonce: [4; 16],
            },
        )
    }

    fn responded(decision: Decision) -> EdgeResponse {
        match decision {
            Decision::Respond(response) => response,
            Decision::Proxy(proxy) => panic!("expected a response, got a proxy to {}", proxy.url),
        }
    }

    fn proxied(decision: Decision) -> ProxyRequest {
        match decision {
            Decision::Proxy(proxy) => *proxy,
            Decision::Respond(response) => panic!("expected a proxy, got {:?}", response.status),
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
        let proxy = proxied(decide(
            &head,
            &config(),
            Inputs {
                now_ms: 0,
                random: RANDOM,
                session_random: [3; 16],
                nonce: [4; 16],
            },
        ));
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
        let out = upstream_response_headers(&upstream, &proxy);
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
}
