//! A proxied request as a sans-IO state machine: after [`decide`](super::decide) answers
//! [`Decision::Proxy`](super::Decision::Proxy), [`Exchange`] owns the plan and says, one
//! [`Action`] at a time, what the adapter must do — take rate-limit tokens, read the body, look
//! the cache up, send to a brain (again, to the next one), serve, store — and the adapter feeds
//! back what happened as an [`Event`]. The order of those steps lives here and only here.
//!
//! ```text
//! Start ─▶ TakeTokens ─▶ ReadBody ─▶ MatchCache ─▶ FetchBrain ⟲ (next brain) ─▶ StreamBack
//!              │             │            ├─ fresh ─▶ ServeCached
//!              ▼             ▼            └─ stale ─▶ ServeCached + a refresh Exchange
//!           Respond       Respond                        (FetchBrain ─▶ Store | Discard)
//! ```
//! Each step is skipped when the plan has nothing for it (no rate-limit policy, a body that is
//! not hashed, no cache step or no cache in the runtime). The machine never panics: an event
//! that does not fit the state it is in ends the exchange with a 500 in the error shape (or,
//! for a refresh, with [`Action::Discard`]).

use http::{HeaderMap, Method, StatusCode};
use shared_types::error::ErrorCode;
use shared_types::headers::DRAINING;
use shared_types::signature::{body_digest, hex};

use super::EdgeConfig;
use super::brains::{BrainHealth, is_draining};
use super::cache::{
    CacheKey, CachePolicy, CacheStatus, Freshness, Storability, StoredMeta, prepare_for_serve,
    prepare_for_store, storable,
};
use super::pipeline::{
    BodySigning, CacheStep, NextAttempt, ProxyRequest, UpstreamFailure, finish_edge_response,
    upstream_failure, upstream_response_headers,
};
use super::ratelimit::{RateLimitOutcome, TakeRequest, Verdict};
use super::response::{EdgeResponse, is_event_stream, stream_broken_event};

/// What the adapter supplies with every event: the isolate's configuration, its clock and the
/// isolate-wide record of brains that recently failed (read before the first attempt, updated
/// after each).
#[derive(Debug)]
pub struct Surroundings<'a> {
    pub config: &'a EdgeConfig,
    pub now_ms: u64,
    pub health: &'a mut BrainHealth,
}

/// What the adapter reports back after carrying out an [`Action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first event of every exchange.
    Start,
    /// The verdicts of [`Action::TakeTokens`]: the caller's bucket and the network's (when
    /// asked for), or why the rate limiter could not be asked.
    Tokens(Result<(Verdict, Option<Verdict>), String>),
    /// The outcome of [`Action::ReadBody`].
    Body(BodyRead),
    /// The outcome of [`Action::MatchCache`]: the stored response's headers, if one was found.
    Cached(Option<HeaderMap>),
    /// The outcome of [`Action::FetchBrain`]: the brain's response head, or why none came.
    /// The adapter keeps the response (and its body) until the next action says what to do
    /// with it; a further [`Action::FetchBrain`] means: let it go.
    Upstream(Result<UpstreamHead, UpstreamFailure>),
    /// [`Action::Log`] was written.
    Logged,
    /// The runtime refused to build the response [`Action::ServeCached`] or
    /// [`Action::StreamBack`] described.
    ResponseRejected,
}

impl Event {
    /// The event's name, for a log line (never its contents: a body, say).
    fn name(&self) -> &'static str {
        match self {
            Event::Start => "Start",
            Event::Tokens(_) => "Tokens",
            Event::Body(_) => "Body",
            Event::Cached(_) => "Cached",
            Event::Upstream(_) => "Upstream",
            Event::Logged => "Logged",
            Event::ResponseRejected => "ResponseRejected",
        }
    }
}

/// How reading the request body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRead {
    Complete(Vec<u8>),
    /// More than the plan's `max_body_bytes` arrived, whatever `content-length` said.
    TooLarge,
    /// The client's stream failed.
    Failed,
}

/// A brain's response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamHead {
    pub status: u16,
    pub headers: HeaderMap,
    /// Whether the response has a body stream (`null` body: nothing to tee into the cache).
    pub has_body: bool,
}

