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

#[test]
fn keys_due_at_the_start_are_fetched_before_the_token_is_read() {
    let config = remote_keys_config();
    let mut keys = store_of(&config);
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[
            (DecideEvent::Start, T0),
            (
                DecideEvent::KeysFetched(Ok(jwks_with_the_tokens_key())),
                T0 + 40,
            ),
        ],
    );
    assert_eq!(
        actions,
        [
            "fetch keys from https://idp.example/jwks.json",
            "decided: proxy"
        ]
    );
}

#[test]
fn a_failed_due_fetch_is_logged_and_the_token_then_settles_as_unknown() {
    let config = remote_keys_config();
    let mut keys = store_of(&config);
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[
            (DecideEvent::Start, T0),
            (
                DecideEvent::KeysFetched(Err("status 503".to_owned())),
                T0 + 40,
            ),
            (DecideEvent::Logged, T0 + 41),
        ],
    );
    assert_eq!(
        actions,
        [
            "fetch keys from https://idp.example/jwks.json",
            "log: JWKS fetch failed: status 503",
            // The rate limit holds a second fetch back and none is running: final.
            "decided: respond 401",
        ]
    );
}

#[test]
fn a_refused_document_is_logged_and_the_last_good_keys_stay() {
    let config = remote_keys_config();
    let mut keys = store_of(&config);
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[
            (DecideEvent::Start, T0),
            (DecideEvent::KeysFetched(Ok(b"{}".to_vec())), T0 + 40),
            (DecideEvent::Logged, T0 + 41),
        ],
    );
    assert_eq!(actions[0], "fetch keys from https://idp.example/jwks.json");
    assert!(
        actions[1].starts_with("log: JWKS refused: "),
        "{}",
        actions[1]
    );
    assert_eq!(actions[2], "decided: respond 401");
    assert_eq!(keys.keys().count(), 0);
}

#[test]
fn an_unknown_key_is_fetched_once_and_the_routed_request_decided_again() {
    let config = remote_keys_config();
    let mut keys = store_of(&config);
    keys.apply_jwks(jwt::NOW, &jwks_without_the_tokens_key())
        .unwrap();
    let at = T0 + 1_000;
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[
            (DecideEvent::Start, at),
            (
                DecideEvent::KeysFetched(Ok(jwks_with_the_tokens_key())),
                at + 40,
            ),
        ],
    );
    assert_eq!(
        actions,
        [
            "fetch keys from https://idp.example/jwks.json",
            "decided: proxy"
        ]
    );
    // The same store, the key now known: nothing to fetch.
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[(DecideEvent::Start, at + 50)],
    );
    assert_eq!(actions, ["decided: proxy"]);
}

#[test]
fn a_key_still_unknown_after_the_refresh_is_final() {
    let config = remote_keys_config();
    let mut keys = store_of(&config);
    keys.apply_jwks(jwt::NOW, &jwks_without_the_tokens_key())
        .unwrap();
    let at = T0 + 1_000;
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[
            (DecideEvent::Start, at),
            (
                DecideEvent::KeysFetched(Ok(jwks_without_the_tokens_key())),
                at + 40,
            ),
        ],
    );
    assert_eq!(
        actions,
        [
            "fetch keys from https://idp.example/jwks.json",
            "decided: respond 401"
        ]
    );
}

#[test]
fn a_request_waits_for_another_requests_fetch_and_then_uses_its_keys() {
    let config = remote_keys_config();
    let mut keys = store_of(&config);
    keys.apply_jwks(jwt::NOW, &jwks_without_the_tokens_key())
        .unwrap();
    let at = T0 + 1_000;
    let (mut other, action) = KeyRefresh::for_unknown_key(&mut keys, at);
    assert!(matches!(action, RefreshAction::Fetch(_)));

    let method = Method::GET;
    let incoming = bearer_of_es_token();
    let head = RequestHead {
        method: &method,
        url: "https://edge.example/api/v1/x",
        headers: &incoming,
        client_ip: None,
    };
    let mut deciding = Deciding::new(inputs_at(at + 1));
    let mut step = |event, now_ms, keys: &mut KeyStore| {
        describe(&deciding.advance(event, &head, &config, Some(keys), now_ms))
    };
    assert_eq!(
        step(DecideEvent::Start, at + 1, &mut keys),
        "look again in 10 ms"
    );
    assert_eq!(
        step(DecideEvent::LookedAgain, at + 11, &mut keys),
        "look again in 10 ms"
    );
    other.fetched(&mut keys, at + 15, Ok(jwks_with_the_tokens_key()));
    assert_eq!(
        step(DecideEvent::LookedAgain, at + 21, &mut keys),
        "decided: proxy"
    );
}

