//! The Workers adapter: carries out the core's decisions in the Workers runtime.
//!
//! Everything here is glue: read config and request parts, supply `now` and randomness, call
//! [`crate::core`], then do the I/O the decision asks for — JWKS fetches, the rate-limit
//! Durable Object, the Cache API, reading a body to sign it, `fetch` to the brain. No routing or
//! policy lives here. Proxied requests are usually stepped by the JS executor instead
//! (`edge/js/executor.mjs` through [`steps`]), which hands this adapter everything else;
//! `EDGE_EXECUTOR=rust` has [`run_exchange`] carry them out too. The same wasm also runs as a
//! Vercel Edge Function (`api/edge.js`), where
//! there is no `caches.default` (cache steps become BYPASS) and no Durable Object (the entry
//! refuses to serve while `RATE_LIMITS` is set). Every failure becomes a response in the error shape; the handler never
//! returns `Err` and never panics (a panic would abort the wasm instance for all requests in
//! flight).

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use futures_util::future::join;
use http::{HeaderMap, HeaderValue, Method};
use js_sys::{Reflect, Uint8Array};
use shared_types::error::ErrorCode;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{Context, Delay, Env, console_error, event};

use crate::core::auth::{AuthConfig, JwksFetch, KeyRefresh, KeyStore, Principal, RefreshAction};
use crate::core::brains::BrainHealth;
use crate::core::deciding::{DecideAction, DecideEvent, Deciding};
use crate::core::exchange::{
    Action, BodyRead, CachePut, Event, Exchange, Fetch, FetchBody, ResponseBody, Surroundings,
    UpstreamHead,
};
use crate::core::pipeline::{brain_call, request_id_of};
use crate::core::ratelimit::{BucketState, TakeRequest, Verdict};
use crate::core::session::Session;
use crate::core::signin::endpoint::{AuthDecision, decide_auth, discovery_unavailable};
use crate::core::signin::flow::{self, IdToken, LoginRandom, TokenRequest};
use crate::core::signin::{
    Discovery, DiscoveryAction, DiscoveryRefresh, PROVIDER_TIMEOUT_MS, ProviderMetadata,
    SigninConfig,
};
use crate::core::{
    ConfigError, Decision, EdgeConfig, EdgeResponse, Inputs, RequestHead, RequestId, Routed,
    UpstreamFailure,
};
use crate::header_text::{self, Runtime};
use shared_types::account::{
    CLAIM_SESSION_PATH, REVOKE_REFRESH_TOKEN_PATH, ROTATE_REFRESH_TOKEN_PATH, RefreshGrant,
    START_REFRESH_FAMILY_PATH,
};

mod steps;

/// Name of the Durable Object namespace binding holding the rate-limit buckets.
const RATE_LIMITER_BINDING: &str = "RATE_LIMITER";

/// Takes the runtime's own `Request` and returns its own `Response`: the `worker` crate's
/// `Request` wrapper would read the method, URL, headers and `cf` object on every request
/// before `handle` reads what it needs.
#[event(fetch)]
async fn fetch(
    request: web_sys::Request,
    env: Env,
    ctx: Context,
) -> worker::Result<web_sys::Response> {
    Ok(handle(&request, &env, &ctx).await)
}

async fn handle(request: &web_sys::Request, env: &Env, ctx: &Context) -> web_sys::Response {
    // One draw from the runtime's CSPRNG for all of this request's randomness. Without one the
    // request fails: session ids and signature nonces must be unpredictable.
    let Some(random) = random_bytes::<64>() else {
        // The id only names this failure in the log; the clock is all there is.
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&now_ms().to_be_bytes());
        let request_id = RequestId::from_random(id);
        console_error!("request_id={request_id} crypto.getRandomValues is unavailable");
        return respond(EdgeResponse::error(
            ErrorCode::Internal,
            "the edge runtime has no secure random number generator",
            &request_id,
        ));
    };
    let inputs = inputs_of(&random, now_ms());
    let config = match isolate_config(env) {
        Ok(config) => config,
        Err(error) => {
            let request_id = RequestId::from_random(inputs.random);
            console_error!("request_id={request_id} edge misconfigured: {error}");
            return respond(EdgeResponse::error(
                ErrorCode::Internal,
                error.to_string(),
                &request_id,
            ));
        }
    };
    let Ok(method) = Method::from_bytes(request.method().as_bytes()) else {
        let request_id = RequestId::from_random(inputs.random);
        return respond(EdgeResponse::error(
            ErrorCode::BadRequest,
            "unsupported method",
            &request_id,
        ));
    };
    let headers = header_map(&request.headers());
    let url = request.url();
    let client_ip = config.client_ip(&headers);
    let head = RequestHead {
        method: &method,
        url: &url,
        headers: &headers,
        client_ip,
    };

    let decision = decide_with_keys(&head, &config, inputs).await;
    // A signed-in caller whose access cookie expired: renew it at the brain, then decide
    // again as whoever the renewal says the caller is.
    let renewed_headers: HeaderMap;
    let mut sign_in_cookies = Vec::new();
    let (head, decision) = match decision {
        Decision::RefreshSignIn { refresh_token } => {
            match renew_sign_in(&refresh_token, &head, &config, &inputs).await {
                Ok((headers, cookies)) => {
                    renewed_headers = headers;
                    sign_in_cookies = cookies;
                    let head = RequestHead {
                        headers: &renewed_headers,
                        ..head
                    };
                    let decision = decide_with_keys(&head, &config, inputs).await;
                    (head, decision)
                }
                Err(response) => return respond(response),
            }
        }
        decision => (head, decision),
    };

    match decision.with_set_cookies(&sign_in_cookies) {
        Decision::Respond(response) => respond(response),
        Decision::Proxy(proxy) => {
            let exchange = Exchange::new(*proxy, has_default_cache(), random_part(&random, 3));
            let io = ExchangeIo {
                request: Some(request),
                env: Some(env),
                ctx: Some(ctx),
                config: &config,
            };
            match run_exchange(exchange, &io).await {
                Ended::Answered(response) => response,
                Ended::Edge(response) => respond(response),
                // Only a background refresh ends without an answer.
                Ended::Done => respond(lost_track(&RequestId::from_random(inputs.random))),
            }
        }
        Decision::SignIn => sign_in_endpoint(&head, &config, &inputs).await,
        // `Deciding` settles unknown keys itself, and a renewed request carries no refresh
        // cookie to renew again; answer safely anyway.
        Decision::RefreshKeys | Decision::RefreshSignIn { .. } => respond(EdgeResponse::error(
            ErrorCode::Unauthorized,
            "the credentials could not be verified",
            &RequestId::from_random(inputs.random),
        )),
    }
}

