//! Every path of [`DiscoveryRefresh`], written as the actions the adapter carries out for one
//! isolate's requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use super::*;
use crate::core::auth::test_support::NOW;
use crate::core::shared_fetch::LOOK_AGAIN_MS;

/// A time in ms since the epoch, on a second boundary.
const T0: u64 = NOW * 1000;
const ISSUER: &str = "https://idp.example";
const URL: &str = "https://idp.example/.well-known/openid-configuration";
const FETCH: &str = "fetch https://idp.example/.well-known/openid-configuration within 10000 ms";
const GO_ON: &str = "go on";
const WAIT: &str = "look again in 10 ms";
const TTL_SECS: u64 = 3600;

fn config() -> SigninConfig {
    let vars = |name: &str| match name {
        "OIDC_ISSUER" => Some(format!("{ISSUER}/")),
        "OIDC_CLIENT_ID" => Some("edgebrain".to_owned()),
        _ => None,
    };
    let config = SigninConfig::from_vars(&vars).unwrap().unwrap();
    assert_eq!(config.discovery_ttl_secs, TTL_SECS);
    config
}

fn document_of(issuer: &str) -> Vec<u8> {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
    })
    .to_string()
    .into_bytes()
}

/// How a discovery fetch ended: the answer's status and body, or why there is none.
type Outcome = Result<(u16, Vec<u8>), String>;

fn good_answer() -> Outcome {
    Ok((200, document_of(ISSUER)))
}

/// What happens to one request of the isolate.
enum Event {
    /// A sign-in step needs the document ([`DiscoveryRefresh::start`]).
    Starts,
    LooksAgain,
    Fetched(Outcome),
}

/// One isolate's discovery document and the requests loading it, by number.
struct Isolate {
    config: SigninConfig,
    discovery: Discovery,
    requests: Vec<Option<DiscoveryRefresh>>,
}

impl Isolate {
    fn new() -> Self {
        Self {
            config: config(),
            discovery: Discovery::default(),
            requests: Vec::new(),
        }
    }

    /// A document fetched at `at_ms` by a request that is over.
    fn with_document_fetched_at(at_ms: u64) -> Self {
        let mut isolate = Self::new();
        let actions = isolate.run(vec![
            (0, Event::Starts, at_ms),
            (0, good_answer().into(), at_ms),
        ]);
        assert_eq!(actions, ["0: ".to_owned() + FETCH, "0: go on".to_owned()]);
        isolate
    }

    /// Feeds each event (to its request, at its millisecond) to the machines; the actions they
    /// answered, as `request: action`.
    fn run(&mut self, script: Vec<(usize, Event, u64)>) -> Vec<String> {
        script
            .into_iter()
            .map(|(request, event, at_ms)| {
                if self.requests.len() <= request {
                    self.requests.resize_with(request + 1, || None);
                }
                let discovery = &mut self.discovery;
                let action = match event {
                    Event::Starts => {
                        let (refresh, action) =
                            DiscoveryRefresh::start(discovery, &self.config, at_ms);
                        self.requests[request] = Some(refresh);
                        action
                    }
                    Event::LooksAgain => self.requests[request]
                        .as_mut()
                        .expect("started")
                        .look_again(discovery, at_ms),
                    Event::Fetched(outcome) => self.requests[request]
                        .as_mut()
                        .expect("started")
                        .fetched(discovery, &self.config, at_ms, outcome),
                };
                format!("{request}: {}", describe(&action))
            })
            .collect()
    }

    fn issuer(&self) -> Option<&str> {
        self.discovery
            .metadata()
            .map(|metadata| metadata.issuer.as_str())
    }
}

impl From<Outcome> for Event {
    fn from(outcome: Outcome) -> Self {
        Self::Fetched(outcome)
    }
}

/// One line per action: what a reader of the adapter's log would see it do.
fn describe(action: &DiscoveryAction) -> String {
    match action {
        DiscoveryAction::Fetch(fetch) => {
            assert_eq!(fetch.max_body_bytes, MAX_DISCOVERY_BYTES);
            format!("fetch {} within {} ms", fetch.url, fetch.timeout_ms)
        }
        DiscoveryAction::LookAgainIn { ms } => format!("look again in {ms} ms"),
        DiscoveryAction::Done { problem: None } => GO_ON.to_owned(),
        DiscoveryAction::Done {
            problem: Some(problem),
        } => format!("go on, log: {problem}"),
    }
}

