//! Every path of [`Deciding`], written as the sequence of actions the adapter carries out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::{HeaderMap, Method};
use serde_json::json;

use super::*;
use crate::core::auth::test_support as jwt;
use crate::core::test_support::{config_with, headers};

const T0: u64 = jwt::NOW * 1000;
const FETCH_TIMEOUT_MS: u64 = 2_000;
const MIN_INTERVAL_MS: u64 = 30_000;
const JWKS_URL: &str = "https://idp.example/jwks.json";

/// JWT keys from a JWKS URL only (ES256 and RS256), so every key must be fetched.
fn remote_keys_config() -> EdgeConfig {
    let auth = json!({
        "issuer": jwt::ISSUER, "audiences": [jwt::AUDIENCE], "algorithms": ["ES256", "RS256"],
        "jwks_url": {"url": JWKS_URL, "ttl_secs": 600, "min_refresh_interval_secs": 30,
                     "fetch_timeout_ms": FETCH_TIMEOUT_MS}
    })
    .to_string();
    config_with(&[("AUTH_CONFIG", auth.as_str())], "{}")
}

fn store_of(config: &EdgeConfig) -> KeyStore {
    KeyStore::new(config.auth.as_ref().unwrap())
}

/// A JWKS with the ES256 key the test token is signed with.
fn jwks_with_the_tokens_key() -> Vec<u8> {
    json!({"keys": [jwt::es_jwk()]}).to_string().into_bytes()
}

/// A JWKS with another key only.
fn jwks_without_the_tokens_key() -> Vec<u8> {
    json!({"keys": [jwt::rsa_jwk()]}).to_string().into_bytes()
}

fn bearer_of_es_token() -> HeaderMap {
    let token = jwt::mint(
        &jwt::header("ES256", jwt::ES_KID),
        &jwt::good_claims(),
        jwt::Signer::Es,
    );
    headers(&[("authorization", &format!("Bearer {token}"))])
}

fn inputs_at(now_ms: u64) -> Inputs {
    Inputs {
        now_ms,
        random: [7; 16],
        session_random: [3; 16],
        nonce: [4; 16],
        keys_refreshed: false,
    }
}

/// One line per action: what a reader of the adapter's log would see it do.
fn describe(action: &DecideAction) -> String {
    match action {
        DecideAction::FetchKeys(fetch) => format!("fetch keys from {}", fetch.url),
        DecideAction::LookAgainIn { ms } => format!("look again in {ms} ms"),
        DecideAction::Log(line) => format!("log: {line}"),
        DecideAction::Decided(Decision::Proxy(_)) => "decided: proxy".to_owned(),
        DecideAction::Decided(Decision::Respond(response)) => {
            format!("decided: respond {}", response.status.as_u16())
        }
        DecideAction::Decided(other) => format!("decided: {other:?}"),
    }
}

/// Feeds `script` (each event at its millisecond) to a new machine for `GET /api/v1/x` with
/// `incoming` headers; the actions it answered, described.
fn run(
    config: &EdgeConfig,
    keys: Option<&mut KeyStore>,
    incoming: &HeaderMap,
    script: &[(DecideEvent, u64)],
) -> Vec<String> {
    let method = Method::GET;
    let head = RequestHead {
        method: &method,
        url: "https://edge.example/api/v1/x",
        headers: incoming,
        client_ip: Some("203.0.113.9"),
    };
    let mut deciding = Deciding::new(inputs_at(script.first().map_or(T0, |(_, at)| *at)));
    let mut keys = keys;
    script
        .iter()
        .map(|(event, at)| {
            let action = deciding.advance(event.clone(), &head, config, keys.as_deref_mut(), *at);
            describe(&action)
        })
        .collect()
}

const FETCH: &str = "fetch keys from https://idp.example/jwks.json";
const PROXY: &str = "decided: proxy";
const REFUSED: &str = "decided: respond 401";
/// When a store that fetched its keys at `T0` may fetch again for an unknown key.
const T_REFETCH: u64 = T0 + 1_000;