/// Decides `head` ([`Deciding`]), carrying out the key fetches and waits the machine asks for.
async fn decide_with_keys(head: &RequestHead<'_>, config: &EdgeConfig, inputs: Inputs) -> Decision {
    let mut deciding = Deciding::new(inputs);
    let mut event = DecideEvent::Start;
    loop {
        let action = with_key_store(config, |keys| {
            deciding.advance(event, head, config, keys, now_ms())
        });
        event = match action {
            DecideAction::Decided(decision) => return decision,
            DecideAction::FetchKeys(fetch) => DecideEvent::KeysFetched(fetch_jwks(&fetch).await),
            DecideAction::LookAgainIn { ms } => {
                Delay::from(std::time::Duration::from_millis(ms)).await;
                DecideEvent::LookedAgain
            }
            DecideAction::Log(line) => {
                console_error!("{line}");
                DecideEvent::Logged
            }
        };
    }
}

/// One request's randomness (one `getRandomValues` draw) split into the core's inputs at
/// `now_ms`; the fourth part is the nonce of a stale copy's refresh ([`random_part`]).
fn inputs_of(random: &[u8; 64], now_ms: u64) -> Inputs {
    Inputs {
        now_ms,
        random: random_part(random, 0),
        session_random: random_part(random, 1),
        nonce: random_part(random, 2),
        keys_refreshed: false,
    }
}

/// The `index`th 16 bytes of a request's randomness.
fn random_part(random: &[u8; 64], index: usize) -> [u8; 16] {
    let mut part = [0; 16];
    part.copy_from_slice(&random[16 * index..16 * (index + 1)]);
    part
}

/// [`Routed::decide`] with the isolate's JWT keys (none without `AUTH_CONFIG`).
fn decide_routed(
    routed: &Routed<'_>,
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    inputs: Inputs,
) -> Decision {
    with_key_store(config, |keys| {
        routed.decide(head, config, keys.as_deref(), inputs)
    })
}

/// Runs `work` after the answer: in the request's `waitUntil`, or on its own without one.
fn in_background(ctx: Option<&Context>, work: impl std::future::Future<Output = ()> + 'static) {
    match ctx {
        Some(ctx) => ctx.wait_until(work),
        None => wasm_bindgen_futures::spawn_local(work),
    }
}

/// What an [`Exchange`] may touch while it runs: the client's request (absent for a
/// background refresh, which has no client), the bindings, the request's context (to keep
/// cache writes alive after the answer) and the configuration.
struct ExchangeIo<'a> {
    request: Option<&'a web_sys::Request>,
    env: Option<&'a Env>,
    ctx: Option<&'a Context>,
    config: &'a EdgeConfig,
}

/// How an [`Exchange`] ended.
enum Ended {
    /// With the brain's (or the cache's) answer, ready for the client.
    Answered(web_sys::Response),
    /// With an answer the edge made (an error in the error shape, a 429).
    Edge(EdgeResponse),
    /// A background refresh's end: nobody to answer.
    Done,
}

/// Carries out an [`Exchange`]'s actions until it ends. Every decision is the core's: this
/// loop only does the I/O an action names and reports how it went.
async fn run_exchange(mut exchange: Exchange, io: &ExchangeIo<'_>) -> Ended {
    // The brain's response of the last attempt and the cache's hit, held until an action
    // says what becomes of them.
    let mut upstream: Option<web_sys::Response> = None;
    let mut cached: Option<web_sys::Response> = None;
    let mut event = Event::Start;
    loop {
        let machine = &mut exchange;
        let action = HEALTH.with_borrow_mut(move |health| {
            let mut at = Surroundings {
                config: io.config,
                now_ms: now_ms(),
                health,
            };
            machine.advance(event, &mut at)
        });
        event = match action {
            Action::TakeTokens { caller, network } => {
                Event::Tokens(take_tokens(io.env, caller, network).await)
            }
            Action::ReadBody { max_bytes } => {
                let body = io.request.and_then(web_sys::Request::body);
                Event::Body(match read_stream_at_most(body.as_ref(), max_bytes).await {
                    Ok(Some(bytes)) => BodyRead::Complete(bytes),
                    Ok(None) => BodyRead::TooLarge,
                    Err(()) => BodyRead::Failed,
                })
            }
            Action::MatchCache { key } => {
                cached = cache_match(&key).await;
                Event::Cached(cached.as_ref().map(|hit| header_map(&hit.headers())))
            }
            Action::FetchBrain(fetch) => {
                // A retry: the last attempt's answer (a draining 503) has nothing to read.
                if let Some(body) = upstream.take().and_then(|previous| previous.body()) {
                    let _ = body.cancel();
                }
                match fetch_brain(&fetch, io.request).await {
                    Ok(response) => {
                        let head = UpstreamHead {
                            status: response.status(),
                            headers: header_map(&response.headers()),
                            has_body: response.body().is_some(),
                        };
                        upstream = Some(response);
                        Event::Upstream(Ok(head))
                    }
                    Err(failure) => Event::Upstream(Err(failure)),
                }
            }
            Action::Log(line) => {
                console_error!("{line}");
                Event::Logged
            }
            Action::ServeCached { headers, refresh } => {
                if let Some(refresh) = refresh {
                    refresh_in_background(*refresh, io);
                }
                match cached.take().and_then(|hit| serve_cached(&hit, &headers)) {
                    Some(response) => return Ended::Answered(response),
                    None => Event::ResponseRejected,
                }
            }
            Action::StreamBack {
                headers,
                body,
                store,
            } => match upstream
                .take()
                .and_then(|brain| stream_back(&brain, &headers, &body, store, io.ctx))
            {
                Some(response) => return Ended::Answered(response),
                None => Event::ResponseRejected,
            },
            Action::Store(put) => {
                // A refresh's write: the brain's whole answer, awaited in its background task.
                if let Some(brain) = upstream.take() {
                    put_into_cache(brain.status(), brain.body(), put).await;
                }
                return Ended::Done;
            }
            Action::Discard => {
                if let Some(body) = upstream.take().and_then(|brain| brain.body()) {
                    let _ = body.cancel();
                }
                return Ended::Done;
            }
            Action::Respond(response) => return Ended::Edge(response),
        };
    }
}