fn lines(expected: &[(usize, &str)]) -> Vec<String> {
    expected
        .iter()
        .map(|(request, action)| format!("{request}: {action}"))
        .collect()
}

#[test]
fn of_two_requests_one_fetches_and_the_other_waits_then_sees_the_document() {
    let mut isolate = Isolate::new();
    let actions = isolate.run(vec![
        (0, Event::Starts, T0),
        (1, Event::Starts, T0 + 2),
        (1, Event::LooksAgain, T0 + 12),
        (0, good_answer().into(), T0 + 15),
        (1, Event::LooksAgain, T0 + 22),
    ]);
    assert_eq!(
        actions,
        lines(&[(0, FETCH), (1, WAIT), (1, WAIT), (0, GO_ON), (1, GO_ON)])
    );
    assert_eq!(isolate.issuer(), Some(ISSUER));
    assert_eq!(
        PROVIDER_TIMEOUT_MS, 10_000,
        "the timeout the fetch was handed"
    );
    assert_eq!(MAX_DISCOVERY_BYTES, 64 * 1024);
}

#[test]
fn a_fetch_whose_request_was_cancelled_is_waited_for_exactly_until_its_timeout() {
    let mut isolate = Isolate::new();
    // Request 0's fetch never reports: its client went away and took the fetch with it.
    let actions = isolate.run(vec![
        (0, Event::Starts, T0),
        (1, Event::Starts, T0 + 1),
        (1, Event::LooksAgain, T0 + PROVIDER_TIMEOUT_MS - 4),
        (1, Event::LooksAgain, T0 + PROVIDER_TIMEOUT_MS - 1),
        (1, Event::LooksAgain, T0 + PROVIDER_TIMEOUT_MS),
        // Past the timeout nobody waits, and the rate limit holds a new fetch back.
        (2, Event::Starts, T0 + PROVIDER_TIMEOUT_MS + 1),
        // Once it allows one, the next request fetches.
        (3, Event::Starts, T0 + MIN_REFETCH_SECS * 1000),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (0, FETCH),
            (1, WAIT),
            (1, "look again in 4 ms"),
            (1, "look again in 1 ms"),
            (1, GO_ON),
            (2, GO_ON),
            (3, FETCH),
        ])
    );
    assert_eq!(isolate.issuer(), None);
}

#[test]
fn a_clock_that_went_backwards_ends_a_wait_and_starts_none() {
    let mut isolate = Isolate::new();
    let actions = isolate.run(vec![
        (0, Event::Starts, T0),
        (1, Event::Starts, T0),
        (1, Event::LooksAgain, T0 - 1),
        (2, Event::Starts, T0 - 5_000),
    ]);
    assert_eq!(
        actions,
        lines(&[(0, FETCH), (1, WAIT), (1, GO_ON), (2, GO_ON)])
    );
}

#[test]
fn a_failed_or_refused_fetch_leaves_the_previous_document_and_says_why() {
    let mut isolate = Isolate::with_document_fetched_at(T0);
    let stale_ms = T0 + TTL_SECS * 1000;
    let failures = [
        (
            Err("no answer within 10000 ms".to_owned()),
            format!("OIDC discovery {URL} failed: no answer within 10000 ms"),
        ),
        (
            Ok((503, Vec::new())),
            format!("OIDC discovery {URL} refused: Status(503)"),
        ),
        (
            Ok((200, b"not json".to_vec())),
            format!("OIDC discovery {URL} refused: Malformed("),
        ),
        (
            Ok((200, document_of("https://other.example"))),
            format!("OIDC discovery {URL} refused: WrongIssuer"),
        ),
        (
            Ok((200, vec![b' '; MAX_DISCOVERY_BYTES + 1])),
            format!("OIDC discovery {URL} refused: TooLarge"),
        ),
    ];
    for (round, (outcome, says)) in failures.into_iter().enumerate() {
        let at = stale_ms + round as u64 * MIN_REFETCH_SECS * 1000;
        let actions = isolate.run(vec![
            (0, Event::Starts, at),
            (0, outcome.into(), at + 5),
            (1, Event::Starts, at + 6),
        ]);
        assert_eq!(
            actions[0],
            "0: ".to_owned() + FETCH,
            "a stale document is refetched"
        );
        assert!(
            actions[1].starts_with(&format!("0: go on, log: {says}")),
            "{actions:?}"
        );
        assert_eq!(
            actions[2], "1: go on",
            "a failed fetch is no longer waited for, and the rate limit holds the next back"
        );
        assert_eq!(
            isolate.issuer(),
            Some(ISSUER),
            "the previous document stays"
        );
    }
}

