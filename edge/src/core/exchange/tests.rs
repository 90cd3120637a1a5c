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

/// The plan `decide` makes for this request, as an exchange (with a runtime cache).
fn exchange(config: &EdgeConfig, method: Method, url: &str, pairs: &[(&str, &str)]) -> Exchange {
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
    match decide(&head, config, None, inputs) {
        Decision::Proxy(proxy) => Exchange::new(*proxy, true, [9; 16]),
        other => panic!("expected a proxy plan, got {other:?}"),
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

/// Drives `exchange` from `Start` through `events` (one per action after the first), checking
/// each action against `expected`; returns the last action's description and the health.
fn run(exchange: &mut Exchange, events: Vec<Event>, expected: &[&str]) {
    let config = config(&[]);
    run_with(
        exchange,
        &config,
        &mut BrainHealth::default(),
        NOW,
        events,
        expected,
    );
}

fn run_with(
    exchange: &mut Exchange,
    config: &EdgeConfig,
    health: &mut BrainHealth,
    now_ms: u64,
    events: Vec<Event>,
    expected: &[&str],
) {
    let mut seen = Vec::new();
    let mut at = Surroundings {
        config,
        now_ms,
        health,
    };
    for event in std::iter::once(Event::Start).chain(events) {
        seen.push(describe(&exchange.advance(event, &mut at)));
    }
    assert_eq!(seen, expected);
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

/// The `x-edgebrain-signature` the next fetch carries.
fn signature_of(exchange: &mut Exchange, event: Event, config: &EdgeConfig) -> String {
    let mut health = BrainHealth::default();
    let mut at = Surroundings {
        config,
        now_ms: NOW,
        health: &mut health,
    };
    match exchange.advance(event, &mut at) {
        Action::FetchBrain(fetch) => fetch.headers[EDGE_SIGNATURE].to_str().unwrap().to_owned(),
        other => panic!("expected a fetch, got {}", describe(&other)),
    }
}

#[test]
fn a_plain_get_goes_to_the_first_brain_and_streams_back() {
    let mut get = exchange(
        &config(&[]),
        Method::GET,
        "https://edge.example/api/v1/x",
        &[],
    );
    let tenant_first = get.proxy.url.clone();
    run(
        &mut get,
        vec![answered(200, &[("content-type", "application/json")])],
        &[
            &format!("FetchBrain GET {tenant_first} body=none timeout=1500"),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn the_answer_carries_the_request_id_and_the_brains_headers_without_hop_by_hop_ones() {
    let config = config(&[]);
    let mut get = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    let mut health = BrainHealth::default();
    let mut at = Surroundings {
        config: &config,
        now_ms: NOW,
        health: &mut health,
    };
    let _ = get.advance(Event::Start, &mut at);
    let event = answered(
        200,
        &[
            ("x-brain", "1"),
            ("connection", "close"),
            (EDGE_CACHE, "HIT"),
        ],
    );
    let Action::StreamBack { headers, .. } = get.advance(event, &mut at) else {
        panic!("expected the answer");
    };
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
    let config = config(&[]);
    let mut get = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    let first = get.proxy.url.clone();
    let second = if first.starts_with(A) { B } else { A };
    let mut health = BrainHealth::default();
    run_with(
        &mut get,
        &config,
        &mut health,
        NOW,
        vec![unreachable(), Event::Logged, answered(200, &[])],
        &[
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "Log",
            &format!("FetchBrain GET {second}/api/v1/x body=none timeout=1500"),
            "StreamBack BYPASS pass",
        ],
    );
    // The next request of the tenant starts at the brain that answered.
    let mut again = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    run_with(
        &mut again,
        &config,
        &mut health,
        NOW,
        vec![answered(200, &[])],
        &[
            &format!("FetchBrain GET {second}/api/v1/x body=none timeout=1500"),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn each_attempt_is_signed_for_its_own_brain() {
    let config = config(&[]);
    let mut get = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    let first = signature_of(&mut get, Event::Start, &config);
    let mut health = BrainHealth::default();
    let mut at = Surroundings {
        config: &config,
        now_ms: NOW,
        health: &mut health,
    };
    assert_eq!(describe(&get.advance(unreachable(), &mut at)), "Log");
    let second = signature_of(&mut get, Event::Logged, &config);
    assert_ne!(first, second);
}

#[test]
fn a_post_that_may_have_reached_a_brain_is_never_sent_twice() {
    let config = config(&[]);
    let pairs = [
        ("content-length", "2"),
        ("content-type", "application/json"),
    ];
    let mut post = exchange(
        &config,
        Method::POST,
        "https://edge.example/api/v1/x",
        &pairs,
    );
    let first = post.proxy.url.clone();
    run(
        &mut post,
        vec![
            Event::Body(BodyRead::Complete(b"{}".to_vec())),
            unreachable(),
            Event::Logged,
        ],
        &[
            "ReadBody ≤1000",
            &format!("FetchBrain POST {first} body=bytes(2) timeout=1500"),
            "Log",
            "Respond 502",
        ],
    );
}

#[test]
fn a_retryable_post_goes_on_to_the_next_brain_with_the_same_body() {
    let config = config(&[]);
    let pairs = [
        ("content-length", "2"),
        ("content-type", "application/json"),
    ];
    let url = "https://edge.example/api/v1/search";
    let mut post = exchange(&config, Method::POST, url, &pairs);
    let first = post.proxy.url.clone();
    let second = if first.starts_with(A) { B } else { A };
    run(
        &mut post,
        vec![
            Event::Body(BodyRead::Complete(b"{}".to_vec())),
            unreachable(),
            Event::Logged,
            answered(200, &[]),
        ],
        &[
            "ReadBody ≤1000",
            &format!("FetchBrain POST {first} body=bytes(2) timeout=1500"),
            "Log",
            &format!("FetchBrain POST {second}/api/v1/search body=bytes(2) timeout=1500"),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn a_draining_answer_sends_any_method_on_but_another_503_is_the_answer() {
    let config = config(&[]);
    let pairs = [("content-length", "2")];
    let mut post = exchange(
        &config,
        Method::POST,
        "https://edge.example/api/v1/x",
        &pairs,
    );
    let first = post.proxy.url.clone();
    let second = if first.starts_with(A) { B } else { A };
    run(
        &mut post,
        vec![
            Event::Body(BodyRead::Complete(b"{}".to_vec())),
            answered(503, &[(DRAINING, "1")]),
            Event::Logged,
            answered(503, &[("retry-after", "1")]),
        ],
        &[
            "ReadBody ≤1000",
            &format!("FetchBrain POST {first} body=bytes(2) timeout=1500"),
            "Log",
            &format!("FetchBrain POST {second}/api/v1/x body=bytes(2) timeout=1500"),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn every_brain_refusing_ends_in_502_and_a_timeout_is_never_retried() {
    let config = config(&[]);
    let mut get = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    let first = get.proxy.url.clone();
    let second = if first.starts_with(A) { B } else { A };
    run(
        &mut get,
        vec![unreachable(), Event::Logged, unreachable(), Event::Logged],
        &[
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "Log",
            &format!("FetchBrain GET {second}/api/v1/x body=none timeout=1500"),
            "Log",
            "Respond 502",
        ],
    );
    let mut slow = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    run(
        &mut slow,
        vec![
            Event::Upstream(Err(UpstreamFailure::TimedOut)),
            Event::Logged,
        ],
        &[
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "Log",
            "Respond 504",
        ],
    );
}

#[test]
fn the_deadline_counts_from_the_decision_across_attempts() {
    let config = config(&[]);
    let mut get = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    let first = get.proxy.url.clone();
    let second = if first.starts_with(A) { B } else { A };
    run_with(
        &mut get,
        &config,
        &mut BrainHealth::default(),
        NOW + 1000,
        vec![unreachable(), Event::Logged],
        &[
            &format!("FetchBrain GET {first} body=none timeout=500"),
            "Log",
            &format!("FetchBrain GET {second}/api/v1/x body=none timeout=500"),
        ],
    );
}

#[test]
fn a_streamed_body_is_cut_at_the_limit_and_answered_413() {
    let config = config(&[]);
    let pairs = [("transfer-encoding", "chunked")];
    let mut post = exchange(
        &config,
        Method::POST,
        "https://edge.example/api/v1/x",
        &pairs,
    );
    let first = post.proxy.url.clone();
    run(
        &mut post,
        vec![
            Event::Upstream(Err(UpstreamFailure::BodyTooLarge)),
            Event::Logged,
        ],
        &[
            &format!("FetchBrain POST {first} body=stream(≤1000) timeout=1500"),
            "Log",
            "Respond 413",
        ],
    );
}

#[test]
fn a_hashed_body_that_is_too_long_or_broken_never_reaches_a_brain() {
    let config = config(&[]);
    let pairs = [("content-length", "5")];
    for (read, status) in [(BodyRead::TooLarge, "413"), (BodyRead::Failed, "400")] {
        let mut post = exchange(
            &config,
            Method::POST,
            "https://edge.example/api/v1/x",
            &pairs,
        );
        run(
            &mut post,
            vec![Event::Body(read)],
            &["ReadBody ≤1000", &format!("Respond {status}")],
        );
    }
}

#[test]
fn the_signature_covers_the_bodys_digest() {
    let config = config(&[]);
    let pairs = [("content-length", "2")];
    let url = "https://edge.example/api/v1/x";
    let mut signatures = Vec::new();
    for body in [b"{}", b"[]"] {
        let mut post = exchange(&config, Method::POST, url, &pairs);
        let mut health = BrainHealth::default();
        let mut at = Surroundings {
            config: &config,
            now_ms: NOW,
            health: &mut health,
        };
        let _ = post.advance(Event::Start, &mut at);
        let event = Event::Body(BodyRead::Complete(body.to_vec()));
        signatures.push(signature_of(&mut post, event, &config));
    }
    assert_ne!(signatures[0], signatures[1]);
}

#[test]
fn the_rate_limiter_is_asked_first_and_its_refusal_or_absence_is_the_answer() {
    let config = rate_limited_config();
    let url = "https://edge.example/api/v1/x";
    let take = "TakeTokens rl:default:ip:203.0.113.9 + rl:default:network:203.0.113.9";
    let allowed = Verdict::Allowed {
        remaining: 7,
        reset_secs: 3,
    };
    let limited = Verdict::Limited {
        retry_after_secs: 4,
        reset_secs: 9,
    };
    let first = exchange(&config, Method::GET, url, &[]).proxy.url.clone();
    let cases: [(Event, &[&str]); 3] = [
        (
            Event::Tokens(Ok((limited, Some(allowed)))),
            &[take, "Respond 429"],
        ),
        (
            Event::Tokens(Err("no binding".to_owned())),
            &[take, "Log", "Respond 503"],
        ),
        (
            Event::Tokens(Ok((allowed, Some(allowed)))),
            &[
                take,
                &format!("FetchBrain GET {first} body=none timeout=1500"),
            ],
        ),
    ];
    for (tokens, expected) in cases {
        let mut get = exchange(&config, Method::GET, url, &[]);
        let events = if expected.contains(&"Log") {
            vec![tokens, Event::Logged]
        } else {
            vec![tokens]
        };
        run_with(
            &mut get,
            &config,
            &mut BrainHealth::default(),
            NOW,
            events,
            expected,
        );
    }
}

#[test]
fn the_rate_limit_headers_ride_on_the_answer() {
    let config = rate_limited_config();
    let mut get = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    let mut health = BrainHealth::default();
    let mut at = Surroundings {
        config: &config,
        now_ms: NOW,
        health: &mut health,
    };
    let _ = get.advance(Event::Start, &mut at);
    let allowed = Verdict::Allowed {
        remaining: 7,
        reset_secs: 3,
    };
    let _ = get.advance(Event::Tokens(Ok((allowed, Some(allowed)))), &mut at);
    let Action::StreamBack { headers, .. } = get.advance(answered(200, &[]), &mut at) else {
        panic!("expected the answer");
    };
    assert!(headers["ratelimit"].to_str().unwrap().contains("r=7"));
}

/// The brain's cacheable answer to `GET /api/v1/reports/q`, as the exchange stores it at
/// `stored_at_ms`.
fn stored_report(config: &EdgeConfig, stored_at_ms: u64) -> HeaderMap {
    let mut get = exchange(
        config,
        Method::GET,
        "https://edge.example/api/v1/reports/q",
        &[],
    );
    let mut health = BrainHealth::default();
    let mut at = Surroundings {
        config,
        now_ms: stored_at_ms,
        health: &mut health,
    };
    let _ = get.advance(Event::Start, &mut at);
    let _ = get.advance(Event::Cached(None), &mut at);
    let event = answered(
        200,
        &[
            ("content-type", "application/json"),
            ("cache-control", "public, max-age=60"),
        ],
    );
    match get.advance(event, &mut at) {
        Action::StreamBack {
            store: Some(put), ..
        } => put.headers,
        other => panic!("expected a stored answer, got {}", describe(&other)),
    }
}

#[test]
fn a_cacheable_get_is_looked_up_fetched_on_a_miss_and_stored() {
    let config = config(&[]);
    let url = "https://edge.example/api/v1/reports/q";
    let mut get = exchange(&config, Method::GET, url, &[]);
    let key = match &get.proxy.cache {
        CacheStep::Lookup { key, .. } => key.as_str().to_owned(),
        other => panic!("expected a lookup, got {other:?}"),
    };
    let first = get.proxy.url.clone();
    run(
        &mut get,
        vec![
            Event::Cached(None),
            answered(200, &[("cache-control", "public, max-age=60")]),
        ],
        &[
            &format!("MatchCache {key}"),
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "StreamBack MISS pass + store",
        ],
    );
    assert!(stored_report(&config, NOW).contains_key(META_HEADER));
    // An answer the brain marks private is not stored.
    let mut private = exchange(&config, Method::GET, url, &[]);
    run(
        &mut private,
        vec![
            Event::Cached(None),
            answered(200, &[("cache-control", "private")]),
        ],
        &[
            &format!("MatchCache {key}"),
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn a_fresh_copy_is_served_a_stale_one_served_and_refreshed_an_expired_one_refetched() {
    let config = config(&[]);
    let url = "https://edge.example/api/v1/reports/q";
    let first = exchange(&config, Method::GET, url, &[]).proxy.url.clone();
    for (age_secs, expected) in [
        (1, "ServeCached HIT"),
        (70, "ServeCached STALE + refresh"),
        (
            100,
            &*format!("FetchBrain GET {first} body=none timeout=1500"),
        ),
    ] {
        let stored = stored_report(&config, NOW - age_secs * 1000);
        let mut get = exchange(&config, Method::GET, url, &[]);
        let mut health = BrainHealth::default();
        let mut at = Surroundings {
            config: &config,
            now_ms: NOW,
            health: &mut health,
        };
        let _ = get.advance(Event::Start, &mut at);
        let action = get.advance(Event::Cached(Some(stored)), &mut at);
        assert_eq!(describe(&action), expected, "age {age_secs} s");
        if let Action::ServeCached { headers, .. } = action {
            assert_eq!(headers["age"], age_secs.to_string().as_str());
            assert!(headers.get(META_HEADER).is_none());
            assert_eq!(headers["cache-control"], "public, max-age=60");
        }
    }
}

/// The refresh a stale hit hands out, and the signature of the client's own attempt.
fn stale_refresh(config: &EdgeConfig) -> (Exchange, String) {
    let url = "https://edge.example/api/v1/reports/q";
    let stored = stored_report(config, NOW - 70_000);
    let mut get = exchange(config, Method::GET, url, &[]);
    let client_signature = {
        let mut probe = get.clone();
        let mut health = BrainHealth::default();
        let mut at = Surroundings {
            config,
            now_ms: NOW,
            health: &mut health,
        };
        let _ = probe.advance(Event::Start, &mut at);
        signature_of(&mut probe, Event::Cached(None), config)
    };
    let mut health = BrainHealth::default();
    let mut at = Surroundings {
        config,
        now_ms: NOW,
        health: &mut health,
    };
    let _ = get.advance(Event::Start, &mut at);
    match get.advance(Event::Cached(Some(stored)), &mut at) {
        Action::ServeCached {
            refresh: Some(refresh),
            ..
        } => (*refresh, client_signature),
        other => panic!("expected a stale hit, got {}", describe(&other)),
    }
}

#[test]
fn a_stale_copys_refresh_is_signed_afresh_and_stores_a_storable_answer() {
    let config = config(&[]);
    let (mut refresh, client_signature) = stale_refresh(&config);
    let first = refresh.proxy.url.clone();
    let key = refresh.cache_entry.as_ref().unwrap().0.as_str().to_owned();
    let refresh_signature = signature_of(&mut refresh.clone(), Event::Start, &config);
    assert_ne!(
        refresh_signature, client_signature,
        "a nonce signs one request"
    );
    run_with(
        &mut refresh,
        &config,
        &mut BrainHealth::default(),
        NOW,
        vec![answered(200, &[("cache-control", "public, max-age=60")])],
        &[
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            &format!("Store {key}"),
        ],
    );
}

#[test]
fn a_refresh_that_fails_or_gets_an_unstorable_answer_lets_go_quietly() {
    let config = config(&[]);
    let (refresh, _) = stale_refresh(&config);
    let first = refresh.proxy.url.clone();
    let mut private = refresh.clone();
    run(
        &mut private,
        vec![answered(200, &[("cache-control", "no-store")])],
        &[
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "Discard",
        ],
    );
    let mut failing = refresh;
    run(
        &mut failing,
        vec![
            Event::Upstream(Err(UpstreamFailure::TimedOut)),
            Event::Logged,
        ],
        &[
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "Log",
            "Discard",
        ],
    );
}

#[test]
fn without_a_cache_in_the_runtime_nothing_is_looked_up() {
    let config = config(&[]);
    let url = "https://edge.example/api/v1/reports/q";
    let Decision::Proxy(proxy) = decide(
        &RequestHead {
            method: &Method::GET,
            url,
            headers: &HeaderMap::new(),
            client_ip: None,
        },
        &config,
        None,
        Inputs {
            now_ms: NOW,
            random: [7; 16],
            session_random: [3; 16],
            nonce: [4; 16],
            keys_refreshed: false,
        },
    ) else {
        panic!("expected a proxy plan");
    };
    let first = proxy.url.clone();
    let mut get = Exchange::new(*proxy, false, [9; 16]);
    run(
        &mut get,
        vec![answered(200, &[("cache-control", "public, max-age=60")])],
        &[
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "StreamBack BYPASS pass",
        ],
    );
}

#[test]
fn a_deterministic_post_is_keyed_by_its_body_once_read() {
    let config = config(&[]);
    let url = "https://edge.example/api/v1/answers";
    let pairs = [
        ("content-length", "7"),
        ("content-type", "application/json"),
    ];
    let keys: Vec<String> = [&br#"{"q":1}"#[..], &br#"{"q":2}"#[..]]
        .into_iter()
        .map(|body| {
            let mut post = exchange(&config, Method::POST, url, &pairs);
            let mut health = BrainHealth::default();
            let mut at = Surroundings {
                config: &config,
                now_ms: NOW,
                health: &mut health,
            };
            assert_eq!(
                describe(&post.advance(Event::Start, &mut at)),
                "ReadBody ≤1000"
            );
            let event = Event::Body(BodyRead::Complete(body.to_vec()));
            match post.advance(event, &mut at) {
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
    let config = config(&[]);
    let url = "https://edge.example/api/v1/x";
    let first = exchange(&config, Method::GET, url, &[]).proxy.url.clone();
    for (status, pairs, expected) in [
        (
            200,
            &[("content-type", "text/event-stream")][..],
            "StreamBack BYPASS guarded",
        ),
        (204, &[][..], "StreamBack BYPASS null"),
        (304, &[][..], "StreamBack BYPASS null"),
    ] {
        let mut get = exchange(&config, Method::GET, url, &[]);
        run(
            &mut get,
            vec![answered(status, pairs)],
            &[
                &format!("FetchBrain GET {first} body=none timeout=1500"),
                expected,
            ],
        );
    }
}

#[test]
fn a_response_the_runtime_refuses_to_build_becomes_a_502() {
    let config = config(&[]);
    let mut get = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    let first = get.proxy.url.clone();
    run(
        &mut get,
        vec![answered(200, &[]), Event::ResponseRejected],
        &[
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "StreamBack BYPASS pass",
            "Respond 502",
        ],
    );
}

#[test]
fn an_event_out_of_order_is_logged_and_answered_500() {
    let config = config(&[]);
    let mut get = exchange(&config, Method::GET, "https://edge.example/api/v1/x", &[]);
    let first = get.proxy.url.clone();
    run(
        &mut get,
        vec![Event::Tokens(Err("late".to_owned())), Event::Logged],
        &[
            &format!("FetchBrain GET {first} body=none timeout=1500"),
            "Log",
            "Respond 500",
        ],
    );
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Start),
        Just(Event::Logged),
        Just(Event::ResponseRejected),
        Just(Event::Cached(None)),
        Just(Event::Body(BodyRead::TooLarge)),
        proptest::collection::vec(any::<u8>(), 0..8)
            .prop_map(|bytes| Event::Body(BodyRead::Complete(bytes))),
        Just(Event::Tokens(Err("down".to_owned()))),
        (0u16..700).prop_map(|status| answered(status, &[(DRAINING, "1")])),
        Just(unreachable()),
    ]
}

proptest! {
    /// Whatever the adapter reports, in whatever order, the machine answers without panicking.
    #[test]
    fn no_event_sequence_panics(events in proptest::collection::vec(any_event(), 0..12)) {
        let config = rate_limited_config();
        let pairs = [("content-length", "2")];
        let mut post = exchange(&config, Method::POST, "https://edge.example/api/v1/search", &pairs);
        let mut health = BrainHealth::default();
        let mut at = Surroundings { config: &config, now_ms: NOW, health: &mut health };
        for event in events {
            let _ = describe(&post.advance(event, &mut at));
        }
    }
}