/// Runs the refresh of a stale cached copy after the answer (`waitUntil`), on its own.
fn refresh_in_background(refresh: Exchange, io: &ExchangeIo<'_>) {
    // The isolate's configuration outlives the request: the refresh may run after it.
    let Some(config) = cached_config() else {
        return;
    };
    let run = async move {
        let io = ExchangeIo {
            request: None,
            env: None,
            ctx: None,
            config: &config,
        };
        let _ = run_exchange(refresh, &io).await;
    };
    in_background(io.ctx, run);
}

/// Takes tokens from the caller's bucket and, when asked, the network's, both at once.
async fn take_tokens(
    env: Option<&Env>,
    caller: (String, TakeRequest),
    network: Option<(String, TakeRequest)>,
) -> Result<(Verdict, Option<Verdict>), String> {
    let Some(env) = env else {
        return Err("no bindings in a background task".to_owned());
    };
    let network = async {
        match network {
            Some((key, take)) => take_token(env, &key, take).await.map(Some),
            None => Ok(None),
        }
    };
    match join(take_token(env, &caller.0, caller.1), network).await {
        (Ok(caller), Ok(network)) => Ok((caller, network)),
        (Err(error), _) | (_, Err(error)) => Err(error),
    }
}

/// Sends `fetch` to its brain, racing the response headers against its timeout: the
/// response, or why none came. A streamed body is the client's own, counted on its way.
async fn fetch_brain(
    fetch: &Fetch<'_>,
    request: Option<&web_sys::Request>,
) -> Result<web_sys::Response, UpstreamFailure> {
    let init = web_sys::RequestInit::new();
    init.set_method(fetch.method.as_str());
    init.set_redirect(web_sys::RequestRedirect::Manual);
    let mut limit = None;
    match fetch.body {
        FetchBody::None => {}
        FetchBody::Bytes(bytes) => init.set_body(&Uint8Array::from(bytes).into()),
        FetchBody::Stream { max_bytes } => {
            if let Some(stream) = request.and_then(web_sys::Request::body) {
                // Limits are far below 2^53, so the f64 is exact.
                let counted = BodyLimit::new(&stream, max_bytes as f64);
                init.set_body(&counted.stream().into());
                limit = Some(counted);
                // Streaming request bodies must be half-duplex (Fetch standard; undici).
                let _ = Reflect::set(&init, &"duplex".into(), &"half".into());
            }
        }
    }
    init.set_headers(&js_headers(fetch.headers));
    // One promise for the fetch and its deadline (edge/js/fetch_deadline.mjs): cheaper per
    // request than a Rust timer future raced against the fetch, each with its own closures.
    match JsFuture::from(fetch_with_deadline(
        fetch.url,
        &init,
        fetch.timeout_ms,
        limit.as_ref(),
    ))
    .await
    {
        Ok(value) if value.is_null() => Err(UpstreamFailure::TimedOut),
        Ok(value) => value
            .dyn_into::<web_sys::Response>()
            .map_err(|_| UpstreamFailure::Unreachable),
        Err(_) if limit.as_ref().is_some_and(BodyLimit::exceeded) => {
            Err(UpstreamFailure::BodyTooLarge)
        }
        Err(_) => Err(UpstreamFailure::Unreachable),
    }
}

/// The brain's answer for the client: its status, `headers`, its body as `body` says —
/// handed straight back (no copy into wasm, no buffering, so events reach the client as the
/// brain writes them). With `store`, the body is teed and one branch goes into the cache.
/// `None` if the runtime refused to build it.
fn stream_back(
    brain: &web_sys::Response,
    headers: &HeaderMap,
    body: &ResponseBody,
    store: Option<CachePut>,
    ctx: Option<&Context>,
) -> Option<web_sys::Response> {
    let mut stream = brain.body();
    if let Some(put) = store {
        match stream.as_ref().and_then(tee) {
            Some((to_client, to_cache)) => {
                stream = Some(to_client);
                in_background(ctx, put_into_cache(brain.status(), Some(to_cache), put));
            }
            None => console_error!("cache put {}: the body could not be teed", put.key),
        }
    }
    let stream = match body {
        ResponseBody::Null => None,
        ResponseBody::Pass => stream,
        ResponseBody::GuardedEventStream { broken_event } => stream
            .map(|stream| guard_event_stream(&stream, &Uint8Array::from(broken_event.as_slice()))),
    };
    let init = web_sys::ResponseInit::new();
    init.set_status(brain.status());
    init.set_status_text(&brain.status_text());
    init.set_headers(&js_headers(headers));
    web_sys::Response::new_with_opt_readable_stream_and_init(stream.as_ref(), &init).ok()
}

/// A cached response with this request's `headers`; `None` if the runtime refused it.
fn serve_cached(hit: &web_sys::Response, headers: &HeaderMap) -> Option<web_sys::Response> {
    let init = web_sys::ResponseInit::new();
    init.set_status(hit.status());
    init.set_headers(&js_headers(headers));
    web_sys::Response::new_with_opt_readable_stream_and_init(hit.body().as_ref(), &init).ok()
}

/// The answer when an exchange ended without one (an adapter bug, never the client's doing).
fn lost_track(request_id: &RequestId) -> EdgeResponse {
    EdgeResponse::error(
        ErrorCode::Internal,
        "the edge lost track of this request",
        request_id,
    )
}

/// `body.tee()`: two branches of one stream.
fn tee(
    body: &web_sys::ReadableStream,
) -> Option<(web_sys::ReadableStream, web_sys::ReadableStream)> {
    let branches = Reflect::get(body, &"tee".into())
        .and_then(|tee| tee.dyn_into::<js_sys::Function>())
        .and_then(|tee| tee.call0(body))
        .ok()?
        .unchecked_into::<js_sys::Array>();
    Some((
        branches.get(0).unchecked_into(),
        branches.get(1).unchecked_into(),
    ))
}