/// What the adapter must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Take tokens from the caller's bucket and, when given, the network's — both at once (a
    /// request should not wait two Durable Object round trips) — then report [`Event::Tokens`].
    TakeTokens {
        caller: (String, TakeRequest),
        network: Option<(String, TakeRequest)>,
    },
    /// Read the whole request body, counting as it arrives, then report [`Event::Body`].
    ReadBody { max_bytes: u64 },
    /// Look `key` up in the cache, then report [`Event::Cached`] (keeping the hit's body).
    MatchCache { key: String },
    /// Send this request to a brain, then report [`Event::Upstream`].
    FetchBrain(Fetch<'a>),
    /// Write this line to the error log, then report [`Event::Logged`].
    Log(String),
    /// Answer with the cached response found by [`Action::MatchCache`]: its status and body,
    /// these headers. If `refresh` is given, run that exchange in the background (after the
    /// answer) to store a fresh copy.
    ServeCached {
        headers: HeaderMap,
        refresh: Option<Box<Exchange>>,
    },
    /// Answer with the brain's response: its status, these headers, its body as `body` says;
    /// when `store` is given, tee the body and put the other branch into the cache.
    StreamBack {
        headers: HeaderMap,
        body: ResponseBody,
        store: Option<CachePut>,
    },
    /// A refresh's end: put the brain's response into the cache as it is (its body, these
    /// headers).
    Store(CachePut),
    /// A refresh's end with nothing to store: let the brain's response (if any) go.
    Discard,
    /// Answer with this; the exchange is over.
    Respond(EdgeResponse),
}

/// The request to send to a brain.
#[derive(Debug, PartialEq, Eq)]
pub struct Fetch<'a> {
    pub url: &'a str,
    pub method: &'a Method,
    /// Signed for this brain: recomputed for every attempt.
    pub headers: &'a HeaderMap,
    pub body: FetchBody<'a>,
    /// Give up waiting for the response headers after this long (report
    /// [`UpstreamFailure::TimedOut`]).
    pub timeout_ms: u32,
}

/// The body of a [`Fetch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchBody<'a> {
    None,
    /// The body read by [`Action::ReadBody`] (sent again as it is on a retry).
    Bytes(&'a [u8]),
    /// The client's body, streamed through once, cut after `max_bytes` (the fetch then fails:
    /// report [`UpstreamFailure::BodyTooLarge`]). Half-duplex, as the Fetch standard requires.
    Stream {
        max_bytes: u64,
    },
}

/// What goes back to the client as the body of [`Action::StreamBack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    /// A null-body status (`101`, `204`, `205`, `304`): no body at all.
    Null,
    /// The brain's body, passed through as it arrives.
    Pass,
    /// An event stream, passed through chunk by chunk, with this event appended should the
    /// brain's stream break off before it ends.
    GuardedEventStream { broken_event: Vec<u8> },
}

/// A cache write: the key and the headers to store the response with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachePut {
    pub key: String,
    pub headers: HeaderMap,
}

/// One proxied request, from the plan to the answer. See the module docs for the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    proxy: ProxyRequest,
    state: State,
    /// Whether the runtime has a cache at all (Vercel Edge Functions do not: every response
    /// is fetched and marked `BYPASS`, by design rather than by a failing lookup).
    cache_available: bool,
    /// The body read by [`Action::ReadBody`] and its SHA-256 (the signature covers it).
    body: Option<(Vec<u8>, String)>,
    /// The cache entry this request reads and writes, once known.
    cache_entry: Option<(CacheKey, CachePolicy)>,
    /// The nonce of the signature of a refresh of a stale copy (a nonce is good for one
    /// request only, and the client's request used its own).
    refresh_nonce: [u8; 16],
    /// True for the background refresh of a stale copy: it has no client to answer.
    refresh: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    New,
    TakingTokens,
    ReadingBody,
    MatchingCache,
    Fetching,
    /// An [`Action::Log`] is out; then this.
    Logging(AfterLog),
    /// An answer (or a cache write) was handed to the adapter.
    Answered,
    Over,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AfterLog {
    Respond(EdgeResponse),
    /// After a failed attempt: try the next brain, or give up.
    NextAttempt(UpstreamFailure),
}

