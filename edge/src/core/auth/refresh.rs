//! One request's part in keeping a [`KeyStore`]'s fetched keys fresh, as a sans-IO machine.
//!
//! Used for the API's bearer tokens ([`crate::core::deciding`]) and for sign-in's ID tokens.
//! The adapter carries out each [`RefreshAction`] and reports how it went; every choice is made
//! here: whether to fetch at all (the store's TTL and rate limit), whether another request of
//! the isolate is fetching already so this one waits for that fetch instead of settling its
//! token as unknown, how often to look again and until when, and what a fetched document
//! changes. The waiting and the store's mark of the running fetch are
//! [`crate::core::shared_fetch`]'s, shared with sign-in's discovery document.

use super::keys::{JwksFetch, KeyStore};
use crate::core::shared_fetch::{FetchAction, SharedFetch};

/// What the adapter does next for a [`KeyRefresh`]: [`FetchAction::Fetch`] — GET the JWKS
/// within `timeout_ms`, reading at most `max_body_bytes`, and report with
/// [`KeyRefresh::fetched`]; [`FetchAction::LookAgainIn`] — sleep, then
/// [`KeyRefresh::look_again`]; [`FetchAction::Done`] — go on with the keys the store has.
pub type RefreshAction = FetchAction<JwksFetch>;

/// One request's refresh of a [`KeyStore`]: its own fetch, or a wait for another's.
#[derive(Debug)]
pub struct KeyRefresh {
    fetch: SharedFetch,
}

impl KeyRefresh {
    /// A refresh because the fetched set is missing or older than its TTL (checked before the
    /// token is), or `None` when none is due or the rate limit holds it back.
    pub fn when_due(keys: &mut KeyStore, now_ms: u64) -> Option<(Self, RefreshAction)> {
        let fetch = keys.refresh_due(now_ms / 1000)?;
        Some(Self::fetching(keys, fetch, now_ms))
    }

    /// A refresh because a token named a key the store lacks: this request's own fetch, or —
    /// when the rate limit holds a fetch back — a wait for the one another request is running,
    /// or nothing more to do.
    pub fn for_unknown_key(keys: &mut KeyStore, now_ms: u64) -> (Self, RefreshAction) {
        match keys.refresh_for_unknown_key(now_ms / 1000) {
            Some(fetch) => Self::fetching(keys, fetch, now_ms),
            None => {
                let mut waiting = Self {
                    fetch: SharedFetch::waiting(),
                };
                let action = waiting.look_again(keys, now_ms);
                (waiting, action)
            }
        }
    }

    fn fetching(keys: &mut KeyStore, fetch: JwksFetch, now_ms: u64) -> (Self, RefreshAction) {
        let refresh = Self {
            fetch: SharedFetch::own(keys.fetch_mark(), now_ms, fetch.timeout_ms),
        };
        (refresh, RefreshAction::Fetch(fetch))
    }

    /// This request's fetch ended: with the document's bytes, or with why it failed (a failed
    /// fetch changes nothing: the last good set stays, and the rate limit spaces out retries).
    pub fn fetched(
        &mut self,
        keys: &mut KeyStore,
        now_ms: u64,
        outcome: Result<Vec<u8>, String>,
    ) -> RefreshAction {
        if !self.fetch.end(keys.fetch_mark()) {
            return RefreshAction::Done {
                problem: Some("a JWKS fetch reported that was not asked for".to_owned()),
            };
        }
        let problem = match outcome {
            Ok(body) => keys
                .apply_jwks(now_ms / 1000, &body)
                .err()
                .map(|error| format!("JWKS refused: {error}")),
            Err(error) => Some(format!("JWKS fetch failed: {error}")),
        };
        RefreshAction::Done { problem }
    }

    /// Whether this request's own fetch is out (its outcome goes to [`KeyRefresh::fetched`]).
    pub fn is_fetching(&self) -> bool {
        self.fetch.is_fetching()
    }

    /// Forgets this request's own fetch, if one is out, so that no other request waits for it
    /// (an adapter that will not report its outcome); whether there was one.
    pub fn give_up(&mut self, keys: &mut KeyStore) -> bool {
        self.fetch.end(keys.fetch_mark())
    }