/// Writes `body` (with `status`) into the cache under `put`; a failure is logged, never the
/// client's problem.
async fn put_into_cache(status: u16, body: Option<web_sys::ReadableStream>, put: CachePut) {
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&js_headers(&put.headers));
    let written =
        match web_sys::Response::new_with_opt_readable_stream_and_init(body.as_ref(), &init) {
            Ok(response) => cache_put(&put.key, &response).await,
            Err(error) => Err(error),
        };
    if let Err(error) = written {
        console_error!("cache put {} failed: {error:?}", put.key);
    }
}

/// [`read_at_most`] for Rust: the bytes, `Ok(None)` past `max_bytes`, `Err` on a failed stream.
async fn read_stream_at_most(
    body: Option<&web_sys::ReadableStream>,
    max_bytes: u64,
) -> Result<Option<Vec<u8>>, ()> {
    // Limits are far below 2^53, so the f64 is exact.
    let read = JsFuture::from(read_at_most(body, max_bytes as f64))
        .await
        .map_err(|_| ())?;
    if read.is_null() {
        return Ok(None);
    }
    Ok(Some(Uint8Array::new(&read).to_vec()))
}

#[wasm_bindgen(module = "/js/body_limit.mjs")]
extern "C" {
    /// A request body passed through chunk by chunk, cut once more than `max_bytes` went by:
    /// the fetch carrying it is aborted (see `fetch_with_deadline`), then the stream errors.
    type BodyLimit;
    #[wasm_bindgen(constructor)]
    fn new(body: &web_sys::ReadableStream, max_bytes: f64) -> BodyLimit;
    #[wasm_bindgen(method, getter)]
    fn stream(this: &BodyLimit) -> web_sys::ReadableStream;
    /// True once the body passed the limit (the fetch carrying it then fails).
    #[wasm_bindgen(method, getter)]
    fn exceeded(this: &BodyLimit) -> bool;

    /// All of `body` (`null` body: empty) if at most `max_bytes`, else `null`.
    #[wasm_bindgen(js_name = readAtMost)]
    fn read_at_most(body: Option<&web_sys::ReadableStream>, max_bytes: f64) -> js_sys::Promise;
}

#[wasm_bindgen(module = "/js/fetch_deadline.mjs")]
extern "C" {
    /// `fetch(url, init)`, aborted after `timeout_ms` unless the response headers arrived;
    /// resolves to `null` when the deadline won. The deadline does not cover the body.
    /// `body_limit` (the counter of a streamed body) aborts the fetch once passed.
    #[wasm_bindgen(js_name = fetchWithDeadline)]
    fn fetch_with_deadline(
        url: &str,
        init: &web_sys::RequestInit,
        timeout_ms: u32,
        body_limit: Option<&BodyLimit>,
    ) -> js_sys::Promise;
}

#[wasm_bindgen(module = "/js/stream_guard.mjs")]
extern "C" {
    /// Passes chunks through one by one; appends `error_event` if the upstream breaks off.
    #[wasm_bindgen(js_name = guardEventStream)]
    fn guard_event_stream(
        body: &web_sys::ReadableStream,
        error_event: &Uint8Array,
    ) -> web_sys::ReadableStream;
}

/// Whether an exchange may use the cache ([`default_cache`] exists), without looking it up on
/// every request: that made two JS strings from wasm and two property lookups, ≈ 5–10 µs of
/// workerd CPU per request (scripts/profile-edge).
fn has_default_cache() -> bool {
    HAS_DEFAULT_CACHE.with(|cell| *cell.get_or_init(|| default_cache().is_some()))
}

/// `caches.default` (the Workers Cache API's default cache).
fn default_cache() -> Option<web_sys::Cache> {
    let caches = Reflect::get(&js_sys::global(), &"caches".into()).ok()?;
    Reflect::get(&caches, &"default".into())
        .ok()
        .filter(|cache| !cache.is_undefined())
        .map(JsCast::unchecked_into)
}

async fn cache_match(key: &str) -> Option<web_sys::Response> {
    let cache = default_cache()?;
    let found = JsFuture::from(cache.match_with_str(key)).await.ok()?;
    found.dyn_into::<web_sys::Response>().ok()
}

async fn cache_put(key: &str, response: &web_sys::Response) -> Result<(), JsValue> {
    let cache = default_cache().ok_or_else(|| JsValue::from_str("no caches.default"))?;
    JsFuture::from(cache.put_with_str(key, response))
        .await
        .map(|_| ())
}

/// Asks the bucket's Durable Object (one per key, so the count is global and exact) to take
/// tokens, and returns its verdict.
async fn take_token(env: &Env, key: &str, take: TakeRequest) -> Result<Verdict, String> {
    let namespace = Reflect::get(env.as_ref(), &RATE_LIMITER_BINDING.into())
        .ok()
        .filter(|value| value.is_object())
        .ok_or_else(|| format!("no {RATE_LIMITER_BINDING} Durable Object binding"))?;
    let call = |target: &JsValue, method: &str, arg: &JsValue| -> Result<JsValue, String> {
        Reflect::get(target, &method.into())
            .and_then(|f| f.dyn_into::<js_sys::Function>())
            .and_then(|f| f.call1(target, arg))
            .map_err(|error| format!("{method}: {error:?}"))
    };
    let id = call(&namespace, "idFromName", &key.into())?;
    let stub = call(&namespace, "get", &id)?;
    let body = serde_json::to_string(&take).map_err(|error| error.to_string())?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&body.into());
    let request =
        web_sys::Request::new_with_str_and_init("https://rate-limiter.invalid/take", &init)
            .map_err(|error| format!("request: {error:?}"))?;
    let promise = call(&stub, "fetch", &request)?;
    let response: web_sys::Response = JsFuture::from(js_sys::Promise::from(promise))
        .await
        .map_err(|error| format!("fetch: {error:?}"))?
        .dyn_into()
        .map_err(|_| "not a Response".to_owned())?;
    if !response.ok() {
        return Err(format!("status {}", response.status()));
    }
    let text = JsFuture::from(response.text().map_err(|e| format!("{e:?}"))?)
        .await
        .map_err(|error| format!("body: {error:?}"))?
        .as_string()
        .unwrap_or_default();
    serde_json::from_str(&text).map_err(|error| format!("verdict: {error}"))
}

