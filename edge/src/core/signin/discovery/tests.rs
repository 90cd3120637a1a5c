//! Every path of [`DiscoveryRefresh`], and of the sign-in steps that ask for it
//! ([`decide_auth`]), written as the actions the adapter carries out for one isolate's requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use http::header::LOCATION;
use http::{HeaderMap, Method};
use serde_json::json;

use super::*;
use crate::core::auth::test_support::NOW;
use crate::core::config::EdgeConfig;
use crate::core::pipeline::RequestHead;
use crate::core::request_id::RequestId;
use crate::core::shared_fetch::LOOK_AGAIN_MS;
use crate::core::signin::endpoint::{AuthDecision, decide_auth};
use crate::core::signin::flow::LoginRandom;

/// A time in ms since the epoch, on a second boundary.
const T0: u64 = NOW * 1000;
const ISSUER: &str = "https://idp.example";
const URL: &str = "https://idp.example/.well-known/openid-configuration";
const FETCH: &str = "fetch https://idp.example/.well-known/openid-configuration within 10000 ms";
const GO_ON: &str = "go on";
const WAIT: &str = "look again in 10 ms";
const TTL_SECS: u64 = 3600;
/// Where a sign-in step redirects with the first document, and with the provider's next one.
const SIGNS_IN_AT: &str = "redirect to https://idp.example/authorize";
const SIGNS_IN_AT_V2: &str = "redirect to https://idp.example/v2/authorize";

/// The edge's configuration with sign-in at [`ISSUER`] and the default discovery TTL.
fn edge_config() -> EdgeConfig {
    let vars = |name: &str| match name {
        "BRAIN_URL" => Some("http://brain.internal:8080".to_owned()),
        "EDGE_SIGNING_SECRETS" => Some("edge-signing-secret-0123456789abcdef".to_owned()),
        "SESSION_KEYS" => Some("k1:session-key-0123456789abcdef0123456789".to_owned()),
        "OIDC_ISSUER" => Some(format!("{ISSUER}/")),
        "OIDC_CLIENT_ID" => Some("edgebrain".to_owned()),
        _ => None,
    };
    let config = EdgeConfig::from_vars_and_rules(vars, "{}").unwrap();
    assert_eq!(config.signin.as_ref().unwrap().discovery_ttl_secs, TTL_SECS);
    config
}

fn document_of(issuer: &str) -> Vec<u8> {
    document_with_endpoints_under(issuer, issuer)
}

/// A document of `issuer` whose endpoints are under `base`.
fn document_with_endpoints_under(issuer: &str, base: &str) -> Vec<u8> {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
    })
    .to_string()
    .into_bytes()
}

/// How a discovery fetch ended: the answer's status and body, or why there is none.
type Outcome = Result<(u16, Vec<u8>), String>;

fn good_answer() -> Outcome {
    Ok((200, document_of(ISSUER)))
}

/// The provider's next document: same issuer, endpoints moved.
fn moved_answer() -> Outcome {
    Ok((
        200,
        document_with_endpoints_under(ISSUER, &format!("{ISSUER}/v2")),
    ))
}

/// What happens to one request of the isolate.
enum Event {
    /// A sign-in step needs the document ([`DiscoveryRefresh::start`]).
    Starts,
    LooksAgain,
    Fetched(Outcome),
    /// `GET /auth/login` is decided ([`decide_auth`]); when that asks for the document, its
    /// load starts ([`DiscoveryRefresh::start`]) and the line is the load's first action.
    SignsIn,
    /// The sign-in step is decided again after its load.
    DecidesAgain,
}

/// One isolate's discovery document and the requests loading it, by number.
struct Isolate {
    edge: EdgeConfig,
    config: SigninConfig,
    discovery: Discovery,
    requests: Vec<Option<DiscoveryRefresh>>,
}

impl Isolate {
    fn new() -> Self {
        Self::with_ttl_secs(TTL_SECS)
    }

    /// An isolate whose document lives `ttl_secs` (set on the parsed configuration: the
    /// variable itself refuses 0).
    fn with_ttl_secs(ttl_secs: u64) -> Self {
        let mut edge = edge_config();
        let signin = edge.signin.as_mut().unwrap();
        signin.discovery_ttl_secs = ttl_secs;
        Self {
            config: signin.clone(),
            edge,
            discovery: Discovery::default(),
            requests: Vec::new(),
        }
    }

    /// A document fetched at `at_ms` by a request that is over.
    fn with_document_fetched_at(at_ms: u64) -> Self {
        Self::new().and_document_fetched_at(at_ms)
    }