/// One isolate's JWT configuration and key store, and a request's bearer token (ES256).
struct Isolate {
    config: EdgeConfig,
    keys: KeyStore,
    token: HeaderMap,
}

impl Isolate {
    /// No keys fetched yet.
    fn new() -> Self {
        let config = remote_keys_config();
        let keys = store_of(&config);
        Self {
            config,
            keys,
            token: bearer_of_es_token(),
        }
    }

    /// Keys fetched at `T0`, the token's not among them.
    fn with_other_keys() -> Self {
        let mut isolate = Self::new();
        isolate
            .keys
            .apply_jwks(jwt::NOW, &jwks_without_the_tokens_key())
            .unwrap();
        isolate
    }

    fn run(&mut self, script: &[(DecideEvent, u64)]) -> Vec<String> {
        run(&self.config, Some(&mut self.keys), &self.token, script)
    }

    /// Another request's fetch, handed out at `at_ms`.
    fn other_request_fetches(&mut self, at_ms: u64) -> KeyRefresh {
        let (refresh, action) = KeyRefresh::for_unknown_key(&mut self.keys, at_ms);
        assert!(matches!(action, RefreshAction::Fetch(_)), "{action:?}");
        refresh
    }
}

/// One path through the machine: the isolate it starts in, the events (each at its
/// millisecond) and the actions they are answered with.
struct Path {
    name: &'static str,
    isolate: fn() -> Isolate,
    script: Vec<(DecideEvent, u64)>,
    actions: &'static [&'static str],
}

fn fetched(jwks: Vec<u8>) -> DecideEvent {
    DecideEvent::KeysFetched(Ok(jwks))
}

#[test]
fn each_path_is_its_sequence_of_actions() {
    use DecideEvent::{Logged, LookedAgain, Start};
    let failed = || DecideEvent::KeysFetched(Err("status 503".to_owned()));
    let paths = [
        Path {
            name: "keys due at the start are fetched before the token is read",
            isolate: Isolate::new,
            script: vec![(Start, T0), (fetched(jwks_with_the_tokens_key()), T0 + 40)],
            actions: &[FETCH, PROXY],
        },
        Path {
            // The rate limit holds a second fetch back and none is running: final.
            name: "a failed due fetch is logged, then the token settles as unknown",
            isolate: Isolate::new,
            script: vec![(Start, T0), (failed(), T0 + 40), (Logged, T0 + 41)],
            actions: &[FETCH, "log: JWKS fetch failed: status 503", REFUSED],
        },
        Path {
            name: "an unknown key is fetched once and the routed request decided again",
            isolate: Isolate::with_other_keys,
            script: vec![
                (Start, T_REFETCH),
                (fetched(jwks_with_the_tokens_key()), T_REFETCH + 40),
            ],
            actions: &[FETCH, PROXY],
        },
        Path {
            name: "a key still unknown after the refresh is final",
            isolate: Isolate::with_other_keys,
            script: vec![
                (Start, T_REFETCH),
                (fetched(jwks_without_the_tokens_key()), T_REFETCH + 40),
            ],
            actions: &[FETCH, REFUSED],
        },
        Path {
            name: "a look while this request's own fetch runs is out of order",
            isolate: Isolate::new,
            script: vec![(Start, T0), (LookedAgain, T0 + 1)],
            actions: &[FETCH, "decided: respond 500"],
        },
    ];
    for path in paths {
        assert_eq!(
            (path.isolate)().run(&path.script),
            path.actions,
            "{}",
            path.name
        );
    }
}

