//! Every path through [`Exchange`], written as the sequence of actions the adapter carries out
//! (one line per action, [`describe`]) against the events it feeds back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::{HeaderMap, Method};
use proptest::prelude::*;
use shared_types::headers::{DRAINING, EDGE_CACHE, EDGE_SIGNATURE, REQUEST_ID};

use super::*;
use crate::core::cache::META_HEADER;
use crate::core::test_support::{config_with, headers};
use crate::core::{Decision, Inputs, RequestHead, decide};

/// 2026-11-23T00:00:00Z.
const NOW: u64 = 1_795_392_000_000;
const A: &str = "http://a.internal:8080";
const B: &str = "http://b.internal:8080";

fn config(extra: &[(&str, &str)]) -> EdgeConfig {
    let mut vars = vec![
        ("BRAIN_URL", ""),
        (
            "BRAIN_URLS",
            "http://a.internal:8080,http://b.internal:8080",
        ),
        (
            "ROUTES",
            r#"[
            {"path": "/api/v1/reports/*", "methods": ["GET"], "cache": {"ttl_secs": 60, "swr_secs": 30}},
            {"path": "/api/v1/answers", "methods": ["POST"],
             "cache": {"ttl_secs": 60, "deterministic_post": true, "scope": "identity"}},
            {"path": "/api/v1/search", "methods": ["POST"], "retryable": true}
        ]"#,
        ),
    ];
    vars.extend_from_slice(extra);
    config_with(&vars, "{}")
}

fn rate_limited_config() -> EdgeConfig {
    config(&[(
        "RATE_LIMITS",
        r#"[{"name": "default", "limit": 100, "window_secs": 60}]"#,
    )])
}

/// What an adapter supplies: the configuration, the isolate's brain health and the clock.
struct Drive {
    config: EdgeConfig,
    health: BrainHealth,
    now_ms: u64,
}

impl Drive {
    fn new(config: EdgeConfig) -> Self {
        Self {
            config,
            health: BrainHealth::default(),
            now_ms: NOW,
        }
    }

    /// The plan `decide` makes for this request at [`NOW`], as an exchange (with a runtime
    /// cache).
    fn exchange(&self, method: Method, url: &str, pairs: &[(&str, &str)]) -> Exchange {
        let request_headers = headers(pairs);
        let head = RequestHead {
            method: &method,
            url,
            headers: &request_headers,
            client_ip: Some("203.0.113.9"),
        };
        let inputs = Inputs {
            now_ms: NOW,
            random: [7; 16],
            session_random: [3; 16],
            nonce: [4; 16],
            keys_refreshed: false,
        };
        match decide(&head, &self.config, None, inputs) {
            Decision::Proxy(proxy) => Exchange::new(*proxy, true, [9; 16]),
            other => panic!("expected a proxy plan, got {other:?}"),
        }
    }

    /// The URL of the plan's first attempt, and of the other brain.
    fn brains_of(&self, method: Method, url: &str, pairs: &[(&str, &str)]) -> (String, String) {
        let first = self.exchange(method, url, pairs).proxy.url;
        let path = first.trim_start_matches(A).trim_start_matches(B).to_owned();
        let other = if first.starts_with(A) { B } else { A };
        (first, format!("{other}{path}"))
    }

