//! Rate limits: exact token buckets, one per (policy, caller), kept by a Durable Object.
//!
//! The edge decides *which* buckets a request draws from ([`RateLimitPlan`]: the caller's own,
//! [`bucket_key`], and for callers who are not signed in also their network's,
//! [`network_bucket_key`]); the Durable Object that owns a key holds a [`BucketState`] and
//! answers a [`TakeRequest`] with a [`Verdict`] ([`TakeRequest::apply`]). The edge then turns
//! the verdicts into headers on the proxied response, or into a 429 in the error shape
//! ([`RateLimitPlan::outcome`]).
//!
//! The bucket is exact and integral: a level is counted in units of `1 / window_ms` token, so
//! the refill is exactly `limit` units per millisecond and never drifts. A policy of `limit`
//! over `window_secs` allows a burst of `limit` and then `limit` more per window, evenly spread.

use std::collections::BTreeMap;
use std::net::IpAddr;

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared_types::error::ErrorCode;

use super::policy_error::PolicyError;
use super::request_id::RequestId;
use super::response::EdgeResponse;

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers-10): the quota policy in force.
pub const RATELIMIT_POLICY: &str = "ratelimit-policy";
/// `RateLimit` (same draft): what is left of the quota and when it is whole again.
pub const RATELIMIT: &str = "ratelimit";

/// Largest accepted `limit` (bucket capacity, in tokens).
pub const MAX_LIMIT: u32 = 1_000_000;
/// Longest accepted `window_secs`: 31 days.
pub const MAX_WINDOW_SECS: u32 = 31 * 24 * 60 * 60;
/// Longest policy name. Names are `[A-Za-z0-9_.-]`, so they are safe in keys and headers.
pub const MAX_NAME_LEN: usize = 64;
/// Caller ids longer than this (or with bytes outside visible ASCII) are hashed in the key.
pub const MAX_KEY_ID_LEN: usize = 128;

/// How many times a policy's `limit` its network bucket holds when `network_limit` is not set:
/// room for a household or an office behind one address, still a ceiling for one attacker.
pub const DEFAULT_NETWORK_LIMIT_FACTOR: u32 = 4;

/// A named rate-limit policy, defined once and referenced by name from the route table.
///
/// ```json
/// {"name": "default", "limit": 100, "window_secs": 60, "cost": 1, "network_limit": 400}
/// ```
/// `limit` tokens fit in the bucket (the burst) and the whole capacity refills over
/// `window_secs`; each request takes `cost` tokens (default 1). `network_limit` (default
/// 4 × `limit`, at most [`MAX_LIMIT`]) is the capacity of the bucket that all callers of one
/// network who are not signed in share on top of their own, so harvested or dropped sessions
/// cannot multiply an attacker's quota. Validated while deserialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRateLimitPolicy")]
pub struct RateLimitPolicy {
    name: String,
    limit: u32,
    window_secs: u32,
    cost: u32,
    network_limit: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimitPolicy {
    name: String,
    limit: u32,
    window_secs: u32,
    #[serde(default = "default_cost")]
    cost: u32,
    #[serde(default)]
    network_limit: Option<u32>,
}

fn default_cost() -> u32 {
    1
}

impl TryFrom<RawRateLimitPolicy> for RateLimitPolicy {
    type Error = PolicyError;

