//! The one scripted model server of the brain's tests: a real HTTP server on loopback that
//! answers, call by call, from a script — OpenAI-compatible `/v1/chat/completions` (text,
//! tool calls, cut-off and broken-off streams, held streams, error statuses), the same replies
//! in the Anthropic Messages protocol on `/v1/messages`, and `/v1/moderations` (flags inputs
//! containing "evil"); and a stand-in embeddings server ([`fake_embeddings_server`]). It records every model call (request head and JSON body), so tests
//! check what the brain sent. Tests that need a real model use `llm_server` instead.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scripted model answer.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Text(Vec<&'static str>),
    /// Text that stops at the output limit (`finish_reason: "length"`).
    CutOff(Vec<&'static str>),
    /// Text, then the stream ends without a finish or the end marker (a provider breaking off).
    BrokenOff(Vec<&'static str>),
    /// `(tool name, arguments JSON)` per call, all in one step.
    Tools(Vec<(&'static str, Value)>),
    /// Text, then tool calls, in one step (small models write a preamble, or a guess, first).
    TextThenTools(Vec<&'static str>, Vec<(&'static str, Value)>),
    /// Text whose `before` deltas stream at once; the `after` deltas and the end wait until
    /// `gate` opens, so a test holds a run mid-stream without sleeping.
    Held {
        before: Vec<&'static str>,
        after: Vec<&'static str>,
        gate: Gate,
    },
    /// An error answer with this HTTP status (a provider refusing or overloaded).
    Status(u16),
}

/// A gate a [`Reply::Held`] waits at; clones share it.
#[derive(Debug, Clone)]
pub(crate) struct Gate(Arc<tokio::sync::watch::Sender<bool>>);

impl Gate {
    pub(crate) fn new() -> Self {
        Self(Arc::new(tokio::sync::watch::channel(false).0))
    }

    pub(crate) fn open(&self) {
        self.0.send_replace(true);
    }

    async fn wait(&self) {
        let mut receiver = self.0.subscribe();
        let _ = receiver.wait_for(|open| *open).await;
    }
}

/// One model call the server received.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    /// Request line and headers.
    pub(crate) head: String,
    pub(crate) body: Value,
}

/// The scripted server: each model call (`/chat/completions` or `/messages`) gets the next
/// reply (the last one repeats; an empty script answers "ok").
#[derive(Debug, Clone)]
pub(crate) struct Scripted {
    base_url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Scripted {
    pub(crate) async fn start(script: Vec<Reply>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let shared_script = Arc::clone(&script);
        let recorded = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let recorded = Arc::clone(&recorded);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let (head, body) = read_request(&mut socket).await;
                    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let mut held = None;
                    let answer = if head.starts_with("POST /v1/moderations") {
                        let flagged = body["input"].as_str().unwrap_or("").contains("evil");
                        let json = json!({"results": [{"flagged": flagged, "categories": {"violence": flagged}}]}).to_string();
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                            json.len()
                        )
                    } else {
                        let anthropic = head.starts_with("POST /v1/messages");
                        recorded.lock().unwrap().push(Recorded {
                            head: head.clone(),
                            body,
                        });
                        let reply = {
                            let mut script = script.lock().unwrap();
                            if script.len() > 1 {
                                script.pop_front().unwrap()
                            } else {
                                script.front().cloned().unwrap_or(Reply::Text(vec!["ok"]))
                            }
                        };
                        match &reply {
                            Reply::Held {
                                before,
                                after,
                                gate,
                            } if !anthropic => {
                                let (first, rest) = held_sse(before, after);
                                held = Some((gate.clone(), rest));
                                first
                            }
                            _ if anthropic => anthropic_sse(&reply),
                            _ => sse(&reply),
                        }
                    };
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.flush().await;
                    if let Some((gate, rest)) = held {
                        gate.wait().await;
                        let _ = socket.write_all(rest.as_bytes()).await;
                        let _ = socket.flush().await;
                    }
                });
            }
        });
        Self {
            base_url: format!("http://{address}/v1"),
            requests,
            script: shared_script,
        }
    }

    /// Replaces the script (for tests that learn ids only after the server started).
    pub(crate) fn set_script(&self, script: Vec<Reply>) {
        *self.script.lock().unwrap() = VecDeque::from(script);
    }

    /// `http://127.0.0.1:<port>/v1`: a provider's `base_url`.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The JSON bodies of the model calls so far.
    pub(crate) fn requests(&self) -> Vec<Value> {
        self.recorded().into_iter().map(|call| call.body).collect()
    }

    /// The model calls so far, with their heads.
    pub(crate) fn recorded(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> (String, String) {
    let mut request = Vec::new();
    let mut buffer = [0_u8; 16 * 1024];
    loop {
        let read = socket.read(&mut buffer).await.unwrap_or(0);
        request.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&request).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length || read == 0 {
                return (head.to_owned(), body.to_owned());
            }
        }
        if read == 0 {
            return (text, String::new());
        }
    }
}

