//! The wire between the thin JS executor (`edge/js/executor.mjs`) and the exchange: each
//! [`Action`] as one JSON string, and each report of the executor as one JSON string back.
//! One string each way per step, so a step costs one call into the wasm and no wasm-side
//! future. Header lists travel in the lines format of `edge/js/headers.mjs`, converted by the
//! runtime's rule ([`header_text`]). Pure and tested natively.

use std::fmt::Write as _;

use serde::Deserialize;

use crate::core::exchange::{Action, Event, FetchBody, ResponseBody, UpstreamHead};
use crate::core::ratelimit::Verdict;
use crate::core::{EdgeResponse, UpstreamFailure};
use crate::header_text::{self, Runtime};

/// `{"do":"respond",…}`: an answer the edge makes, outside any exchange.
pub fn respond_json(response: &EdgeResponse, runtime: Runtime) -> String {
    let mut out = String::with_capacity(256);
    respond_into(&mut out, None, response, runtime);
    out
}

/// `{"do":"rust"}`: this request takes the Rust adapter's path (sign-in, key refresh).
pub const TO_RUST: &str = r#"{"do":"rust"}"#;

/// The action of exchange `id` as JSON; `refresh_id` names the exchange a stale hit's refresh
/// was stored under.
pub fn action_json(
    id: u32,
    action: &Action<'_>,
    runtime: Runtime,
    refresh_id: Option<u32>,
) -> String {
    let mut out = String::with_capacity(256);
    let lines = |map| header_text::lines_of(map, runtime);
    match action {
        Action::TakeTokens { caller, network } => {
            let _ = write!(out, r#"{{"do":"take","id":{id},"caller":"#);
            take_into(&mut out, &caller.0, &caller.1);
            out.push_str(r#","network":"#);
            match network {
                Some((key, take)) => take_into(&mut out, key, take),
                None => out.push_str("null"),
            }
            out.push('}');
        }
        Action::ReadBody { max_bytes } => {
            let _ = write!(out, r#"{{"do":"read","id":{id},"max":{max_bytes}}}"#);
        }
        Action::MatchCache { key } => {
            let _ = write!(out, r#"{{"do":"match","id":{id},"key":"#);
            string_into(&mut out, key);
            out.push('}');
        }
        Action::FetchBrain(fetch) => {
            let (body, max) = match fetch.body {
                FetchBody::None => ("none", 0),
                FetchBody::Bytes(_) => ("bytes", 0),
                FetchBody::Stream { max_bytes } => ("stream", max_bytes),
            };
            let _ = write!(out, r#"{{"do":"fetch","id":{id},"url":"#);
            string_into(&mut out, fetch.url);
            let _ = write!(out, r#","method":"{}","headers":"#, fetch.method);
            string_into(&mut out, &lines(fetch.headers));
            let _ = write!(
                out,
                r#","body":"{body}","max":{max},"timeout":{}}}"#,
                fetch.timeout_ms
            );
        }
        Action::Log(line) => {
            let _ = write!(out, r#"{{"do":"log","id":{id},"line":"#);
            string_into(&mut out, line);
            out.push('}');
        }
        Action::ServeCached { headers, .. } => {
            let _ = write!(out, r#"{{"do":"serve","id":{id},"headers":"#);
            string_into(&mut out, &lines(headers));
            match refresh_id {
                Some(refresh) => {
                    let _ = write!(out, r#","refresh":{refresh}}}"#);
                }
                None => out.push_str(r#","refresh":null}"#),
            }
        }
        Action::StreamBack {
            headers,
            body,
            store,
        } => {
            let _ = write!(out, r#"{{"do":"stream","id":{id},"headers":"#);
            string_into(&mut out, &lines(headers));
            match body {
                ResponseBody::Null => out.push_str(r#","body":"null""#),
                ResponseBody::Pass => out.push_str(r#","body":"pass""#),
                ResponseBody::GuardedEventStream { broken_event } => {
                    out.push_str(r#","body":"guard","event":"#);
                    string_into(&mut out, &String::from_utf8_lossy(broken_event));
                }
            }
            out.push_str(r#","store":"#);
            match store {
                Some(put) => {
                    out.push_str(r#"{"key":"#);
                    string_into(&mut out, &put.key);
                    out.push_str(r#","headers":"#);
                    string_into(&mut out, &lines(&put.headers));
                    out.push('}');
                }
                None => out.push_str("null"),
            }
            out.push('}');
        }
        Action::Store(put) => {
            let _ = write!(out, r#"{{"do":"store","id":{id},"key":"#);
            string_into(&mut out, &put.key);
            out.push_str(r#","headers":"#);
            string_into(&mut out, &lines(&put.headers));
            out.push('}');
        }
        Action::Discard => {
            let _ = write!(out, r#"{{"do":"discard","id":{id}}}"#);
        }
        Action::Respond(response) => respond_into(&mut out, Some(id), response, runtime),
    }
    out
}

/// `{"do":"respond",…}`, with the exchange's `id` when an exchange answers (the executor then
/// forgets it), without one for an answer made before any exchange began.
fn respond_into(out: &mut String, id: Option<u32>, response: &EdgeResponse, runtime: Runtime) {
    out.push_str(r#"{"do":"respond","#);
    if let Some(id) = id {
        let _ = write!(out, r#""id":{id},"#);
    }
    let _ = write!(out, r#""status":{},"headers":"#, response.status.as_u16());
    string_into(out, &header_text::lines_of(&response.headers, runtime));
    out.push_str(r#","body":"#);
    // The edge's own bodies are JSON (the error shape, health) or empty.
    string_into(out, &String::from_utf8_lossy(&response.body));
    out.push('}');
}

fn take_into(out: &mut String, key: &str, take: &crate::core::ratelimit::TakeRequest) {
    out.push('[');
    string_into(out, key);
    out.push(',');
    out.push_str(&serde_json::to_string(take).unwrap_or_else(|_| "null".to_owned()));
    out.push(']');
}

/// `text` as a JSON string literal.
fn string_into(out: &mut String, text: &str) {
    match serde_json::to_string(text) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// What the JS executor reports (`e` names the kind).
#[derive(Debug, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
enum Report {
    Start,
    Tokens {
        #[serde(default)]
        caller: Option<Verdict>,
        #[serde(default)]
        network: Option<Verdict>,
        #[serde(default)]
        error: Option<String>,
    },
    Cached {
        #[serde(default)]
        headers: Option<String>,
    },
    Upstream {
        status: u16,
        headers: String,
        body: bool,
    },
    Failed {
        why: Failure,
    },
    Logged,
    Rejected,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Failure {
    Unreachable,
    TimedOut,
    TooLarge,
}

/// The event a report stands for; `None` for one that is not JSON of a known kind (the
/// executor's bug: the caller ends the exchange in the error shape).
pub fn event_of(report: &str, runtime: Runtime) -> Option<Event> {
    let report: Report = serde_json::from_str(report).ok()?;
    Some(match report {
        Report::Start => Event::Start,
        Report::Tokens {
            caller: Some(caller),
            network,
            error: None,
        } => Event::Tokens(Ok((caller, network))),
        Report::Tokens { error, .. } => Event::Tokens(Err(
            error.unwrap_or_else(|| "the rate limiter gave no verdict".to_owned())
        )),
        Report::Cached { headers } => {
            Event::Cached(headers.map(|lines| header_text::map_from_lines(&lines, runtime)))
        }
        Report::Upstream {
            status,
            headers,
            body,
        } => Event::Upstream(Ok(UpstreamHead {
            status,
            headers: header_text::map_from_lines(&headers, runtime),
            has_body: body,
        })),
        Report::Failed { why } => Event::Upstream(Err(match why {
            Failure::Unreachable => UpstreamFailure::Unreachable,
            Failure::TimedOut => UpstreamFailure::TimedOut,
            Failure::TooLarge => UpstreamFailure::BodyTooLarge,
        })),
        Report::Logged => Event::Logged,
        Report::Rejected => Event::ResponseRejected,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::{HeaderMap, HeaderValue, Method};
    use serde_json::Value;

    use crate::core::exchange::{CachePut, Fetch};

    fn parsed(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_fetch_is_one_json_object_with_its_headers_as_lines() {
        let mut headers = HeaderMap::new();
        headers.insert("x-u", HeaderValue::from_bytes("café".as_bytes()).unwrap());
        let action = Action::FetchBrain(Fetch {
            url: "http://b/api/v1/x?q=\"1\"",
            method: &Method::POST,
            headers: &headers,
            body: FetchBody::Stream { max_bytes: 1000 },
            timeout_ms: 1500,
        });
        let json = parsed(&action_json(3, &action, Runtime::Latin1, None));
        assert_eq!(json["do"], "fetch");
        assert_eq!(json["id"], 3);
        assert_eq!(json["url"], "http://b/api/v1/x?q=\"1\"");
        assert_eq!(json["body"], "stream");
        assert_eq!(json["max"], 1000);
        let lines = json["headers"].as_str().unwrap();
        assert_eq!(header_text::map_from_lines(lines, Runtime::Latin1), headers);
    }

    #[test]
    fn an_answer_to_stream_back_names_its_body_and_cache_write() {
        let action = Action::StreamBack {
            headers: HeaderMap::new(),
            body: ResponseBody::GuardedEventStream {
                broken_event: b"data: {\"type\":\"error\"}\n\n".to_vec(),
            },
            store: Some(CachePut {
                key: "https://edge-cache.invalid/v1/k".to_owned(),
                headers: HeaderMap::new(),
            }),
        };
        let json = parsed(&action_json(1, &action, Runtime::Utf8, None));
        assert_eq!(json["body"], "guard");
        assert_eq!(json["event"], "data: {\"type\":\"error\"}\n\n");
        assert_eq!(json["store"]["key"], "https://edge-cache.invalid/v1/k");
    }

    #[test]
    fn an_answer_names_its_exchange_only_when_one_began() {
        let response = EdgeResponse::error(
            shared_types::error::ErrorCode::RateLimited,
            "slow down",
            &crate::core::RequestId::from_random([7; 16]),
        );
        let own = parsed(&respond_json(&response, Runtime::Utf8));
        assert_eq!(own["do"], "respond");
        assert!(own.get("id").is_none());
        let exchanged = parsed(&action_json(
            9,
            &Action::Respond(response),
            Runtime::Utf8,
            None,
        ));
        assert_eq!(
            (exchanged["id"].as_u64(), exchanged["status"].as_u64()),
            (Some(9), Some(429))
        );
        let body: Value = serde_json::from_str(exchanged["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "rate_limited");
    }

    #[test]
    fn reports_become_events_and_anything_else_none() {
        let upstream = event_of(
            r#"{"e":"upstream","status":503,"headers":"x-edgebrain-draining\n1\n","body":true}"#,
            Runtime::Utf8,
        );
        let Some(Event::Upstream(Ok(head))) = upstream else {
            panic!("{upstream:?}");
        };
        assert_eq!(
            (head.status, &head.headers["x-edgebrain-draining"]),
            (503, &HeaderValue::from_static("1"))
        );
        assert_eq!(
            event_of(r#"{"e":"failed","why":"timed_out"}"#, Runtime::Utf8),
            Some(Event::Upstream(Err(UpstreamFailure::TimedOut)))
        );
        assert_eq!(
            event_of(r#"{"e":"tokens","error":"no binding"}"#, Runtime::Utf8),
            Some(Event::Tokens(Err("no binding".to_owned())))
        );
        assert_eq!(
            event_of(r#"{"e":"cached"}"#, Runtime::Utf8),
            Some(Event::Cached(None))
        );
        for junk in ["", "{}", r#"{"e":"upstream"}"#, r#"{"e":"nope"}"#, "[1]"] {
            assert_eq!(event_of(junk, Runtime::Utf8), None, "{junk}");
        }
    }
}
