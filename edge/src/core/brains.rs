//! The brains behind the edge: which one a request goes to, and when it goes to another.
//!
//! **The fleet.** `BRAIN_URLS` lists the brains (`BRAIN_URL` is a list of one); see
//! [`Brains::from_vars`]. Each brain is known by its *authority* (`host[:port]` of its URL,
//! normalised by [`shared_types::signature::brain_authority`]): that is what the edge's
//! signature binds a request to, what the affinity hash weighs, and what tells two entries
//! apart.
//!
//! **Affinity.** A tenant ([`TenantKey`]: the verified user, else the session — one minted for
//! this very request too, since the client presents it next time — else the client's network)
//! is given an order of the brains by rendezvous (highest-random-weight) hashing: each brain
//! weighs [`weight`]`(brain, tenant)`, a SHA-256 over both, length-prefixed, and the order is by
//! falling weight ([`Brains::order`]). So a tenant's requests land on one brain while it is up
//! (its frames stay warm there), the order depends on the brains themselves and never on their
//! place in the list, it is the same on every isolate and platform (no per-process hash seed),
//! and adding or removing a brain moves only the tenants whose first brain it becomes or was —
//! about 1/N of them — while every other tenant keeps its whole order. Affinity is an
//! optimisation only: every brain serves every request.
//!
//! **Retries.** [`RetryRule`] says whether a failed attempt may go on to the next brain in the
//! order; [`Upstream`] walks the order, at most [`MAX_ATTEMPTS`] brains. A connect failure
//! (the fetch failed before any response) is retried only for requests that are safe to send
//! twice — `GET`, `HEAD`, and routes the route table marks `retryable` — because the brain may
//! have received and acted on the request before the connection broke. A draining answer
//! ([`is_draining`]: `503` with `x-edgebrain-draining: 1`) means the brain processed nothing, so
//! it is retried for any method. Either way the body must still be there to send again: hashed
//! bodies are buffered, streamed ones are gone once handed to the first fetch and are never
//! retried. A timeout is never retried (the brain may still be working on the request, and the
//! request's deadline covers all attempts).

use http::{HeaderMap, Method, StatusCode};
use sha2::{Digest, Sha256};
use shared_types::headers::DRAINING;
use shared_types::signature::brain_authority;

use super::config::{ConfigError, vars};

/// Most brains in `BRAIN_URLS` (each request weighs every one of them).
pub const MAX_BRAINS: usize = 64;

/// Most brains one request is sent to (the first plus retries).
pub const MAX_ATTEMPTS: usize = 3;

/// Domain separation for the affinity hash; bumping it reshuffles every tenant.
const RENDEZVOUS_TAG: &[u8] = b"edgebrain-rendezvous-v1";

/// One brain of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brain {
    /// `http(s)://host[:port]` as configured, without a trailing slash; the request's path and
    /// query are appended to it.
    pub origin: String,
    /// Its normalised authority: the brain's identity for affinity, and what the signature of
    /// a request sent to it is bound to.
    pub authority: String,
}

/// The configured brains: at least one, at most [`MAX_BRAINS`], no two with one authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brains {
    brains: Vec<Brain>,
}