    fn try_from(raw: RawRateLimitPolicy) -> Result<Self, PolicyError> {
        let policy = Self::new(raw.name, raw.limit, raw.window_secs, raw.cost)?;
        match raw.network_limit {
            Some(network_limit) => policy.with_network_limit(network_limit),
            None => Ok(policy),
        }
    }
}

impl RateLimitPolicy {
    /// Validates and builds a policy (with the default `network_limit`, see
    /// [`RateLimitPolicy::with_network_limit`]); every problem names its field.
    pub fn new(
        name: impl Into<String>,
        limit: u32,
        window_secs: u32,
        cost: u32,
    ) -> Result<Self, PolicyError> {
        let name = name.into();
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(PolicyError::new(
                "name",
                format!("must be 1 to {MAX_NAME_LEN} characters from [A-Za-z0-9_.-], got {name:?}"),
            ));
        }
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PolicyError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}, got {limit}"),
            ));
        }
        if !(1..=MAX_WINDOW_SECS).contains(&window_secs) {
            return Err(PolicyError::new(
                "window_secs",
                format!("must be between 1 and {MAX_WINDOW_SECS}, got {window_secs}"),
            ));
        }
        if !(1..=limit).contains(&cost) {
            return Err(PolicyError::new(
                "cost",
                format!("must be between 1 and limit ({limit}), got {cost}"),
            ));
        }
        Ok(Self {
            name,
            limit,
            window_secs,
            cost,
            network_limit: limit
                .saturating_mul(DEFAULT_NETWORK_LIMIT_FACTOR)
                .min(MAX_LIMIT),
        })
    }

    /// The policy with its network bucket holding `network_limit` tokens: at least `limit`
    /// (a network is never stricter than one of its callers alone would be, which would make
    /// the per-caller bucket meaningless) and at most [`MAX_LIMIT`].
    pub fn with_network_limit(self, network_limit: u32) -> Result<Self, PolicyError> {
        if !(self.limit..=MAX_LIMIT).contains(&network_limit) {
            return Err(PolicyError::new(
                "network_limit",
                format!(
                    "must be between limit ({}) and {MAX_LIMIT}, got {network_limit}",
                    self.limit
                ),
            ));
        }
        Ok(Self {
            network_limit,
            ..self
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Capacity of the bucket shared by a network's callers who are not signed in.
    pub fn network_limit(&self) -> u32 {
        self.network_limit
    }

    /// The policy the network bucket's Durable Object runs: the same window and cost with
    /// `network_limit` as its capacity. Still a valid policy (`cost ≤ limit ≤ network_limit`),
    /// so the object's own validation accepts it.
    fn network_bucket(&self) -> Self {
        Self {
            limit: self.network_limit,
            ..self.clone()
        }
    }

    /// Bucket capacity in tokens (the burst).
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Seconds over which an empty bucket refills completely.
    pub fn window_secs(&self) -> u32 {
        self.window_secs
    }

    /// Tokens one request takes.
    pub fn cost(&self) -> u32 {
        self.cost
    }

    fn window_ms(&self) -> u64 {
        u64::from(self.window_secs) * 1000
    }

    /// Bucket capacity in level units (tokens × window_ms). At most 1e6 × 2.7e9 < 2^62.
    fn capacity(&self) -> u64 {
        u64::from(self.limit).saturating_mul(self.window_ms())
    }
}

/// Indexes the named policies of the configuration (`[{"name": "default", …}, …]`) by name,
/// refusing a name defined twice, so route entries can refer to them (`"rate_limit": "default"`).
pub fn policies_by_name(
    policies: Vec<RateLimitPolicy>,
) -> Result<BTreeMap<String, RateLimitPolicy>, PolicyError> {
    let mut by_name = BTreeMap::new();
    for (i, policy) in policies.into_iter().enumerate() {
        if by_name.contains_key(&policy.name) {
            return Err(PolicyError::new(
                format!("[{i}].name"),
                format!("the policy {:?} is defined twice", policy.name),
            ));
        }
        by_name.insert(policy.name.clone(), policy);
    }
    Ok(by_name)
}

/// Who a request is charged to, most specific first. All values must be verified by the edge
/// (JWT `sub`, the edge-issued session id, the platform's client IP), never client claims.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caller<'a> {
    pub user_id: Option<&'a str>,
    /// A valid session the client presented (an *established* one). Never a session the edge
    /// minted for this very request: those are free, so such callers count by `client_ip`.
    pub session_id: Option<&'a str>,
    pub client_ip: Option<&'a str>,
}

/// The Durable Object name of the bucket a request draws from: `rl:{policy}:{kind}:{id}` with
/// kind `user`, `session` or `ip` (the first id present and non-empty, in that order).
///
/// IPv6 clients are keyed by their /64 (one subscriber usually owns a whole /64, so per-address
/// buckets would be trivially evaded); IPv4-mapped IPv6 addresses count as IPv4. Over-long or
/// non-printable ids (and ids starting with `h-`) are replaced by `h-` and 32 hex digits of
/// their SHA-256, so distinct callers never share a bucket. Requests with no
/// id at all (no platform IP, e.g. local development) share one bucket `rl:{policy}:none:-`,
/// which fails closed rather than open. Routes naming the same policy share its buckets; give
/// a route its own policy to limit it separately.
pub fn bucket_key(policy: &RateLimitPolicy, caller: &Caller<'_>) -> String {
    let present = |id: Option<&str>| id.filter(|id| !id.is_empty()).map(str::to_owned);
    let (kind, id) = if let Some(user) = present(caller.user_id) {
        ("user", safe_id(&user))
    } else if let Some(session) = present(caller.session_id) {
        ("session", safe_id(&session))
    } else if let Some(ip) = present(caller.client_ip) {
        ("ip", network_key(&ip))
    } else {
        ("none", "-".to_owned())
    };
    format!("rl:{}:{kind}:{id}", policy.name)
}

/// `id` itself when it is short visible ASCII, else `h-` and its hash. Ids that already start
/// with `h-` are hashed too, so a user cannot pick a subject that names another caller's bucket.
fn safe_id(id: &str) -> String {
    if id.len() <= MAX_KEY_ID_LEN
        && id.bytes().all(|b| b.is_ascii_graphic())
        && !id.starts_with("h-")
    {
        id.to_owned()
    } else {
        let digest = Sha256::digest(id.as_bytes());
        let mut out = String::from("h-");
        for byte in digest.iter().take(16) {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }
}

/// The network a client address counts as: an IPv4 address as is, an IPv6 address by its /64
/// (`2001:db8:1:2::/64`; IPv4-mapped ones as IPv4). Used for rate-limit buckets and as the
/// `x-edgebrain-network` identity of callers who are not signed in. An address that does not
/// parse (the platform always gives a valid one) is kept as a [`safe_id`].
pub fn network_key(raw: &str) -> String {
    match raw.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => safe_id(raw),
    }
}

/// The Durable Object name of the bucket a policy's callers who are not signed in share per
/// network: `rl:{policy}:network:{network}` ([`network_key`]: IPv4 address, IPv6 /64), or
/// `rl:{policy}:network:-` for requests without a platform address (one shared bucket, failing
/// closed like the `none` caller bucket).
///
/// The kind `network` never occurs in a [`bucket_key`], so this bucket is never also some
/// caller's own (a session-less caller's `ip` bucket holds `limit`, this one `network_limit`).
pub fn network_bucket_key(policy: &RateLimitPolicy, client_ip: Option<&str>) -> String {
    let network = client_ip
        .filter(|ip| !ip.is_empty())
        .map_or_else(|| "-".to_owned(), network_key);
    format!("rl:{}:network:{network}", policy.name)
}

/// Which of a policy's buckets a verdict came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketScope {
    /// The caller's own: user, established session, else address ([`bucket_key`]).
    Caller,
    /// The caller's network's, shared by all of its callers who are not signed in
    /// ([`network_bucket_key`]). Named `"<policy>/network"` in the rate-limit headers.
    Network,
}

/// The buckets one request draws from under a policy: always the caller's own, and for every
/// caller without a verified user also the network's. An established session has a bucket of
/// its own, but sessions are free to collect (one request each) and cookies free to drop, so
/// without the network bucket an attacker holding many sessions would get `limit` per session.
/// Signed-in users are identified by the identity provider, not by the edge: they keep their
/// own bucket only, so users behind one office address never starve each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPlan {
    pub policy: RateLimitPolicy,
    /// The Durable Object name of the caller's own bucket.
    pub caller_key: String,
    /// The Durable Object name of the network bucket; `None` for a signed-in user.
    pub network_key: Option<String>,
}

impl RateLimitPlan {
    pub fn new(policy: &RateLimitPolicy, caller: &Caller<'_>) -> Self {
        let signed_in = caller.user_id.is_some_and(|user| !user.is_empty());
        Self {
            policy: policy.clone(),
            caller_key: bucket_key(policy, caller),
            network_key: (!signed_in).then(|| network_bucket_key(policy, caller.client_ip)),
        }
    }