#[test]
fn a_wait_ends_at_the_other_fetchs_timeout_and_the_key_is_then_unknown() {
    let config = remote_keys_config();
    let mut keys = store_of(&config);
    keys.apply_jwks(jwt::NOW, &jwks_without_the_tokens_key())
        .unwrap();
    let at = T0 + 1_000;
    // A fetch whose request was cancelled: it never reports.
    let (_cancelled, _) = KeyRefresh::for_unknown_key(&mut keys, at);
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[
            (DecideEvent::Start, at + FETCH_TIMEOUT_MS - 5),
            (DecideEvent::LookedAgain, at + FETCH_TIMEOUT_MS),
        ],
    );
    assert_eq!(actions, ["look again in 5 ms", "decided: respond 401"]);
}

#[test]
fn an_unknown_key_within_the_rate_limit_with_nothing_running_is_final_at_once() {
    let config = remote_keys_config();
    let mut keys = store_of(&config);
    let (mut earlier, _) = KeyRefresh::for_unknown_key(&mut keys, T0);
    earlier.fetched(&mut keys, T0 + 5, Ok(jwks_without_the_tokens_key()));
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[(DecideEvent::Start, T0 + MIN_INTERVAL_MS - 1)],
    );
    assert_eq!(actions, ["decided: respond 401"]);
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
    assert_eq!(actions, ["decided: proxy"]);
}

#[test]
fn answers_before_the_api_need_no_keys_unless_a_refresh_is_due() {
    let config = remote_keys_config();
    let mut keys = store_of(&config);
    keys.apply_jwks(jwt::NOW, &jwks_with_the_tokens_key())
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
    let action = deciding.advance(DecideEvent::Start, &head, &config, Some(&mut keys), T0);
    assert_eq!(describe(&action), "decided: respond 200");
}

#[test]
fn events_out_of_order_end_in_the_error_shape() {
    let config = remote_keys_config();
    for script in [
        vec![(DecideEvent::KeysFetched(Ok(Vec::new())), T0)],
        vec![(DecideEvent::LookedAgain, T0)],
        vec![(DecideEvent::Logged, T0)],
        // Decided already (the key store is fresh after the first fetch's keys).
        vec![
            (DecideEvent::Start, T0),
            (
                DecideEvent::KeysFetched(Ok(jwks_with_the_tokens_key())),
                T0 + 1,
            ),
            (DecideEvent::Start, T0 + 2),
        ],
    ] {
        let mut keys = store_of(&config);
        let actions = run(&config, Some(&mut keys), &bearer_of_es_token(), &script);
        assert_eq!(
            actions.last().unwrap(),
            "decided: respond 500",
            "{script:?}"
        );
    }
    // A look while this request's own fetch runs, and a fetch's report while waiting.
    let mut keys = store_of(&config);
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[(DecideEvent::Start, T0), (DecideEvent::LookedAgain, T0 + 1)],
    );
    assert_eq!(actions[1], "decided: respond 500");
    let (mut next, action) = KeyRefresh::for_unknown_key(&mut keys, T0 + 2);
    assert_eq!(
        next.look_again(&mut keys, T0 + 2),
        RefreshAction::Done { problem: None },
        "the lost request's fetch is waited for by nobody"
    );
    assert!(!matches!(action, RefreshAction::Fetch(_)), "rate-limited");
    let mut keys = store_of(&config);
    keys.apply_jwks(jwt::NOW, &jwks_without_the_tokens_key())
        .unwrap();
    let (_running, _) = KeyRefresh::for_unknown_key(&mut keys, T0 + 1_000);
    let actions = run(
        &config,
        Some(&mut keys),
        &bearer_of_es_token(),
        &[
            (DecideEvent::Start, T0 + 1_001),
            (
                DecideEvent::KeysFetched(Ok(jwks_with_the_tokens_key())),
                T0 + 1_002,
            ),
        ],
    );
    assert_eq!(actions, ["look again in 10 ms", "decided: respond 500"]);
    assert_eq!(
        keys.keys().count(),
        1,
        "a report nobody asked for is not applied"
    );
}

/// Every sequence of up to four events, each at a later millisecond, against a store with no
/// keys and one whose keys lack the token's: no panic, never an answer of `RefreshKeys`, and
/// once decided, every further event is answered with a 500.
#[test]
fn any_order_of_events_ends_in_a_decision_and_never_asks_the_adapter_to_refresh() {
    let config = remote_keys_config();
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
    let incoming = bearer_of_es_token();
    for preloaded in [false, true] {
        for sequence in &sequences {
            let mut keys = store_of(&config);
            if preloaded {
                keys.apply_jwks(jwt::NOW, &jwks_without_the_tokens_key())
                    .unwrap();
            }
            let script: Vec<(DecideEvent, u64)> = sequence
                .iter()
                .enumerate()
                .map(|(index, &event)| (events[event].clone(), T0 + 1_000 + index as u64))
                .collect();
            let actions = run(&config, Some(&mut keys), &incoming, &script);
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