/// A [`Reply::Held`]: the head and the `before` deltas; then the `after` deltas and the end.
fn held_sse(before: &[&str], after: &[&str]) -> (String, String) {
    let delta = |text: &str| {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": text}}]});
        format!("data: {chunk}\n\n")
    };
    let mut first = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
    );
    for text in before {
        first.push_str(&delta(text));
    }
    let mut rest = String::new();
    for text in after {
        rest.push_str(&delta(text));
    }
    let finish = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let usage = json!({"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 5}});
    rest.push_str(&format!(
        "data: {finish}\n\ndata: {usage}\n\ndata: [DONE]\n\n"
    ));
    (first, rest)
}

fn sse(reply: &Reply) -> String {
    let mut chunks = Vec::new();
    match reply {
        Reply::Text(deltas) | Reply::CutOff(deltas) => {
            for delta in deltas {
                chunks.push(json!({"choices": [{"index": 0, "delta": {"content": delta}}]}));
            }
            let reason = if matches!(reply, Reply::CutOff(_)) {
                "length"
            } else {
                "stop"
            };
            chunks.push(json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}));
        }
        Reply::BrokenOff(deltas) => {
            let mut answer = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            );
            for delta in deltas {
                let chunk = json!({"choices": [{"index": 0, "delta": {"content": delta}}]});
                answer.push_str(&format!("data: {chunk}\n\n"));
            }
            return answer;
        }
        Reply::Held { before, after, .. } => {
            let (first, rest) = held_sse(before, after);
            return first + &rest;
        }
        Reply::Status(status) => return error_answer(*status),
        Reply::Tools(calls) | Reply::TextThenTools(_, calls) => {
            if let Reply::TextThenTools(deltas, _) = reply {
                for delta in deltas {
                    chunks.push(json!({"choices": [{"index": 0, "delta": {"content": delta}}]}));
                }
            }
            for (index, (name, arguments)) in calls.iter().enumerate() {
                let id = format!("call_{}", uuid::Uuid::new_v4().simple());
                chunks.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}}]}));
                let text = arguments.to_string();
                let (first, second) = text.split_at(text.len() / 2);
                for part in [first, second] {
                    chunks.push(json!({"choices": [{"index": 0, "delta": {"tool_calls": [
                        {"index": index, "function": {"arguments": part}}]}}]}));
                }
            }
            chunks.push(
                json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
            );
        }
    }
    chunks.push(json!({"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 5}}));
    let mut answer = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
    );
    for chunk in chunks {
        answer.push_str(&format!("data: {chunk}\n\n"));
    }
    answer.push_str("data: [DONE]\n\n");
    answer
}

/// An error answer in the providers' shape.
fn error_answer(status: u16) -> String {
    let body = r#"{"error":{"message":"scripted failure"}}"#;
    format!(
        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A reply in the Anthropic Messages stream protocol (text replies; a held one is sent whole).
fn anthropic_sse(reply: &Reply) -> String {
    let deltas: Vec<&str> = match reply {
        Reply::Status(status) => return error_answer(*status),
        Reply::Text(deltas) | Reply::CutOff(deltas) | Reply::BrokenOff(deltas) => deltas.clone(),
        Reply::Held { before, after, .. } => before.iter().chain(after).copied().collect(),
        Reply::Tools(_) | Reply::TextThenTools(..) => {
            panic!("the scripted Anthropic protocol speaks text only")
        }
    };
    let mut events = vec![
        json!({"type":"message_start","message":{"id":"m","usage":{"input_tokens":12,"output_tokens":1}}}),
        json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
    ];
    for delta in deltas {
        events.push(json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":delta}}));
    }
    if !matches!(reply, Reply::BrokenOff(_)) {
        let stop = if matches!(reply, Reply::CutOff(_)) {
            "max_tokens"
        } else {
            "end_turn"
        };
        events.push(json!({"type":"content_block_stop","index":0}));
        events.push(json!({"type":"message_delta","delta":{"stop_reason":stop},"usage":{"output_tokens":3}}));
        events.push(json!({"type":"message_stop"}));
    }
    let mut answer = String::from(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
    );
    for event in events {
        answer.push_str(&format!(
            "event: {}\ndata: {event}\n\n",
            event["type"].as_str().unwrap_or_default()
        ));
    }
    answer
}

/// A stand-in OpenAI-compatible embeddings server on 127.0.0.1: vectors count letters (26
/// dims), so texts sharing words point the same way. Records every input it embedded; answers
/// 500 when an input contains "FAIL".
pub(crate) async fn fake_embeddings_server()
-> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::routing::post;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let recorded = std::sync::Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/v1/embeddings",
        post(move |axum::Json(body): axum::Json<serde_json::Value>| {
            let recorded = std::sync::Arc::clone(&recorded);
            async move {
                assert_eq!(body["model"], "fake-embed");
                let inputs: Vec<String> = body["input"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect();
                if inputs.iter().any(|input| input.contains("STALL")) {
                    // An embeddings service that never answers.
                    std::future::pending::<()>().await;
                }
                if inputs.iter().any(|input| input.contains("FAIL")) {
                    return (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(serde_json::json!({"error": "boom"})),
                    );
                }
                recorded.lock().unwrap().extend(inputs.iter().cloned());
                let data: Vec<serde_json::Value> = inputs
                    .iter()
                    .enumerate()
                    .map(|(index, input)| {
                        let mut vector = vec![0.0f64; 26];
                        for c in input.to_lowercase().chars().filter(char::is_ascii_lowercase) {
                            vector[(c as u8 - b'a') as usize] += 1.0;
                        }
                        serde_json::json!({"object": "embedding", "index": index, "embedding": vector})
                    })
                    .rev() // out of order on purpose: the client must sort by index
                    .collect();
                (
                    axum::http::StatusCode::OK,
                    axum::Json(serde_json::json!({"object": "list", "data": data, "model": "fake-embed"})),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/v1"), seen)
}