    /// The caller's bucket: its Durable Object name and what to ask it.
    pub fn caller_take(&self) -> (&str, TakeRequest) {
        (&self.caller_key, TakeRequest::for_policy(&self.policy))
    }

    /// The network's bucket, when the plan has one: its name and what to ask it.
    pub fn network_take(&self) -> Option<(&str, TakeRequest)> {
        let key = self.network_key.as_deref()?;
        Some((key, TakeRequest::for_policy(&self.policy.network_bucket())))
    }

    /// The stricter of the two verdicts decides: a refusal from either bucket is the 429 (both
    /// refused: the longer `Retry-After`, so a client that waits it out passes both); both
    /// allowing, the headers report the bucket with fewer whole tokens left, the one the
    /// client runs into first. Ties go to the caller's bucket.
    pub fn outcome(
        &self,
        caller: &Verdict,
        network: Option<&Verdict>,
        request_id: &RequestId,
    ) -> RateLimitOutcome {
        let network_decides = network.is_some_and(|network| stricter(network, caller));
        match network {
            Some(verdict) if network_decides => {
                let label = format!("{}/network", self.policy.name);
                let limit = self.policy.network_limit;
                outcome_named(&label, limit, self.policy.window_secs, verdict, request_id)
            }
            _ => outcome(&self.policy, caller, request_id),
        }
    }
}

/// Whether verdict `a` binds the client strictly harder than `b`.
fn stricter(a: &Verdict, b: &Verdict) -> bool {
    match (a, b) {
        (Verdict::Limited { .. }, Verdict::Allowed { .. }) => true,
        (Verdict::Allowed { .. }, Verdict::Limited { .. }) => false,
        (
            Verdict::Limited {
                retry_after_secs: a,
                ..
            },
            Verdict::Limited {
                retry_after_secs: b,
                ..
            },
        ) => a > b,
        (Verdict::Allowed { remaining: a, .. }, Verdict::Allowed { remaining: b, .. }) => a < b,
    }
}

/// One bucket, as the Durable Object stores it (serde; a small JSON object).
///
/// `level` counts tokens × `window_ms` of the policy it was measured under, so refilling is
/// `limit` units per elapsed millisecond, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketState {
    level: u64,
    /// The latest time this bucket has seen; it never moves backwards.
    updated_ms: u64,
    limit: u32,
    window_secs: u32,
}

impl BucketState {
    /// A full bucket: what a caller never seen before starts with.
    pub fn full(policy: &RateLimitPolicy, now_ms: u64) -> Self {
        Self {
            level: policy.capacity(),
            updated_ms: now_ms,
            limit: policy.limit,
            window_secs: policy.window_secs,
        }
    }

    /// When this bucket is full again if nothing more is taken. From then on the stored state
    /// equals a fresh [`BucketState::full`], so the Durable Object may delete it (an alarm at
    /// this instant keeps storage bounded by the number of active callers).
    pub fn full_at_ms(&self, policy: &RateLimitPolicy) -> u64 {
        let mut state = *self;
        state.adopt(policy);
        let missing = policy.capacity().saturating_sub(state.level);
        state
            .updated_ms
            .saturating_add(ceil_div(missing, u64::from(policy.limit)))
    }

    /// Re-expresses the level under `policy` when the stored one differs (a configuration
    /// change): whole tokens carry over, capped at the new limit; fractions are dropped.
    /// Also clamps a level above capacity (a corrupted or hand-edited record).
    fn adopt(&mut self, policy: &RateLimitPolicy) {
        if self.limit != policy.limit || self.window_secs != policy.window_secs {
            let old_window_ms = u64::from(self.window_secs) * 1000;
            let tokens = self
                .level
                .checked_div(old_window_ms)
                .unwrap_or(0)
                .min(u64::from(policy.limit));
            self.level = tokens.saturating_mul(policy.window_ms());
            self.limit = policy.limit;
            self.window_secs = policy.window_secs;
        }
        self.level = self.level.min(policy.capacity());
    }
}

/// The answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The tokens were taken. `remaining` whole tokens are left; the bucket is full again in
    /// `reset_secs` (rounded up).
    Allowed { remaining: u32, reset_secs: u32 },
    /// Not enough tokens; nothing was taken. The same request succeeds `retry_after_secs` from
    /// now (rounded up) if nothing else takes from the bucket meanwhile.
    Limited {
        retry_after_secs: u32,
        reset_secs: u32,
    },
}

/// Takes `cost` tokens from the bucket at `now_ms`, or refuses without taking any.
///
/// A clock that goes backwards refills nothing (and the bucket keeps its latest time, so the
/// same interval is never refilled twice). A `cost` above the policy's limit can never succeed
/// and is answered `Limited` with `retry_after_secs` = the window. `cost` 0 only reports.
pub fn take(state: &mut BucketState, now_ms: u64, cost: u32, policy: &RateLimitPolicy) -> Verdict {
    state.adopt(policy);
    let limit = u64::from(policy.limit);
    let capacity = policy.capacity();
    let elapsed = now_ms.saturating_sub(state.updated_ms);
    state.level = state
        .level
        .saturating_add(elapsed.saturating_mul(limit))
        .min(capacity);
    state.updated_ms = state.updated_ms.max(now_ms);

    let reset_secs = |level: u64| ms_to_secs_ceil(ceil_div(capacity.saturating_sub(level), limit));
    let need = u64::from(cost).saturating_mul(policy.window_ms());
    if cost > policy.limit {
        return Verdict::Limited {
            retry_after_secs: policy.window_secs,
            reset_secs: reset_secs(state.level),
        };
    }
    match state.level.checked_sub(need) {
        Some(left) => {
            state.level = left;
            let remaining = left.checked_div(policy.window_ms()).unwrap_or(0);
            Verdict::Allowed {
                remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                reset_secs: reset_secs(left),
            }
        }
        None => Verdict::Limited {
            retry_after_secs: ms_to_secs_ceil(ceil_div(need - state.level, limit)),
            reset_secs: reset_secs(state.level),
        },
    }
}