    fn advance<'e>(&mut self, exchange: &'e mut Exchange, event: Event) -> Action<'e> {
        let mut at = Surroundings {
            config: &self.config,
            now_ms: self.now_ms,
            health: &mut self.health,
        };
        exchange.advance(event, &mut at)
    }

    /// Drives `exchange` from `Start` through `events`, checking each action (one per event)
    /// against `expected`.
    fn run(&mut self, exchange: &mut Exchange, events: Vec<Event>, expected: &[&str]) {
        let seen: Vec<String> = std::iter::once(Event::Start)
            .chain(events)
            .map(|event| describe(&self.advance(exchange, event)))
            .collect();
        assert_eq!(seen, expected);
    }

    /// The `x-edgebrain-signature` of the fetch `event` leads to.
    fn signature_after(&mut self, exchange: &mut Exchange, event: Event) -> String {
        match self.advance(exchange, event) {
            Action::FetchBrain(fetch) => fetch.headers[EDGE_SIGNATURE].to_str().unwrap().to_owned(),
            other => panic!("expected a fetch, got {}", describe(&other)),
        }
    }

    /// The headers of the answer the exchange gives after `events`.
    fn answer_headers(&mut self, exchange: &mut Exchange, events: Vec<Event>) -> HeaderMap {
        let mut last = None;
        for event in std::iter::once(Event::Start).chain(events) {
            last = Some(match self.advance(exchange, event) {
                Action::StreamBack { headers, .. } | Action::ServeCached { headers, .. } => headers,
                _ => HeaderMap::new(),
            });
        }
        last.unwrap_or_default()
    }
}

/// One line per action: what the adapter is asked to do, with the parts that matter.
fn describe(action: &Action<'_>) -> String {
    match action {
        Action::TakeTokens { caller, network } => format!(
            "TakeTokens {}{}",
            caller.0,
            network
                .as_ref()
                .map_or(String::new(), |(key, _)| format!(" + {key}"))
        ),
        Action::ReadBody { max_bytes } => format!("ReadBody ≤{max_bytes}"),
        Action::MatchCache { key } => format!("MatchCache {key}"),
        Action::FetchBrain(fetch) => format!(
            "FetchBrain {} {} body={} timeout={}",
            fetch.method,
            fetch.url,
            match fetch.body {
                FetchBody::None => "none".to_owned(),
                FetchBody::Bytes(bytes) => format!("bytes({})", bytes.len()),
                FetchBody::Stream { max_bytes } => format!("stream(≤{max_bytes})"),
            },
            fetch.timeout_ms
        ),
        Action::Log(_) => "Log".to_owned(),
        Action::ServeCached { headers, refresh } => format!(
            "ServeCached {}{}",
            headers[EDGE_CACHE].to_str().unwrap(),
            if refresh.is_some() { " + refresh" } else { "" }
        ),
        Action::StreamBack {
            headers,
            body,
            store,
        } => format!(
            "StreamBack {} {}{}",
            headers[EDGE_CACHE].to_str().unwrap(),
            match body {
                ResponseBody::Null => "null",
                ResponseBody::Pass => "pass",
                ResponseBody::GuardedEventStream { .. } => "guarded",
            },
            if store.is_some() { " + store" } else { "" }
        ),
        Action::Store(put) => format!("Store {}", put.key),
        Action::Discard => "Discard".to_owned(),
        Action::Respond(response) => format!("Respond {}", response.status.as_u16()),
    }
}

fn answered(status: u16, pairs: &[(&str, &str)]) -> Event {
    Event::Upstream(Ok(UpstreamHead {
        status,
        headers: headers(pairs),
        has_body: true,
    }))
}

fn unreachable() -> Event {
    Event::Upstream(Err(UpstreamFailure::Unreachable))
}

fn json_body(bytes: &[u8]) -> Event {
    Event::Body(BodyRead::Complete(bytes.to_vec()))
}

fn fetch(method: &str, url: &str, body: &str, timeout_ms: u32) -> String {
    format!("FetchBrain {method} {url} body={body} timeout={timeout_ms}")
}

const X: &str = "https://edge.example/api/v1/x";
const REPORT: &str = "https://edge.example/api/v1/reports/q";
const ANSWERS: &str = "https://edge.example/api/v1/answers";
const SEARCH: &str = "https://edge.example/api/v1/search";
const SMALL_BODY: [(&str, &str); 2] = [
    ("content-length", "2"),
    ("content-type", "application/json"),
];