#[test]
fn a_fresh_document_is_not_fetched_again_and_a_stale_one_is() {
    let mut isolate = Isolate::with_document_fetched_at(T0);
    let actions = isolate.run(vec![
        (1, Event::Starts, T0 + (TTL_SECS - 1) * 1000),
        (2, Event::Starts, T0 + TTL_SECS * 1000),
    ]);
    assert_eq!(actions, lines(&[(1, GO_ON), (2, FETCH)]));
}

#[test]
fn a_report_arriving_while_waiting_for_another_requests_fetch_is_not_applied() {
    let mut isolate = Isolate::new();
    let actions = isolate.run(vec![
        (0, Event::Starts, T0),
        (1, Event::Starts, T0 + 1),
        (1, good_answer().into(), T0 + 2),
        // Request 0's fetch still runs: the stray report took nothing from its mark.
        (2, Event::Starts, T0 + 3),
        (0, good_answer().into(), T0 + 4),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (0, FETCH),
            (1, WAIT),
            (
                1,
                "go on, log: a discovery fetch reported that was not asked for"
            ),
            (2, WAIT),
            (0, GO_ON),
        ])
    );
    let mut isolate = Isolate::new();
    isolate.run(vec![(0, Event::Starts, T0), (1, Event::Starts, T0 + 1)]);
    isolate.run(vec![(1, good_answer().into(), T0 + 2)]);
    assert_eq!(
        isolate.issuer(),
        None,
        "the stray document was not installed"
    );
}

#[test]
fn a_fetch_reports_once_and_looking_again_during_it_ends_it() {
    let mut isolate = Isolate::new();
    let actions = isolate.run(vec![
        (0, Event::Starts, T0),
        (0, Event::LooksAgain, T0 + 1),
        (1, Event::Starts, T0 + 2),
        (0, good_answer().into(), T0 + 3),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (0, FETCH),
            (
                0,
                "go on, log: looked again while this request's own fetch runs"
            ),
            (1, GO_ON),
            (
                0,
                "go on, log: a discovery fetch reported that was not asked for"
            ),
        ])
    );
    assert_eq!(isolate.issuer(), None);
}

#[test]
fn a_later_fetch_keeps_its_mark_when_an_earlier_timed_out_one_reports() {
    let mut isolate = Isolate::new();
    let late_ms = T0 + MIN_REFETCH_SECS * 1000;
    let actions = isolate.run(vec![
        (0, Event::Starts, T0),
        (1, Event::Starts, late_ms),
        (
            0,
            Err("no answer within 10000 ms".to_owned()).into(),
            late_ms + 1,
        ),
        (2, Event::Starts, late_ms + 2),
        (2, Event::LooksAgain, late_ms + 2 + LOOK_AGAIN_MS),
        (1, good_answer().into(), late_ms + 20),
        (2, Event::LooksAgain, late_ms + 22),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (0, FETCH),
            (1, FETCH),
            (
                0,
                "go on, log: OIDC discovery https://idp.example/.well-known/openid-configuration \
                 failed: no answer within 10000 ms"
            ),
            (2, WAIT),
            (2, WAIT),
            (1, GO_ON),
            (2, GO_ON),
        ])
    );
    assert_eq!(isolate.issuer(), Some(ISSUER));
}