fn ceil_div(numerator: u64, divisor: u64) -> u64 {
    if divisor == 0 {
        return u64::MAX;
    }
    numerator.div_ceil(divisor)
}

fn ms_to_secs_ceil(ms: u64) -> u32 {
    u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)
}

/// Edge → Durable Object: take `cost` tokens under `policy` from the bucket this object owns
/// (the object is addressed by [`bucket_key`]). Answered with a [`Verdict`].
///
/// There is deliberately no timestamp: the Durable Object uses its own clock, so every edge
/// location is measured against one clock and a skewed isolate cannot mint tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TakeRequest {
    pub policy: RateLimitPolicy,
    pub cost: u32,
}

impl TakeRequest {
    /// The request for one ordinary request under `policy` (its configured cost).
    pub fn for_policy(policy: &RateLimitPolicy) -> Self {
        Self {
            policy: policy.clone(),
            cost: policy.cost,
        }
    }

    /// What the Durable Object runs: `stored` is its bucket (absent for a caller never seen or
    /// already deleted when full); it stores the returned state and answers the verdict.
    pub fn apply(&self, stored: Option<BucketState>, now_ms: u64) -> (BucketState, Verdict) {
        let mut state = stored.unwrap_or_else(|| BucketState::full(&self.policy, now_ms));
        let verdict = take(&mut state, now_ms, self.cost, &self.policy);
        (state, verdict)
    }
}

/// What the adapter does with a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateLimitOutcome {
    /// Go on (proxy, or serve from the cache) and add these headers to the response.
    Proceed { headers: HeaderMap },
    /// Answer this 429 instead; the brain is not called.
    Respond(EdgeResponse),
}

/// Turns the verdict of a policy's caller bucket into what the adapter does next (see
/// [`RateLimitPlan::outcome`] for a request that also drew from its network's).
pub fn outcome(
    policy: &RateLimitPolicy,
    verdict: &Verdict,
    request_id: &RequestId,
) -> RateLimitOutcome {
    outcome_named(
        &policy.name,
        policy.limit,
        policy.window_secs,
        verdict,
        request_id,
    )
}

/// [`outcome`] for the bucket named `label` (a policy name, or `"<policy>/network"`).
fn outcome_named(
    label: &str,
    limit: u32,
    window_secs: u32,
    verdict: &Verdict,
    request_id: &RequestId,
) -> RateLimitOutcome {
    let headers = headers_named(label, limit, window_secs, verdict);
    match verdict {
        Verdict::Allowed { .. } => RateLimitOutcome::Proceed { headers },
        Verdict::Limited {
            retry_after_secs, ..
        } => {
            let mut response = EdgeResponse::error(
                ErrorCode::RateLimited,
                format!("rate limit {label:?} exceeded; retry in {retry_after_secs} s"),
                request_id,
            );
            response.headers.extend(headers);
            RateLimitOutcome::Respond(response)
        }
    }
}

/// `RateLimit-Policy` and `RateLimit` in the syntax of draft-ietf-httpapi-ratelimit-headers-10
/// (structured-field lists), plus `Retry-After` (delay-seconds) when limited:
///
/// ```text
/// RateLimit-Policy: "default";q=100;w=60
/// RateLimit: "default";r=42;t=17
/// ```
/// `q` is the limit and `r` the whole tokens left, in tokens (with a `cost` above 1 a request
/// takes that many); `t` is the seconds until the bucket is full again.
pub fn rate_limit_headers(policy: &RateLimitPolicy, verdict: &Verdict) -> HeaderMap {
    headers_named(&policy.name, policy.limit, policy.window_secs, verdict)
}

