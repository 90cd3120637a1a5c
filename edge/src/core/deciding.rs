//! Deciding one request, as a sans-IO machine: the JWT keys brought up to date when their TTL
//! ran out, [`route`], [`Routed::decide`] — and, when the bearer token names a key the store
//! lacks, the keys refreshed (or another request's refresh waited for) and the routed request
//! decided once more, where an unknown key is final.
//!
//! The adapter carries out each [`DecideAction`] and reports with a [`DecideEvent`]; it never
//! sequences a key refresh itself. The isolate's key store is passed in at each step (`None`
//! without `AUTH_CONFIG`), as are the clock's readings. A request's answer is
//! [`DecideAction::Decided`]; it is never [`Decision::RefreshKeys`], which this machine
//! settles.

use shared_types::error::ErrorCode;

use super::auth::{JwksFetch, KeyRefresh, KeyStore, RefreshAction};
use super::pipeline::{Decision, Inputs, RequestHead, Routed, Routing, route};
use super::{EdgeConfig, EdgeResponse, RequestId};

#[cfg(test)]
mod tests;

/// What the adapter reports to [`Deciding::advance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideEvent {
    /// The first step.
    Start,
    /// The JWKS fetch of [`DecideAction::FetchKeys`] ended: its body, or why it failed.
    KeysFetched(Result<Vec<u8>, String>),
    /// The wait of [`DecideAction::LookAgainIn`] is over.
    LookedAgain,
    /// The line of [`DecideAction::Log`] is written.
    Logged,
}

/// What the adapter does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideAction {
    /// GET the JWKS (at most `max_body_bytes`, within `timeout_ms`), then
    /// [`DecideEvent::KeysFetched`].
    FetchKeys(JwksFetch),
    /// Another request of the isolate is fetching the keys: sleep `ms`, then
    /// [`DecideEvent::LookedAgain`].
    LookAgainIn { ms: u64 },
    /// Write this line to the error log (a failed or refused JWKS fetch), then
    /// [`DecideEvent::Logged`].
    Log(String),
    /// The request's decision; the machine is done.
    Decided(Decision),
}

/// One request being decided ([`Deciding::advance`]).
#[derive(Debug)]
pub struct Deciding<'a> {
    inputs: Inputs,
    state: State<'a>,
}