#[test]
fn a_refused_document_is_logged_and_the_last_good_keys_stay() {
    let mut isolate = Isolate::new();
    let actions = isolate.run(&[
        (DecideEvent::Start, T0),
        (fetched(b"{}".to_vec()), T0 + 40),
        (DecideEvent::Logged, T0 + 41),
    ]);
    assert_eq!(actions[0], FETCH);
    assert!(
        actions[1].starts_with("log: JWKS refused: "),
        "{}",
        actions[1]
    );
    assert_eq!(actions[2], REFUSED);
    assert_eq!(isolate.keys.keys().count(), 0);
}

#[test]
fn a_key_fetched_for_one_request_is_known_to_the_next() {
    let mut isolate = Isolate::with_other_keys();
    isolate.run(&[
        (DecideEvent::Start, T_REFETCH),
        (fetched(jwks_with_the_tokens_key()), T_REFETCH + 40),
    ]);
    assert_eq!(
        isolate.run(&[(DecideEvent::Start, T_REFETCH + 50)]),
        [PROXY]
    );
}

#[test]
fn a_request_waits_for_another_requests_fetch_and_then_uses_its_keys() {
    let mut isolate = Isolate::with_other_keys();
    let mut other = isolate.other_request_fetches(T_REFETCH);
    let method = Method::GET;
    let head = RequestHead {
        method: &method,
        url: "https://edge.example/api/v1/x",
        headers: &isolate.token,
        client_ip: None,
    };
    let mut deciding = Deciding::new(inputs_at(T_REFETCH + 1));
    let mut step = |event, now_ms, keys: &mut KeyStore| {
        describe(&deciding.advance(event, &head, &isolate.config, Some(keys), now_ms))
    };
    let keys = &mut isolate.keys;
    assert_eq!(
        step(DecideEvent::Start, T_REFETCH + 1, keys),
        "look again in 10 ms"
    );
    assert_eq!(
        step(DecideEvent::LookedAgain, T_REFETCH + 11, keys),
        "look again in 10 ms"
    );
    other.fetched(keys, T_REFETCH + 15, Ok(jwks_with_the_tokens_key()));
    assert_eq!(step(DecideEvent::LookedAgain, T_REFETCH + 21, keys), PROXY);
}

#[test]
fn a_wait_ends_at_the_other_fetchs_timeout_and_the_key_is_then_unknown() {
    let mut isolate = Isolate::with_other_keys();
    // A fetch whose request was cancelled: it never reports.
    let _cancelled = isolate.other_request_fetches(T_REFETCH);
    let actions = isolate.run(&[
        (DecideEvent::Start, T_REFETCH + FETCH_TIMEOUT_MS - 5),
        (DecideEvent::LookedAgain, T_REFETCH + FETCH_TIMEOUT_MS),
    ]);
    assert_eq!(actions, ["look again in 5 ms", REFUSED]);
}

#[test]
fn an_unknown_key_within_the_rate_limit_with_nothing_running_is_final_at_once() {
    let mut isolate = Isolate::new();
    let mut earlier = isolate.other_request_fetches(T0);
    earlier.fetched(&mut isolate.keys, T0 + 5, Ok(jwks_without_the_tokens_key()));
    let actions = isolate.run(&[(DecideEvent::Start, T0 + MIN_INTERVAL_MS - 1)]);
    assert_eq!(actions, [REFUSED]);
}

#[test]
fn without_jwt_configuration_nothing_is_refreshed() {
    let config = config_with(&[], "{}");
    let actions = run(
        &config,
        None,
        &bearer_of_es_token(),
        &[(DecideEvent::Start, T0)],
    );
    assert_eq!(actions, [PROXY]);
}

#[test]
fn answers_before_the_api_need_no_keys_unless_a_refresh_is_due() {
    let mut isolate = Isolate::new();
    isolate
        .keys
        .apply_jwks(jwt::NOW, &jwks_with_the_tokens_key())
        .unwrap();
    let method = Method::GET;
    let incoming = HeaderMap::new();
    let head = RequestHead {
        method: &method,
        url: "https://edge.example/health",
        headers: &incoming,
        client_ip: None,
    };
    let mut deciding = Deciding::new(inputs_at(T0));
    let action = deciding.advance(
        DecideEvent::Start,
        &head,
        &isolate.config,
        Some(&mut isolate.keys),
        T0,
    );
    assert_eq!(describe(&action), "decided: respond 200");
}