/// [`rate_limit_headers`] for the bucket named `label` holding `limit` tokens.
fn headers_named(label: &str, limit: u32, window_secs: u32, verdict: &Verdict) -> HeaderMap {
    let (remaining, reset_secs) = match *verdict {
        Verdict::Allowed {
            remaining,
            reset_secs,
        } => (remaining, reset_secs),
        Verdict::Limited { reset_secs, .. } => (0, reset_secs),
    };
    let mut headers = HeaderMap::new();
    // Policy names are validated to [A-Za-z0-9_.-] (labels add `/network`), so these values
    // are always valid header values and structured-field strings.
    let values = [
        (
            RATELIMIT_POLICY,
            format!("\"{label}\";q={limit};w={window_secs}"),
        ),
        (
            RATELIMIT,
            format!("\"{label}\";r={remaining};t={reset_secs}"),
        ),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    if let Verdict::Limited {
        retry_after_secs, ..
    } = verdict
    {
        headers.insert(RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(limit: u32, window_secs: u32) -> RateLimitPolicy {
        RateLimitPolicy::new("default", limit, window_secs, 1).unwrap()
    }

    fn allowed(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Allowed { .. })
    }

    #[test]
    fn policies_deserialize_with_a_default_cost() {
        let p: RateLimitPolicy =
            serde_json::from_str(r#"{"name":"default","limit":100,"window_secs":60}"#).unwrap();
        assert_eq!(
            (p.name(), p.limit(), p.window_secs(), p.cost()),
            ("default", 100, 60, 1)
        );
        let back: RateLimitPolicy =
            serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn the_network_limit_defaults_to_four_times_the_limit_capped() {
        let parse = |json: &str| serde_json::from_str::<RateLimitPolicy>(json).unwrap();
        let p = parse(r#"{"name":"a","limit":100,"window_secs":60}"#);
        assert_eq!(p.network_limit(), 400);
        let p = parse(r#"{"name":"a","limit":300000,"window_secs":60}"#);
        assert_eq!(p.network_limit(), MAX_LIMIT);
        let p = parse(r#"{"name":"a","limit":5,"window_secs":60,"network_limit":5}"#);
        assert_eq!(p.network_limit(), 5);
        let p = parse(r#"{"name":"a","limit":5,"window_secs":60,"network_limit":1000000}"#);
        assert_eq!(p.network_limit(), MAX_LIMIT);
        // The network bucket's own policy is a valid one (the Durable Object re-validates it).
        let network = TakeRequest::for_policy(&p.network_bucket());
        let json = serde_json::to_string(&network).unwrap();
        assert_eq!(serde_json::from_str::<TakeRequest>(&json).unwrap(), network);
        assert_eq!(network.policy.limit(), MAX_LIMIT);
    }

    #[test]
    fn invalid_policies_fail_at_load_naming_the_field() {
        for (json, field) in [
            (r#"{"name":"","limit":1,"window_secs":1}"#, "`name`"),
            (r#"{"name":"a b","limit":1,"window_secs":1}"#, "`name`"),
            (r#"{"name":"a\"b","limit":1,"window_secs":1}"#, "`name`"),
            (r#"{"name":"a","limit":0,"window_secs":1}"#, "`limit`"),
            (r#"{"name":"a","limit":1000001,"window_secs":1}"#, "`limit`"),
            (r#"{"name":"a","limit":1,"window_secs":0}"#, "`window_secs`"),
            (
                r#"{"name":"a","limit":1,"window_secs":2678401}"#,
                "`window_secs`",
            ),
            (
                r#"{"name":"a","limit":5,"window_secs":1,"cost":6}"#,
                "`cost`",
            ),
            (
                r#"{"name":"a","limit":5,"window_secs":1,"cost":0}"#,
                "`cost`",
            ),
            (
                r#"{"name":"a","limit":5,"window_secs":1,"burst":6}"#,
                "unknown field `burst`",
            ),
            (
                r#"{"name":"a","limit":5,"window_secs":1,"network_limit":0}"#,
                "`network_limit`",
            ),
            (
                r#"{"name":"a","limit":5,"window_secs":1,"network_limit":4}"#,
                "`network_limit`",
            ),
            (
                r#"{"name":"a","limit":5,"window_secs":1,"network_limit":1000001}"#,
                "`network_limit`",
            ),
            (
                r#"{"name":"a","limit":5,"window_secs":1,"network_limit":-1}"#,
                "invalid value",
            ),
            (
                r#"{"name":"a","limit":-1,"window_secs":1}"#,
                "invalid value",
            ),
        ] {
            let err = serde_json::from_str::<RateLimitPolicy>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{json}: {err}");
        }
    }

    #[test]
    fn named_policies_are_indexed_and_duplicates_refused() {
        let list: Vec<RateLimitPolicy> = serde_json::from_str(
            r#"[{"name":"default","limit":100,"window_secs":60},{"name":"ai","limit":10,"window_secs":60}]"#,
        )
        .unwrap();
        let by_name = policies_by_name(list.clone()).unwrap();
        assert_eq!(by_name["ai"].limit(), 10);
        assert_eq!(by_name.len(), 2);
        let mut doubled = list;
        doubled.push(policy(5, 5));
        let err = policies_by_name(doubled).unwrap_err();
        assert_eq!(err.field, "[2].name");
    }

    #[test]
    fn a_fresh_bucket_allows_the_burst_then_limits() {
        let p = policy(3, 60);
        let mut state = BucketState::full(&p, 1_000);
        for left in [2, 1, 0] {
            assert_eq!(
                take(&mut state, 1_000, 1, &p),
                Verdict::Allowed {
                    remaining: left,
                    reset_secs: 20 * (3 - left)
                }
            );
        }
        // One token refills every 20 s.
        assert_eq!(
            take(&mut state, 1_000, 1, &p),
            Verdict::Limited {
                retry_after_secs: 20,
                reset_secs: 60
            }
        );
        assert!(!allowed(take(&mut state, 20_999, 1, &p)));
        assert_eq!(
            take(&mut state, 21_000, 1, &p),
            Verdict::Allowed {
                remaining: 0,
                reset_secs: 60
            }
        );
    }

    #[test]
    fn refill_is_exact_over_many_small_steps() {
        // 7 tokens per 3 s: a non-integral rate that floats would drift on.
        let p = policy(7, 3);
        let mut state = BucketState::full(&p, 0);
        for _ in 0..7 {
            assert!(allowed(take(&mut state, 0, 1, &p)));
        }
        // Over 3000 one-millisecond steps exactly 7 tokens come back.
        let mut granted = 0;
        for now in 1..=3_000 {
            if allowed(take(&mut state, now, 1, &p)) {
                granted += 1;
            }
        }
        assert_eq!(granted, 7);
        assert!(!allowed(take(&mut state, 3_000, 1, &p)));
    }

    #[test]
    fn a_clock_going_backwards_mints_nothing() {
        let p = policy(2, 10);
        let mut state = BucketState::full(&p, 3_700_000);
        assert!(allowed(take(&mut state, 3_700_000, 2, &p)));
        // Back one hour, then forward again to where we were: still empty.
        assert!(!allowed(take(&mut state, 100_000, 1, &p)));
        assert!(!allowed(take(&mut state, 0, 1, &p)));
        assert!(!allowed(take(&mut state, 3_700_000, 1, &p)));
        assert!(!allowed(take(&mut state, 3_704_999, 1, &p)));
        assert!(allowed(take(&mut state, 3_705_000, 1, &p)));
    }

    #[test]
    fn costs_take_several_tokens_and_oversized_costs_never_pass() {
        let p = RateLimitPolicy::new("ai", 10, 10, 4).unwrap();
        let mut state = BucketState::full(&p, 0);
        let request = TakeRequest::for_policy(&p);
        assert_eq!(request.cost, 4);
        assert_eq!(
            take(&mut state, 0, 4, &p),
            Verdict::Allowed {
                remaining: 6,
                reset_secs: 4
            }
        );
        assert_eq!(
            take(&mut state, 0, 4, &p),
            Verdict::Allowed {
                remaining: 2,
                reset_secs: 8
            }
        );
        assert_eq!(
            take(&mut state, 0, 4, &p),
            Verdict::Limited {
                retry_after_secs: 2,
                reset_secs: 8
            }
        );
        assert_eq!(
            take(&mut state, 0, 11, &p),
            Verdict::Limited {
                retry_after_secs: 10,
                reset_secs: 8
            }
        );
        // Cost 0 reports without taking.
        assert_eq!(
            take(&mut state, 0, 0, &p),
            Verdict::Allowed {
                remaining: 2,
                reset_secs: 8
            }
        );
    }

    #[test]
    fn a_changed_policy_keeps_whole_tokens_up_to_the_new_limit() {
        let old = policy(10, 10);
        let mut state = BucketState::full(&old, 0);
        assert!(allowed(take(&mut state, 0, 4, &old)));
        let smaller = policy(3, 60);
        assert_eq!(
            take(&mut state, 0, 1, &smaller),
            Verdict::Allowed {
                remaining: 2,
                reset_secs: 20
            }
        );
        let larger = policy(100, 60);
        assert_eq!(
            take(&mut state, 0, 0, &larger),
            Verdict::Allowed {
                remaining: 2,
                reset_secs: 59
            }
        );
    }

    #[test]
    fn full_at_tells_the_durable_object_when_it_may_forget_the_bucket() {
        let p = policy(4, 2);
        let mut state = BucketState::full(&p, 1_000);
        assert_eq!(state.full_at_ms(&p), 1_000);
        assert!(allowed(take(&mut state, 1_000, 3, &p)));
        assert_eq!(state.full_at_ms(&p), 2_500);
        let (restored, _) = TakeRequest::for_policy(&p).apply(None, 2_500);
        let mut later = state;
        take(&mut later, 2_500, 1, &p);
        assert_eq!(later, restored);
    }

    #[test]
    fn the_durable_object_protocol_is_small_json() {
        let request = TakeRequest::for_policy(&policy(100, 60));
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(
            json,
            r#"{"policy":{"name":"default","limit":100,"window_secs":60,"cost":1,"network_limit":400},"cost":1}"#
        );
        let back: TakeRequest = serde_json::from_str(&json).unwrap();
        let (state, verdict) = back.apply(None, 5);
        assert_eq!(
            serde_json::to_string(&verdict).unwrap(),
            r#"{"verdict":"allowed","remaining":99,"reset_secs":1}"#
        );
        let stored = serde_json::to_string(&state).unwrap();
        let reloaded: BucketState = serde_json::from_str(&stored).unwrap();
        assert_eq!(reloaded, state);
        let limited: Verdict =
            serde_json::from_str(r#"{"verdict":"limited","retry_after_secs":3,"reset_secs":9}"#)
                .unwrap();
        assert_eq!(
            limited,
            Verdict::Limited {
                retry_after_secs: 3,
                reset_secs: 9
            }
        );
        // A policy that fails validation is refused by the Durable Object too.
        assert!(
            serde_json::from_str::<TakeRequest>(
                r#"{"policy":{"name":"x","limit":0,"window_secs":1},"cost":1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn keys_prefer_user_then_session_then_ip() {
        let p = policy(1, 1);
        let caller = Caller {
            user_id: Some("u-1"),
            session_id: Some("s-1"),
            client_ip: Some("203.0.113.7"),
        };
        assert_eq!(bucket_key(&p, &caller), "rl:default:user:u-1");
        let caller = Caller {
            user_id: Some(""),
            ..caller
        };
        assert_eq!(bucket_key(&p, &caller), "rl:default:session:s-1");
        let caller = Caller {
            session_id: None,
            ..caller
        };
        assert_eq!(bucket_key(&p, &caller), "rl:default:ip:203.0.113.7");
        assert_eq!(bucket_key(&p, &Caller::default()), "rl:default:none:-");
    }

    #[test]
    fn ipv6_callers_share_their_slash_64() {
        let p = policy(1, 1);
        let key = |ip| {
            bucket_key(
                &p,
                &Caller {
                    client_ip: Some(ip),
                    ..Caller::default()
                },
            )
        };
        assert_eq!(
            key("2001:db8:1:2:aaaa::1"),
            "rl:default:ip:2001:db8:1:2::/64"
        );
        assert_eq!(
            key("2001:DB8:1:2:ffff:ffff:ffff:ffff"),
            key("2001:db8:1:2::9")
        );
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::ffff:198.51.100.4"), "rl:default:ip:198.51.100.4");
    }

    #[test]
    fn odd_ids_are_hashed_not_embedded() {
        let p = policy(1, 1);
        let long = "x".repeat(MAX_KEY_ID_LEN + 1);
        for id in [long.as_str(), "has space", "new\nline", "ünï"] {
            let key = bucket_key(
                &p,
                &Caller {
                    user_id: Some(id),
                    ..Caller::default()
                },
            );
            let hash = key.strip_prefix("rl:default:user:h-").unwrap();
            assert_eq!(hash.len(), 32, "{key}");
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        let key = |id| {
            bucket_key(
                &p,
                &Caller {
                    session_id: Some(id),
                    ..Caller::default()
                },
            )
        };
        assert_ne!(key("a b"), key("a  b"));
    }

    #[test]
    fn no_chosen_id_can_name_another_callers_hashed_bucket() {
        let p = policy(1, 1);
        let user_key = |id| {
            bucket_key(
                &p,
                &Caller {
                    user_id: Some(id),
                    ..Caller::default()
                },
            )
        };
        // A subject spelled like the hashed key of another one gets a bucket of its own.
        let victim = user_key("José");
        let spoof = victim.strip_prefix("rl:default:user:").unwrap();
        assert!(spoof.starts_with("h-"));
        assert_ne!(user_key(spoof), victim);
    }

    /// Durable Objects in a map: asks a plan's buckets at `now_ms` as the adapter does.
    fn draw(
        buckets: &mut BTreeMap<String, BucketState>,
        plan: &RateLimitPlan,
        now_ms: u64,
    ) -> RateLimitOutcome {
        let mut ask = |(key, take): (&str, TakeRequest)| {
            let (state, verdict) = take.apply(buckets.get(key).copied(), now_ms);
            buckets.insert(key.to_owned(), state);
            verdict
        };
        let caller = ask(plan.caller_take());
        let network = plan.network_take().map(&mut ask);
        let id = RequestId::parse(b"req-n").unwrap();
        plan.outcome(&caller, network.as_ref(), &id)
    }

    fn session_from(session: &str, ip: &str) -> RateLimitPlan {
        let p = RateLimitPolicy::new("default", 3, 60, 1)
            .unwrap()
            .with_network_limit(5)
            .unwrap();
        RateLimitPlan::new(
            &p,
            &Caller {
                user_id: None,
                session_id: Some(session),
                client_ip: Some(ip),
            },
        )
    }

    fn status(outcome: &RateLimitOutcome) -> u16 {
        match outcome {
            RateLimitOutcome::Proceed { .. } => 200,
            RateLimitOutcome::Respond(response) => response.status.as_u16(),
        }
    }

    #[test]
    fn many_sessions_of_one_network_are_cut_at_the_network_limit() {
        let mut buckets = BTreeMap::new();
        // Ten harvested sessions, each with a full bucket of 3: only 5 requests pass in all.
        let statuses: Vec<u16> = (0..10)
            .map(|i| {
                status(&draw(
                    &mut buckets,
                    &session_from(&format!("s{i}"), "198.51.100.7"),
                    0,
                ))
            })
            .collect();
        assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
        let RateLimitOutcome::Respond(refused) =
            draw(&mut buckets, &session_from("s99", "198.51.100.7"), 0)
        else {
            panic!("the network bucket is empty")
        };
        // The refusal names the network bucket and when one more request fits (5 per 60 s).
        assert_eq!(
            refused.headers["ratelimit-policy"],
            "\"default/network\";q=5;w=60"
        );
        assert_eq!(refused.headers["ratelimit"], "\"default/network\";r=0;t=60");
        assert_eq!(refused.headers[RETRY_AFTER], "12");
        let body: shared_types::error::ErrorBody = serde_json::from_slice(&refused.body).unwrap();
        assert_eq!(body.error.code, ErrorCode::RateLimited);
        assert!(
            body.error.message.contains("default/network"),
            "{}",
            body.error.message
        );
        // Another network is not affected, nor is a signed-in user of the same network.
        assert_eq!(
            status(&draw(&mut buckets, &session_from("s0", "198.51.100.8"), 0)),
            200
        );
        let user = RateLimitPlan::new(
            &session_from("x", "198.51.100.7").policy,
            &Caller {
                user_id: Some("ana"),
                session_id: Some("s0"),
                client_ip: Some("198.51.100.7"),
            },
        );
        for _ in 0..3 {
            assert_eq!(status(&draw(&mut buckets, &user, 0)), 200);
        }
        // The user's own bucket still holds: 3 and no more.
        assert_eq!(status(&draw(&mut buckets, &user, 0)), 429);
    }

    #[test]
    fn ipv6_sessions_share_their_slash_64s_network_bucket_and_mapped_ipv4_its_address() {
        let mut buckets = BTreeMap::new();
        let v6 = |i: u32| format!("2001:db8:1:2:{i:x}:{:x}::1", i * 7);
        let allowed = (0..8)
            .filter(|&i| {
                status(&draw(
                    &mut buckets,
                    &session_from(&format!("s{i}"), &v6(i)),
                    0,
                )) == 200
            })
            .count();
        assert_eq!(allowed, 5, "addresses differing below /64 share one bucket");
        assert_eq!(
            status(&draw(
                &mut buckets,
                &session_from("s0", "2001:db8:1:3::1"),
                0
            )),
            200,
            "the next /64 is another network"
        );
        let mapped = (0..8)
            .filter(|&i| {
                let ip = if i % 2 == 0 {
                    "::ffff:203.0.113.4"
                } else {
                    "203.0.113.4"
                };
                status(&draw(&mut buckets, &session_from(&format!("m{i}"), ip), 0)) == 200
            })
            .count();
        assert_eq!(
            mapped, 5,
            "an IPv4-mapped IPv6 address is that IPv4 address"
        );
    }

    #[test]
    fn the_stricter_verdict_decides() {
        let plan = session_from("s", "198.51.100.7");
        let id = RequestId::parse(b"req-s").unwrap();
        let allowed = |remaining| Verdict::Allowed {
            remaining,
            reset_secs: 1,
        };
        let limited = |retry_after_secs| Verdict::Limited {
            retry_after_secs,
            reset_secs: 60,
        };
        let header = |outcome: RateLimitOutcome, name: &str| match outcome {
            RateLimitOutcome::Proceed { headers } => headers[name].clone(),
            RateLimitOutcome::Respond(response) => response.headers[name].clone(),
        };
        // Both allow: the bucket with fewer tokens left is reported (ties: the caller's).
        let o = plan.outcome(&allowed(2), Some(&allowed(1)), &id);
        assert_eq!(header(o, RATELIMIT), "\"default/network\";r=1;t=1");
        let o = plan.outcome(&allowed(1), Some(&allowed(1)), &id);
        assert_eq!(header(o, RATELIMIT), "\"default\";r=1;t=1");
        let o = plan.outcome(&allowed(1), None, &id);
        assert_eq!(header(o, RATELIMIT), "\"default\";r=1;t=1");
        // Either refusing is a 429; both refusing, the longer wait.
        for (caller, network, retry, label) in [
            (limited(3), allowed(9), "3", "default"),
            (allowed(9), limited(4), "4", "default/network"),
            (limited(3), limited(40), "40", "default/network"),
            (limited(50), limited(40), "50", "default"),
        ] {
            let RateLimitOutcome::Respond(response) = plan.outcome(&caller, Some(&network), &id)
            else {
                panic!("{caller:?} {network:?} must refuse")
            };
            assert_eq!(response.status, 429);
            assert_eq!(response.headers[RETRY_AFTER], retry);
            assert_eq!(
                response.headers[RATELIMIT],
                format!("\"{label}\";r=0;t=60").as_str()
            );
        }
    }

    #[test]
    fn headers_follow_the_ietf_draft_syntax() {
        let p = policy(100, 60);
        let h = rate_limit_headers(
            &p,
            &Verdict::Allowed {
                remaining: 42,
                reset_secs: 17,
            },
        );
        assert_eq!(h["ratelimit-policy"], "\"default\";q=100;w=60");
        assert_eq!(h["ratelimit"], "\"default\";r=42;t=17");
        assert!(h.get(RETRY_AFTER).is_none());
        let h = rate_limit_headers(
            &p,
            &Verdict::Limited {
                retry_after_secs: 3,
                reset_secs: 60,
            },
        );
        assert_eq!(h["ratelimit"], "\"default\";r=0;t=60");
        assert_eq!(h[RETRY_AFTER], "3");
    }

    #[test]
    fn limited_requests_get_a_429_in_the_error_shape_with_the_headers() {
        let p = policy(100, 60);
        let id = RequestId::parse(b"req-7").unwrap();
        let RateLimitOutcome::Respond(response) = outcome(
            &p,
            &Verdict::Limited {
                retry_after_secs: 3,
                reset_secs: 60,
            },
            &id,
        ) else {
            panic!("a limited verdict must respond")
        };
        assert_eq!(response.status, 429);
        assert_eq!(response.headers[RETRY_AFTER], "3");
        assert_eq!(response.headers["ratelimit"], "\"default\";r=0;t=60");
        assert_eq!(
            response.headers["ratelimit-policy"],
            "\"default\";q=100;w=60"
        );
        assert_eq!(response.headers["x-request-id"], "req-7");
        let body: shared_types::error::ErrorBody = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body.error.code, ErrorCode::RateLimited);
        assert_eq!(body.error.request_id, "req-7");

        let RateLimitOutcome::Proceed { headers } = outcome(
            &p,
            &Verdict::Allowed {
                remaining: 1,
                reset_secs: 2,
            },
            &id,
        ) else {
            panic!("an allowed verdict must proceed")
        };
        assert_eq!(headers["ratelimit"], "\"default\";r=1;t=2");
    }

    /// Up to 3 parameters per case, a few dozen steps: the bucket's invariants on any schedule.
    fn schedule() -> impl Strategy<Value = (u32, u32, Vec<(u64, u32)>)> {
        (1u32..=20, 1u32..=5).prop_flat_map(|(limit, window)| {
            let step = (0u64..=3_000, 0u32..=limit + 1);
            (
                Just(limit),
                Just(window),
                prop::collection::vec(step, 1..60),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn never_more_than_limit_plus_refill_in_any_window((limit, window, steps) in schedule()) {
            let p = policy(limit, window);
            let mut state = BucketState::full(&p, 0);
            let mut now = 0u64;
            let mut granted: Vec<(u64, u64)> = Vec::new();
            for (dt, cost) in steps {
                now += dt;
                if allowed(take(&mut state, now, cost, &p)) {
                    granted.push((now, u64::from(cost)));
                }
            }
            let window_ms = u64::from(window) * 1000;
            for (i, &(start, _)) in granted.iter().enumerate() {
                let mut sum = 0u64;
                for &(at, cost) in &granted[i..] {
                    sum += cost;
                    // sum ≤ limit + (at - start) × limit / window, in integers.
                    prop_assert!(
                        sum * window_ms <= u64::from(limit) * window_ms + (at - start) * u64::from(limit),
                        "{} tokens granted in [{}, {}]", sum, start, at
                    );
                }
            }
        }

        #[test]
        fn retry_after_is_accurate(
            (limit, window, steps) in schedule(),
            cost in 1u32..=20,
        ) {
            let p = policy(limit, window);
            let cost = cost.min(limit);
            let mut state = BucketState::full(&p, 0);
            let mut now = 0u64;
            for (dt, c) in steps {
                now += dt;
                take(&mut state, now, c, &p);
            }
            if let Verdict::Limited { retry_after_secs, .. } = take(&mut state, now, cost, &p) {
                prop_assert!(retry_after_secs >= 1);
                let at = now + u64::from(retry_after_secs) * 1000;
                let mut early = state;
                prop_assert!(!allowed(take(&mut early, at - 1000, cost, &p)), "a second early passed");
                prop_assert!(allowed(take(&mut state, at, cost, &p)), "retry_after was too short");
            }
        }

        #[test]
        fn keys_are_printable_and_name_their_kind(
            user in proptest::option::of(any::<String>()),
            session in proptest::option::of(any::<String>()),
            ip in proptest::option::of(any::<String>()),
        ) {
            let p = policy(1, 1);
            let caller = Caller {
                user_id: user.as_deref(),
                session_id: session.as_deref(),
                client_ip: ip.as_deref(),
            };
            let key = bucket_key(&p, &caller);
            prop_assert!(key.bytes().all(|b| b.is_ascii_graphic()), "{}", key);
            prop_assert!(key.len() <= "rl:default:session:".len() + MAX_KEY_ID_LEN);
            let kind = key.split(':').nth(2).unwrap_or_default();
            let expected = if user.as_deref().is_some_and(|u| !u.is_empty()) {
                "user"
            } else if session.as_deref().is_some_and(|s| !s.is_empty()) {
                "session"
            } else if ip.as_deref().is_some_and(|i| !i.is_empty()) {
                "ip"
            } else {
                "none"
            };
            prop_assert_eq!(kind, expected);
        }

        #[test]
        fn take_never_panics_on_any_state_or_time(
            level in any::<u64>(),
            updated_ms in any::<u64>(),
            stored_limit in any::<u32>(),
            stored_window in any::<u32>(),
            now_ms in any::<u64>(),
            cost in any::<u32>(),
            limit in 1u32..=MAX_LIMIT,
            window in 1u32..=MAX_WINDOW_SECS,
        ) {
            let p = policy(limit, window);
            let mut state = BucketState { level, updated_ms, limit: stored_limit, window_secs: stored_window };
            let verdict = take(&mut state, now_ms, cost, &p);
            prop_assert!(state.level <= p.capacity());
            prop_assert!(state.updated_ms >= updated_ms);
            if let Verdict::Allowed { remaining, .. } = verdict {
                prop_assert!(remaining <= limit);
            }
            let _ = state.full_at_ms(&p);
        }
    }
}
