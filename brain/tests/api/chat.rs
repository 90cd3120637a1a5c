//! Conversations, the streaming chat endpoint and runs, against the real local llama.cpp server.
//! Assertions are about protocol and structure, never about the (tiny) model's wording.

use std::time::Duration;

use brain::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_types::chat::{
    ChatReply, FinishReason, MessagePage, RUN_ID_HEADER, Role, Run, RunState, STREAM_DONE, Thread,
    ThreadPage, UI_MESSAGE_STREAM_HEADER, UsageReport,
};
use shared_types::error::ErrorCode;

use crate::helpers::{
    BACKENDS, Backend, Caller, EventReader, ReceivedEvent, TestApp, assert_error, spawn_app_with,
};
use crate::llm_server::chat_llm;
use crate::scripted_llm::{Reply, Scripted};

/// Small replies keep the suite fast on two cores.
const REPLY_TOKENS: u32 = 16;

pub(crate) fn use_chat_llm(config: &mut Config) {
    config.chat.local_llm_url = chat_llm().base_url.clone();
    config.chat.local_llm_max_output_tokens = REPLY_TOKENS;
}

async fn chat_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, use_chat_llm).await
}

pub(crate) async fn create_thread(app: &TestApp, caller: &Caller, title: &str) -> Thread {
    let response = app
        .send_as(
            caller,
            app.client
                .post(app.url("/api/v1/threads"))
                .json(&json!({"title": title})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub(crate) async fn send(
    app: &TestApp,
    caller: &Caller,
    thread: &str,
    body: Value,
) -> reqwest::Response {
    app.send_as(
        caller,
        app.client
            .post(app.url(&format!("/api/v1/threads/{thread}/messages")))
            .json(&body),
    )
    .await
}

/// Parsed stream: `(event id, chunk)` per event; the `[DONE]` event is `(None, "[DONE]")`.
pub(crate) fn chunks(events: &[ReceivedEvent]) -> Vec<(Option<u64>, Value)> {
    events
        .iter()
        .filter(|event| !event.data.is_empty())
        .map(|event| {
            let id = event.id.as_ref().map(|id| id.parse().unwrap());
            let value = if event.data == STREAM_DONE {
                Value::String(STREAM_DONE.into())
            } else {
                serde_json::from_str(&event.data).unwrap()
            };
            (id, value)
        })
        .collect()
}

pub(crate) fn types(chunks: &[(Option<u64>, Value)]) -> Vec<String> {
    chunks
        .iter()
        .map(|(_, chunk)| {
            chunk
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or(STREAM_DONE)
                .to_owned()
        })
        .collect()
}

pub(crate) fn text_of(chunks: &[(Option<u64>, Value)]) -> String {
    chunks
        .iter()
        .filter(|(_, chunk)| chunk["type"] == "text-delta")
        .map(|(_, chunk)| chunk["delta"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn run_id_of(response: &reqwest::Response) -> String {
    response.headers()[RUN_ID_HEADER]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Asks for a reply long enough to still be running, and waits for its first text delta:
/// returns the run's id and the stream, positioned after that delta.
async fn start_long_reply(
    app: &TestApp,
    caller: &Caller,
    thread_id: &str,
) -> (String, EventReader) {
    let response = send(
        app,
        caller,
        thread_id,
        json!({"content": "Tell a long story."}),
    )
    .await;
    let run_id = run_id_of(&response);
    let mut reader = EventReader::new(response);
    while let Some(event) = reader.next().await {
        if event.data.contains("\"text-delta\"") {
            break;
        }
    }
    (run_id, reader)
}

pub(crate) async fn get_run(app: &TestApp, caller: &Caller, run_id: &str) -> Run {
    app.get_json_as(caller, &format!("/api/v1/runs/{run_id}"))
        .await
}

/// The events of a run after event `after`, as the brain streams them.
pub(crate) async fn run_events(
    app: &TestApp,
    caller: &Caller,
    run_id: &str,
    after: u64,
) -> EventReader {
    let path = format!("/api/v1/runs/{run_id}/events?after={after}");
    EventReader::new(app.get_ok_as(caller, &path).await)
}

/// The full replay of a run's events (from the first), parsed.
pub(crate) async fn replay(
    app: &TestApp,
    caller: &Caller,
    run_id: &str,
) -> Vec<(Option<u64>, Value)> {
    chunks(&run_events(app, caller, run_id, 0).await.collect().await)
}

pub(crate) async fn usage(app: &TestApp, caller: &Caller) -> UsageReport {
    app.get_json_as(caller, "/api/v1/usage").await
}

pub(crate) async fn messages(app: &TestApp, caller: &Caller, thread: &str) -> MessagePage {
    app.get_json_as(caller, &format!("/api/v1/threads/{thread}/messages"))
        .await
}

pub(crate) fn assert_well_formed_success(chunks: &[(Option<u64>, Value)]) {
    let types = types(chunks);
    assert_eq!(
        types.first().map(String::as_str),
        Some("start"),
        "{types:?}"
    );
    assert_eq!(
        types.get(1).map(String::as_str),
        Some("start-step"),
        "{types:?}"
    );
    assert_eq!(
        &types[types.len() - 3..],
        ["finish-step", "finish", STREAM_DONE],
        "{types:?}"
    );
    let text: Vec<&str> = types
        .iter()
        .map(String::as_str)
        .filter(|t| t.starts_with("text-"))
        .collect();
    assert_eq!(text.first(), Some(&"text-start"), "{types:?}");
    assert_eq!(text.last(), Some(&"text-end"), "{types:?}");
    assert!(
        text.iter().filter(|t| **t == "text-delta").count() >= 1,
        "{types:?}"
    );
    // Event ids are 1, 2, 3, … and the final [DONE] carries none.
    let ids: Vec<u64> = chunks.iter().filter_map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    assert_eq!(chunks.last().unwrap().0, None);
}

#[tokio::test]
async fn a_streamed_reply_arrives_as_protocol_parts_in_order_and_is_stored() {
    for backend in BACKENDS {
        let mut app = chat_app(backend).await;
        let alice = Caller::user("alice");
        let thread = create_thread(&app, &alice, "first").await;

        let response = send(&app, &alice, &thread.id, json!({"content": "Say hello."})).await;

        assert_eq!(response.status(), StatusCode::OK, "{backend}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()[UI_MESSAGE_STREAM_HEADER], "v1");
        let run_id = run_id_of(&response);
        let received = chunks(&EventReader::new(response).collect().await);
        assert_well_formed_success(&received);
        assert_eq!(received[0].1["messageMetadata"]["runId"], run_id.as_str());

        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(run.state, RunState::Succeeded);
        assert_eq!(run.provider.as_deref(), Some("local"));
        assert!(
            run.usage.input_tokens > 0 && run.usage.output_tokens > 0,
            "{run:?}"
        );
        assert!(run.usage.output_tokens <= u64::from(REPLY_TOKENS));

        let page = messages(&app, &alice, &thread.id).await;
        assert_eq!(page.messages.len(), 2);
        assert_eq!(page.messages[0].role, Role::User);
        assert_eq!(
            page.messages[0].parts,
            vec![json!({"type": "text", "text": "Say hello."})]
        );
        assert_eq!(page.messages[1].role, Role::Assistant);
        assert_eq!(page.messages[1].run_id.as_deref(), Some(run_id.as_str()));
        // The default agent has tools and the local chat model none: the reply says so first.
        assert_eq!(page.messages[1].parts[0]["type"], "data-notice");
        let text = page.messages[1].parts.iter().find(|p| p["type"] == "text");
        assert_eq!(text.unwrap()["text"], text_of(&received).as_str());
        // The start chunk named the stored message, and the question it answers.
        assert_eq!(received[0].1["messageId"], page.messages[1].id.as_str());
        assert_eq!(
            received[0].1["messageMetadata"]["userMessageId"],
            page.messages[0].id.as_str()
        );

        // Usage is accounted per run, thread and identity.
        let thread_now: Thread = app
            .send_as(
                &alice,
                app.client
                    .get(app.url(&format!("/api/v1/threads/{}", thread.id))),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(thread_now.usage, run.usage);
        let usage = usage(&app, &alice).await;
        assert_eq!((usage.runs, usage.usage), (1, run.usage));
        assert_eq!(usage.owner, "user:alice");

        // A second turn sees the history and appends after it.
        let response = send(&app, &alice, &thread.id, json!({"content": "Again."})).await;
        assert_well_formed_success(&chunks(&EventReader::new(response).collect().await));
        let all = messages(&app, &alice, &thread.id).await;
        assert_eq!(all.messages.len(), 4);
        assert_eq!(all.next_cursor, None);
        // Cursor pagination, oldest first: 3 + 1.
        let path = format!("/api/v1/threads/{}/messages", thread.id);
        let first: MessagePage = app
            .send_as(&alice, app.client.get(app.url(&format!("{path}?limit=3"))))
            .await
            .json()
            .await
            .unwrap();
        let cursor = first.next_cursor.clone().expect("a second page");
        let second: MessagePage = app
            .send_as(
                &alice,
                app.client
                    .get(app.url(&format!("{path}?limit=3&cursor={cursor}"))),
            )
            .await
            .json()
            .await
            .unwrap();
        let paged: Vec<&str> = first
            .messages
            .iter()
            .chain(&second.messages)
            .map(|m| m.id.as_str())
            .collect();
        let expected: Vec<&str> = all.messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(paged, expected);
        assert_eq!(second.next_cursor, None);
        let bad = app
            .send_as(&alice, app.client.get(app.url(&format!("{path}?limit=0"))))
            .await;
        assert_error(bad, ErrorCode::InvalidQuery).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn the_use_chat_body_and_json_mode_are_accepted() {
    let mut app = chat_app(Backend::Sqlite).await;
    let alice = Caller::anonymous("browser-1");
    let thread = create_thread(&app, &alice, "ui").await;

    // What an unmodified `useChat` sends: its whole message list; the last one is new.
    let body = json!({
        "id": thread.id, "trigger": "submit-message", "stream": false,
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "Hi there"}]}],
    });
    let response = send(&app, &alice, &thread.id, body).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let reply: ChatReply = response.json().await.unwrap();
    assert_eq!(reply.run.state, RunState::Succeeded);
    let message = reply.message.expect("the assistant message");
    assert_eq!(message.role, Role::Assistant);
    assert!(
        message.parts.iter().any(|part| part["type"] == "text"),
        "{:?}",
        message.parts
    );
    let page = messages(&app, &alice, &thread.id).await;
    assert_eq!(page.messages[0].parts[0]["text"], "Hi there");
    app.stop().await;
}

#[tokio::test]
async fn reconnecting_mid_run_resumes_without_loss_or_duplication() {
    for retention_secs in [300, 0] {
        let mut app = spawn_app_with(Backend::Sqlite, |config| {
            use_chat_llm(config);
            config.chat.local_llm_max_output_tokens = 48;
            config.chat.run_retention_secs = retention_secs;
        })
        .await;
        let alice = Caller::user("alice");
        let thread = create_thread(&app, &alice, "reconnect").await;

        let response = send(
            &app,
            &alice,
            &thread.id,
            json!({"content": "Count to twenty."}),
        )
        .await;
        let run_id = run_id_of(&response);
        let mut reader = EventReader::new(response);
        let mut first = Vec::new();
        for _ in 0..3 {
            first.push(reader.next().await.unwrap());
        }
        drop(reader); // the browser goes away
        let last_seen = first.last().unwrap().id.clone().unwrap();

        let resumed = app
            .send_as(
                &alice,
                app.client
                    .get(app.url(&format!("/api/v1/runs/{run_id}/events")))
                    .header("last-event-id", &last_seen),
            )
            .await;
        assert_eq!(resumed.status(), StatusCode::OK);
        assert_eq!(resumed.headers()[UI_MESSAGE_STREAM_HEADER], "v1");
        let rest = EventReader::new(resumed).collect().await;

        let mut combined = chunks(&first);
        combined.extend(chunks(&rest));
        assert_well_formed_success(&combined);

        // After the end (from memory, or from the database when retention is 0), a full replay
        // equals what the two connections saw together.
        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(run.state, RunState::Succeeded);
        assert_eq!(
            replay(&app, &alice, &run_id).await,
            combined,
            "retention {retention_secs}"
        );
        // The run is the caller's only.
        let bob = app
            .send_as(
                &Caller::user("bob"),
                app.client
                    .get(app.url(&format!("/api/v1/runs/{run_id}/events"))),
            )
            .await;
        assert_error(bob, ErrorCode::NotFound).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn cancel_stops_a_run_and_keeps_what_was_produced() {
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        use_chat_llm(config);
        config.chat.local_llm_max_output_tokens = 200;
    })
    .await;
    let alice = Caller::user("alice");
    let thread = create_thread(&app, &alice, "cancel").await;
    let response = send(
        &app,
        &alice,
        &thread.id,
        json!({"content": "Write a long story."}),
    )
    .await;
    let run_id = run_id_of(&response);
    let mut reader = EventReader::new(response);
    let mut seen = Vec::new();
    while let Some(event) = reader.next().await {
        let is_delta = event.data.contains("\"text-delta\"");
        seen.push(event);
        if is_delta {
            break;
        }
    }

    // One run per thread at a time.
    let busy = send(&app, &alice, &thread.id, json!({"content": "Me too."})).await;
    let body = assert_error(busy, ErrorCode::Conflict).await;
    assert!(
        body.error.message.contains(&run_id),
        "{}",
        body.error.message
    );
    let run = get_run(&app, &alice, &run_id).await;
    assert_eq!(run.state, RunState::Running);

    let cancel = app
        .send_as(
            &alice,
            app.client
                .post(app.url(&format!("/api/v1/runs/{run_id}/cancel"))),
        )
        .await;
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    seen.extend(reader.collect().await);

    let types = types(&chunks(&seen));
    assert_eq!(
        &types[types.len() - 2..],
        ["abort", STREAM_DONE],
        "{types:?}"
    );
    let run = get_run(&app, &alice, &run_id).await;
    assert_eq!(run.state, RunState::Cancelled);
    assert!(run.usage.output_tokens < 200);
    let page = messages(&app, &alice, &thread.id).await;
    assert_eq!(page.messages.len(), 2, "the partial reply is kept");
    let again = app
        .send_as(
            &alice,
            app.client
                .post(app.url(&format!("/api/v1/runs/{run_id}/cancel"))),
        )
        .await;
    assert_error(again, ErrorCode::Conflict).await;
    // The thread accepts a new turn.
    let response = send(&app, &alice, &thread.id, json!({"content": "Short one."})).await;
    assert_well_formed_success(&chunks(&EventReader::new(response).collect().await));
    app.stop().await;
}

/// Writes an LLM configuration file routing model `chat` over `providers` (TOML snippets).
fn llm_config_file(
    app_dir: &std::path::Path,
    providers: &[String],
    route: &[&str],
) -> std::path::PathBuf {
    std::fs::create_dir_all(app_dir).unwrap();
    let route: Vec<String> = route
        .iter()
        .map(|provider| format!(r#"{{ provider = "{provider}", model = "m" }}"#))
        .collect();
    let text = format!(
        "default_model = \"chat\"\n{}\n[[models]]\nname = \"chat\"\nroute = [{}]\ncontext_tokens = 2048\nmax_output_tokens = {REPLY_TOKENS}\n",
        providers.join("\n"),
        route.join(", ")
    );
    let path = app_dir.join("llm.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn provider(name: &str, base_url: &str) -> String {
    format!(
        "[[providers]]\nname = \"{name}\"\nkind = \"openai-compatible\"\nbase_url = \"{base_url}\"\nmax_retries = 1\nbackoff_base_ms = 10\nbackoff_max_ms = 20\nconnect_timeout_ms = 5000\nidle_timeout_ms = 20000\n"
    )
}

#[tokio::test]
async fn a_dead_provider_falls_back_to_the_local_one() {
    let config_dir = std::env::temp_dir().join(format!("edgebrain-llm-{}", uuid::Uuid::new_v4()));
    // Nothing listens on port 1: connection refused, a retryable error.
    let path = llm_config_file(
        &config_dir,
        &[
            provider("dead", "http://127.0.0.1:1/v1"),
            provider("local", &chat_llm().base_url),
        ],
        &["dead", "local"],
    );
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.chat.llm_config = Some(path)
    })
    .await;
    let alice = Caller::user("alice");
    let thread = create_thread(&app, &alice, "fallback").await;

    let response = send(&app, &alice, &thread.id, json!({"content": "Hello?"})).await;
    let run_id = run_id_of(&response);
    assert_well_formed_success(&chunks(&EventReader::new(response).collect().await));

    let run = get_run(&app, &alice, &run_id).await;
    assert_eq!(
        (run.state, run.provider.as_deref()),
        (RunState::Succeeded, Some("local"))
    );
    app.stop().await;
    let _ = std::fs::remove_dir_all(config_dir);
}

#[tokio::test]
async fn a_provider_breaking_mid_stream_yields_an_error_part_and_a_failed_run() {
    for backend in BACKENDS {
        // Two text deltas, then the connection drops: no finish reason, no [DONE].
        let breaker = Scripted::start(vec![Reply::BrokenOff(vec!["Hello", " wor"])]).await;
        let config_dir =
            std::env::temp_dir().join(format!("edgebrain-llm-{}", uuid::Uuid::new_v4()));
        // The local server is listed second: after the first token there is no fallback.
        let path = llm_config_file(
            &config_dir,
            &[
                provider("breaker", breaker.base_url()),
                provider("local", "http://127.0.0.1:1/v1"),
            ],
            &["breaker", "local"],
        );
        let mut app = spawn_app_with(backend, |config| config.chat.llm_config = Some(path)).await;
        let alice = Caller::user("alice");
        let thread = create_thread(&app, &alice, "break").await;

        let response = send(&app, &alice, &thread.id, json!({"content": "Hello?"})).await;
        let run_id = run_id_of(&response);
        let received = chunks(&EventReader::new(response).collect().await);

        // The agent's output filter holds back a short window of text (so a blocked phrase
        // never leaks), so the two deltas may arrive as one: compare with repeats collapsed.
        let mut types = types(&received);
        types.dedup();
        assert_eq!(
            types,
            [
                "start",
                "start-step",
                // The default agent's tools on a model configured without them.
                "data-notice",
                "text-start",
                "text-delta",
                "text-end",
                "finish-step",
                "error",
                "finish",
                STREAM_DONE
            ],
            "{backend}"
        );
        assert_eq!(text_of(&received), "Hello wor");
        let error = received
            .iter()
            .find(|(_, chunk)| chunk["type"] == "error")
            .unwrap()
            .1["errorText"]
            .as_str()
            .unwrap();
        assert!(error.contains("breaker"), "{error}");
        let run = get_run(&app, &alice, &run_id).await;
        assert_eq!(run.state, RunState::Failed);
        assert_eq!(run.provider.as_deref(), Some("breaker"));
        assert_eq!(run.finish_reason, Some(FinishReason::Error));
        // What the user saw is stored.
        let page = messages(&app, &alice, &thread.id).await;
        assert_eq!(page.messages[1].parts[1]["text"], "Hello wor");
        app.stop().await;
        let _ = std::fs::remove_dir_all(config_dir);
    }
}

#[tokio::test]
async fn threads_are_private_paginated_renamable_and_deletable() {
    for backend in BACKENDS {
        let mut app = chat_app(backend).await;
        let (alice, bob) = (
            Caller::user("alice").with_scopes(&["chat"]),
            Caller::anonymous("bob-session"),
        );
        let mut ids = Vec::new();
        for title in ["one", "two", "three"] {
            ids.push(create_thread(&app, &alice, title).await.id);
            // Distinct activity times make the order observable: move the app's clock.
            app.chat.fleet().clock.advance(Duration::from_millis(3));
        }

        let page: ThreadPage = app
            .send_as(&alice, app.client.get(app.url("/api/v1/threads?limit=2")))
            .await
            .json()
            .await
            .unwrap();
        let titles: Vec<&str> = page.threads.iter().map(|t| t.title.as_str()).collect();
        assert_eq!(titles, ["three", "two"], "{backend}");
        let cursor = page.next_cursor.expect("a second page");
        let page: ThreadPage = app
            .send_as(
                &alice,
                app.client
                    .get(app.url(&format!("/api/v1/threads?limit=2&cursor={cursor}"))),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page.threads.len(), 1);
        assert_eq!(page.threads[0].title, "one");
        assert_eq!(page.next_cursor, None);

        // Bob sees nothing of Alice's and cannot touch it.
        let bobs: ThreadPage = app
            .send_as(&bob, app.client.get(app.url("/api/v1/threads")))
            .await
            .json()
            .await
            .unwrap();
        assert!(bobs.threads.is_empty());
        let thread = &ids[0];
        let path = format!("/api/v1/threads/{thread}");
        for request in [
            app.client.get(app.url(&path)),
            app.client
                .patch(app.url(&path))
                .json(&json!({"title": "mine"})),
            app.client.delete(app.url(&path)),
            app.client.get(app.url(&format!("{path}/messages"))),
            app.client
                .post(app.url(&format!("{path}/messages")))
                .json(&json!({"content": "hi"})),
        ] {
            assert_error(app.send_as(&bob, request).await, ErrorCode::NotFound).await;
        }

        let renamed: Thread = app
            .send_as(
                &alice,
                app.client
                    .patch(app.url(&path))
                    .json(&json!({"title": "renamed"})),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(renamed.title, "renamed");
        let empty_title = app
            .send_as(
                &alice,
                app.client
                    .patch(app.url(&path))
                    .json(&json!({"title": " "})),
            )
            .await;
        assert_error(empty_title, ErrorCode::Unprocessable).await;

        let deleted = app.send_as(&alice, app.client.delete(app.url(&path))).await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        assert_error(
            app.send_as(&alice, app.client.get(app.url(&path))).await,
            ErrorCode::NotFound,
        )
        .await;

        // Signed by the edge but without an identity: 401.
        let anonymous = app.send(app.client.get(app.url("/api/v1/threads"))).await;
        assert_error(anonymous, ErrorCode::Unauthorized).await;
        app.stop().await;
    }
}

/// The text parts of a thread's stored messages, as `role: text`.
async fn transcript(app: &TestApp, caller: &Caller, thread: &str) -> Vec<String> {
    messages(app, caller, thread)
        .await
        .messages
        .iter()
        .map(|message| {
            let text: String = message
                .parts
                .iter()
                .filter(|part| part["type"] == "text")
                .filter_map(|part| part["text"].as_str())
                .collect();
            format!("{}: {text}", message.role.as_str())
        })
        .collect()
}

#[tokio::test]
async fn edit_and_regenerate_replace_a_turn_and_everything_after_it() {
    for backend in BACKENDS {
        let mut app = chat_app(backend).await;
        let (alice, bob) = (Caller::user("alice"), Caller::user("bob"));
        let thread = create_thread(&app, &alice, "edits").await;
        let mut replies = Vec::new();
        for text in ["first question", "second question", "third question"] {
            let response = send(
                &app,
                &alice,
                &thread.id,
                json!({"content": text, "stream": false}),
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK, "{backend}");
            let reply: ChatReply = response.json().await.unwrap();
            replies.push(reply.message.expect("a reply"));
        }
        let stored = messages(&app, &alice, &thread.id).await.messages;
        assert_eq!(stored.len(), 6, "{backend}");
        let second_question = stored[2].id.clone();

        // Edit and resend the second question: it, its answer and the third turn go.
        let response = send(
            &app,
            &alice,
            &thread.id,
            json!({"content": "second question, edited", "replace_from": second_question, "stream": false}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{backend}");
        let after_edit = transcript(&app, &alice, &thread.id).await;
        assert_eq!(after_edit.len(), 4, "{backend}: {after_edit:?}");
        assert_eq!(after_edit[0], "user: first question");
        assert_eq!(after_edit[2], "user: second question, edited");
        assert!(after_edit[3].starts_with("assistant: "), "{after_edit:?}");
        // The model saw the conversation as it was before the edited turn.
        let stored = messages(&app, &alice, &thread.id).await.messages;
        let store = &app.store;
        let seq_of_edit = store
            .turn_start(&thread.id, Some(&stored[2].id))
            .await
            .unwrap()
            .expect("the edited turn is stored");
        let history = store
            .recent_history(&thread.id, Some(seq_of_edit), 100)
            .await
            .unwrap();
        assert_eq!(history.len(), 2, "{backend}");

        // What an AI SDK `regenerate()` sends: the messages up to the last user message, the
        // trigger, no message id. The last answer is replaced, the question is not repeated.
        let last_answer = stored[3].id.clone();
        let body = json!({
            "trigger": "regenerate-message", "stream": false,
            "messages": [{"id": "client-id", "role": "user", "parts": [{"type": "text", "text": "second question, edited"}]}],
        });
        let response = send(&app, &alice, &thread.id, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{backend}");
        let regenerated = messages(&app, &alice, &thread.id).await.messages;
        assert_eq!(
            transcript(&app, &alice, &thread.id).await[..3],
            after_edit[..3],
            "{backend}"
        );
        assert_eq!(regenerated.len(), 4, "{backend}");
        assert_ne!(regenerated[3].id, last_answer, "{backend}: a new answer");
        // Regenerating a named answer (`messageId`: the answer's id) replaces its turn too.
        let body = json!({
            "trigger": "regenerate-message", "messageId": regenerated[1].id, "stream": false,
            "messages": [{"id": "x", "role": "user", "parts": [{"type": "text", "text": "first question"}]}],
        });
        assert_eq!(
            send(&app, &alice, &thread.id, body).await.status(),
            StatusCode::OK
        );
        let transcript_now = transcript(&app, &alice, &thread.id).await;
        assert_eq!(transcript_now.len(), 2, "{backend}: {transcript_now:?}");
        assert_eq!(transcript_now[0], "user: first question");

        // Hostile: a message of another thread, an unknown id, NUL and unicode, another
        // caller's thread — refused in the error shape, nothing removed or stored.
        let other = create_thread(&app, &alice, "other").await;
        send(
            &app,
            &alice,
            &other.id,
            json!({"content": "elsewhere", "stream": false}),
        )
        .await;
        let foreign = messages(&app, &alice, &other.id).await.messages[0]
            .id
            .clone();
        let long = "x".repeat(300);
        for id in [foreign.as_str(), "no-such-message", "ünïcødé 🙂", &long] {
            let response = send(
                &app,
                &alice,
                &thread.id,
                json!({"content": "sneaky", "replace_from": id}),
            )
            .await;
            let error = assert_error(response, ErrorCode::Unprocessable).await;
            assert!(error.error.message.contains("replace_from"), "{error:?}");
        }
        // A NUL is refused before anything reads the body's meaning.
        let response = send(
            &app,
            &alice,
            &thread.id,
            json!({"content": "sneaky", "replace_from": "a\u{0}b"}),
        )
        .await;
        assert_error(response, ErrorCode::InvalidJson).await;
        assert_eq!(
            transcript(&app, &alice, &thread.id).await,
            transcript_now,
            "{backend}"
        );
        let response = send(
            &app,
            &bob,
            &thread.id,
            json!({"content": "mine now", "replace_from": foreign}),
        )
        .await;
        assert_error(response, ErrorCode::NotFound).await;
        assert_eq!(messages(&app, &alice, &other.id).await.messages.len(), 2);
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_turns_are_refused_in_the_error_shape_and_store_nothing() {
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        use_chat_llm(config);
        config.chat.budget_tokens_per_owner = Some(1);
        config.chat.local_llm_context_tokens = 200;
    })
    .await;
    let alice = Caller::user("alice");
    let thread = create_thread(&app, &alice, "bad").await;

    assert_error(
        send(&app, &alice, &thread.id, json!({"content": "  "})).await,
        ErrorCode::Unprocessable,
    )
    .await;
    assert_error(
        send(
            &app,
            &alice,
            &thread.id,
            json!({"content": "hi", "model": "nope"}),
        )
        .await,
        ErrorCode::BadRequest,
    )
    .await;
    let not_json = app
        .send_as(
            &alice,
            app.client
                .post(app.url(&format!("/api/v1/threads/{}/messages", thread.id)))
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_error(not_json, ErrorCode::InvalidJson).await;
    // Instructions alone larger than the context window (200 tokens here).
    assert_error(
        send(
            &app,
            &alice,
            &thread.id,
            json!({"content": "hi", "instructions": "x ".repeat(400)}),
        )
        .await,
        ErrorCode::Unprocessable,
    )
    .await;
    assert!(messages(&app, &alice, &thread.id).await.messages.is_empty());

    // The budget (1 token) allows one run, then refuses before calling the model.
    let response = send(&app, &alice, &thread.id, json!({"content": "Hi"})).await;
    assert_well_formed_success(&chunks(&EventReader::new(response).collect().await));
    let refused = send(&app, &alice, &thread.id, json!({"content": "Hi again"})).await;
    assert_error(refused, ErrorCode::RateLimited).await;
    assert_eq!(messages(&app, &alice, &thread.id).await.messages.len(), 2);
    assert_eq!(usage(&app, &alice).await.budget_tokens, Some(1));
    app.stop().await;
}

#[tokio::test]
async fn the_anthropic_provider_streams_through_the_same_endpoint() {
    let claude = Scripted::start(vec![Reply::Text(vec!["Hi from", " Claude"])]).await;
    let base_url = claude.base_url();
    let config_dir = std::env::temp_dir().join(format!("edgebrain-llm-{}", uuid::Uuid::new_v4()));
    // The key comes from an environment variable; HOME exists in every test environment.
    let key = std::env::var("HOME").unwrap();
    let anthropic = format!(
        "[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{base_url}\"\napi_key_env = \"HOME\"\n"
    );
    let path = llm_config_file(&config_dir, &[anthropic], &["claude"]);
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.chat.llm_config = Some(path)
    })
    .await;
    let alice = Caller::user("alice");
    let thread = create_thread(&app, &alice, "claude").await;

    let response = send(
        &app,
        &alice,
        &thread.id,
        json!({"content": "Hello?", "json": true}),
    )
    .await;
    let run_id = run_id_of(&response);
    let received = chunks(&EventReader::new(response).collect().await);

    assert_well_formed_success(&received);
    assert_eq!(text_of(&received), "Hi from Claude");
    let [request] = &claude.recorded()[..] else {
        panic!("one model call: {:?}", claude.recorded())
    };
    let (head, body) = (request.head.to_ascii_lowercase(), &request.body);
    assert!(head.starts_with("post /v1/messages "), "{head}");
    assert!(
        head.contains(&format!("x-api-key: {}", key.to_ascii_lowercase())),
        "{head}"
    );
    assert!(head.contains("anthropic-version: 2023-06-01"), "{head}");
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "m");
    assert!(
        body["system"].as_str().unwrap().contains("JSON"),
        "json mode is an instruction: {body}"
    );
    assert_eq!(body["messages"][0]["role"], "user");
    let run = get_run(&app, &alice, &run_id).await;
    assert_eq!(run.provider.as_deref(), Some("claude"));
    assert_eq!((run.usage.input_tokens, run.usage.output_tokens), (12, 3));
    app.stop().await;
    let _ = std::fs::remove_dir_all(config_dir);
}

#[tokio::test]
async fn json_mode_constrains_the_local_model_to_json() {
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        use_chat_llm(config);
        config.chat.local_llm_max_output_tokens = 32;
    })
    .await;
    let alice = Caller::user("alice");
    let thread = create_thread(&app, &alice, "json").await;

    let response = send(
        &app,
        &alice,
        &thread.id,
        json!({"content": "Give me a JSON object with a greeting.", "json": true, "stream": false}),
    )
    .await;

    let reply: ChatReply = response.json().await.unwrap();
    assert_eq!(reply.run.state, RunState::Succeeded);
    let parts = reply.message.unwrap().parts;
    let text = parts
        .iter()
        .find(|part| part["type"] == "text")
        .and_then(|part| part["text"].as_str())
        .unwrap()
        .to_owned();
    // llama.cpp enforces `response_format` with a grammar: the reply is JSON from its first
    // character (it may be cut off by the token limit, so only the start is checked).
    assert!(text.trim_start().starts_with('{'), "{text}");
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_thread_cancels_its_run_and_leaves_no_orphans() {
    for backend in BACKENDS {
        let mut app = spawn_app_with(backend, |config| {
            use_chat_llm(config);
            config.chat.local_llm_max_output_tokens = 200;
        })
        .await;
        let alice = Caller::user("alice");
        let thread = create_thread(&app, &alice, "doomed").await;
        let (run_id, reader) = start_long_reply(&app, &alice, &thread.id).await;

        let path = format!("/api/v1/threads/{}", thread.id);
        let deleted = app.send_as(&alice, app.client.delete(app.url(&path))).await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        let rest = reader.collect().await;
        assert_eq!(rest.last().unwrap().data, STREAM_DONE, "the run ended");
        assert!(rest.iter().any(|event| event.data.contains("\"abort\"")));

        // The run's end wrote nothing for the deleted thread.
        let store = brain::store::Store::connect(&app.database.config().database().unwrap())
            .await
            .unwrap();
        assert!(
            store
                .recent_history(&thread.id, None, 100)
                .await
                .unwrap()
                .is_empty(),
            "{backend}"
        );
        assert!(
            store
                .get_run("user:alice", &run_id)
                .await
                .unwrap()
                .is_none()
        );
        store.close().await;
        app.stop().await;
    }
}

#[tokio::test]
async fn runs_beyond_the_concurrency_limit_wait_queued() {
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        use_chat_llm(config);
        config.chat.local_llm_max_output_tokens = 200;
        config.chat.max_concurrent_runs = 1;
    })
    .await;
    let alice = Caller::user("alice");
    let (first, second) = (
        create_thread(&app, &alice, "first").await,
        create_thread(&app, &alice, "second").await,
    );
    let busy = send(
        &app,
        &alice,
        &first.id,
        json!({"content": "Tell a long story."}),
    )
    .await;
    let busy_run = run_id_of(&busy);
    assert_eq!(
        get_run(&app, &alice, &busy_run).await.state,
        RunState::Running
    );

    let waiting = send(
        &app,
        &alice,
        &second.id,
        json!({"content": "Hi", "max_output_tokens": 8}),
    )
    .await;
    let waiting_run = run_id_of(&waiting);
    assert_eq!(
        get_run(&app, &alice, &waiting_run).await.state,
        RunState::Queued
    );

    let cancel = app
        .send_as(
            &alice,
            app.client
                .post(app.url(&format!("/api/v1/runs/{busy_run}/cancel"))),
        )
        .await;
    assert_eq!(cancel.status(), StatusCode::ACCEPTED);
    assert_well_formed_success(&chunks(&EventReader::new(waiting).collect().await));
    assert_eq!(
        get_run(&app, &alice, &waiting_run).await.state,
        RunState::Succeeded
    );
    drop(busy);
    app.stop().await;
}

#[tokio::test]
async fn long_threads_are_trimmed_to_the_context_window_with_real_token_counts() {
    const CONTEXT: u32 = 200;
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        use_chat_llm(config);
        config.chat.local_llm_context_tokens = CONTEXT;
    })
    .await;
    let alice = Caller::user("alice");
    let thread = create_thread(&app, &alice, "long").await;
    // Each turn's user message alone is ≈60 tokens: four turns of history cannot all fit.
    let long = "alpha beta gamma delta ".repeat(15);
    let mut last_run = String::new();
    for turn in 0..5 {
        let response = send(
            &app,
            &alice,
            &thread.id,
            json!({"content": format!("{turn} {long}")}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "turn {turn}");
        last_run = run_id_of(&response);
        assert_well_formed_success(&chunks(&EventReader::new(response).collect().await));
    }
    // llama.cpp reports the prompt it actually processed: within the window minus the reply.
    let run = get_run(&app, &alice, &last_run).await;
    let budget = u64::from(CONTEXT - REPLY_TOKENS);
    assert!(
        run.usage.input_tokens > 60 && run.usage.input_tokens <= budget,
        "prompt of {} tokens for a budget of {budget}",
        run.usage.input_tokens
    );
    // Nothing was deleted: trimming only shapes the prompt.
    assert_eq!(messages(&app, &alice, &thread.id).await.messages.len(), 10);
    app.stop().await;
}

#[tokio::test]
async fn retryable_statuses_are_retried_and_client_errors_are_not() {
    let unavailable = Scripted::start(vec![Reply::Status(503), Reply::Text(vec!["ok"])]).await;
    let rejecting = Scripted::start(vec![Reply::Status(400), Reply::Text(vec!["ok"])]).await;
    let config_dir = std::env::temp_dir().join(format!("edgebrain-llm-{}", uuid::Uuid::new_v4()));
    let path = llm_config_file(
        &config_dir,
        &[
            provider("unavailable", unavailable.base_url()),
            provider("rejecting", rejecting.base_url()),
        ],
        &["unavailable"],
    );
    // A second model routed only to the provider that rejects the request.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[[models]]\nname = \"strict\"\nroute = [{{ provider = \"rejecting\", model = \"m\" }}]\ncontext_tokens = 2048\nmax_output_tokens = {REPLY_TOKENS}\n"
    ));
    std::fs::write(&path, text).unwrap();
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.chat.llm_config = Some(path)
    })
    .await;
    let alice = Caller::user("alice");
    let thread = create_thread(&app, &alice, "retries").await;

    // 503 once, then a reply: one retry (max_retries = 1), the run succeeds.
    let response = send(&app, &alice, &thread.id, json!({"content": "Hi"})).await;
    let received = chunks(&EventReader::new(response).collect().await);
    assert_well_formed_success(&received);
    assert_eq!(text_of(&received), "ok");
    assert_eq!(unavailable.requests().len(), 2);

    // 400: not retried; with no other target the run fails with an error part.
    let response = send(
        &app,
        &alice,
        &thread.id,
        json!({"content": "Hi", "model": "strict"}),
    )
    .await;
    let run_id = run_id_of(&response);
    let types = types(&chunks(&EventReader::new(response).collect().await));
    assert_eq!(
        &types[types.len() - 3..],
        ["error", "finish", STREAM_DONE],
        "{types:?}"
    );
    assert_eq!(rejecting.requests().len(), 1);
    let run = get_run(&app, &alice, &run_id).await;
    assert_eq!(run.state, RunState::Failed);
    assert!(run.error.unwrap().contains("rejecting"));
    app.stop().await;
    let _ = std::fs::remove_dir_all(config_dir);
}

#[tokio::test]
async fn a_graceful_shutdown_fails_runs_in_progress_and_keeps_their_output() {
    use crate::agent::config_files;
    use crate::scripted_llm::Gate;
    for backend in BACKENDS {
        // A model held mid-reply (its gate never opens): the run is surely in progress when
        // the shutdown comes (a real model may finish a "long story" early).
        let gate = Gate::new();
        let scripted = Scripted::start(vec![Reply::Held {
            before: vec![
                "Once upon a time, in a land of tables and queries, ",
                "there lived a brain that answered every question ",
            ],
            after: vec!["and never finished."],
            gate: gate.clone(),
        }])
        .await;
        let files = config_files(&scripted, "");
        let mut app = spawn_app_with(backend, |config| {
            config.chat.llm_config = Some(files.llm.clone());
            config.chat.agents_config = Some(files.agents.clone());
            // No time to finish: the run is stopped as soon as the shutdown begins.
            config.server.shutdown_grace_secs = 0;
        })
        .await;
        let alice = Caller::user("alice");
        let thread = create_thread(&app, &alice, "shutdown").await;
        let (run_id, reader) = start_long_reply(&app, &alice, &thread.id).await;
        drop(reader); // no request in flight: the server stops at once, the run is still going

        app.stop().await;

        let store = brain::store::Store::connect(&app.database.config().database().unwrap())
            .await
            .unwrap();
        let stored = store.get_run("user:alice", &run_id).await.unwrap().unwrap();
        assert_eq!(stored.run.state, RunState::Failed, "{backend}");
        assert!(
            stored.run.error.as_deref().unwrap().contains("shut down"),
            "{:?}",
            stored.run
        );
        let history = store.recent_history(&thread.id, None, 10).await.unwrap();
        assert_eq!(history.len(), 2, "the user message and the partial reply");
        assert_eq!(history[1].role, Role::Assistant);
        assert!(!history[1].text.is_empty());
        store.close().await;
    }
}