/// The rate-limit bucket arithmetic for the `RateLimiter` Durable Object (`edge/js/shim.mjs`):
/// takes the request JSON, the stored bucket JSON (or `null`) and the object's clock, and
/// returns `{"state": …, "verdict": …}` as JSON. Pure core logic; the object only stores.
#[wasm_bindgen(js_name = rateLimitApply)]
// Exported to JavaScript by wasm-bindgen, which needs it `pub`.
#[allow(unreachable_pub)]
pub fn rate_limit_apply(request_json: &str, stored_json: &str, now_ms: f64) -> String {
    let Ok(take) = serde_json::from_str::<TakeRequest>(request_json) else {
        return r#"{"error":"malformed take request"}"#.to_owned();
    };
    let stored: Option<BucketState> = serde_json::from_str(stored_json).ok().flatten();
    // Date.now() is a non-negative integer number of milliseconds.
    let (state, verdict) = take.apply(stored, now_ms as u64);
    serde_json::json!({ "state": state, "verdict": verdict }).to_string()
}

// ---- sign-in (the steps are `core::signin`'s; here they are only carried out) ----------------

/// Largest answer read from the brain's internal endpoints or the provider's token endpoint.
const SIGN_IN_ANSWER_MAX_BYTES: u64 = 64 * 1024;

/// Renews an expired access credential with the refresh token: the headers to decide the
/// request again with, and the cookies to set on its answer.
async fn renew_sign_in(
    refresh_token: &str,
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    inputs: &Inputs,
) -> Result<(HeaderMap, Vec<String>), EdgeResponse> {
    let request_id = request_id_of(head, inputs.random);
    let unavailable = || {
        EdgeResponse::error(
            ErrorCode::Unavailable,
            "your sign-in could not be renewed just now; retry",
            &request_id,
        )
    };
    let (Some(signin), Some(random), Some(nonce)) = (
        config.signin.as_ref(),
        random_bytes::<32>(),
        random_bytes::<16>(),
    ) else {
        return Err(unavailable());
    };
    let now = now_ms();
    let (rotate, successor) = flow::rotation(refresh_token, signin, &random, now);
    let caller = Caller::new(head, config, inputs, &request_id);
    let body = serde_json::to_vec(&rotate).map_err(|_| unavailable())?;
    let call = caller
        .call(ROTATE_REFRESH_TOKEN_PATH, None, nonce, body)
        .ok_or_else(unavailable)?;
    match brain_json(call, config).await {
        Ok((200, answer)) => {
            let grant: RefreshGrant = serde_json::from_slice(&answer).map_err(|_| unavailable())?;
            let (access, cookies) =
                flow::refreshed(&grant, &successor, signin, &config.sessions, now / 1000)
                    .ok_or_else(unavailable)?;
            let headers = flow::with_access_cookie(head.headers, Some(&access), &config.sessions);
            Ok((headers, cookies))
        }
        // Revoked, reused or expired: the request goes on as anonymous, and the cookies go.
        Ok((401, _)) => Ok((
            flow::with_access_cookie(head.headers, None, &config.sessions),
            flow::sign_in_ended(),
        )),
        Ok((status, _)) => {
            console_error!("request_id={request_id} refresh-token rotation answered {status}");
            Err(unavailable())
        }
        Err(response) => Err(response),
    }
}

/// Carries out an `/auth/…` request (`core::signin::endpoint`).
async fn sign_in_endpoint(
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    inputs: &Inputs,
) -> web_sys::Response {
    let request_id = request_id_of(head, inputs.random);
    let Some(random) = random_bytes::<64>() else {
        return respond(EdgeResponse::error(
            ErrorCode::Internal,
            "the edge runtime has no secure random number generator",
            &request_id,
        ));
    };
    let mut verifier = [0u8; 32];
    verifier.copy_from_slice(&random[32..]);
    let login_random = LoginRandom {
        state: random[..16].try_into().unwrap_or([0; 16]),
        nonce: random[16..32].try_into().unwrap_or([0; 16]),
        verifier,
    };
    for attempt in 0..2 {
        let discovery_loaded = attempt > 0;
        let now = now_ms();
        let decision = DISCOVERY.with_borrow(|discovery| {
            decide_auth(
                head,
                config,
                discovery,
                discovery_loaded,
                &login_random,
                now / 1000,
                &request_id,
            )
        });
        match decision {
            AuthDecision::Respond(response) => return respond(response),
            AuthDecision::Discover => {
                let Some(signin) = config.signin.as_ref() else {
                    break;
                };
                if discovery_loaded {
                    break;
                }
                load_discovery(signin).await;
            }
            AuthDecision::Exchange(token) => {
                return respond(finish_sign_in(head, config, inputs, &token, &request_id).await);
            }
            AuthDecision::SignOut(revoke) => {
                if let Some(revoke) = revoke {
                    let caller = Caller::new(head, config, inputs, &request_id);
                    let sent = match (random_bytes::<16>(), serde_json::to_vec(&revoke)) {
                        (Some(nonce), Ok(body)) => {
                            match caller.call(REVOKE_REFRESH_TOKEN_PATH, None, nonce, body) {
                                Some(call) => brain_json(call, config)
                                    .await
                                    .ok()
                                    .map(|(status, _)| status),
                                None => None,
                            }
                        }
                        _ => None,
                    };
                    if sent != Some(204) {
                        // Keep the cookies: the sign-in is still live at the brain.
                        return respond(EdgeResponse::error(
                            ErrorCode::Unavailable,
                            "signing out could not reach the server; retry",
                            &request_id,
                        ));
                    }
                }
                return respond(flow::signed_out(&request_id));
            }
        }
    }
    // The core answers a loaded request itself; this is for one it sent to load again.
    respond(discovery_unavailable(&request_id))
}