impl Brains {
    /// Parses `BRAIN_URL` (one origin) or `BRAIN_URLS` (origins separated by commas and/or
    /// whitespace, or a JSON array of strings — what a wrangler `[vars]` array arrives as).
    /// Exactly one of them must be set. Every entry is validated like `BRAIN_URL` always was
    /// (`http(s)://host[:port]`, no path, query or credentials) and a bad one is named with its
    /// index; two entries naming the same brain (the same normalised authority) are refused.
    pub fn from_vars(
        brain_url: Option<&str>,
        brain_urls: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let (var, entries): (&'static str, Vec<String>) = match (brain_url, brain_urls) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Conflict {
                    vars: [vars::BRAIN_URL, vars::BRAIN_URLS],
                    reason: "set one: BRAIN_URL names one brain, BRAIN_URLS lists one or more",
                });
            }
            (None, None) => {
                return Err(ConfigError::MissingEither([
                    vars::BRAIN_URLS,
                    vars::BRAIN_URL,
                ]));
            }
            (Some(url), None) => (vars::BRAIN_URL, vec![url.to_owned()]),
            (None, Some(list)) => (vars::BRAIN_URLS, split_list(list)?),
        };
        let invalid = |reason: String| ConfigError::Invalid { var, reason };
        if entries.is_empty() {
            return Err(invalid("no brain URL given".to_owned()));
        }
        if entries.len() > MAX_BRAINS {
            return Err(invalid(format!(
                "{} brains; at most {MAX_BRAINS}",
                entries.len()
            )));
        }
        let mut brains: Vec<Brain> = Vec::with_capacity(entries.len());
        for (index, raw) in entries.iter().enumerate() {
            // `BRAIN_URL` keeps its messages; list entries are named by their index.
            let name = |reason: String| {
                if var == vars::BRAIN_URL {
                    invalid(reason)
                } else {
                    invalid(format!("{var}[{index}] {raw:?}: {reason}"))
                }
            };
            let origin = parse_origin(raw).map_err(|reason| {
                name(if var == vars::BRAIN_URL {
                    format!("{reason} (got {raw:?})")
                } else {
                    reason.to_owned()
                })
            })?;
            let authority = brain_authority(&origin).ok_or_else(|| {
                name(
                    "the host must be ASCII letters, digits, '.', '-' and '_' (an \
                     internationalised name in its xn-- form) or an [IPv6] literal"
                        .to_owned(),
                )
            })?;
            if let Some(first) = brains.iter().position(|b| b.authority == authority) {
                return Err(name(format!(
                    "the same brain as {var}[{first}] (authority {authority}); list each brain \
                     once"
                )));
            }
            brains.push(Brain { origin, authority });
        }
        Ok(Self { brains })
    }

    /// A fleet of these origins (tests and benchmarks); `None` if any is invalid or repeated.
    pub fn from_origins<'a>(origins: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let list: Vec<&str> = origins.into_iter().collect();
        Self::from_vars(None, Some(&list.join(","))).ok()
    }

    pub fn len(&self) -> usize {
        self.brains.len()
    }

    /// Never true for a parsed configuration (at least one brain).
    pub fn is_empty(&self) -> bool {
        self.brains.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Brain> {
        self.brains.get(index)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Brain> {
        self.brains.iter()
    }

    /// The tenant's order of the brains: every brain once, by falling [`weight`] (ties, which
    /// need a SHA-256 collision in 64 bits, by authority). The first is the tenant's brain; the
    /// rest are where its requests go when that one cannot take them.
    pub fn order(&self, tenant: &TenantKey) -> BrainOrder {
        let mut weighted: Vec<(u64, &str, usize)> = self
            .brains
            .iter()
            .enumerate()
            .map(|(index, brain)| {
                (
                    weight(&brain.authority, tenant),
                    brain.authority.as_str(),
                    index,
                )
            })
            .collect();
        weighted.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        BrainOrder {
            order: weighted.into_iter().map(|(_, _, index)| index).collect(),
        }
    }
}

/// `BRAIN_URLS` split into entries: a JSON array of strings when it starts with `[`, else
/// items separated by commas and/or whitespace (empty items skipped).
fn split_list(raw: &str) -> Result<Vec<String>, ConfigError> {
    let trimmed = raw.trim();
    if trimmed.starts_with('[') {
        return serde_json::from_str::<Vec<String>>(trimmed).map_err(|error| {
            ConfigError::Invalid {
                var: vars::BRAIN_URLS,
                reason: format!("not a JSON array of URL strings: {error}"),
            }
        });
    }
    Ok(trimmed
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Accepts `http(s)://host[:port][/]` and returns it without the trailing slash. Paths,
/// queries, fragments and credentials are refused: the edge appends the request's own path and
/// query.
fn parse_origin(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err("has no host");
    }
    if authority.contains(['/', '?', '#', '@'])
        || authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("must be an origin only: no path, query, fragment or credentials");
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err("has an invalid port");
    }
    Ok(trimmed[..trimmed.len() - (rest.len() - authority.len())].to_owned())
}

/// Whose brain a request goes to: `user:<sub>` for a verified user, else `session:<id>` (an
/// established session or the one minted for this request), else `network:<network>` (IPv4, or
/// IPv6 /64, as the rate limiter counts callers), else `none`. The kinds keep a subject from
/// ever equalling somebody's session id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantKey(String);

impl TenantKey {
    /// The key of a caller; empty ids count as absent.
    pub fn of(user_id: Option<&str>, session_id: Option<&str>, client_ip: Option<&str>) -> Self {
        fn present(id: Option<&str>) -> Option<&str> {
            id.filter(|id| !id.is_empty())
        }
        Self(if let Some(user) = present(user_id) {
            format!("user:{user}")
        } else if let Some(session) = present(session_id) {
            format!("session:{session}")
        } else if let Some(ip) = present(client_ip) {
            format!("network:{}", super::ratelimit::network_key(ip))
        } else {
            "none".to_owned()
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The rendezvous weight of `tenant` on the brain with `authority`: the first 8 bytes
/// (big-endian) of SHA-256 over a fixed tag and both strings, each preceded by its length as
/// 8 bytes big-endian, so no two (brain, tenant) pairs share an input. The same on every
/// platform and in every isolate.
pub fn weight(authority: &str, tenant: &TenantKey) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(RENDEZVOUS_TAG);
    for part in [authority.as_bytes(), tenant.0.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    for (slot, byte) in first.iter_mut().zip(digest.iter()) {
        *slot = *byte;
    }
    u64::from_be_bytes(first)
}

/// A tenant's brains in order (indices into [`Brains`]); a permutation of all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrainOrder {
    order: Vec<usize>,
}

impl BrainOrder {
    pub fn as_slice(&self) -> &[usize] {
        &self.order
    }

    /// The tenant's own brain.
    pub fn first(&self) -> Option<usize> {
        self.order.first().copied()
    }
}

/// Why an attempt at a brain gave no usable answer, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptFailure {
    /// The fetch failed before any response: the request may or may not have reached the
    /// brain.
    ConnectFailed,
    /// The brain answered that it is draining ([`is_draining`]): it processed nothing.
    Draining,
    /// No response headers before the deadline, or the body passed its limit: never retried.
    Final,
}

/// When a request may go on to the next brain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryRule {
    /// Safe to send twice: `GET`, `HEAD`, or a route marked `retryable`.
    pub idempotent: bool,
    /// The body can be sent again: none, or buffered for hashing (not streamed through).
    pub replayable_body: bool,
}

impl RetryRule {
    pub fn new(method: &Method, route_retryable: bool, replayable_body: bool) -> Self {
        Self {
            idempotent: matches!(*method, Method::GET | Method::HEAD) || route_retryable,
            replayable_body,
        }
    }

    /// Whether an attempt that failed this way may be repeated at another brain.
    pub fn allows(&self, failure: AttemptFailure) -> bool {
        self.replayable_body
            && match failure {
                AttemptFailure::ConnectFailed => self.idempotent,
                AttemptFailure::Draining => true,
                AttemptFailure::Final => false,
            }
    }
}

/// Where a request is in its tenant's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    order: BrainOrder,
    /// Position in `order` of the brain being tried.
    attempt: usize,
    rule: RetryRule,
}

impl Upstream {
    pub fn new(order: BrainOrder, rule: RetryRule) -> Self {
        Self {
            order,
            attempt: 0,
            rule,
        }
    }

    /// The brain being tried (an index into [`Brains`]).
    pub fn current(&self) -> Option<usize> {
        self.order.order.get(self.attempt).copied()
    }

    /// How many brains this request was sent to so far (counting the current one).
    pub fn attempts(&self) -> usize {
        self.attempt + 1
    }

    pub fn order(&self) -> &BrainOrder {
        &self.order
    }

    pub fn rule(&self) -> RetryRule {
        self.rule
    }

    /// Before the first attempt: moves the brains `health` says to pass over to the end of the
    /// order (keeping both parts in their order), so the request starts at the tenant's first
    /// brain that is not suspected. Returns the brain to try first.
    pub fn avoid_suspects(
        &mut self,
        brains: &Brains,
        health: &BrainHealth,
        now_ms: u64,
    ) -> Option<usize> {
        if self.attempt == 0 {
            let idempotent = self.rule.idempotent;
            let (mut kept, passed_over): (Vec<usize>, Vec<usize>) =
                self.order.order.iter().partition(|&&index| {
                    !brains
                        .get(index)
                        .is_some_and(|brain| health.passes_over(brain, idempotent, now_ms))
                });
            kept.extend(passed_over);
            self.order.order = kept;
        }
        self.current()
    }

    /// After the current attempt failed: the next brain to try, or `None` to give up (the
    /// rule forbids a retry, every brain was tried, or [`MAX_ATTEMPTS`] were made).
    pub fn advance(&mut self, failure: AttemptFailure) -> Option<usize> {
        if !self.rule.allows(failure) {
            return None;
        }
        let next = self.attempt + 1;
        if next >= MAX_ATTEMPTS {
            return None;
        }
        let brain = self.order.order.get(next).copied()?;
        self.attempt = next;
        Some(brain)
    }
}

/// How long a brain that failed to connect or answered "draining" is passed over by requests
/// that are safe to retry ([`BrainHealth`]); after that they try it again in their order.
pub const SUSPECT_PROBE_AFTER_MS: u64 = 5_000;

/// How long it is passed over by requests that are not (unless a retryable request found it
/// answering first): a brain back from a restart gets all its work again at the latest then.
pub const SUSPECT_MAX_MS: u64 = 60_000;

/// What one edge instance learned of its brains from its own attempts (passive health
/// checks: no probes of its own). A brain whose connection failed or that answered "draining"
/// becomes a *suspect*: requests put it last in their order — retryable ones for
/// [`SUSPECT_PROBE_AFTER_MS`], others until it answered a request again or [`SUSPECT_MAX_MS`]
/// passed. So after a brain died or began to drain, its tenants' next writes go straight to
/// their next brain instead of failing on a connection the edge cannot retry (it cannot tell
/// a refused connection from one that broke after the brain received the request), and reads
/// find out when it is back. A suspect stays in the order, last: when every brain is down, each
/// is still tried. Keyed by authority, at most [`MAX_BRAINS`] entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrainHealth {
    /// Authority → when its last failed attempt ended (ms since the epoch).
    suspects: Vec<(String, u64)>,
}

