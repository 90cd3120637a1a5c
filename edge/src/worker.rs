//! The Workers adapter: carries out the core's decisions in the Workers runtime.
//!
//! Everything here is glue: read config and request parts, supply `now` and randomness, call
//! [`crate::core`], then do the I/O the decision asks for. No routing or policy lives here.
//! Every failure becomes a response in the error shape; the handler never returns `Err` and
//! never panics (a panic would abort the wasm instance for all requests in flight).

use std::cell::OnceCell;

use futures_util::future::{Either, select};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use js_sys::{Reflect, Uint8Array};
use shared_types::signature::body_digest;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use worker::{Context, Delay, Env, Request, Response, console_error, event};

use crate::core::response::{is_event_stream, stream_broken_event};
use crate::core::{
    BodySigning, ConfigError, Decision, EdgeConfig, EdgeResponse, Inputs, ProxyRequest,
    RequestHead, RequestId, UpstreamFailure, decide, upstream_failure, upstream_response_headers,
};
use shared_types::error::ErrorCode;

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Ok(Response::from(handle(request.inner(), &env).await))
}

async fn handle(request: &web_sys::Request, env: &Env) -> web_sys::Response {
    let inputs = Inputs {
        now_ms: now_ms(),
        random: random_bytes(),
        session_random: random_bytes(),
        nonce: random_bytes(),
    };
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
    let client_ip = headers
        .get("cf-connecting-ip")
        .and_then(|v| v.to_str().ok());
    let head = RequestHead {
        method: &method,
        url: &url,
        headers: &headers,
        client_ip,
    };

    match decide(&head, &config, inputs) {
        Decision::Respond(response) => respond(response),
        Decision::Proxy(mut proxy) => match forward(request, &mut proxy, &config).await {
            Ok(upstream) => stream_back(upstream, &proxy).unwrap_or_else(|| {
                respond(upstream_failure(
                    UpstreamFailure::Unreachable,
                    &proxy.request_id,
                    &config,
                ))
            }),
            Err(failure) => {
                console_error!(
                    "request_id={} upstream {:?}: {} {}",
                    proxy.request_id,
                    failure,
                    proxy.method,
                    proxy.url
                );
                respond(upstream_failure(failure, &proxy.request_id, &config))
            }
        },
    }
}