/// The callback after the provider's redirect: exchange the code, verify the ID token, store
/// the sign-in at the brain, move the visitor's session to the user, answer with the cookies.
async fn finish_sign_in(
    head: &RequestHead<'_>,
    config: &EdgeConfig,
    inputs: &Inputs,
    token: &TokenRequest,
    request_id: &RequestId,
) -> EdgeResponse {
    let failed = |code: ErrorCode, message: &str| EdgeResponse::error(code, message, request_id);
    let (Some(signin), Some(metadata)) = (
        config.signin.as_ref(),
        DISCOVERY.with_borrow(|discovery| discovery.metadata().cloned()),
    ) else {
        return failed(
            ErrorCode::Unavailable,
            "the identity provider is not configured",
        );
    };
    let (status, body) = match fetch_with_timeout(
        &token.url,
        Some((token.body.as_str(), token.authorization.as_deref())),
        SIGN_IN_ANSWER_MAX_BYTES,
        PROVIDER_TIMEOUT_MS,
    )
    .await
    {
        Ok(answer) => answer,
        Err(error) => {
            console_error!(
                "request_id={request_id} token endpoint {} failed: {error}",
                token.url
            );
            return failed(
                ErrorCode::BadGateway,
                "the identity provider could not be reached",
            );
        }
    };
    let read_id_token = || {
        with_provider_keys(signin, &metadata, |verifier, keys| {
            let now = now_ms() / 1000;
            flow::read_id_token(status, &body, token, signin, verifier, keys, now)
        })
    };
    let mut outcome = read_id_token();
    if outcome == Some(IdToken::UnknownKey) {
        refresh_provider_keys(signin, &metadata).await;
        outcome = read_id_token();
    }
    let user = match outcome {
        Some(IdToken::User(user)) => user,
        Some(IdToken::Refused(refusal)) => return refusal.response(request_id),
        _ => {
            return failed(
                ErrorCode::Unauthorized,
                "the ID token's signing key is unknown",
            );
        }
    };
    let (Some(random), Some(nonce), Some(claim_nonce)) = (
        random_bytes::<32>(),
        random_bytes::<16>(),
        random_bytes::<16>(),
    ) else {
        return failed(
            ErrorCode::Internal,
            "the edge runtime has no secure random number generator",
        );
    };
    let now = now_ms();
    let sign_in = flow::new_sign_in(user.clone(), signin, &random, now);
    let principal = flow::principal_of(
        &user.user_id,
        &user.scopes,
        now / 1000 + signin.access_ttl_secs,
    );
    let caller = Caller::new(head, config, inputs, request_id);
    let Ok(start) = serde_json::to_vec(&sign_in.start) else {
        return failed(ErrorCode::Internal, "the sign-in could not be encoded");
    };
    let Some(call) = caller.call(START_REFRESH_FAMILY_PATH, Some(&principal), nonce, start) else {
        return failed(
            ErrorCode::Unauthorized,
            "the signed-in user cannot be passed on",
        );
    };
    let grant: RefreshGrant = match brain_json(call, config).await {
        Ok((201, answer)) => match serde_json::from_slice(&answer) {
            Ok(grant) => grant,
            Err(_) => {
                return failed(
                    ErrorCode::BadGateway,
                    "the server's answer to the sign-in is malformed",
                );
            }
        },
        Ok((status, answer)) => {
            console_error!(
                "request_id={request_id} storing the sign-in answered {status}: {}",
                String::from_utf8_lossy(&answer)
            );
            return failed(
                ErrorCode::BadGateway,
                "the server could not store the sign-in",
            );
        }
        Err(response) => return response,
    };
    // What the visitor made anonymously moves to the user (idempotent: a failure here is
    // retried by the next sign-in from this session).
    if !caller.session.is_new
        && let Some(call) = caller.call(
            CLAIM_SESSION_PATH,
            Some(&principal),
            claim_nonce,
            Vec::new(),
        )
    {
        match brain_json(call, config).await {
            Ok((200, _)) => {}
            Ok((status, _)) => {
                console_error!("request_id={request_id} session claim answered {status}")
            }
            Err(_) => console_error!("request_id={request_id} session claim failed"),
        }
    }
    let mut response = flow::signed_in(
        &grant,
        &sign_in,
        &token.return_to,
        signin,
        &config.sessions,
        now / 1000,
        request_id,
    );
    if let Some((name, value)) = caller.session.response_header(config.sessions.ttl_secs) {
        response.headers.append(name, value);
    }
    response
}

/// This request's caller, for the edge's own brain requests (`pipeline::brain_call`).
struct Caller<'a> {
    head: &'a RequestHead<'a>,
    config: &'a EdgeConfig,
    session: Session,
    request_id: &'a RequestId,
}

impl<'a> Caller<'a> {
    fn new(
        head: &'a RequestHead<'a>,
        config: &'a EdgeConfig,
        inputs: &Inputs,
        request_id: &'a RequestId,
    ) -> Self {
        let session = Session::resolve(
            head.headers,
            &config.sessions,
            now_ms() / 1000,
            inputs.session_random,
        );
        Self {
            head,
            config,
            session,
            request_id,
        }
    }

    /// A signed `POST` of `body` to `path` at this caller's brain, as `principal` (or
    /// anonymous).
    fn call(
        &self,
        path: &str,
        principal: Option<&Principal>,
        nonce: [u8; 16],
        body: Vec<u8>,
    ) -> Option<Exchange> {
        brain_call(
            path,
            principal,
            &self.session,
            self.head.client_ip,
            self.config,
            now_ms(),
            nonce,
            self.request_id,
        )
        .map(|call| Exchange::with_body(call, body))
    }
}

/// Sends an edge-made brain request with `body` (as its [`Exchange`]: to the next brain
/// exactly when a proxied `POST` would go): the status and (bounded) answer, or the answer to
/// give when no brain could be asked.
async fn brain_json(call: Exchange, config: &EdgeConfig) -> Result<(u16, Vec<u8>), EdgeResponse> {
    let io = ExchangeIo {
        request: None,
        env: None,
        ctx: None,
        config,
    };
    let upstream = match run_exchange(call, &io).await {
        Ended::Answered(upstream) => upstream,
        Ended::Edge(response) => return Err(response),
        Ended::Done => return Err(lost_track(&RequestId::from_random([0; 16]))),
    };
    let status = upstream.status();
    let answer = read_stream_at_most(upstream.body().as_ref(), SIGN_IN_ANSWER_MAX_BYTES)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    Ok((status, answer))
}