impl Exchange {
    /// An exchange for the proxy plan `proxy`.
    /// `refresh_nonce` (random) signs the background refresh should a stale copy be served.
    pub fn new(proxy: ProxyRequest, cache_available: bool, refresh_nonce: [u8; 16]) -> Self {
        Self {
            proxy,
            state: State::New,
            cache_available,
            body: None,
            cache_entry: None,
            refresh_nonce,
            refresh: false,
        }
    }

    /// An exchange for a request the edge makes itself with a body it wrote
    /// ([`brain_call`](super::pipeline::brain_call)): nothing to read, nothing cached.
    pub fn with_body(proxy: ProxyRequest, body: Vec<u8>) -> Self {
        let digest = body_digest(&body);
        Self {
            proxy,
            state: State::New,
            cache_available: false,
            body: Some((body, digest)),
            cache_entry: None,
            refresh_nonce: [0; 16],
            refresh: false,
        }
    }

    /// When the plan stops waiting for a brain's response headers (ms since the epoch).
    pub fn deadline_ms(&self) -> u64 {
        self.proxy.deadline_ms
    }

    /// The next step, given how the last one ended.
    pub fn advance(&mut self, event: Event, at: &mut Surroundings<'_>) -> Action<'_> {
        let state = std::mem::replace(&mut self.state, State::Over);
        match (state, event) {
            (State::New, Event::Start) if self.refresh => self.first_fetch(at),
            (State::New, Event::Start) => self.take_tokens(at),
            (State::TakingTokens, Event::Tokens(verdicts)) => self.after_tokens(verdicts, at),
            (State::ReadingBody, Event::Body(read)) => self.after_body(read, at),
            (State::MatchingCache, Event::Cached(stored)) => self.after_cache_match(stored, at),
            (State::Fetching, Event::Upstream(result)) => self.after_fetch(result, at),
            (State::Logging(AfterLog::Respond(response)), Event::Logged) => self.give_up(response),
            (State::Logging(AfterLog::NextAttempt(failure)), Event::Logged) => {
                match self.proxy.next_attempt(failure, at.config) {
                    NextAttempt::Retry(_) => self.fetch(at),
                    NextAttempt::GiveUp(response) => self.give_up(response),
                }
            }
            (State::Answered, Event::ResponseRejected) => {
                let response = upstream_failure(
                    UpstreamFailure::Unreachable,
                    &self.proxy.request_id,
                    at.config,
                );
                self.give_up(self.finish(response, at.config))
            }
            (state, event) => self.out_of_order(&state, &event, at.config),
        }
    }

    fn take_tokens(&mut self, at: &mut Surroundings<'_>) -> Action<'_> {
        let Some(plan) = &self.proxy.rate_limit else {
            return self.read_body(at);
        };
        let owned = |(key, take): (&str, TakeRequest)| (key.to_owned(), take);
        let action = Action::TakeTokens {
            caller: owned(plan.caller_take()),
            network: plan.network_take().map(owned),
        };
        self.state = State::TakingTokens;
        action
    }

    fn after_tokens(
        &mut self,
        verdicts: Result<(Verdict, Option<Verdict>), String>,
        at: &mut Surroundings<'_>,
    ) -> Action<'_> {
        let outcome = match (&self.proxy.rate_limit, verdicts) {
            (Some(plan), Ok((caller, network))) => {
                plan.outcome(&caller, network.as_ref(), &self.proxy.request_id)
            }
            // Fail closed: an unchecked request could exceed a global limit.
            (_, Err(error)) => {
                let response = EdgeResponse::error(
                    ErrorCode::Unavailable,
                    "the rate limiter is unavailable; retry shortly",
                    &self.proxy.request_id,
                );
                let log = format!(
                    "request_id={} rate limiter unavailable: {error}",
                    self.proxy.request_id
                );
                return self.log_then(log, AfterLog::Respond(self.finish(response, at.config)));
            }
            (None, Ok(_)) => return self.read_body(at),
        };
        match outcome {
            RateLimitOutcome::Respond(response) => self.give_up(self.finish(response, at.config)),
            RateLimitOutcome::Proceed { headers } => {
                self.proxy.response_headers.extend(headers);
                self.read_body(at)
            }
        }
    }

    fn read_body(&mut self, at: &mut Surroundings<'_>) -> Action<'_> {
        if self.proxy.body_signing == BodySigning::Hash && self.body.is_none() {
            self.state = State::ReadingBody;
            Action::ReadBody {
                max_bytes: self.proxy.max_body_bytes,
            }
        } else {
            self.match_cache(at)
        }
    }

    fn after_body(&mut self, read: BodyRead, at: &mut Surroundings<'_>) -> Action<'_> {
        match read {
            BodyRead::Complete(bytes) => {
                let digest = body_digest(&bytes);
                self.body = Some((bytes, digest));
                self.match_cache(at)
            }
            BodyRead::TooLarge => self.give_up(self.proxy.body_too_large(at.config)),
            BodyRead::Failed => {
                let response = EdgeResponse::error(
                    ErrorCode::BadRequest,
                    "the request body could not be read",
                    &self.proxy.request_id,
                );
                self.give_up(self.finish(response, at.config))
            }
        }
    }

    fn match_cache(&mut self, at: &mut Surroundings<'_>) -> Action<'_> {
        self.cache_entry = match &self.proxy.cache {
            _ if !self.cache_available => None,
            CacheStep::Bypass => None,
            CacheStep::Lookup { key, policy } => Some((key.clone(), policy.clone())),
            CacheStep::LookupWithBody { policy, .. } => self
                .body
                .as_ref()
                .and_then(|(bytes, _)| self.proxy.cache_key_for_body(bytes, at.config))
                .map(|key| (key, policy.clone())),
        };
        match &self.cache_entry {
            Some((key, _)) => {
                let key = key.as_str().to_owned();
                self.state = State::MatchingCache;
                Action::MatchCache { key }
            }
            None => self.first_fetch(at),
        }
    }

    fn after_cache_match(
        &mut self,
        stored: Option<HeaderMap>,
        at: &mut Surroundings<'_>,
    ) -> Action<'_> {
        let Some(stored) = stored else {
            return self.first_fetch(at);
        };
        let status = match StoredMeta::from_headers(&stored).map(|meta| meta.freshness(at.now_ms)) {
            Some(Freshness::Fresh) => CacheStatus::Hit,
            Some(Freshness::Stale) => CacheStatus::Stale,
            Some(Freshness::Expired) | None => return self.first_fetch(at),
        };
        let served = prepare_for_serve(&stored, status, at.now_ms);
        let headers = upstream_response_headers(&served, &self.proxy, at.config);
        // Serve the stale copy now; refresh it in the background with a signature of its own.
        let refresh = (status == CacheStatus::Stale).then(|| Box::new(self.refresh_of(at.now_ms)));
        self.state = State::Answered;
        Action::ServeCached { headers, refresh }
    }

    /// The background refresh of a stale copy: the same request, signed afresh, answering
    /// nobody; it ends by storing what the brain says, if storable.
    fn refresh_of(&self, now_ms: u64) -> Exchange {
        let mut proxy = self.proxy.clone();
        proxy.signature_nonce = hex(&self.refresh_nonce);
        proxy.signature_timestamp_secs = now_ms / 1000;
        Exchange {
            proxy,
            state: State::New,
            cache_available: self.cache_available,
            body: self.body.clone(),
            cache_entry: self.cache_entry.clone(),
            refresh_nonce: self.refresh_nonce,
            refresh: true,
        }
    }

    /// The first attempt starts at the tenant's first brain not recently seen failing.
    fn first_fetch(&mut self, at: &mut Surroundings<'_>) -> Action<'_> {
        self.proxy.avoid_suspects(at.health, at.config, at.now_ms);
        self.fetch(at)
    }

    fn fetch(&mut self, at: &mut Surroundings<'_>) -> Action<'_> {
        let digest = self.body.as_ref().map(|(_, digest)| digest.as_str());
        match self.proxy.body_signing {
            BodySigning::Hash => self.proxy.sign(digest, at.config),
            BodySigning::Stream | BodySigning::Empty => self.proxy.sign(None, at.config),
        }
        let body = match (self.proxy.body_signing, &self.body) {
            (BodySigning::Hash, Some((bytes, _))) => FetchBody::Bytes(bytes),
            // A refresh has no client body to stream (a cached request never streams one).
            (BodySigning::Stream, _) if !self.refresh => FetchBody::Stream {
                max_bytes: self.proxy.max_body_bytes,
            },
            _ => FetchBody::None,
        };
        self.state = State::Fetching;
        Action::FetchBrain(Fetch {
            url: &self.proxy.url,
            method: &self.proxy.method,
            headers: &self.proxy.headers,
            body,
            timeout_ms: u32::try_from(self.proxy.remaining(at.now_ms).as_millis())
                .unwrap_or(u32::MAX),
        })
    }

    fn after_fetch(
        &mut self,
        result: Result<UpstreamHead, UpstreamFailure>,
        at: &mut Surroundings<'_>,
    ) -> Action<'_> {
        let failure = match result {
            Ok(head) => {
                let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
                if is_draining(status, &head.headers) {
                    UpstreamFailure::Draining
                } else {
                    // A draining brain still serves reads and says so on them.
                    let draining = head
                        .headers
                        .get(DRAINING)
                        .is_some_and(|value| value.as_bytes() == b"1");
                    self.observe(Ok(draining), at);
                    return self.deliver(head, at);
                }
            }
            Err(failure) => failure,
        };
        self.observe(Err(failure), at);
        let log = format!(
            "request_id={} upstream {:?}: {} {}",
            self.proxy.request_id, failure, self.proxy.method, self.proxy.url
        );
        self.log_then(log, AfterLog::NextAttempt(failure))
    }

    fn observe(&self, result: Result<bool, UpstreamFailure>, at: &mut Surroundings<'_>) {
        self.proxy
            .observe_attempt(result, at.health, at.config, at.now_ms);
    }

    /// The brain answered: hand the answer to the client (and the cache), or, for a refresh,
    /// to the cache only.
    fn deliver(&mut self, head: UpstreamHead, at: &mut Surroundings<'_>) -> Action<'_> {
        let put = match &self.cache_entry {
            Some((key, policy)) if head.has_body => {
                match storable(head.status, &head.headers, policy) {
                    Storability::Storable { ttl_secs, swr_secs } => Some(CachePut {
                        key: key.as_str().to_owned(),
                        headers: prepare_for_store(&head.headers, ttl_secs, swr_secs, at.now_ms),
                    }),
                    Storability::Bypass(_) => None,
                }
            }
            _ => None,
        };
        if self.refresh {
            self.state = State::Over;
            return put.map_or(Action::Discard, Action::Store);
        }
        self.state = State::Answered;
        let mut headers = upstream_response_headers(&head.headers, &self.proxy, at.config);
        let cache_status = if put.is_some() {
            CacheStatus::Miss
        } else {
            CacheStatus::Bypass
        };
        cache_status.set_on(&mut headers);
        let body = if matches!(head.status, 101 | 204 | 205 | 304) {
            ResponseBody::Null
        } else if is_event_stream(&head.headers) {
            ResponseBody::GuardedEventStream {
                broken_event: stream_broken_event(&self.proxy.request_id),
            }
        } else {
            ResponseBody::Pass
        };
        Action::StreamBack {
            headers,
            body,
            store: put,
        }
    }

    fn log_then(&mut self, line: String, then: AfterLog) -> Action<'_> {
        self.state = State::Logging(then);
        Action::Log(line)
    }

    /// Ends the exchange with `response` (a refresh has nobody to answer: it lets go).
    fn give_up(&mut self, response: EdgeResponse) -> Action<'_> {
        self.state = State::Over;
        if self.refresh {
            Action::Discard
        } else {
            Action::Respond(response)
        }
    }

    /// An answer the edge makes itself: the plan's response headers and CORS verdict added.
    fn finish(&self, response: EdgeResponse, config: &EdgeConfig) -> EdgeResponse {
        finish_edge_response(response, &self.proxy, config)
    }

    /// An adapter bug, never a client's doing: end the exchange in the error shape rather
    /// than guess.
    fn out_of_order(&mut self, state: &State, event: &Event, config: &EdgeConfig) -> Action<'_> {
        let response = EdgeResponse::error(
            ErrorCode::Internal,
            "the edge lost track of this request",
            &self.proxy.request_id,
        );
        let log = format!(
            "request_id={} exchange got {} in state {state:?}",
            self.proxy.request_id,
            event.name()
        );
        let response = self.finish(response, config);
        self.log_then(log, AfterLog::Respond(response))
    }
}

pub mod slab;

#[cfg(test)]
mod tests;
