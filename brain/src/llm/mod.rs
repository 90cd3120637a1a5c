//! LLM providers behind one trait, and the router that picks one.
//!
//! - [`ChatProvider`]: one streaming chat call against one provider. Implementation:
//!   [`http::HttpProvider`], the HTTP call itself, over a provider's wire format:
//!   [`openai::OpenAiCompatible`] (OpenAI, vLLM, Ollama, llama.cpp servers) and
//!   [`anthropic::Anthropic`] (Messages API). Both stream, report usage, pass tools and JSON mode.
//! - [`router::LlmRouter`]: resolves a model name to its ordered route of providers; retries
//!   retryable errors with exponential backoff and full jitter, falls back to the next target on
//!   any error *before the first event*; after it, errors reach the caller as stream items.
//! - [`config`]: the provider/model file (`--llm-config`, TOML; schema in
//!   `shared_types::chat::LlmConfigFile`) or, without one, the `local` llama.cpp server.
//! - [`tokens`]: token counting for context budgets.
//! - [`sse`]: the Server-Sent Events decoder both providers use.

pub mod anthropic;
pub mod config;
pub mod http;
pub mod openai;
pub mod router;
pub mod sse;
pub mod tokens;

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// Installs ring as the process's TLS crypto provider. reqwest is built without a backend of
/// its own (`rustls-no-provider`, to avoid linking a second crypto stack next to sqlx's ring)
/// and panics when building a client without one, so call this before any `reqwest::Client`
/// is built. Idempotent.
pub fn install_tls_crypto() {
    // An error means a provider is installed already: just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An API key. Never printed: `Debug` shows `[redacted]`, and only [`ApiKey::expose`] returns
/// the text (for the one request header that needs it).
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// `text` with every occurrence of the key replaced: some providers quote the key they were
/// sent in error bodies, which end up in logs.
pub(crate) fn redact_key(text: &str, key: Option<&ApiKey>) -> String {
    match key {
        Some(key) if !key.expose().is_empty() => text.replace(key.expose(), "[redacted]"),
        _ => text.to_owned(),
    }
}

/// The API key as a header value marked sensitive (never printed by `Debug` or logged by
/// tracing layers), `prefix` first (`"Bearer "` or `""`).
pub(crate) fn key_header(
    provider: &str,
    key: &ApiKey,
    prefix: &str,
) -> Result<reqwest::header::HeaderValue, ProviderError> {
    let mut value = reqwest::header::HeaderValue::from_str(&format!("{prefix}{}", key.expose()))
        .map_err(|_| ProviderError::fatal(provider, "the API key is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Sends a provider call and waits (at most `connect`) for the response head. A transport
/// failure or timeout becomes a retryable [`ProviderError`]; a non-2xx answer one classified
/// by its status, with the key redacted from the body the provider sent back.
pub(crate) async fn send_provider_request(
    provider: &str,
    request: reqwest::RequestBuilder,
    connect: Duration,
    key: Option<&ApiKey>,
) -> Result<reqwest::Response, ProviderError> {
    let response = tokio::time::timeout(connect, request.send())
        .await
        .map_err(|_| {
            ProviderError::retryable(
                provider,
                format!("no response within {} ms", connect.as_millis()),
            )
        })?
        .map_err(|error| ProviderError::from_transport(provider, &error))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        let body = redact_key(&body, key);
        return Err(ProviderError::from_status(provider, status.as_u16(), &body));
    }
    Ok(response)
}

/// One message of a provider call.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatMessage {
    System(String),
    User(String),
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    ToolResult {
        call_id: String,
        output: String,
    },
}

/// A tool call the model made; `arguments` is JSON text as the model produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A tool offered to the model: name, description and a JSON Schema of its input.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// A call to one provider model.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The provider's model id (the router fills it per route target).
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub tools: Vec<ToolSpec>,
    pub max_output_tokens: u32,
    /// Ask for a single JSON object (OpenAI `response_format`; Anthropic via instruction).
    pub json_mode: bool,
    /// The model must call one of `tools` (OpenAI `tool_choice: "required"`, Anthropic
    /// `tool_choice: {"type": "any"}`); ignored without tools.
    pub require_tool: bool,
}

/// Token usage reported by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    Other(String),
}