/// `GET url`, or with `form` a form `POST` (body, optional `Authorization`), bounded in time
/// and size: the status and body.
async fn fetch_with_timeout(
    url: &str,
    form: Option<(&str, Option<&str>)>,
    max_bytes: u64,
    timeout_ms: u64,
) -> Result<(u16, Vec<u8>), String> {
    let init = web_sys::RequestInit::new();
    init.set_redirect(web_sys::RequestRedirect::Manual);
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    if let Some((body, authorization)) = form {
        init.set_method("POST");
        init.set_body(&body.into());
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Some(value) = authorization.and_then(|text| HeaderValue::from_str(text).ok()) {
            headers.insert(http::header::AUTHORIZATION, value);
        }
    }
    init.set_headers(&js_headers(&headers));
    let deadline_ms = u32::try_from(timeout_ms).unwrap_or(u32::MAX);
    let answer = JsFuture::from(fetch_with_deadline(url, &init, deadline_ms, None))
        .await
        .map_err(|error| format!("{error:?}"))?;
    if answer.is_null() {
        return Err(format!("no answer within {timeout_ms} ms"));
    }
    let response: web_sys::Response = answer.dyn_into().map_err(|_| "not a Response".to_owned())?;
    let body = read_stream_at_most(response.body().as_ref(), max_bytes)
        .await
        .map_err(|()| "the body could not be read".to_owned())?
        .ok_or_else(|| format!("larger than {max_bytes} bytes"))?;
    Ok((response.status(), body))
}

/// Runs `f` on the provider's ID-token verifier and keys (made on first use for this
/// provider's `jwks_uri`); `None` if the verifier cannot be made.
fn with_provider_keys<T>(
    signin: &SigninConfig,
    metadata: &ProviderMetadata,
    f: impl FnOnce(&AuthConfig, &mut KeyStore) -> T,
) -> Option<T> {
    PROVIDER_KEYS.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot
            .as_ref()
            .is_none_or(|(uri, _, _)| *uri != metadata.jwks_uri)
        {
            match flow::id_token_verifier(signin, metadata) {
                Ok(verifier) => {
                    let keys = KeyStore::new(&verifier);
                    *slot = Some((metadata.jwks_uri.clone(), verifier, keys));
                }
                Err(error) => {
                    console_error!("the provider's ID-token verifier: {error}");
                    return None;
                }
            }
        }
        let (_, verifier, keys) = slot.as_mut()?;
        Some(f(verifier, keys))
    })
}

/// Brings the provider's keys up to date for an ID token that named an unknown one
/// ([`KeyRefresh`]): this request's own fetch, or a wait for another request's.
async fn refresh_provider_keys(signin: &SigninConfig, metadata: &ProviderMetadata) {
    let started = with_provider_keys(signin, metadata, |_, keys| {
        KeyRefresh::for_unknown_key(keys, now_ms())
    });
    let Some((mut refresh, mut action)) = started else {
        return;
    };
    loop {
        let next = match action {
            RefreshAction::Fetch(fetch) => {
                let outcome = fetch_jwks(&fetch).await;
                with_provider_keys(signin, metadata, |_, keys| {
                    refresh.fetched(keys, now_ms(), outcome)
                })
            }
            RefreshAction::LookAgainIn { ms } => {
                Delay::from(std::time::Duration::from_millis(ms)).await;
                with_provider_keys(signin, metadata, |_, keys| {
                    refresh.look_again(keys, now_ms())
                })
            }
            RefreshAction::Done { problem } => {
                if let Some(problem) = problem {
                    console_error!("the provider's {problem}");
                }
                return;
            }
        };
        // The provider's `jwks_uri` changed meanwhile: its new store starts afresh.
        action = next.unwrap_or(RefreshAction::Done { problem: None });
    }
}

/// Loads the provider's discovery document for a sign-in step that needs it
/// ([`DiscoveryRefresh`]): this request's own fetch, a wait for another request's, or nothing.
async fn load_discovery(signin: &SigninConfig) {
    let started = with_discovery(|discovery| DiscoveryRefresh::start(discovery, signin, now_ms()));
    let Some((mut refresh, mut action)) = started else {
        return;
    };
    loop {
        let next = match action {
            DiscoveryAction::Fetch(fetch) => {
                let outcome = fetch_with_timeout(
                    &fetch.url,
                    None,
                    fetch.max_body_bytes as u64,
                    fetch.timeout_ms,
                )
                .await;
                with_discovery(|discovery| refresh.fetched(discovery, signin, now_ms(), outcome))
            }
            DiscoveryAction::LookAgainIn { ms } => {
                Delay::from(std::time::Duration::from_millis(ms)).await;
                with_discovery(|discovery| refresh.look_again(discovery, now_ms()))
            }
            DiscoveryAction::Done { problem } => {
                if let Some(problem) = problem {
                    console_error!("{problem}");
                }
                return;
            }
        };
        action = next.unwrap_or(DiscoveryAction::Done { problem: None });
    }
}

/// Runs `f` on the isolate's discovery document; `None` only on reentrancy (it is never
/// borrowed across an await).
fn with_discovery<T>(f: impl FnOnce(&mut Discovery) -> T) -> Option<T> {
    DISCOVERY.with(|cell| {
        cell.try_borrow_mut()
            .ok()
            .map(|mut discovery| f(&mut discovery))
    })
}

thread_local! {
    /// The provider's discovery document (sign-in), loaded ([`load_discovery`]) when a sign-in
    /// step finds none or finds it older than `OIDC_DISCOVERY_TTL_SECS` (`decide_auth`).
    static DISCOVERY: RefCell<Discovery> = RefCell::new(Discovery::default());
    /// The provider's ID-token verifier and JWKS, for its `jwks_uri`.
    static PROVIDER_KEYS: RefCell<Option<(String, AuthConfig, KeyStore)>> = const { RefCell::new(None) };
}

thread_local! {
    /// Wrangler `[vars]` and secrets are fixed for the life of an isolate (changing them means
    /// a new deployment, hence new isolates), so they are read and parsed on its first request
    /// only, not on the hot path. A broken configuration stays broken until redeployed.
    static CONFIG: OnceCell<Result<Rc<EdgeConfig>, ConfigError>> = const { OnceCell::new() };
    /// What this isolate learned of the brains' health from its own attempts: brains that
    /// refused connections or are draining are tried last for a while
    /// (`edge::core::brains::BrainHealth`). Per isolate, like the caches: each learns alone.
    static HEALTH: RefCell<BrainHealth> = RefCell::new(BrainHealth::default());
    /// The isolate's JWT keys (static ones plus the cached JWKS).
    static KEYS: RefCell<Option<KeyStore>> = const { RefCell::new(None) };
    /// The JS runtime (workerd or Node's edge-runtime): fixed for the life of the isolate.
    static RUNTIME: OnceCell<Runtime> = const { OnceCell::new() };
    /// Whether the runtime has `caches.default` (Workers yes, Vercel no): fixed for the
    /// isolate's life, looked up on its first exchange.
    static HAS_DEFAULT_CACHE: OnceCell<bool> = const { OnceCell::new() };
}