#[derive(Debug)]
enum State<'a> {
    New,
    /// Refreshing the keys; what comes after.
    Refreshing(KeyRefresh, Then<'a>),
    /// A line is being logged; what comes after.
    Logging(Then<'a>),
    Decided,
}

#[derive(Debug)]
enum Then<'a> {
    /// Route the request (the refresh was due before its token was looked at).
    Route,
    /// Decide the routed request again, an unknown key now being final.
    DecideAgain(Box<Routed<'a>>),
}

/// What one step works with: the request, the configuration, the isolate's key store and the
/// clock's reading.
struct At<'s, 'a> {
    head: &'s RequestHead<'a>,
    config: &'s EdgeConfig,
    keys: Option<&'s mut KeyStore>,
    now_ms: u64,
}

impl<'a> Deciding<'a> {
    /// `inputs` as [`route`] takes them; `keys_refreshed` is this machine's to set.
    pub fn new(inputs: Inputs) -> Self {
        Self {
            inputs,
            state: State::New,
        }
    }

    /// The next action for `head`, given the last one's outcome. An event out of order ends
    /// the request with a 500 in the error shape.
    pub fn advance(
        &mut self,
        event: DecideEvent,
        head: &RequestHead<'a>,
        config: &EdgeConfig,
        keys: Option<&mut KeyStore>,
        now_ms: u64,
    ) -> DecideAction {
        let mut at = At {
            head,
            config,
            keys,
            now_ms,
        };
        match (std::mem::replace(&mut self.state, State::Decided), event) {
            (State::New, DecideEvent::Start) => {
                if let Some(store) = at.keys.as_deref_mut()
                    && let Some((refresh, action)) = KeyRefresh::when_due(store, now_ms)
                {
                    return self.refreshing(refresh, action, Then::Route, at);
                }
                self.route(at)
            }
            (State::Refreshing(mut refresh, then), DecideEvent::KeysFetched(outcome))
                if refresh.is_fetching() =>
            {
                let Some(store) = at.keys.as_deref_mut() else {
                    return self.lost_track("the key store went away during a refresh");
                };
                let action = refresh.fetched(store, now_ms, outcome);
                self.refreshing(refresh, action, then, at)
            }
            (State::Refreshing(mut refresh, then), DecideEvent::LookedAgain)
                if !refresh.is_fetching() =>
            {
                let Some(store) = at.keys.as_deref_mut() else {
                    return self.lost_track("the key store went away during a refresh");
                };
                let action = refresh.look_again(store, now_ms);
                self.refreshing(refresh, action, then, at)
            }
            (State::Logging(then), DecideEvent::Logged) => self.go_on(then, at),
            (mut state, event) => {
                if let State::Refreshing(refresh, _) = &mut state
                    && let Some(store) = at.keys.as_deref_mut()
                {
                    refresh.give_up(store);
                }
                self.lost_track(&format!("{event:?} does not follow {}", state.name()))
            }
        }
    }

    fn refreshing(
        &mut self,
        refresh: KeyRefresh,
        action: RefreshAction,
        then: Then<'a>,
        at: At<'_, 'a>,
    ) -> DecideAction {
        match action {
            RefreshAction::Fetch(fetch) => {
                self.state = State::Refreshing(refresh, then);
                DecideAction::FetchKeys(fetch)
            }
            RefreshAction::LookAgainIn { ms } => {
                self.state = State::Refreshing(refresh, then);
                DecideAction::LookAgainIn { ms }
            }
            RefreshAction::Done {
                problem: Some(problem),
            } => {
                self.state = State::Logging(then);
                DecideAction::Log(problem)
            }
            RefreshAction::Done { problem: None } => self.go_on(then, at),
        }
    }

    fn go_on(&mut self, then: Then<'a>, at: At<'_, 'a>) -> DecideAction {
        match then {
            Then::Route => self.route(at),
            Then::DecideAgain(routed) => {
                self.inputs.keys_refreshed = true;
                self.decide(*routed, at)
            }
        }
    }

    fn route(&mut self, at: At<'_, 'a>) -> DecideAction {
        self.inputs.now_ms = at.now_ms;
        match route(at.head, at.config, self.inputs) {
            Routing::Decided(decision) => DecideAction::Decided(decision),
            Routing::Routed(routed) => self.decide(routed, at),
        }
    }

    fn decide(&mut self, routed: Routed<'a>, mut at: At<'_, 'a>) -> DecideAction {
        self.inputs.now_ms = at.now_ms;
        let decision = routed.decide(at.head, at.config, at.keys.as_deref(), self.inputs);
        if decision != Decision::RefreshKeys {
            return DecideAction::Decided(decision);
        }
        match at.keys.as_deref_mut() {
            Some(store) if !self.inputs.keys_refreshed => {
                let (refresh, action) = KeyRefresh::for_unknown_key(store, at.now_ms);
                let then = Then::DecideAgain(Box::new(routed));
                self.refreshing(refresh, action, then, at)
            }
            // Without a store there is nothing to refresh, and after a refresh `decide`
            // settles an unknown key itself: should it ask anyway, the answer is a 401.
            _ => DecideAction::Decided(Decision::Respond(EdgeResponse::error(
                ErrorCode::Unauthorized,
                "the credentials could not be verified",
                &RequestId::from_random(self.inputs.random),
            ))),
        }
    }

    fn lost_track(&mut self, why: &str) -> DecideAction {
        self.state = State::Decided;
        DecideAction::Decided(Decision::Respond(EdgeResponse::error(
            ErrorCode::Internal,
            format!("the edge lost track of this request ({why})"),
            &RequestId::from_random(self.inputs.random),
        )))
    }
}

impl State<'_> {
    fn name(&self) -> &'static str {
        match self {
            State::New => "the start",
            State::Refreshing(..) => "a key refresh",
            State::Logging(_) => "a log line",
            State::Decided => "the decision",
        }
    }
}