/// One item of a provider's stream, in provider-neutral form.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    TextDelta(String),
    /// A tool call begins; `index` identifies it in later deltas.
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    ToolCallDelta {
        index: usize,
        arguments_delta: String,
    },
    Usage(TokenUsage),
    Finish(FinishReason),
}

/// Whether retrying the same call may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Rate limits, 5xx, overload, timeouts, refused or reset connections.
    Retryable,
    /// Bad request, bad key, unknown model, malformed answer: retrying would fail the same way.
    Fatal,
}

/// A failed provider call. The message is safe to log and to show (never contains the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {message}")]
pub struct ProviderError {
    pub provider: String,
    pub class: ErrorClass,
    pub message: String,
}

impl ProviderError {
    pub fn retryable(provider: &str, message: impl Into<String>) -> Self {
        Self {
            provider: provider.to_owned(),
            class: ErrorClass::Retryable,
            message: message.into(),
        }
    }

    pub fn fatal(provider: &str, message: impl Into<String>) -> Self {
        Self {
            provider: provider.to_owned(),
            class: ErrorClass::Fatal,
            message: message.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Retryable
    }

    /// Classifies an HTTP error status: 408, 409, 425, 429 and 5xx (Anthropic's 529 included)
    /// are retryable.
    pub fn from_status(provider: &str, status: u16, body: &str) -> Self {
        let detail: String = body.chars().take(300).collect();
        let message = format!("HTTP {status}: {detail}");
        if matches!(status, 408 | 409 | 425 | 429) || status >= 500 {
            Self::retryable(provider, message)
        } else {
            Self::fatal(provider, message)
        }
    }

    /// Classifies a transport error: connection failures and timeouts are retryable.
    pub fn from_transport(provider: &str, error: &reqwest::Error) -> Self {
        // `without_url`: the URL is configuration, but keep messages short and uniform.
        let message = format!("request failed: {}", crate::telemetry::error_chain(error));
        if error.is_decode() || error.is_builder() {
            Self::fatal(provider, message)
        } else {
            Self::retryable(provider, message)
        }
    }
}

/// A provider's event stream.
pub type EventStream = BoxStream<'static, Result<StreamEvent, ProviderError>>;

/// One LLM provider endpoint. Network-bound, so the brain holds it as `Arc<dyn ChatProvider>`.
pub trait ChatProvider: Send + Sync + fmt::Debug {
    /// The configured provider name (`local`, `openai`, …).
    fn name(&self) -> &str;

    /// Starts a streaming call. Resolves once the response head arrived (bounded by the
    /// provider's connect timeout); the stream then yields events, failing with a
    /// [`ProviderError`] when the provider goes silent for longer than its idle timeout or the
    /// stream ends without a finish.
    fn stream_chat(
        &self,
        request: ChatRequest,
    ) -> BoxFuture<'_, Result<EventStream, ProviderError>>;
}

/// Fails the stream when no item arrives within `idle` (a stalled provider must not hold a run
/// forever).
pub(crate) fn with_idle_timeout(
    provider: String,
    stream: impl Stream<Item = Result<StreamEvent, ProviderError>> + Send + 'static,
    idle: Duration,
) -> EventStream {
    let stream = Box::pin(stream);
    futures_util::stream::unfold((stream, false), move |(mut stream, failed)| {
        let provider = provider.clone();
        async move {
            if failed {
                return None;
            }
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(item)) => {
                    let failed = item.is_err();
                    Some((item, (stream, failed)))
                }
                Ok(None) => None,
                Err(_) => Some((
                    Err(ProviderError::retryable(
                        &provider,
                        format!("no data for {} ms", idle.as_millis()),
                    )),
                    (stream, true),
                )),
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_show() {
        let key = ApiKey::new("sk-secret-123".into());
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
        let body = r#"{"error":"Incorrect API key provided: sk-secret-123"}"#;
        assert!(!redact_key(body, Some(&key)).contains("sk-secret-123"));
        assert_eq!(redact_key("x", None), "x");
    }
}