fn isolate_config(env: &Env) -> Result<Rc<EdgeConfig>, ConfigError> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| EdgeConfig::from_vars(|name| read_var(env, name)).map(Rc::new))
            .clone()
    })
}

/// The isolate's configuration, once a request has read it.
fn cached_config() -> Option<Rc<EdgeConfig>> {
    CONFIG.with(|config| {
        config
            .get()
            .and_then(|parsed| parsed.as_ref().ok())
            .cloned()
    })
}

/// Runs `f` on the isolate's key store (created on first use), or on `None` without
/// `AUTH_CONFIG`.
fn with_key_store<T>(config: &EdgeConfig, f: impl FnOnce(Option<&mut KeyStore>) -> T) -> T {
    let Some(auth) = config.auth.as_ref() else {
        return f(None);
    };
    KEYS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut keys) => f(Some(keys.get_or_insert_with(|| KeyStore::new(auth)))),
        // The store is never borrowed across an await, so only reentrancy could get here.
        Err(_) => f(None),
    })
}

/// Fetches a JWKS document the core asked for ([`JwksFetch`]): its body, or why there is none.
/// Redirects are not followed (as for every call the edge makes to the identity provider): the
/// configured URL is the only place keys come from.
async fn fetch_jwks(fetch: &JwksFetch) -> Result<Vec<u8>, String> {
    match fetch_with_timeout(
        &fetch.url,
        None,
        fetch.max_body_bytes as u64,
        fetch.timeout_ms,
    )
    .await?
    {
        (200..=299, body) => Ok(body),
        (status, _) => Err(format!("{} answered {status}", fetch.url)),
    }
}

/// A variable as text: strings as they are, JSON values (wrangler `[vars]` tables and arrays)
/// serialized back to JSON for the core to parse.
fn read_var(env: &Env, name: &str) -> Option<String> {
    let value = Reflect::get(env.as_ref(), &name.into()).ok()?;
    if let Some(text) = value.as_string() {
        return Some(text).filter(|text| !text.is_empty());
    }
    if value.is_object() {
        return js_sys::JSON::stringify(&value)
            .ok()
            .and_then(|text| text.as_string());
    }
    None
}

fn respond(response: EdgeResponse) -> web_sys::Response {
    let init = web_sys::ResponseInit::new();
    init.set_status(response.status.as_u16());
    init.set_headers(&js_headers(&response.headers));
    let mut body = response.body;
    let body = (!body.is_empty()).then_some(body.as_mut_slice());
    web_sys::Response::new_with_opt_u8_array_and_init(body, &init)
        // Only reachable if the runtime rejects a status we never produce; answer a bare 500.
        .or_else(|_| {
            web_sys::Response::new_with_opt_str_and_init(None, &web_sys::ResponseInit::new())
        })
        .unwrap_or_else(|_| JsValue::UNDEFINED.unchecked_into())
}

#[wasm_bindgen(module = "/js/headers.mjs")]
extern "C" {
    /// The entries of `headers` as "name\nvalue\n" lines.
    #[wasm_bindgen(js_name = headerLines)]
    fn header_lines(headers: &web_sys::Headers) -> String;
    /// Lines in `header_lines`' format as an array of `[name, value]` pairs.
    #[wasm_bindgen(js_name = headerPairs)]
    fn header_pairs(lines: &str) -> js_sys::Array;
}

/// Copies JS headers into a `HeaderMap` without panicking on anything the runtime hands over.
/// Values are turned back into their wire bytes by the runtime's own rule ([`header_text`]).
fn header_map(headers: &web_sys::Headers) -> HeaderMap {
    header_text::map_from_lines(&header_lines(headers), runtime())
}

/// `map` as the `[name, value]` pairs a Request or Response init takes, each value the string
/// the runtime sends as exactly its bytes ([`header_text::encode`]; the runtime validates them
/// there, and the core only produces valid ones).
fn js_headers(map: &HeaderMap) -> JsValue {
    header_pairs(&header_text::lines_of(map, runtime())).into()
}

/// The runtime this isolate runs in, by `navigator.userAgent`, looked up on first use: it
/// decides how header bytes map to JS strings ([`header_text::Runtime`]).
fn runtime() -> Runtime {
    RUNTIME.with(|cell| {
        *cell.get_or_init(|| {
            let user_agent = Reflect::get(&js_sys::global(), &"navigator".into())
                .ok()
                .filter(JsValue::is_object)
                .and_then(|navigator| Reflect::get(&navigator, &"userAgent".into()).ok())
                .and_then(|agent| agent.as_string());
            Runtime::from_user_agent(user_agent.as_deref())
        })
    })
}

fn now_ms() -> u64 {
    // Date.now() is a non-negative integer number of milliseconds.
    js_sys::Date::now() as u64
}

#[wasm_bindgen]
extern "C" {
    /// The runtime's `crypto.getRandomValues`, filling wasm memory in place. Resolved at each
    /// call: it throws (`Err`) where there is no `crypto`. One import call per draw — looking
    /// the function up with `Reflect::get` cost two JS strings made from wasm, two property
    /// lookups, a `Uint8Array` and a copy, ≈ 20 µs of workerd CPU per request
    /// (scripts/profile-edge).
    #[wasm_bindgen(catch, js_namespace = crypto, js_name = getRandomValues)]
    fn get_random_values(buf: &mut [u8]) -> Result<(), JsValue>;
}

/// `N` bytes from the runtime's CSPRNG (Web Crypto), or `None` where it has none — never a
/// weak generator in its place.
fn random_bytes<const N: usize>() -> Option<[u8; N]> {
    let mut out = [0u8; N];
    // Unreachable on Workers and edge-runtime, which both provide Web Crypto.
    get_random_values(&mut out).ok().map(|()| out)
}