#[test]
fn a_plain_get_goes_to_the_first_brain_and_streams_back() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::GET, X, &[]);
    let mut get = drive.exchange(Method::GET, X, &[]);
    drive.run(
        &mut get,
        vec![answered(200, &[("content-type", "application/json")])],
        &[
            &fetch("GET", &first, "none", 1500),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn the_answer_carries_the_request_id_and_the_brains_headers_without_hop_by_hop_ones() {
    let mut drive = Drive::new(config(&[]));
    let mut get = drive.exchange(Method::GET, X, &[]);
    let event = answered(
        200,
        &[
            ("x-brain", "1"),
            ("connection", "close"),
            (EDGE_CACHE, "HIT"),
        ],
    );
    let headers = drive.answer_headers(&mut get, vec![event]);
    assert_eq!(headers[REQUEST_ID], "07070707-0707-4707-8707-070707070707");
    assert_eq!(headers["x-brain"], "1");
    assert!(headers.get("connection").is_none());
    assert_eq!(
        headers[EDGE_CACHE], "BYPASS",
        "the brain cannot claim a cache status"
    );
}

#[test]
fn a_get_whose_brain_refuses_the_connection_goes_to_the_next_brain_signed_for_it() {
    let mut drive = Drive::new(config(&[]));
    let (first, second) = drive.brains_of(Method::GET, X, &[]);
    let mut get = drive.exchange(Method::GET, X, &[]);
    drive.run(
        &mut get,
        vec![unreachable(), Event::Logged, answered(200, &[])],
        &[
            &fetch("GET", &first, "none", 1500),
            "Log",
            &fetch("GET", &second, "none", 1500),
            "StreamBack BYPASS pass",
        ],
    );
    // The next request of the tenant starts at the brain that answered.
    let mut again = drive.exchange(Method::GET, X, &[]);
    drive.run(
        &mut again,
        vec![answered(200, &[])],
        &[
            &fetch("GET", &second, "none", 1500),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn each_attempt_is_signed_for_its_own_brain() {
    let mut drive = Drive::new(config(&[]));
    let mut get = drive.exchange(Method::GET, X, &[]);
    let first = drive.signature_after(&mut get, Event::Start);
    assert_eq!(describe(&drive.advance(&mut get, unreachable())), "Log");
    let second = drive.signature_after(&mut get, Event::Logged);
    assert_ne!(first, second);
}

#[test]
fn a_post_that_may_have_reached_a_brain_is_never_sent_twice() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::POST, X, &SMALL_BODY);
    let mut post = drive.exchange(Method::POST, X, &SMALL_BODY);
    drive.run(
        &mut post,
        vec![json_body(b"{}"), unreachable(), Event::Logged],
        &[
            "ReadBody ≤1000",
            &fetch("POST", &first, "bytes(2)", 1500),
            "Log",
            "Respond 502",
        ],
    );
}

/// A retryable POST after a refused connection, and any POST after a draining answer, go on
/// to the next brain with the same body; another 503 is the brain's own answer.
#[test]
fn a_second_attempt_goes_to_the_next_brain_with_the_same_body() {
    let mut drive = Drive::new(config(&[]));
    for (url, failure) in [
        (SEARCH, unreachable()),
        (X, answered(503, &[(DRAINING, "1")])),
    ] {
        let (first, second) = drive.brains_of(Method::POST, url, &SMALL_BODY);
        let mut post = drive.exchange(Method::POST, url, &SMALL_BODY);
        drive.run(
            &mut post,
            vec![
                json_body(b"{}"),
                failure,
                Event::Logged,
                answered(503, &[("retry-after", "1")]),
            ],
            &[
                "ReadBody ≤1000",
                &fetch("POST", &first, "bytes(2)", 1500),
                "Log",
                &fetch("POST", &second, "bytes(2)", 1500),
                "StreamBack BYPASS pass",
            ],
        );
        drive.health = BrainHealth::default();
    }
}

#[test]
fn every_brain_refusing_ends_in_502_and_a_timeout_is_never_retried() {
    let mut drive = Drive::new(config(&[]));
    let (first, second) = drive.brains_of(Method::GET, X, &[]);
    let mut get = drive.exchange(Method::GET, X, &[]);
    drive.run(
        &mut get,
        vec![unreachable(), Event::Logged, unreachable(), Event::Logged],
        &[
            &fetch("GET", &first, "none", 1500),
            "Log",
            &fetch("GET", &second, "none", 1500),
            "Log",
            "Respond 502",
        ],
    );
    let mut drive = Drive::new(config(&[]));
    let mut slow = drive.exchange(Method::GET, X, &[]);
    drive.run(
        &mut slow,
        vec![
            Event::Upstream(Err(UpstreamFailure::TimedOut)),
            Event::Logged,
        ],
        &[&fetch("GET", &first, "none", 1500), "Log", "Respond 504"],
    );
}

#[test]
fn the_deadline_counts_from_the_decision_across_attempts() {
    let mut drive = Drive::new(config(&[]));
    let (first, second) = drive.brains_of(Method::GET, X, &[]);
    let mut get = drive.exchange(Method::GET, X, &[]);
    drive.now_ms = NOW + 1000;
    drive.run(
        &mut get,
        vec![unreachable(), Event::Logged],
        &[
            &fetch("GET", &first, "none", 500),
            "Log",
            &fetch("GET", &second, "none", 500),
        ],
    );
}

#[test]
fn a_streamed_body_is_cut_at_the_limit_and_answered_413() {
    let mut drive = Drive::new(config(&[]));
    let chunked = [("transfer-encoding", "chunked")];
    let (first, _) = drive.brains_of(Method::POST, X, &chunked);
    let mut post = drive.exchange(Method::POST, X, &chunked);
    drive.run(
        &mut post,
        vec![
            Event::Upstream(Err(UpstreamFailure::BodyTooLarge)),
            Event::Logged,
        ],
        &[
            &fetch("POST", &first, "stream(≤1000)", 1500),
            "Log",
            "Respond 413",
        ],
    );
}

#[test]
fn a_hashed_body_that_is_too_long_or_broken_never_reaches_a_brain() {
    let mut drive = Drive::new(config(&[]));
    for (read, status) in [(BodyRead::TooLarge, "413"), (BodyRead::Failed, "400")] {
        let mut post = drive.exchange(Method::POST, X, &SMALL_BODY);
        drive.run(
            &mut post,
            vec![Event::Body(read)],
            &["ReadBody ≤1000", &format!("Respond {status}")],
        );
    }
}

#[test]
fn the_signature_covers_the_bodys_digest() {
    let mut drive = Drive::new(config(&[]));
    let signatures: Vec<String> = [b"{}", b"[]"]
        .into_iter()
        .map(|body| {
            let mut post = drive.exchange(Method::POST, X, &SMALL_BODY);
            let _ = drive.advance(&mut post, Event::Start);
            drive.signature_after(&mut post, json_body(body))
        })
        .collect();
    assert_ne!(signatures[0], signatures[1]);
}

#[test]
fn the_rate_limiter_is_asked_first_and_its_refusal_or_absence_is_the_answer() {
    let mut drive = Drive::new(rate_limited_config());
    let take = "TakeTokens rl:default:ip:203.0.113.9 + rl:default:network:203.0.113.9";
    let allowed = Verdict::Allowed {
        remaining: 7,
        reset_secs: 3,
    };
    let limited = Verdict::Limited {
        retry_after_secs: 4,
        reset_secs: 9,
    };
    let (first, _) = drive.brains_of(Method::GET, X, &[]);
    let cases: [(Vec<Event>, &[&str]); 3] = [
        (
            vec![Event::Tokens(Ok((limited, Some(allowed))))],
            &[take, "Respond 429"],
        ),
        (
            vec![Event::Tokens(Err("no binding".to_owned())), Event::Logged],
            &[take, "Log", "Respond 503"],
        ),
        (
            vec![Event::Tokens(Ok((allowed, Some(allowed))))],
            &[take, &fetch("GET", &first, "none", 1500)],
        ),
    ];
    for (events, expected) in cases {
        let mut get = drive.exchange(Method::GET, X, &[]);
        drive.run(&mut get, events, expected);
    }
}

#[test]
fn the_rate_limit_headers_ride_on_the_answer() {
    let mut drive = Drive::new(rate_limited_config());
    let allowed = Verdict::Allowed {
        remaining: 7,
        reset_secs: 3,
    };
    let mut get = drive.exchange(Method::GET, X, &[]);
    let headers = drive.answer_headers(
        &mut get,
        vec![
            Event::Tokens(Ok((allowed, Some(allowed)))),
            answered(200, &[]),
        ],
    );
    assert!(headers["ratelimit"].to_str().unwrap().contains("r=7"));
}

/// The brain's cacheable answer to `GET /api/v1/reports/q`, as the exchange stores it at
/// `stored_at_ms`.
fn stored_report(stored_at_ms: u64) -> HeaderMap {
    let mut drive = Drive::new(config(&[]));
    drive.now_ms = stored_at_ms;
    let mut get = drive.exchange(Method::GET, REPORT, &[]);
    let _ = drive.advance(&mut get, Event::Start);
    let _ = drive.advance(&mut get, Event::Cached(None));
    let event = answered(
        200,
        &[
            ("content-type", "application/json"),
            ("cache-control", "public, max-age=60"),
        ],
    );
    match drive.advance(&mut get, event) {
        Action::StreamBack {
            store: Some(put), ..
        } => put.headers,
        other => panic!("expected a stored answer, got {}", describe(&other)),
    }
}

#[test]
fn a_cacheable_get_is_looked_up_fetched_on_a_miss_and_stored() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::GET, REPORT, &[]);
    let mut get = drive.exchange(Method::GET, REPORT, &[]);
    let key = match &get.proxy.cache {
        CacheStep::Lookup { key, .. } => key.as_str().to_owned(),
        other => panic!("expected a lookup, got {other:?}"),
    };
    let lookup = format!("MatchCache {key}");
    drive.run(
        &mut get,
        vec![
            Event::Cached(None),
            answered(200, &[("cache-control", "public, max-age=60")]),
        ],
        &[
            &lookup,
            &fetch("GET", &first, "none", 1500),
            "StreamBack MISS pass + store",
        ],
    );
    assert!(stored_report(NOW).contains_key(META_HEADER));
    // An answer the brain marks private is not stored.
    let mut private = drive.exchange(Method::GET, REPORT, &[]);
    drive.run(
        &mut private,
        vec![
            Event::Cached(None),
            answered(200, &[("cache-control", "private")]),
        ],
        &[
            &lookup,
            &fetch("GET", &first, "none", 1500),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn a_fresh_copy_is_served_a_stale_one_served_and_refreshed_an_expired_one_refetched() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::GET, REPORT, &[]);
    for (age_secs, expected) in [
        (1, "ServeCached HIT"),
        (70, "ServeCached STALE + refresh"),
        (100, &*fetch("GET", &first, "none", 1500)),
    ] {
        let stored = stored_report(NOW - age_secs * 1000);
        let mut get = drive.exchange(Method::GET, REPORT, &[]);
        let _ = drive.advance(&mut get, Event::Start);
        let action = drive.advance(&mut get, Event::Cached(Some(stored)));
        assert_eq!(describe(&action), expected, "age {age_secs} s");
        if let Action::ServeCached { headers, .. } = action {
            assert_eq!(headers["age"], age_secs.to_string().as_str());
            assert!(headers.get(META_HEADER).is_none());
            assert_eq!(headers["cache-control"], "public, max-age=60");
        }
    }
}

/// The refresh a stale hit hands out, and the signature of the client's own attempt.
fn stale_refresh(drive: &mut Drive) -> (Exchange, String) {
    let mut probe = drive.exchange(Method::GET, REPORT, &[]);
    let _ = drive.advance(&mut probe, Event::Start);
    let client_signature = drive.signature_after(&mut probe, Event::Cached(None));
    let mut get = drive.exchange(Method::GET, REPORT, &[]);
    let _ = drive.advance(&mut get, Event::Start);
    match drive.advance(&mut get, Event::Cached(Some(stored_report(NOW - 70_000)))) {
        Action::ServeCached {
            refresh: Some(refresh),
            ..
        } => (*refresh, client_signature),
        other => panic!("expected a stale hit, got {}", describe(&other)),
    }
}

#[test]
fn a_stale_copys_refresh_is_signed_afresh_and_stores_a_storable_answer() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::GET, REPORT, &[]);
    let (mut refresh, client_signature) = stale_refresh(&mut drive);
    let key = refresh.cache_entry.as_ref().unwrap().0.as_str().to_owned();
    let refresh_signature = drive.signature_after(&mut refresh.clone(), Event::Start);
    assert_ne!(
        refresh_signature, client_signature,
        "a nonce signs one request"
    );
    drive.run(
        &mut refresh,
        vec![answered(200, &[("cache-control", "public, max-age=60")])],
        &[&fetch("GET", &first, "none", 1500), &format!("Store {key}")],
    );
}