    /// Looks again whether another request's fetch is still running: wait on (never past its
    /// timeout), or go on with whatever keys the store has now.
    pub fn look_again(&mut self, keys: &mut KeyStore, now_ms: u64) -> RefreshAction {
        self.fetch.look_again(keys.fetch_mark(), now_ms)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::super::AuthConfig;
    use super::super::test_support::*;
    use super::*;
    use crate::core::shared_fetch::LOOK_AGAIN_MS;

    const TTL_SECS: u64 = 600;
    const MIN_INTERVAL_SECS: u64 = 30;
    const TIMEOUT_MS: u64 = 2_000;
    /// A time in ms since the epoch, on a second boundary.
    const T0: u64 = NOW * 1000;

    fn store() -> KeyStore {
        let config = AuthConfig::from_json(
            &json!({
                "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
                "jwks_url": {"url": "https://idp.example/jwks", "ttl_secs": TTL_SECS,
                             "min_refresh_interval_secs": MIN_INTERVAL_SECS,
                             "fetch_timeout_ms": TIMEOUT_MS}
            })
            .to_string(),
            None,
        )
        .unwrap();
        KeyStore::new(&config)
    }

    fn jwks() -> Vec<u8> {
        json!({"keys": [es_jwk()]}).to_string().into_bytes()
    }

    fn fetch_of(action: &RefreshAction) -> &JwksFetch {
        match action {
            RefreshAction::Fetch(fetch) => fetch,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn a_store_without_keys_is_due_once_and_the_fetch_installs_them() {
        let mut keys = store();
        let (mut refresh, action) = KeyRefresh::when_due(&mut keys, T0).expect("due");
        let fetch = fetch_of(&action);
        assert_eq!(fetch.url, "https://idp.example/jwks");
        assert_eq!(fetch.timeout_ms, TIMEOUT_MS);
        assert!(
            KeyRefresh::when_due(&mut keys, T0 + 1).is_none(),
            "a second request is not handed the same fetch"
        );
        assert_eq!(
            refresh.fetched(&mut keys, T0 + 50, Ok(jwks())),
            RefreshAction::Done { problem: None }
        );
        assert_eq!(keys.keys().count(), 1);
        assert!(
            KeyRefresh::when_due(&mut keys, T0 + (TTL_SECS - 1) * 1000).is_none(),
            "fresh until the TTL"
        );
        assert!(KeyRefresh::when_due(&mut keys, T0 + (TTL_SECS + 1) * 1000).is_some());
    }

    #[test]
    fn a_second_request_waits_for_the_running_fetch_and_goes_on_when_it_reports() {
        let mut keys = store();
        let (mut first, action) = KeyRefresh::for_unknown_key(&mut keys, T0);
        fetch_of(&action);
        let (mut second, action) = KeyRefresh::for_unknown_key(&mut keys, T0 + 3);
        assert_eq!(action, RefreshAction::LookAgainIn { ms: LOOK_AGAIN_MS });
        assert_eq!(
            second.look_again(&mut keys, T0 + 13),
            RefreshAction::LookAgainIn { ms: LOOK_AGAIN_MS }
        );
        first.fetched(&mut keys, T0 + 20, Ok(jwks()));
        assert_eq!(
            second.look_again(&mut keys, T0 + 23),
            RefreshAction::Done { problem: None },
            "the fetch ended: the waiter goes on with the new keys"
        );
        assert_eq!(keys.keys().count(), 1);
    }

    #[test]
    fn a_fetch_that_never_reports_is_waited_for_until_its_timeout_and_not_a_millisecond_more() {
        let mut keys = store();
        let (_cancelled, _) = KeyRefresh::for_unknown_key(&mut keys, T0);
        let (mut waiting, _) = KeyRefresh::for_unknown_key(&mut keys, T0 + 1);
        assert_eq!(
            waiting.look_again(&mut keys, T0 + TIMEOUT_MS - 4),
            RefreshAction::LookAgainIn { ms: 4 },
            "the last look is due at the timeout itself"
        );
        assert_eq!(
            waiting.look_again(&mut keys, T0 + TIMEOUT_MS),
            RefreshAction::Done { problem: None }
        );
    }

    #[test]
    fn a_clock_that_went_backwards_ends_the_wait() {
        let mut keys = store();
        let (_running, _) = KeyRefresh::for_unknown_key(&mut keys, T0);
        let (mut waiting, _) = KeyRefresh::for_unknown_key(&mut keys, T0);
        assert_eq!(
            waiting.look_again(&mut keys, T0 - 1),
            RefreshAction::Done { problem: None }
        );
    }

    #[test]
    fn nothing_running_and_the_rate_limit_holding_means_going_on_at_once() {
        let mut keys = store();
        let (mut first, _) = KeyRefresh::for_unknown_key(&mut keys, T0);
        first.fetched(&mut keys, T0 + 5, Ok(jwks()));
        let (_, action) = KeyRefresh::for_unknown_key(&mut keys, T0 + 10);
        assert_eq!(action, RefreshAction::Done { problem: None });
        let (_, action) = KeyRefresh::for_unknown_key(&mut keys, T0 + MIN_INTERVAL_SECS * 1000);
        fetch_of(&action);
    }

    #[test]
    fn a_failed_or_refused_fetch_keeps_the_last_good_keys_and_says_why() {
        let mut keys = store();
        let (mut refresh, _) = KeyRefresh::for_unknown_key(&mut keys, T0);
        refresh.fetched(&mut keys, T0 + 5, Ok(jwks()));
        for (round, (outcome, says)) in [
            (
                Err("status 503".to_owned()),
                "JWKS fetch failed: status 503",
            ),
            (Ok(b"not json".to_vec()), "JWKS refused:"),
            (Ok(br#"{"keys": []}"#.to_vec()), "JWKS refused:"),
        ]
        .into_iter()
        .enumerate()
        {
            let at = T0 + (round as u64 + 1) * MIN_INTERVAL_SECS * 1000;
            let (mut refresh, action) = KeyRefresh::for_unknown_key(&mut keys, at);
            fetch_of(&action);
            let RefreshAction::Done {
                problem: Some(problem),
            } = refresh.fetched(&mut keys, at + 5, outcome)
            else {
                panic!("a failure is reported");
            };
            assert!(problem.starts_with(says), "{problem}");
            assert_eq!(keys.keys().count(), 1, "the last good set stays");
            let mut waiting = KeyRefresh {
                fetch: SharedFetch::waiting(),
            };
            assert_eq!(
                waiting.look_again(&mut keys, at + 6),
                RefreshAction::Done { problem: None },
                "a failed fetch is no longer running"
            );
        }
    }

    #[test]
    fn reports_out_of_order_end_the_refresh_and_say_so() {
        let mut keys = store();
        let (mut waiting, _) = {
            let (_running, _) = KeyRefresh::for_unknown_key(&mut keys, T0);
            KeyRefresh::for_unknown_key(&mut keys, T0 + 1)
        };
        assert!(matches!(
            waiting.fetched(&mut keys, T0 + 2, Ok(jwks())),
            RefreshAction::Done { problem: Some(_) }
        ));
        assert_eq!(
            keys.keys().count(),
            0,
            "an unasked-for document is not applied"
        );
        let mut keys = store();
        let (mut fetching, _) = KeyRefresh::for_unknown_key(&mut keys, T0);
        assert!(matches!(
            fetching.look_again(&mut keys, T0 + 1),
            RefreshAction::Done { problem: Some(_) }
        ));
        let (mut waiting, _) = KeyRefresh::for_unknown_key(&mut keys, T0 + 2);
        assert_eq!(
            waiting.look_again(&mut keys, T0 + 2),
            RefreshAction::Done { problem: None },
            "a fetch given up is waited for by nobody"
        );
    }

    #[test]
    fn a_later_fetch_keeps_its_mark_when_an_earlier_timed_out_one_reports() {
        let mut keys = store();
        let (mut early, _) = KeyRefresh::for_unknown_key(&mut keys, T0);
        let late_ms = T0 + MIN_INTERVAL_SECS * 1000;
        let (_late, action) = KeyRefresh::for_unknown_key(&mut keys, late_ms);
        fetch_of(&action);
        early.fetched(&mut keys, late_ms + 1, Err("timed out".to_owned()));
        let (mut waiting, _) = KeyRefresh::for_unknown_key(&mut keys, late_ms + 2);
        assert_eq!(
            waiting.look_again(&mut keys, late_ms + 2),
            RefreshAction::LookAgainIn { ms: LOOK_AGAIN_MS },
            "the later fetch still runs"
        );
    }
}
