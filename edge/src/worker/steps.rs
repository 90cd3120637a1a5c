//! The exports the thin JS executor (`edge/js/executor.mjs`) steps a request through: one
//! synchronous call per step, one string in and one out ([`crate::step_wire`]), no future on
//! the wasm side. The executor does the I/O each action names; every decision is the core's,
//! exactly as for the Rust executor (`run_exchange`). Requests that need more than a proxied
//! exchange — sign-in, a JWT key refresh, a renewal — are handed to the Rust adapter whole
//! ([`step_wire::TO_RUST`]).

use std::cell::RefCell;

use http::Method;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::Env;

use super::{
    HEALTH, cached_config, decide_routed, has_default_cache, inputs_of, isolate_config, lost_track,
    now_ms, random_bytes, random_part, runtime, with_key_store,
};
use crate::core::exchange::slab::ExchangeSlab;
use crate::core::exchange::{Action, BodyRead, Event, Exchange, Surroundings};
use crate::core::{Decision, EdgeConfig, RequestHead, RequestId, Routing, route};
use crate::header_text;
use crate::step_wire::{self, TO_RUST};

thread_local! {
    /// The exchanges in flight in this isolate, by the id the executor names them with.
    static EXCHANGES: RefCell<ExchangeSlab> = RefCell::new(ExchangeSlab::default());
}

/// The first step of a request: the edge's own answer, the Rust adapter's path, or the first
/// action of its exchange.
#[wasm_bindgen(js_name = beginRequest)]
// Exported to JavaScript by wasm-bindgen, which needs it `pub`.
#[allow(unreachable_pub)]
pub fn begin_request(method: &str, url: &str, header_lines: &str, env: &Env) -> String {
    // Every failure here (no RNG, a broken configuration, a method `http` refuses) is answered
    // by the Rust path, which knows how to say so.
    let (Some(random), Ok(config), Ok(method)) = (
        random_bytes::<64>(),
        isolate_config(env),
        Method::from_bytes(method.as_bytes()),
    ) else {
        return TO_RUST.to_owned();
    };
    let now = now_ms();
    let inputs = inputs_of(&random, now);
    if with_key_store(&config, |keys| {
        keys.is_some_and(|keys| keys.is_refresh_due(now / 1000))
    }) {
        return TO_RUST.to_owned();
    }
    let runtime = runtime();
    let headers = header_text::map_from_lines(header_lines, runtime);
    let head = RequestHead {
        method: &method,
        url,
        headers: &headers,
        client_ip: config.client_ip(&headers),
    };
    let decision = match route(&head, &config, inputs) {
        Routing::Decided(decision) => decision,
        Routing::Routed(routed) => decide_routed(&routed, &head, &config, inputs),
    };
    match decision {
        Decision::Respond(response) => step_wire::respond_json(&response, runtime),
        Decision::Proxy(proxy) => {
            let exchange = Exchange::new(*proxy, has_default_cache(), random_part(&random, 3));
            let id = EXCHANGES.with_borrow_mut(|exchanges| exchanges.insert(exchange, now));
            advance(id, Event::Start)
        }
        Decision::SignIn | Decision::RefreshKeys | Decision::RefreshSignIn { .. } => {
            TO_RUST.to_owned()
        }
    }
}

/// The next action of exchange `id`, given the executor's `report` of the last one.
#[wasm_bindgen(js_name = stepRequest)]
#[allow(unreachable_pub)]
pub fn step_request(id: u32, report: &str) -> String {
    // A report the executor could not have meant ends the exchange in the error shape.
    let event = step_wire::event_of(report, runtime()).unwrap_or(Event::ResponseRejected);
    advance(id, event)
}

/// The next action of exchange `id` after its body was read: the bytes, `None` when more than
/// the limit arrived, or `failed` when the client's stream broke.
#[wasm_bindgen(js_name = stepBody)]
#[allow(unreachable_pub)]
pub fn step_body(id: u32, body: Option<Vec<u8>>, failed: bool) -> String {
    let read = match (body, failed) {
        (_, true) => BodyRead::Failed,
        (Some(bytes), false) => BodyRead::Complete(bytes),
        (None, false) => BodyRead::TooLarge,
    };
    advance(id, Event::Body(read))
}

/// Forgets exchange `id` (the executor is done with it).
#[wasm_bindgen(js_name = endRequest)]
#[allow(unreachable_pub)]
pub fn end_request(id: u32) {
    EXCHANGES.with_borrow_mut(|exchanges| exchanges.end(id));
}

fn advance(id: u32, event: Event) -> String {
    let runtime = runtime();
    let exchange = EXCHANGES.with_borrow_mut(|exchanges| exchanges.take(id));
    let (Some(mut exchange), Some(config)) = (exchange, cached_config()) else {
        let response = lost_track(&RequestId::from_random([0; 16]));
        return step_wire::respond_json(&response, runtime);
    };
    let config: &EdgeConfig = &config;
    let json = HEALTH.with_borrow_mut(|health| {
        let mut at = Surroundings {
            config,
            now_ms: now_ms(),
            health,
        };
        match exchange.advance(event, &mut at) {
            Action::ServeCached {
                headers,
                refresh: Some(refresh),
            } => {
                let refresh_id =
                    EXCHANGES.with_borrow_mut(|exchanges| exchanges.insert(*refresh, at.now_ms));
                let action = Action::ServeCached {
                    headers,
                    refresh: None,
                };
                step_wire::action_json(id, &action, runtime, Some(refresh_id))
            }
            action => step_wire::action_json(id, &action, runtime, None),
        }
    });
    EXCHANGES.with_borrow_mut(|exchanges| exchanges.put_back(id, exchange));
    json
}