#[test]
fn a_refresh_that_fails_or_gets_an_unstorable_answer_lets_go_quietly() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::GET, REPORT, &[]);
    let (refresh, _) = stale_refresh(&mut drive);
    drive.run(
        &mut refresh.clone(),
        vec![answered(200, &[("cache-control", "no-store")])],
        &[&fetch("GET", &first, "none", 1500), "Discard"],
    );
    drive.run(
        &mut refresh.clone(),
        vec![
            Event::Upstream(Err(UpstreamFailure::TimedOut)),
            Event::Logged,
        ],
        &[&fetch("GET", &first, "none", 1500), "Log", "Discard"],
    );
}

#[test]
fn without_a_cache_in_the_runtime_nothing_is_looked_up() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::GET, REPORT, &[]);
    let mut get = drive.exchange(Method::GET, REPORT, &[]);
    get.cache_available = false;
    drive.run(
        &mut get,
        vec![answered(200, &[("cache-control", "public, max-age=60")])],
        &[
            &fetch("GET", &first, "none", 1500),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn a_deterministic_post_is_keyed_by_its_body_once_read() {
    let mut drive = Drive::new(config(&[]));
    let pairs = [
        ("content-length", "7"),
        ("content-type", "application/json"),
    ];
    let keys: Vec<String> = [&br#"{"q":1}"#[..], &br#"{"q":2}"#[..]]
        .into_iter()
        .map(|body| {
            let mut post = drive.exchange(Method::POST, ANSWERS, &pairs);
            let read = drive.advance(&mut post, Event::Start);
            assert_eq!(describe(&read), "ReadBody ≤1000");
            match drive.advance(&mut post, json_body(body)) {
                Action::MatchCache { key } => key,
                other => panic!("expected a lookup, got {}", describe(&other)),
            }
        })
        .collect();
    assert_ne!(keys[0], keys[1]);
    assert!(keys[0].contains("/post-"), "{}", keys[0]);
}

#[test]
fn event_streams_are_guarded_and_null_body_statuses_get_no_body() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::GET, X, &[]);
    for (status, pairs, expected) in [
        (
            200,
            &[("content-type", "text/event-stream")][..],
            "StreamBack BYPASS guarded",
        ),
        (204, &[][..], "StreamBack BYPASS null"),
        (304, &[][..], "StreamBack BYPASS null"),
    ] {
        let mut get = drive.exchange(Method::GET, X, &[]);
        drive.run(
            &mut get,
            vec![answered(status, pairs)],
            &[&fetch("GET", &first, "none", 1500), expected],
        );
    }
}

#[test]
fn a_response_the_runtime_refuses_to_build_becomes_a_502() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::GET, X, &[]);
    let mut get = drive.exchange(Method::GET, X, &[]);
    drive.run(
        &mut get,
        vec![answered(200, &[]), Event::ResponseRejected],
        &[
            &fetch("GET", &first, "none", 1500),
            "StreamBack BYPASS pass",
            "Respond 502",
        ],
    );
}