/// How an attempt at a brain ended, for [`BrainHealth::observe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The brain answered (any status but a draining `503`).
    Answered,
    /// [`AttemptFailure::ConnectFailed`] or [`AttemptFailure::Draining`].
    Unavailable,
}

impl BrainHealth {
    /// Records how an attempt at `brain` ended at `now_ms`. Timeouts are not observed: a slow
    /// answer says nothing about whether the brain takes work.
    pub fn observe(&mut self, brain: &Brain, outcome: AttemptOutcome, now_ms: u64) {
        let known = self
            .suspects
            .iter()
            .position(|(authority, _)| *authority == brain.authority);
        match (outcome, known) {
            (AttemptOutcome::Answered, Some(at)) => {
                self.suspects.swap_remove(at);
            }
            (AttemptOutcome::Answered, None) => {}
            (AttemptOutcome::Unavailable, Some(at)) => self.suspects[at].1 = now_ms,
            (AttemptOutcome::Unavailable, None) => {
                if self.suspects.len() < MAX_BRAINS {
                    self.suspects.push((brain.authority.clone(), now_ms));
                }
            }
        }
    }

    /// Whether a request is to pass `brain` over at `now_ms` (see the type's docs).
    pub fn passes_over(&self, brain: &Brain, idempotent: bool, now_ms: u64) -> bool {
        self.suspects
            .iter()
            .find(|(authority, _)| *authority == brain.authority)
            .is_some_and(|&(_, since)| {
                let quiet = now_ms.saturating_sub(since);
                if idempotent {
                    quiet < SUSPECT_PROBE_AFTER_MS
                } else {
                    quiet < SUSPECT_MAX_MS
                }
            })
    }