/// Signs and sends the proxied request, racing the brain's response headers against the
/// deadline. A body the core wants hashed is read into memory first (bounded by
/// `SIGN_BODY_MAX_BYTES` through its `content-length`); any other body streams through.
async fn forward(
    original: &web_sys::Request,
    proxy: &mut ProxyRequest,
    config: &EdgeConfig,
) -> Result<web_sys::Response, UpstreamFailure> {
    let unreachable = |_| UpstreamFailure::Unreachable;
    let controller = web_sys::AbortController::new().map_err(unreachable)?;
    let init = web_sys::RequestInit::new();
    init.set_method(proxy.method.as_str());
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_signal(Some(&controller.signal()));
    match proxy.body_signing {
        BodySigning::Hash => {
            let buffer = JsFuture::from(original.array_buffer().map_err(unreachable)?)
                .await
                .map_err(unreachable)?;
            let bytes = Uint8Array::new(&buffer).to_vec();
            proxy.sign(Some(&body_digest(&bytes)), config);
            init.set_body(&Uint8Array::from(bytes.as_slice()).into());
        }
        BodySigning::Stream => {
            proxy.sign(None, config);
            if let Some(body) = original.body() {
                init.set_body(&body.into());
                // Streaming request bodies must be half-duplex (Fetch standard; undici).
                let _ = Reflect::set(&init, &"duplex".into(), &"half".into());
            }
        }
        BodySigning::Empty => proxy.sign(None, config),
    }
    init.set_headers(&js_headers(&proxy.headers).map_err(unreachable)?.into());

    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let response = JsFuture::from(global.fetch_with_str_and_init(&proxy.url, &init));
    let timeout = Delay::from(proxy.remaining(now_ms()));
    match select(response, timeout).await {
        Either::Left((Ok(value), _)) => value
            .dyn_into::<web_sys::Response>()
            .map_err(|_| UpstreamFailure::Unreachable),
        Either::Left((Err(_), _)) => Err(UpstreamFailure::Unreachable),
        Either::Right(((), _)) => {
            controller.abort();
            Err(UpstreamFailure::TimedOut)
        }
    }
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

/// Hands the brain's body stream straight back: no copy into wasm, no buffering, so SSE events
/// reach the client as the brain writes them. Event streams are wrapped so that one breaking
/// off mid-way ends with an explicit error event.
fn stream_back(upstream: web_sys::Response, proxy: &ProxyRequest) -> Option<web_sys::Response> {
    let upstream_headers = header_map(&upstream.headers());
    let event_stream = is_event_stream(&upstream_headers);
    let headers = upstream_response_headers(&upstream_headers, proxy);
    let init = web_sys::ResponseInit::new();
    init.set_status(upstream.status());
    init.set_status_text(&upstream.status_text());
    init.set_headers(&js_headers(&headers).ok()?.into());
    // Null-body statuses must not be given a stream (the Response constructor throws).
    let body = if matches!(upstream.status(), 101 | 204 | 205 | 304) {
        None
    } else if event_stream {
        let error_event = stream_broken_event(&proxy.request_id);
        upstream
            .body()
            .map(|body| guard_event_stream(&body, &Uint8Array::from(error_event.as_slice())))
    } else {
        upstream.body()
    };
    web_sys::Response::new_with_opt_readable_stream_and_init(body.as_ref(), &init).ok()
}

fn respond(response: EdgeResponse) -> web_sys::Response {
    let init = web_sys::ResponseInit::new();
    init.set_status(response.status.as_u16());
    if let Ok(headers) = js_headers(&response.headers) {
        init.set_headers(&headers.into());
    }
    let mut body = response.body;
    let body = (!body.is_empty()).then_some(body.as_mut_slice());
    web_sys::Response::new_with_opt_u8_array_and_init(body, &init)
        // Only reachable if the runtime rejects a status we never produce; answer a bare 500.
        .or_else(|_| {
            web_sys::Response::new_with_opt_str_and_init(None, &web_sys::ResponseInit::new())
        })
        .unwrap_or_else(|_| JsValue::UNDEFINED.unchecked_into())
}

thread_local! {
    /// Wrangler `[vars]` and secrets are fixed for the life of an isolate (changing them means
    /// a new deployment, hence new isolates), so they are read and parsed on its first request
    /// only, not on the hot path. A broken configuration stays broken until redeployed.
    static CONFIG: OnceCell<Result<EdgeConfig, ConfigError>> = const { OnceCell::new() };
}

fn isolate_config(env: &Env) -> Result<EdgeConfig, ConfigError> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| EdgeConfig::from_vars(|name| read_var(env, name)))
            .clone()
    })
}

fn read_var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .map(|v| v.to_string())
        .or_else(|_| env.secret(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.is_empty())
}

/// Copies JS headers into a `HeaderMap` without panicking on anything the runtime hands over.
fn header_map(headers: &web_sys::Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    let Ok(Some(entries)) = js_sys::try_iter(headers) else {
        return map;
    };
    for entry in entries.flatten() {
        let pair: js_sys::Array = entry.unchecked_into();
        let (Some(name), Some(value)) = (pair.get(0).as_string(), pair.get(1).as_string()) else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            latin1_value(&value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// JS header values are byte strings (each char 0–255): map chars back to the bytes they were.
fn latin1_value(value: &str) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    if value.is_ascii() {
        return HeaderValue::from_str(value);
    }
    let bytes: Vec<u8> = value
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    HeaderValue::from_bytes(&bytes)
}

fn js_headers(map: &HeaderMap) -> Result<web_sys::Headers, JsValue> {
    let headers = web_sys::Headers::new()?;
    for (name, value) in map {
        // Inverse of `latin1_value`: each byte becomes the char with that code point.
        let value: String = value.as_bytes().iter().map(|&b| char::from(b)).collect();
        headers.append(name.as_str(), &value)?;
    }
    Ok(headers)
}

fn now_ms() -> u64 {
    // Date.now() is a non-negative integer number of milliseconds.
    js_sys::Date::now() as u64
}

fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    let array = Uint8Array::new_with_length(16);
    let filled = Reflect::get(&js_sys::global(), &"crypto".into())
        .and_then(|crypto| {
            let get_random_values: js_sys::Function =
                Reflect::get(&crypto, &"getRandomValues".into())?.dyn_into()?;
            get_random_values.call1(&crypto, &array)
        })
        .is_ok();
    if filled {
        array.copy_to(&mut out);
    } else {
        // Unreachable on Workers and edge-runtime, which both provide Web Crypto.
        for byte in &mut out {
            *byte = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    out
}