#[test]
fn an_event_out_of_order_is_logged_and_answered_500() {
    let mut drive = Drive::new(config(&[]));
    let (first, _) = drive.brains_of(Method::GET, X, &[]);
    let mut get = drive.exchange(Method::GET, X, &[]);
    drive.run(
        &mut get,
        vec![Event::Tokens(Err("late".to_owned())), Event::Logged],
        &[&fetch("GET", &first, "none", 1500), "Log", "Respond 500"],
    );
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Start),
        Just(Event::Logged),
        Just(Event::ResponseRejected),
        Just(Event::Cached(None)),
        Just(Event::Body(BodyRead::TooLarge)),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|bytes| json_body(&bytes)),
        Just(Event::Tokens(Err("down".to_owned()))),
        (0u16..700).prop_map(|status| answered(status, &[(DRAINING, "1")])),
        Just(unreachable()),
    ]
}

proptest! {
    /// Whatever the adapter reports, in whatever order, the machine answers without panicking.
    #[test]
    fn no_event_sequence_panics(events in proptest::collection::vec(any_event(), 0..12)) {
        let mut drive = Drive::new(rate_limited_config());
        let mut post = drive.exchange(Method::POST, SEARCH, &SMALL_BODY);
        for event in events {
            let _ = describe(&drive.advance(&mut post, event));
        }
    }
}