    /// Brains currently suspected (for logs and tests).
    pub fn suspects(&self) -> usize {
        self.suspects.len()
    }
}

/// A brain's "I am draining" answer: `503` with `x-edgebrain-draining: 1`. Any other `503` is
/// the brain's own answer about the request and goes to the client as it is.
pub fn is_draining(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::SERVICE_UNAVAILABLE
        && headers
            .get(DRAINING)
            .is_some_and(|value| value.as_bytes() == b"1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn fleet(n: usize) -> Brains {
        let origins: Vec<String> = (0..n)
            .map(|i| format!("http://brain-{i}.internal:8080"))
            .collect();
        Brains::from_origins(origins.iter().map(String::as_str)).unwrap()
    }

    fn upstream(brains: &Brains, tenant: &TenantKey, method: Method) -> Upstream {
        Upstream::new(brains.order(tenant), RetryRule::new(&method, false, true))
    }

    #[test]
    fn a_suspect_is_tried_last_by_writes_until_it_answers_and_by_reads_for_a_while() {
        let brains = fleet(3);
        let tenant = session(7);
        let order = brains.order(&tenant).as_slice().to_vec();
        let own = brains.get(order[0]).unwrap();
        let mut health = BrainHealth::default();
        health.observe(own, AttemptOutcome::Unavailable, 10_000);

        let first_of = |method: Method, health: &BrainHealth, now: u64| {
            upstream(&brains, &tenant, method).avoid_suspects(&brains, health, now)
        };
        // Right after: everyone goes elsewhere; the order is the rest, then the suspect.
        let mut write = upstream(&brains, &tenant, Method::POST);
        assert_eq!(
            write.avoid_suspects(&brains, &health, 10_001),
            Some(order[1])
        );
        assert_eq!(write.order().as_slice(), [order[1], order[2], order[0]]);
        assert_eq!(first_of(Method::GET, &health, 10_001), Some(order[1]));
        // Reads probe it again after SUSPECT_PROBE_AFTER_MS; writes wait for an answer...
        let probe = 10_000 + SUSPECT_PROBE_AFTER_MS;
        assert_eq!(first_of(Method::GET, &health, probe - 1), Some(order[1]));
        assert_eq!(first_of(Method::GET, &health, probe), Some(order[0]));
        assert_eq!(first_of(Method::POST, &health, probe), Some(order[1]));
        // ... or SUSPECT_MAX_MS.
        assert_eq!(
            first_of(Method::POST, &health, 10_000 + SUSPECT_MAX_MS),
            Some(order[0])
        );
        // A new failure restarts the clock; an answer ends it.
        health.observe(own, AttemptOutcome::Unavailable, 20_000);
        assert_eq!(first_of(Method::GET, &health, probe), Some(order[1]));
        health.observe(own, AttemptOutcome::Answered, 20_001);
        assert_eq!(health, BrainHealth::default());
        assert_eq!(first_of(Method::POST, &health, 20_002), Some(order[0]));
    }

    #[test]
    fn when_every_brain_is_suspected_each_is_still_tried_in_order() {
        let brains = fleet(3);
        let tenant = session(3);
        let mut health = BrainHealth::default();
        for index in 0..3 {
            health.observe(brains.get(index).unwrap(), AttemptOutcome::Unavailable, 5);
        }
        let mut write = upstream(&brains, &tenant, Method::POST);
        write.avoid_suspects(&brains, &health, 6);
        assert_eq!(write.order(), &brains.order(&tenant));
    }

    #[test]
    fn the_order_is_only_changed_before_the_first_attempt() {
        let brains = fleet(3);
        let tenant = session(11);
        let order = brains.order(&tenant).as_slice().to_vec();
        let mut health = BrainHealth::default();
        let mut read = upstream(&brains, &tenant, Method::GET);
        assert_eq!(read.advance(AttemptFailure::ConnectFailed), Some(order[1]));
        health.observe(
            brains.get(order[1]).unwrap(),
            AttemptOutcome::Unavailable,
            1,
        );
        // Mid-walk the request keeps its place (the retry logic owns the order now).
        assert_eq!(read.avoid_suspects(&brains, &health, 2), Some(order[1]));
        assert_eq!(read.order().as_slice(), order.as_slice());
    }

    proptest! {
        #[test]
        fn passing_over_suspects_keeps_every_brain_and_both_parts_in_order(
            tenant in 0usize..10_000,
            suspected in proptest::collection::vec(any::<bool>(), 5),
            idempotent in any::<bool>(),
        ) {
            let brains = fleet(5);
            let tenant = session(tenant);
            let mut health = BrainHealth::default();
            for (index, suspect) in suspected.iter().enumerate() {
                if *suspect {
                    health.observe(brains.get(index).unwrap(), AttemptOutcome::Unavailable, 0);
                }
            }
            let method = if idempotent { Method::GET } else { Method::POST };
            let mut request = upstream(&brains, &tenant, method);
            request.avoid_suspects(&brains, &health, 1);
            let original = brains.order(&tenant).as_slice().to_vec();
            let (healthy, sick): (Vec<usize>, Vec<usize>) =
                original.iter().partition(|&&index| !suspected[index]);
            let expected: Vec<usize> = healthy.into_iter().chain(sick).collect();
            prop_assert_eq!(request.order().as_slice(), expected.as_slice());
        }
    }

    fn session(i: usize) -> TenantKey {
        TenantKey::of(None, Some(&format!("s-{i:08}")), None)
    }

    /// Each tenant's first brain, by authority.
    fn owners(brains: &Brains, keys: usize) -> Vec<String> {
        (0..keys)
            .map(|i| {
                let first = brains.order(&session(i)).first().unwrap();
                brains.get(first).unwrap().authority.clone()
            })
            .collect()
    }

    fn parse(url: Option<&str>, urls: Option<&str>) -> Result<Brains, ConfigError> {
        Brains::from_vars(url, urls)
    }

    fn invalid_reason(result: Result<Brains, ConfigError>) -> (&'static str, String) {
        match result {
            Err(ConfigError::Invalid { var, reason }) => (var, reason),
            other => panic!("expected an invalid variable, got {other:?}"),
        }
    }

    #[test]
    fn brain_urls_accepts_commas_whitespace_and_json() {
        let expected = ["http://a:1", "https://b", "http://[::1]:9"];
        for raw in [
            "http://a:1,https://b/,http://[::1]:9",
            " http://a:1 https://b/\n\thttp://[::1]:9 ",
            "http://a:1, https://b/ ,, http://[::1]:9,",
            r#"["http://a:1", "https://b/", "http://[::1]:9"]"#,
        ] {
            let brains = parse(None, Some(raw)).unwrap();
            let origins: Vec<&str> = brains.iter().map(|b| b.origin.as_str()).collect();
            assert_eq!(origins, expected, "{raw:?}");
        }
        let brains = parse(None, Some("http://A:80 https://B:443")).unwrap();
        let authorities: Vec<&str> = brains.iter().map(|b| b.authority.as_str()).collect();
        assert_eq!(authorities, ["a", "b"]);
    }

    #[test]
    fn brain_url_is_a_list_of_one() {
        let brains = parse(Some("http://brain:8080/"), None).unwrap();
        assert_eq!(brains.len(), 1);
        assert_eq!(brains.get(0).unwrap().origin, "http://brain:8080");
        assert_eq!(brains.get(0).unwrap().authority, "brain:8080");
        // A comma in BRAIN_URL is not a list separator: one URL, and not a valid one.
        assert_eq!(
            invalid_reason(parse(Some("http://a,http://b"), None)).0,
            "BRAIN_URL"
        );
    }

    #[test]
    fn both_or_neither_variable_is_an_error_naming_both() {
        let both = parse(Some("http://a"), Some("http://b")).unwrap_err();
        assert!(matches!(both, ConfigError::Conflict { .. }));
        let text = both.to_string();
        assert!(
            text.contains("BRAIN_URL ") && text.contains("BRAIN_URLS"),
            "{text}"
        );
        let neither = parse(None, None).unwrap_err().to_string();
        assert!(neither.contains("BRAIN_URL ") || neither.contains("BRAIN_URL)"));
        assert!(neither.contains("BRAIN_URLS"), "{neither}");
    }

    #[test]
    fn bad_entries_are_named_with_their_index() {
        for (raw, index, needle) in [
            ("http://a,ftp://b", 1, "must start with http"),
            ("http://a http://b/path", 1, "origin only"),
            ("http://a:99999", 0, "invalid port"),
            ("http://a http://b http://user@c", 2, "origin only"),
            ("http://a http://b http://bücher.example", 2, "ASCII"),
            (r#"["http://a", "http://?"]"#, 1, "origin only"),
        ] {
            let (var, reason) = invalid_reason(parse(None, Some(raw)));
            assert_eq!(var, "BRAIN_URLS");
            assert!(
                reason.contains(&format!("BRAIN_URLS[{index}]")),
                "{raw}: {reason}"
            );
            assert!(reason.contains(needle), "{raw}: {reason}");
        }
        for raw in [" , ", "[]", "[1, 2]", "[\"http://a\""] {
            assert_eq!(
                invalid_reason(parse(None, Some(raw))).0,
                "BRAIN_URLS",
                "{raw}"
            );
        }
    }

    #[test]
    fn the_same_brain_twice_is_refused() {
        for raw in [
            "http://a:8080 http://a:8080",
            "http://a:8080 http://A:8080/",
            "http://a http://a:80",
            "https://a https://a:443",
            // One authority, two schemes: the signature could not tell them apart.
            "http://a:8080 https://a:8080",
        ] {
            let (_, reason) = invalid_reason(parse(None, Some(raw)));
            assert!(
                reason.contains("BRAIN_URLS[1]") && reason.contains("BRAIN_URLS[0]"),
                "{reason}"
            );
        }
    }

    #[test]
    fn the_count_is_capped() {
        let list: Vec<String> = (0..=MAX_BRAINS).map(|i| format!("http://b{i}")).collect();
        let (_, reason) = invalid_reason(parse(None, Some(&list.join(" "))));
        assert!(reason.contains("at most 64"), "{reason}");
        assert_eq!(
            parse(None, Some(&list[..MAX_BRAINS].join(" ")))
                .unwrap()
                .len(),
            MAX_BRAINS
        );
    }

    #[test]
    fn tenants_are_users_then_sessions_then_networks() {
        assert_eq!(
            TenantKey::of(Some("alice"), Some("s1"), Some("1.2.3.4")).as_str(),
            "user:alice"
        );
        assert_eq!(
            TenantKey::of(Some(""), Some("s1"), Some("1.2.3.4")).as_str(),
            "session:s1"
        );
        assert_eq!(
            TenantKey::of(None, None, Some("2001:db8:1:2:3:4:5:6")).as_str(),
            "network:2001:db8:1:2::/64"
        );
        assert_eq!(TenantKey::of(None, None, None).as_str(), "none");
        // A subject that looks like a session key is still a user.
        assert_ne!(
            TenantKey::of(Some("session:s1"), None, None),
            TenantKey::of(None, Some("s1"), None)
        );
    }

    #[test]
    fn weights_are_pinned_so_every_isolate_and_platform_agrees() {
        // SHA-256("edgebrain-rendezvous-v1" ‖ be64(10) ‖ "brain-a:80" ‖ be64(10) ‖
        // "session:s1"), first 8 bytes — recomputed with Python's hashlib.
        assert_eq!(
            weight("brain-a:80", &TenantKey::of(None, Some("s1"), None)),
            WEIGHT_BRAIN_A_S1
        );
    }

    /// See `weights_are_pinned_so_every_isolate_and_platform_agrees`.
    const WEIGHT_BRAIN_A_S1: u64 = 9822866572257992049;

    #[test]
    fn tenants_spread_evenly() {
        let brains = fleet(5);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for owner in owners(&brains, 10_000) {
            *counts.entry(owner).or_default() += 1;
        }
        assert_eq!(counts.len(), 5);
        // 2000 each expected; the binomial standard deviation is 40, so ±10% is 5 sigma.
        for (brain, count) in counts {
            assert!((1800..=2200).contains(&count), "{brain}: {count}");
        }
    }

    #[test]
    fn adding_a_brain_moves_about_one_in_n_tenants_all_to_it() {
        let before = owners(&fleet(5), 10_000);
        let grown = fleet(6);
        let after = owners(&grown, 10_000);
        let added = grown.get(5).unwrap().authority.clone();
        let moved: Vec<usize> = (0..before.len())
            .filter(|&i| before[i] != after[i])
            .collect();
        // 1/6 of 10 000 is 1667 (sd 37).
        assert!((1500..=1850).contains(&moved.len()), "{}", moved.len());
        assert!(moved.iter().all(|&i| after[i] == added));
    }

    #[test]
    fn removing_a_brain_moves_only_its_tenants_to_their_next_brain() {
        let full = fleet(5);
        let shrunk = Brains::from_origins(
            [0, 1, 3, 4]
                .map(|i| format!("http://brain-{i}.internal:8080"))
                .iter()
                .map(String::as_str),
        )
        .unwrap();
        let removed = "brain-2.internal:8080";
        let mut moved = 0;
        for i in 0..10_000 {
            let key = session(i);
            let before: Vec<&str> = full
                .order(&key)
                .as_slice()
                .iter()
                .map(|&b| full.get(b).unwrap().authority.as_str())
                .collect();
            let after: Vec<&str> = shrunk
                .order(&key)
                .as_slice()
                .iter()
                .map(|&b| shrunk.get(b).unwrap().authority.as_str())
                .collect();
            let expected: Vec<&str> = before.iter().copied().filter(|a| *a != removed).collect();
            assert_eq!(after, expected);
            moved += usize::from(before[0] == removed);
        }
        // 1/5 of 10 000 is 2000 (sd 40).
        assert!((1800..=2200).contains(&moved), "{moved}");
    }

    #[test]
    fn draining_is_a_503_with_the_header_only() {
        let mut headers = HeaderMap::new();
        assert!(!is_draining(StatusCode::SERVICE_UNAVAILABLE, &headers));
        headers.insert(DRAINING, HeaderValue::from_static("1"));
        assert!(is_draining(StatusCode::SERVICE_UNAVAILABLE, &headers));
        assert!(!is_draining(StatusCode::OK, &headers));
        assert!(!is_draining(StatusCode::BAD_GATEWAY, &headers));
        headers.insert(DRAINING, HeaderValue::from_static("0"));
        assert!(!is_draining(StatusCode::SERVICE_UNAVAILABLE, &headers));
    }

    #[test]
    fn retry_rules_by_method_route_and_body() {
        use AttemptFailure::{ConnectFailed, Draining, Final};
        let cases = [
            // method, route retryable, replayable body, connect failure, draining
            (Method::GET, false, true, true, true),
            (Method::HEAD, false, true, true, true),
            (Method::POST, false, true, false, true),
            (Method::POST, true, true, true, true),
            (Method::POST, true, false, false, false),
            (Method::POST, false, false, false, false),
            (Method::PUT, false, true, false, true),
            (Method::DELETE, false, true, false, true),
            (Method::PATCH, true, true, true, true),
        ];
        for (method, retryable, replayable, on_connect, on_draining) in cases {
            let rule = RetryRule::new(&method, retryable, replayable);
            assert_eq!(
                rule.allows(ConnectFailed),
                on_connect,
                "{method} {retryable} {replayable}"
            );
            assert_eq!(
                rule.allows(Draining),
                on_draining,
                "{method} {retryable} {replayable}"
            );
            assert!(!rule.allows(Final));
        }
    }

    #[test]
    fn attempts_follow_the_order_and_stop_at_the_cap() {
        let brains = fleet(5);
        let order = brains.order(&session(1));
        let expected = order.as_slice().to_vec();
        let mut upstream = Upstream::new(order, RetryRule::new(&Method::GET, false, true));
        assert_eq!(upstream.current(), Some(expected[0]));
        assert_eq!(
            upstream.advance(AttemptFailure::ConnectFailed),
            Some(expected[1])
        );
        assert_eq!(
            upstream.advance(AttemptFailure::Draining),
            Some(expected[2])
        );
        assert_eq!(upstream.attempts(), MAX_ATTEMPTS);
        assert_eq!(upstream.advance(AttemptFailure::Draining), None);
        assert_eq!(upstream.current(), Some(expected[2]));
        // Never more brains than there are.
        let two = fleet(2);
        let mut upstream = Upstream::new(
            two.order(&session(1)),
            RetryRule::new(&Method::GET, false, true),
        );
        assert!(upstream.advance(AttemptFailure::ConnectFailed).is_some());
        assert_eq!(upstream.advance(AttemptFailure::ConnectFailed), None);
        // A timeout is final.
        let mut upstream = Upstream::new(
            brains.order(&session(1)),
            RetryRule::new(&Method::GET, false, true),
        );
        assert_eq!(upstream.advance(AttemptFailure::Final), None);
    }

    fn authorities() -> impl Strategy<Value = Vec<String>> {
        // Ports of three or four digits: never `:80`, which `http://` normalises away (and
        // which would make two entries one brain).
        prop::collection::btree_set("[a-z][a-z0-9-]{0,10}(:[1-9][0-9]{2,3})?", 1..12)
            .prop_map(|set| set.into_iter().collect())
    }

    fn brains_of(authorities: &[String]) -> Brains {
        let origins: Vec<String> = authorities.iter().map(|a| format!("http://{a}")).collect();
        Brains::from_origins(origins.iter().map(String::as_str)).unwrap()
    }

    fn ordered<'b>(brains: &'b Brains, key: &TenantKey) -> Vec<&'b str> {
        brains
            .order(key)
            .as_slice()
            .iter()
            .map(|&i| brains.get(i).unwrap().authority.as_str())
            .collect()
    }

    proptest! {
        #[test]
        fn the_order_is_a_permutation_independent_of_config_order(
            list in authorities(),
            rotate in 0usize..12,
            reverse: bool,
            key in "\\PC{0,40}",
        ) {
            let brains = brains_of(&list);
            let tenant = TenantKey::of(None, Some(&key), None);
            let order = brains.order(&tenant);
            let set: BTreeSet<usize> = order.as_slice().iter().copied().collect();
            prop_assert_eq!(set.len(), list.len());
            prop_assert!(set.iter().all(|&i| i < list.len()));
            // Same key, same order (stable), whatever the order of the configuration.
            let mut shuffled = list.clone();
            shuffled.rotate_left(rotate % list.len());
            if reverse {
                shuffled.reverse();
            }
            let other = brains_of(&shuffled);
            prop_assert_eq!(ordered(&brains, &tenant), ordered(&other, &tenant));
            let again = brains_of(&list);
            prop_assert_eq!(ordered(&brains, &tenant), ordered(&again, &tenant));
        }

        #[test]
        fn removing_a_brain_keeps_everyone_elses_order(
            list in authorities(),
            removed in 0usize..12,
            key in "\\PC{0,40}",
        ) {
            prop_assume!(list.len() > 1);
            let removed = removed % list.len();
            let tenant = TenantKey::of(None, Some(&key), None);
            let full = brains_of(&list);
            let mut rest = list.clone();
            let gone = rest.remove(removed);
            let expected: Vec<&str> = ordered(&full, &tenant)
                .into_iter()
                .filter(|a| *a != gone)
                .collect();
            let shrunk = brains_of(&rest);
            prop_assert_eq!(ordered(&shrunk, &tenant), expected);
        }

        #[test]
        fn retries_never_repeat_a_brain_nor_pass_the_cap(
            n in 1usize..10,
            key in "\\PC{0,20}",
            failures in prop::collection::vec(0u8..3, 0..12),
            get: bool,
            retryable: bool,
            replayable: bool,
        ) {
            let brains = fleet(n);
            let method = if get { Method::GET } else { Method::POST };
            let rule = RetryRule::new(&method, retryable, replayable);
            let mut upstream = Upstream::new(brains.order(&TenantKey::of(None, Some(&key), None)), rule);
            let mut tried = vec![upstream.current().unwrap()];
            for failure in failures {
                let failure = match failure {
                    0 => AttemptFailure::ConnectFailed,
                    1 => AttemptFailure::Draining,
                    _ => AttemptFailure::Final,
                };
                match upstream.advance(failure) {
                    Some(brain) => {
                        prop_assert!(rule.allows(failure));
                        prop_assert!(!tried.contains(&brain));
                        tried.push(brain);
                    }
                    None => break,
                }
            }
            prop_assert!(tried.len() <= MAX_ATTEMPTS.min(n));
            prop_assert_eq!(&tried[..], &upstream.order().as_slice()[..tried.len()]);
        }
    }
}