    fn and_document_fetched_at(mut self, at_ms: u64) -> Self {
        let isolate = &mut self;
        let actions = isolate.run(vec![
            (0, Event::Starts, at_ms),
            (0, good_answer().into(), at_ms),
        ]);
        assert_eq!(actions, ["0: ".to_owned() + FETCH, "0: go on".to_owned()]);
        self
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
                    Event::SignsIn | Event::DecidesAgain => {
                        let loaded = matches!(event, Event::DecidesAgain);
                        match sign_in_step(&self.edge, discovery, loaded, at_ms) {
                            AuthDecision::Discover if !loaded => {
                                let (refresh, action) =
                                    DiscoveryRefresh::start(discovery, &self.config, at_ms);
                                self.requests[request] = Some(refresh);
                                action
                            }
                            decided => return format!("{request}: {}", describe_step(&decided)),
                        }
                    }
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

/// How `GET /auth/login` is decided at `now_ms` with the isolate's `discovery`.
fn sign_in_step(
    config: &EdgeConfig,
    discovery: &Discovery,
    discovery_loaded: bool,
    now_ms: u64,
) -> AuthDecision {
    let random = LoginRandom {
        state: [1; 16],
        nonce: [2; 16],
        verifier: [3; 32],
    };
    let head = RequestHead {
        method: &Method::GET,
        url: "https://app.example/auth/login",
        headers: &HeaderMap::new(),
        client_ip: None,
    };
    let request_id = RequestId::from_random([7; 16]);
    decide_auth(
        &head,
        config,
        discovery,
        discovery_loaded,
        &random,
        now_ms / 1000,
        &request_id,
    )
}

/// A decided sign-in step that loads nothing (now): where it redirects, or its error status.
fn describe_step(decided: &AuthDecision) -> String {
    let response = match decided {
        AuthDecision::Respond(response) => response,
        // After its load a step goes on with whatever document there is.
        AuthDecision::Discover => return "asks to load again".to_owned(),
        other => panic!("a login step is answered or loads the document: {other:?}"),
    };
    match response.headers.get(LOCATION) {
        Some(location) => {
            let location = location.to_str().unwrap();
            format!("redirect to {}", location.split('?').next().unwrap())
        }
        None => format!("answer {}", response.status.as_u16()),
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

/// When the document was fetched `TTL_SECS` ago, on a second boundary.
const STALE: u64 = T0 + TTL_SECS * 1000;
const NO_ANSWER: &str = "go on, log: OIDC discovery https://idp.example/.well-known/openid-configuration \
                         failed: no answer within 10000 ms";

fn no_answer() -> Event {
    Err::<(u16, Vec<u8>), _>("no answer within 10000 ms".to_owned()).into()
}

#[test]
fn a_sign_in_step_uses_a_fresh_document_and_refetches_a_stale_one_before_it_answers() {
    let mut isolate = Isolate::with_document_fetched_at(T0);
    let actions = isolate.run(vec![
        (1, Event::SignsIn, STALE - 1),
        (2, Event::SignsIn, STALE),
        (2, moved_answer().into(), STALE + 5),
        (2, Event::DecidesAgain, STALE + 6),
        // The new document is fresh: nobody fetches it again.
        (3, Event::SignsIn, STALE + 7),
        (4, Event::SignsIn, STALE + (TTL_SECS * 1000 - 1)),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (1, SIGNS_IN_AT),
            (2, FETCH),
            (2, GO_ON),
            (2, SIGNS_IN_AT_V2),
            (3, SIGNS_IN_AT_V2),
            (4, SIGNS_IN_AT_V2),
        ])
    );
}

#[test]
fn a_stale_document_is_used_at_once_while_another_request_refetches_it() {
    let mut isolate = Isolate::with_document_fetched_at(T0);
    let actions = isolate.run(vec![
        (0, Event::SignsIn, STALE),
        (1, Event::SignsIn, STALE + 1),
        // Asked to load all the same, the machine goes on with the document it has.
        (2, Event::Starts, STALE + 2),
        (0, moved_answer().into(), STALE + 3),
        (0, Event::DecidesAgain, STALE + 4),
        (1, Event::SignsIn, STALE + 5),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (0, FETCH),
            (1, SIGNS_IN_AT),
            (2, GO_ON),
            (0, GO_ON),
            (0, SIGNS_IN_AT_V2),
            (1, SIGNS_IN_AT_V2),
        ])
    );
}

#[test]
fn a_failing_provider_leaves_the_stale_document_in_use_and_is_asked_again_after_min_refetch_secs() {
    let mut isolate = Isolate::with_document_fetched_at(T0);
    let again_ms = STALE + MIN_REFETCH_SECS * 1000;
    let actions = isolate.run(vec![
        (0, Event::SignsIn, STALE),
        (0, no_answer(), STALE + 5),
        (0, Event::DecidesAgain, STALE + 6),
        (1, Event::SignsIn, again_ms - 1),
        (2, Event::SignsIn, again_ms),
        (2, Ok((503, Vec::new())).into(), again_ms + 5),
        (2, Event::DecidesAgain, again_ms + 6),
        (3, Event::SignsIn, again_ms + 7),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (0, FETCH),
            (0, NO_ANSWER),
            (0, SIGNS_IN_AT),
            (1, SIGNS_IN_AT),
            (2, FETCH),
            (
                2,
                "go on, log: OIDC discovery https://idp.example/.well-known/openid-configuration \
                 refused: Status(503)"
            ),
            (2, SIGNS_IN_AT),
            (3, SIGNS_IN_AT),
        ])
    );
}

#[test]
fn without_any_document_sign_in_steps_wait_for_the_fetch_and_answer_503_when_it_fails() {
    let mut isolate = Isolate::new();
    let actions = isolate.run(vec![
        (0, Event::SignsIn, T0),
        (1, Event::SignsIn, T0 + 1),
        (0, no_answer(), T0 + 5),
        (1, Event::LooksAgain, T0 + 11),
        (0, Event::DecidesAgain, T0 + 12),
        (1, Event::DecidesAgain, T0 + 12),
        // The rate limit holds a new fetch back and none runs: nothing to wait for.
        (2, Event::SignsIn, T0 + 13),
        (2, Event::DecidesAgain, T0 + 13),
        (3, Event::SignsIn, T0 + MIN_REFETCH_SECS * 1000),
        (3, good_answer().into(), T0 + MIN_REFETCH_SECS * 1000 + 5),
        (3, Event::DecidesAgain, T0 + MIN_REFETCH_SECS * 1000 + 6),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (0, FETCH),
            (1, WAIT),
            (0, NO_ANSWER),
            (1, GO_ON),
            (0, "answer 503"),
            (1, "answer 503"),
            (2, GO_ON),
            (2, "answer 503"),
            (3, FETCH),
            (3, GO_ON),
            (3, SIGNS_IN_AT),
        ])
    );
}