mod slab {
    use super::*;
    use crate::core::exchange::slab::{ABANDONED_AFTER_MS, ExchangeSlab, SWEEP_ABOVE};

    /// The deadline of every exchange `Drive::exchange` plans: decided at `NOW`, 1500 ms.
    const DEADLINE: u64 = NOW + 1500;

    #[test]
    fn exchanges_are_held_by_distinct_ids_until_ended() {
        let drive = Drive::new(config(&[]));
        let mut slab = ExchangeSlab::default();
        let a = slab.insert(drive.exchange(Method::GET, X, &[]), NOW);
        let b = slab.insert(drive.exchange(Method::GET, X, &[]), NOW);
        assert_ne!(a, b);
        let taken = slab.take(a).unwrap();
        assert!(slab.take(a).is_none(), "taken out while stepped");
        slab.put_back(a, taken);
        slab.end(a);
        slab.end(b);
        assert!(slab.is_empty());
    }

    /// Requests cancelled mid-step never end their exchanges: the slab forgets them once they
    /// are long past their deadline, and only then.
    #[test]
    fn abandoned_exchanges_are_swept_and_live_ones_kept() {
        let drive = Drive::new(config(&[]));
        let mut slab = ExchangeSlab::default();
        for _ in 0..SWEEP_ABOVE {
            slab.insert(drive.exchange(Method::GET, X, &[]), NOW);
        }
        // Not yet abandoned at the last millisecond: nothing goes.
        let last_live = DEADLINE + ABANDONED_AFTER_MS - 1;
        slab.insert(drive.exchange(Method::GET, X, &[]), last_live);
        assert_eq!(slab.len(), SWEEP_ABOVE + 1);
        // A millisecond later every one of them is abandoned; the new one is held.
        let id = slab.insert(drive.exchange(Method::GET, X, &[]), last_live + 1);
        assert_eq!(slab.len(), 1);
        assert!(slab.take(id).is_some());
    }
}