#[test]
fn events_out_of_order_end_in_the_error_shape_and_free_the_fetch_mark() {
    for script in [
        vec![(fetched(Vec::new()), T0)],
        vec![(DecideEvent::LookedAgain, T0)],
        vec![(DecideEvent::Logged, T0)],
        vec![
            (DecideEvent::Start, T0),
            (fetched(jwks_with_the_tokens_key()), T0 + 1),
            (DecideEvent::Start, T0 + 2),
        ],
    ] {
        let actions = Isolate::new().run(&script);
        assert_eq!(
            actions.last().unwrap(),
            "decided: respond 500",
            "{script:?}"
        );
    }
    // The request that lost track gave up its fetch: nobody waits for it.
    let mut isolate = Isolate::new();
    isolate.run(&[(DecideEvent::Start, T0), (DecideEvent::LookedAgain, T0 + 1)]);
    let (mut next, action) = KeyRefresh::for_unknown_key(&mut isolate.keys, T0 + 2);
    assert!(!matches!(action, RefreshAction::Fetch(_)), "rate-limited");
    assert_eq!(
        next.look_again(&mut isolate.keys, T0 + 2),
        RefreshAction::Done { problem: None }
    );
    // A fetch's report while waiting for another's is not applied.
    let mut isolate = Isolate::with_other_keys();
    let _running = isolate.other_request_fetches(T_REFETCH);
    let actions = isolate.run(&[
        (DecideEvent::Start, T_REFETCH + 1),
        (fetched(jwks_with_the_tokens_key()), T_REFETCH + 2),
    ]);
    assert_eq!(actions, ["look again in 10 ms", "decided: respond 500"]);
    assert_eq!(isolate.keys.keys().count(), 1);
}

/// Every sequence of up to four events, each at a later millisecond, against a store with no
/// keys and one whose keys lack the token's: no panic, never an answer of `RefreshKeys`, and
/// once decided, every further event is answered with a 500.
#[test]
fn any_order_of_events_ends_in_a_decision_and_never_asks_the_adapter_to_refresh() {
    let events = [
        DecideEvent::Start,
        DecideEvent::KeysFetched(Ok(jwks_with_the_tokens_key())),
        DecideEvent::KeysFetched(Err("reset".to_owned())),
        DecideEvent::LookedAgain,
        DecideEvent::Logged,
    ];
    let mut sequences: Vec<Vec<usize>> = vec![Vec::new()];
    for _ in 0..4 {
        let longer: Vec<Vec<usize>> = sequences
            .iter()
            .filter(|sequence| sequence.len() == sequences.last().unwrap().len())
            .flat_map(|sequence| {
                (0..events.len()).map(move |next| {
                    let mut longer = sequence.clone();
                    longer.push(next);
                    longer
                })
            })
            .collect();
        sequences.extend(longer);
    }
    for isolate in [Isolate::new as fn() -> Isolate, Isolate::with_other_keys] {
        for sequence in &sequences {
            let mut isolate = isolate();
            let script: Vec<(DecideEvent, u64)> = sequence
                .iter()
                .enumerate()
                .map(|(index, &event)| (events[event].clone(), T0 + 1_000 + index as u64))
                .collect();
            let actions = isolate.run(&script);
            assert!(
                actions
                    .iter()
                    .all(|action| action != "decided: RefreshKeys"),
                "{sequence:?}: {actions:?}"
            );
            if let Some(first) = actions.iter().position(|a| a.starts_with("decided:")) {
                assert!(
                    actions[first + 1..]
                        .iter()
                        .all(|action| action == "decided: respond 500"),
                    "{sequence:?}: {actions:?}"
                );
            }
        }
    }
}
