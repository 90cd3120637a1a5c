//! `/api/v1/threads`: conversations of the calling identity, and the chat endpoint.
//!
//! - `POST /` create, `GET /?limit=&cursor=` list (newest activity first), `GET /{id}`,
//!   `PATCH /{id}` rename, `DELETE /{id}` (cancels its runs, deletes messages and runs);
//! - `GET /{id}/messages?limit=&cursor=` (oldest first);
//! - `POST /{id}/messages`: store the user message, start a run, and stream the reply as the AI
//!   SDK UI message stream v1 (SSE), or with `"stream": false` answer one JSON [`ChatReply`]
//!   once the run finished; `replace_from` (or an AI SDK regenerate / edit) replaces an
//!   earlier turn and everything after it.
//!
//! Another identity's thread answers 404, exactly like a missing one.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde_json::Value;
use shared_types::chat::{
    ChatReply, CreateThread, MessagePage, PageParams, RUN_ID_HEADER, RenameThread, Role,
    STREAM_DONE, SendMessage, TRIGGER_REGENERATE, TRIGGER_SUBMIT, Thread, ThreadPage,
    UI_MESSAGE_STREAM_HEADER,
};

use super::extract::{Json, Query};
use super::identity::Identity;
use super::{AppState, Error, Result};
use crate::chat::{RunEvents, TurnReplacement, TurnRequest};
use crate::run_log::LogItem;

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;
const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list_threads).post(create_thread))
        .route(
            "/{id}",
            get(get_thread).patch(rename_thread).delete(delete_thread),
        )
        .route("/{id}/messages", get(list_messages).post(send_message))
}

fn page_limit(params: &PageParams) -> Result<u32> {
    match params.limit {
        None => Ok(DEFAULT_PAGE),
        Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
        Some(_) => Err(Error::InvalidQuery(format!(
            "`limit` must be between 1 and {MAX_PAGE}"
        ))),
    }
}

async fn create_thread(
    State(state): State<AppState>,
    identity: Identity,
    Json(body): Json<CreateThread>,
) -> Result<(StatusCode, axum::Json<Thread>)> {
    let thread = state
        .chat
        .create_thread(
            &identity.owner(),
            body.title.as_deref(),
            body.agent.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(thread)))
}

async fn list_threads(
    State(state): State<AppState>,
    identity: Identity,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<ThreadPage>> {
    let limit = page_limit(&params)?;
    // Cursor: `<updated_at_ms>.<id>` of the previous page's last thread.
    let after = match params.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let parsed = cursor
                .split_once('.')
                .and_then(|(ms, id)| Some((ms.parse::<i64>().ok()?, id.to_owned())))
                .filter(|(_, id)| !id.is_empty());
            Some(parsed.ok_or_else(|| Error::InvalidQuery("`cursor` is malformed".to_owned()))?)
        }
    };
    let mut threads = state
        .chat
        .list_threads(&identity.owner(), after, limit)
        .await?;
    let next_cursor = if threads.len() > limit as usize {
        threads.truncate(limit as usize);
        threads
            .last()
            .map(|t| format!("{}.{}", t.updated_at_ms, t.id))
    } else {
        None
    };
    Ok(axum::Json(ThreadPage {
        threads,
        next_cursor,
    }))
}