#[test]
fn with_a_ttl_of_0_every_document_is_stale_and_refetched_at_most_every_min_refetch_secs() {
    // The variable refuses 0; a configuration made otherwise still never fetches on every step.
    let vars = |name: &str| match name {
        "OIDC_ISSUER" => Some(ISSUER.to_owned()),
        "OIDC_CLIENT_ID" => Some("edgebrain".to_owned()),
        "OIDC_DISCOVERY_TTL_SECS" => Some("0".to_owned()),
        _ => None,
    };
    assert_eq!(
        SigninConfig::from_vars(&vars).unwrap_err().var,
        "OIDC_DISCOVERY_TTL_SECS"
    );
    let mut isolate = Isolate::with_ttl_secs(0).and_document_fetched_at(T0);
    let again_ms = T0 + MIN_REFETCH_SECS * 1000;
    let actions = isolate.run(vec![
        (1, Event::SignsIn, T0),
        (2, Event::SignsIn, again_ms - 1),
        (3, Event::SignsIn, again_ms),
        (4, Event::SignsIn, again_ms + 1),
        (3, moved_answer().into(), again_ms + 5),
        (3, Event::DecidesAgain, again_ms + 6),
        (5, Event::SignsIn, again_ms + 7),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (1, SIGNS_IN_AT),
            (2, SIGNS_IN_AT),
            (3, FETCH),
            (4, SIGNS_IN_AT),
            (3, GO_ON),
            (3, SIGNS_IN_AT_V2),
            (5, SIGNS_IN_AT_V2),
        ])
    );
}

#[test]
fn a_clock_that_went_backwards_neither_refetches_nor_holds_a_sign_in_step_up() {
    // Fetched "later" than now: the document looks fresh.
    let mut isolate = Isolate::with_document_fetched_at(STALE);
    assert_eq!(
        isolate.run(vec![(1, Event::SignsIn, T0)]),
        lines(&[(1, SIGNS_IN_AT)])
    );
    // With every document stale, the last attempt still looks recent; and a refetch running
    // "later" holds nobody up.
    let mut isolate = Isolate::with_ttl_secs(0).and_document_fetched_at(T0);
    let again_ms = T0 + MIN_REFETCH_SECS * 1000;
    let actions = isolate.run(vec![
        (1, Event::SignsIn, T0 - TTL_SECS * 1000),
        (2, Event::SignsIn, again_ms),
        (3, Event::SignsIn, T0 - 1),
        (4, Event::SignsIn, again_ms - 5_000),
        (2, moved_answer().into(), again_ms + 5),
        (5, Event::SignsIn, T0),
    ]);
    assert_eq!(
        actions,
        lines(&[
            (1, SIGNS_IN_AT),
            (2, FETCH),
            (3, SIGNS_IN_AT),
            (4, SIGNS_IN_AT),
            (2, GO_ON),
            (5, SIGNS_IN_AT_V2),
        ])
    );
}