async fn get_thread(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<axum::Json<Thread>> {
    Ok(axum::Json(state.chat.thread(&identity.owner(), &id).await?))
}

async fn rename_thread(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Json(body): Json<RenameThread>,
) -> Result<axum::Json<Thread>> {
    let thread = state
        .chat
        .rename_thread(&identity.owner(), &id, &body.title)
        .await?;
    Ok(axum::Json(thread))
}

async fn delete_thread(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    state.chat.delete_thread(&identity.owner(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_messages(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<MessagePage>> {
    message_page(&state, &identity.owner(), &id, &params).await
}

/// A page of `owner`'s thread `id`, oldest first (`limit`, `cursor`: the last message number).
pub(super) async fn message_page(
    state: &AppState,
    owner: &str,
    id: &str,
    params: &PageParams,
) -> Result<axum::Json<MessagePage>> {
    let limit = page_limit(params)?;
    // Cursor: the `seq` of the previous page's last message.
    let after = match params.cursor.as_deref() {
        None => 0,
        Some(cursor) => cursor
            .parse::<i64>()
            .map_err(|_| Error::InvalidQuery("`cursor` is malformed".to_owned()))?,
    };
    let mut rows = state.chat.messages(owner, id, after, limit).await?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|(seq, _)| seq.to_string())
    } else {
        None
    };
    Ok(axum::Json(MessagePage {
        messages: rows.into_iter().map(|(_, message)| message).collect(),
        next_cursor,
    }))
}

/// The new user message's text: `content`, or the text parts of the last `useChat` message.
fn user_text(body: &SendMessage) -> Result<String> {
    if let Some(content) = &body.content {
        return non_empty(content);
    }
    let last = body
        .messages
        .as_ref()
        .and_then(|messages| messages.last())
        .ok_or_else(|| Error::Unprocessable("send `content` or `messages`".to_owned()))?;
    if last.get("role").and_then(Value::as_str) != Some(Role::User.as_str()) {
        return Err(Error::Unprocessable(
            "the last of `messages` must be a user message".to_owned(),
        ));
    }
    let text: String = last
        .get("parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    non_empty(&text)
}

/// The earlier turn this message replaces: `replace_from`, else what an AI SDK client's
/// regenerate or edit (`trigger` + `messageId`) names.
fn replaced_turn(body: &SendMessage) -> Option<TurnReplacement> {
    if let Some(message_id) = &body.replace_from {
        return Some(TurnReplacement::TurnOf(message_id.clone()));
    }
    match (body.trigger.as_deref(), &body.message_id) {
        (Some(TRIGGER_SUBMIT | TRIGGER_REGENERATE), Some(message_id)) => {
            Some(TurnReplacement::TurnOf(message_id.clone()))
        }
        (Some(TRIGGER_REGENERATE), None) => Some(TurnReplacement::LastTurn),
        _ => None,
    }
}

fn non_empty(text: &str) -> Result<String> {
    if text.trim().is_empty() {
        return Err(Error::Unprocessable("the message is empty".to_owned()));
    }
    Ok(text.to_owned())
}

async fn send_message(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Json(body): Json<SendMessage>,
) -> Result<Response> {
    let text = user_text(&body)?;
    let owner = identity.owner();
    let turn = TurnRequest {
        budget_key: identity.budget_key(),
        text,
        model: body.model.clone(),
        json_mode: body.json.unwrap_or(false),
        instructions: body.instructions.clone(),
        context: body.context.clone().unwrap_or_default(),
        max_output_tokens: body.max_output_tokens,
        replaces: replaced_turn(&body),
    };
    let run_id = state.chat.start_run(&owner, &id, turn).await?;
    let events = state.chat.follow(&owner, &run_id, 0).await?;
    if body.stream == Some(false) {
        // Wait for the end of the run (bounded by the run timeout), then answer from the store.
        let mut events = events;
        while events.next().await.is_some() {}
        let run = state.chat.get_run(&owner, &run_id).await?.run;
        let message = state.chat.reply_of_run(&run_id).await?;
        let mut response = axum::Json(ChatReply { run, message }).into_response();
        set_header(&mut response, RUN_ID_HEADER, &run_id);
        return Ok(response);
    }
    Ok(ui_message_stream(events, &run_id))
}

fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), value);
    }
}

/// An SSE response in the UI message stream protocol v1: each log event as `id: <seq>` +
/// `data: <chunk>`, then `data: [DONE]`.
pub(crate) fn ui_message_stream(events: RunEvents, run_id: &str) -> Response {
    let sse_events = events.map(|item| {
        Ok::<_, std::convert::Infallible>(match item {
            LogItem::Event { seq, data } => Event::default().id(seq.to_string()).data(&*data),
            LogItem::Done => Event::default().data(STREAM_DONE),
        })
    });
    let mut response = Sse::new(sse_events)
        .keep_alive(KeepAlive::default())
        .into_response();
    set_header(&mut response, UI_MESSAGE_STREAM_HEADER, "v1");
    set_header(&mut response, RUN_ID_HEADER, run_id);
    response
        .headers_mut()
        .insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    response
}
