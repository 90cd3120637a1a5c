//! Conversations on the wire: threads, messages, runs, usage, and the parts of the Vercel AI SDK
//! UI message stream protocol v1 that `POST /api/v1/threads/{id}/messages` streams.
//!
//! The stream is Server-Sent Events with the header [`UI_MESSAGE_STREAM_HEADER`]` = v1`; every
//! event's `data` is one [`UiMessageChunk`] as JSON, the last event's data is [`STREAM_DONE`].
//! The AI SDK client validates chunks strictly, so a chunk never carries fields beyond the
//! protocol's; edgebrain's run id travels in the [`RUN_ID_HEADER`] header and in the `start`
//! chunk's `messageMetadata`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent::{GroundingReport, GroundingStatus, Notice, Provenance};

/// Response header marking a UI message stream (value `v1`).
pub const UI_MESSAGE_STREAM_HEADER: &str = "x-vercel-ai-ui-message-stream";
/// Response header naming the run a streamed (or JSON) reply belongs to.
pub const RUN_ID_HEADER: &str = "x-edgebrain-run-id";
/// The `data` of the final SSE event of every UI message stream.
pub const STREAM_DONE: &str = "[DONE]";

/// A conversation owned by one caller identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Thread {
    pub id: String,
    pub title: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Tokens spent on this thread's runs so far.
    #[serde(default)]
    pub usage: Usage,
    /// The agent answering in this thread (`GET /api/v1/agents`); `None` for threads stored
    /// before agents existed, which use the default agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// `POST /api/v1/threads`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct CreateThread {
    /// Defaults to "New conversation".
    #[serde(default)]
    pub title: Option<String>,
    /// The agent that answers in this thread (a name from `GET /api/v1/agents`); default: the
    /// configured default agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// `PATCH /api/v1/threads/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenameThread {
    pub title: String,
}

/// `GET /api/v1/threads?limit=&cursor=`: newest activity first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadPage {
    pub threads: Vec<Thread>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Query of the paginated listings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct PageParams {
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// A stored message, shaped like the AI SDK's `UIMessage` (`id`, `role`, `parts`) so clients can
/// hand a thread's history to `useChat` as its initial messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: String,
    pub role: Role,
    /// UI message parts: `{"type":"text","text":…}` and, for tool calls,
    /// `{"type":"dynamic-tool","toolName","toolCallId","state":"output-available","input","output"}`.
    pub parts: Vec<Value>,
    pub created_at_ms: i64,
    /// The run that produced an assistant message, or that a user message started.
    pub run_id: Option<String>,
    /// An assistant message's metadata: what the `finish` chunk's `messageMetadata` carried
    /// (run, state, usage, finish reason), so a stored message reads like a streamed one
    /// (AI SDK `UIMessage.metadata`). `None` for user messages and older replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RunMessageMetadata>,
}

/// `GET /api/v1/threads/{id}/messages?limit=&cursor=`: oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessagePage {
    pub messages: Vec<Message>,
    pub next_cursor: Option<String>,
}

/// `POST /api/v1/threads/{id}/messages`. Either `content` (plain text), or the body an
/// unmodified AI SDK `useChat` client sends (`messages`: its UI messages; the last one must be
/// the new user message; earlier ones are ignored because the thread's history is stored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct SendMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub messages: Option<Vec<Value>>,
    /// Model name from the brain's model list; default: the configured default model.
    #[serde(default)]
    pub model: Option<String>,
    /// `false` answers with one [`ChatReply`] JSON document instead of a stream.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Ask the model for a JSON object (providers' JSON mode).
    #[serde(default)]
    pub json: Option<bool>,
    /// Extra instructions for this thread's system prompt (the "profile").
    #[serde(default)]
    pub instructions: Option<String>,
    /// Retrieved context to put in front of the model (e.g. search results), plain text.
    #[serde(default)]
    pub context: Option<Vec<String>>,
    /// Cap on generated tokens for this reply (bounded by the model's configured maximum).
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// Edit and resend, or regenerate: the id of a message of this thread. The turn it belongs
    /// to (its user message and the reply to it) and every later message are removed when this
    /// message is stored, in one transaction, and the model sees the conversation as it was
    /// before that turn. Regenerating an answer is resending its turn's text with the answer's
    /// id here. The removed turns' runs stay (their tokens were spent).
    #[serde(default)]
    pub replace_from: Option<String>,
    /// What an AI SDK `useChat` client asks for: `submit-message`, or `regenerate-message`
    /// (its `regenerate()`: the reply to the last turn, or to [`Self::message_id`]'s turn, is
    /// generated again in place of the old one). A `submit-message` with `message_id` replaces
    /// that message's turn (its edit and resend). `replace_from`, when given, wins.
    #[serde(default)]
    pub trigger: Option<String>,
    /// The AI SDK's `messageId` (see [`Self::trigger`]).
    #[serde(default, rename = "messageId")]
    pub message_id: Option<String>,
}

/// [`SendMessage::trigger`] of an AI SDK `regenerate()`.
pub const TRIGGER_REGENERATE: &str = "regenerate-message";
/// [`SendMessage::trigger`] of an AI SDK `sendMessage()` (with a `messageId`: an edit).
pub const TRIGGER_SUBMIT: &str = "submit-message";

/// The JSON (non-streaming) answer of `POST /api/v1/threads/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatReply {
    pub run: Run,
    /// The assistant message; `None` when the run failed before producing one.
    pub message: Option<Message>,
}

/// Life cycle of a run: `queued → running → succeeded | failed | cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunState {
    pub const fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(RunState::Queued),
            "running" => Some(RunState::Running),
            "succeeded" => Some(RunState::Succeeded),
            "failed" => Some(RunState::Failed),
            "cancelled" => Some(RunState::Cancelled),
            _ => None,
        }
    }

    pub const fn is_finished(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled
        )
    }
}

/// One assistant reply being (or having been) generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: String,
    pub thread_id: String,
    pub state: RunState,
    /// The model name asked for, and the provider/model that actually answered.
    pub model: String,
    pub provider: Option<String>,
    pub provider_model: Option<String>,
    /// Why the run failed (a public message, never provider secrets).
    pub error: Option<String>,
    pub usage: Usage,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// The agent that answered (`None` for runs from before agents existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Why a guardrail refused the turn or cut the reply (the run still `succeeded`: a refusal
    /// is an answer, not a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Why the reply ended (the `finish` chunk's `finishReason`): `length` means it was cut
    /// off at the output limit. `None` while running, for cancelled runs and for runs stored
    /// before finish reasons were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// The grounding check's verdict on the reply's numbers (see the `data-grounding` part);
    /// `None` when the agent has no tools or the run did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding: Option<GroundingStatus>,
}

/// Why the model stopped generating: the AI SDK's `FinishReason`, carried by the `finish` chunk
/// of a UI message stream, the run record and the message metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum FinishReason {
    /// The model ended its answer.
    Stop,
    /// The model hit its output token limit: the reply is cut off.
    Length,
    /// A content filter (a guardrail or the provider's) stopped the reply.
    ContentFilter,
    /// The model still wanted to call tools when the turn ended (step limit reached).
    ToolCalls,
    /// The provider or the run failed.
    Error,
    /// The provider's stream ended without saying why.
    Interrupted,
    /// Any other reason a provider gave.
    Other,
}

impl FinishReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content-filter",
            FinishReason::ToolCalls => "tool-calls",
            FinishReason::Error => "error",
            FinishReason::Interrupted => "interrupted",
            FinishReason::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::ContentFilter,
            FinishReason::ToolCalls,
            FinishReason::Error,
            FinishReason::Interrupted,
            FinishReason::Other,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == text)
    }
}

/// Token counts and cost. Cost is in millionths of a US dollar, from the prices in the model
/// configuration (0 for the local model).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cost_micro_usd: u64,
}

/// `GET /api/v1/usage`: the caller's totals and budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReport {
    pub owner: String,
    pub runs: u64,
    pub usage: Usage,
    /// Total tokens (in + out) this identity may spend; `None` means unlimited.
    pub budget_tokens: Option<u64>,
    /// The grounding check's verdicts over the caller's runs.
    #[serde(default)]
    pub grounding: GroundingCounts,
}

/// Runs per grounding verdict ([`GroundingStatus`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroundingCounts {
    /// Answers whose every number matched the data their turn read.
    pub verified: u64,
    /// Answers stating numbers no tool produced ("not verified against your data").
    pub unverified: u64,
    /// Answers stating no numbers.
    pub no_claims: u64,
}

/// Query of `GET /api/v1/runs/{id}/events`: `after=N` is the query form of `Last-Event-ID`
/// (for clients that cannot set headers); the header wins when both are present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct RunEventsParams {
    #[serde(default)]
    pub after: Option<u64>,
}

/// One chunk of the UI message stream protocol v1 (the subset edgebrain sends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum UiMessageChunk {
    #[serde(rename_all = "camelCase")]
    Start {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_metadata: Option<Value>,
    },
    StartStep,
    FinishStep,
    TextStart {
        id: String,
    },
    TextDelta {
        id: String,
        delta: String,
    },
    TextEnd {
        id: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputStart {
        tool_call_id: String,
        tool_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dynamic: Option<bool>,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputDelta {
        tool_call_id: String,
        input_text_delta: String,
    },
    #[serde(rename_all = "camelCase")]
    ToolInputAvailable {
        tool_call_id: String,
        tool_name: String,
        input: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dynamic: Option<bool>,
    },
    #[serde(rename_all = "camelCase")]
    ToolOutputAvailable {
        tool_call_id: String,
        output: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dynamic: Option<bool>,
    },
    #[serde(rename_all = "camelCase")]
    ToolOutputError {
        tool_call_id: String,
        error_text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dynamic: Option<bool>,
    },
    /// A document the answer draws on (a retrieved chunk): AI SDK `source-document`. The
    /// chunk's place in its document travels in `providerMetadata.edgebrain`
    /// (`documentId`, `chunkIndex`, `start`, `end`: character offsets in the document text).
    #[serde(rename_all = "camelCase")]
    SourceDocument {
        source_id: String,
        media_type: String,
        title: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        filename: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_metadata: Option<Value>,
    },
    /// Provenance of an answer: one data tool call behind it (`data-provenance`, `id` = the
    /// tool call's id; the rows and the chart spec are that tool part's `output`).
    #[serde(rename = "data-provenance")]
    DataProvenance {
        id: String,
        data: Provenance,
    },
    /// The grounding check of the turn's answer (`data-grounding`, `id` = `grounding`).
    #[serde(rename = "data-grounding")]
    DataGrounding {
        id: String,
        data: GroundingReport,
    },
    /// Something the user should know about how the answer was made (`data-notice`).
    #[serde(rename = "data-notice")]
    DataNotice {
        id: String,
        data: Notice,
    },
    #[serde(rename_all = "camelCase")]
    Error {
        error_text: String,
    },
    #[serde(rename_all = "camelCase")]
    MessageMetadata {
        message_metadata: Value,
    },
    #[serde(rename_all = "camelCase")]
    Finish {
        /// Why the reply ended (AI SDK `FinishReason`); `length`: cut off at the output limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        finish_reason: Option<FinishReason>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_metadata: Option<Value>,
    },
    Abort,
}

/// The `messageMetadata` edgebrain puts on the `start` chunk (`runId`, `threadId`, `model`,
/// `agent`) and on the `finish` chunk (`runId`, `state`, `usage`, `steps`, `refusal`,
/// `finishReason`) of a UI message stream; stored replies carry the latter as
/// [`Message::metadata`]. Every field is optional so the same type reads both, and any later
/// additions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RunMessageMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// The model name asked for (`start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// How the run ended (`finish`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
    /// Tokens the run used (`finish`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<MetadataUsage>,
    /// The agent answering (`start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The stored id of the user message this reply answers (`start`): what a client names in
    /// `replace_from` to edit that question, when it knows the question only by its own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_message_id: Option<String>,
    /// Model calls the turn made (`finish`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    /// Why a guardrail refused or cut the reply (`finish`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Why the reply ended (`finish`; the same as the chunk's `finishReason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
}

/// Token counts in [`RunMessageMetadata`] (camelCase, as AI SDK metadata usually is).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MetadataUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The provider/model configuration file (`--llm-config`, TOML). Providers are named
/// endpoints; models are the names clients choose, each an ordered fallback route over
/// providers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfigFile {
    /// The model used when a request names none; must be one of `models`.
    pub default_model: String,
    pub providers: Vec<ProviderEntry>,
    pub models: Vec<ModelEntry>,
}

/// Which wire protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// `POST {base_url}/chat/completions` (OpenAI, vLLM, Ollama, llama.cpp server).
    OpenaiCompatible,
    /// `POST {base_url}/messages` (Anthropic Messages API).
    Anthropic,
}

/// How prompt tokens are counted for context budgeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenizerKind {
    /// The llama.cpp server's `/tokenize` endpoint: the model's own tokenizer, exact.
    LlamaServer,
    /// A conservative estimate (UTF-8 bytes / 3, rounded up), for providers without a
    /// tokenizer endpoint. Over-counts English (~4 bytes/token), so budgets hold.
    Estimate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    pub name: String,
    pub kind: ProviderKind,
    /// E.g. `https://api.openai.com/v1`, `http://127.0.0.1:8081/v1`, `https://api.anthropic.com/v1`.
    pub base_url: String,
    /// Name of the environment variable holding the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Time allowed until the response headers arrive, per attempt.
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Longest silence allowed between two stream chunks.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    /// Retries after the first attempt, for retryable errors only (429, 5xx, timeouts,
    /// connection failures) and only before the first token.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// First backoff delay; doubles per retry, with full jitter, capped at `backoff_max_ms`.
    #[serde(default)]
    pub backoff_base_ms: Option<u64>,
    #[serde(default)]
    pub backoff_max_ms: Option<u64>,
    #[serde(default)]
    pub tokenizer: Option<TokenizerKind>,
    /// For `llama-server`: the server root (`/tokenize` is appended). Default: `base_url`
    /// without a trailing `/v1`.
    #[serde(default)]
    pub tokenizer_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// What clients ask for (`SendMessage::model`).
    pub name: String,
    /// Tried in order: an error before the first token falls through to the next target.
    pub route: Vec<RouteTarget>,
    /// The model's context window in tokens (prompt + output).
    pub context_tokens: u32,
    /// Upper bound of generated tokens per call.
    pub max_output_tokens: u32,
    /// Offer the brain's built-in tools to this model.
    #[serde(default)]
    pub tools: bool,
    #[serde(default)]
    pub input_usd_per_mtok: f64,
    #[serde(default)]
    pub output_usd_per_mtok: f64,
    /// Prompt template file stem in the prompts directory (default `system`).
    #[serde(default)]
    pub system_template: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTarget {
    /// A `providers[].name`.
    pub provider: String,
    /// The model id the provider expects.
    pub model: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chunks_serialize_as_the_ai_sdk_expects() {
        let cases = [
            (
                UiMessageChunk::Start {
                    message_id: Some("m1".into()),
                    message_metadata: None,
                },
                json!({"type":"start","messageId":"m1"}),
            ),
            (UiMessageChunk::StartStep, json!({"type":"start-step"})),
            (
                UiMessageChunk::TextDelta {
                    id: "t".into(),
                    delta: "hi".into(),
                },
                json!({"type":"text-delta","id":"t","delta":"hi"}),
            ),
            (
                UiMessageChunk::ToolInputAvailable {
                    tool_call_id: "c".into(),
                    tool_name: "add".into(),
                    input: json!({"a":1}),
                    dynamic: Some(true),
                },
                json!({"type":"tool-input-available","toolCallId":"c","toolName":"add","input":{"a":1},"dynamic":true}),
            ),
            (
                UiMessageChunk::ToolOutputAvailable {
                    tool_call_id: "c".into(),
                    output: json!(3),
                    dynamic: None,
                },
                json!({"type":"tool-output-available","toolCallId":"c","output":3}),
            ),
            (
                UiMessageChunk::Error {
                    error_text: "boom".into(),
                },
                json!({"type":"error","errorText":"boom"}),
            ),
            (
                UiMessageChunk::Finish {
                    finish_reason: None,
                    message_metadata: None,
                },
                json!({"type":"finish"}),
            ),
            (
                UiMessageChunk::Finish {
                    finish_reason: Some(FinishReason::Length),
                    message_metadata: Some(json!({"runId": "r"})),
                },
                json!({"type":"finish","finishReason":"length","messageMetadata":{"runId":"r"}}),
            ),
            (UiMessageChunk::Abort, json!({"type":"abort"})),
            (
                UiMessageChunk::SourceDocument {
                    source_id: "d1:0".into(),
                    media_type: "text/plain".into(),
                    title: "Returns policy".into(),
                    filename: None,
                    provider_metadata: Some(
                        json!({"edgebrain": {"documentId": "d1", "chunkIndex": 0, "start": 0, "end": 10}}),
                    ),
                },
                json!({"type":"source-document","sourceId":"d1:0","mediaType":"text/plain","title":"Returns policy",
                       "providerMetadata":{"edgebrain":{"documentId":"d1","chunkIndex":0,"start":0,"end":10}}}),
            ),
        ];
        for (chunk, expected) in cases {
            assert_eq!(serde_json::to_value(&chunk).unwrap(), expected);
            let back: UiMessageChunk = serde_json::from_value(expected).unwrap();
            assert_eq!(back, chunk);
        }
    }

    #[test]
    fn run_states_round_trip() {
        for state in [
            RunState::Queued,
            RunState::Running,
            RunState::Succeeded,
            RunState::Failed,
            RunState::Cancelled,
        ] {
            assert_eq!(RunState::parse(state.as_str()), Some(state));
        }
        assert!(RunState::Cancelled.is_finished() && !RunState::Running.is_finished());
    }

    #[test]
    fn finish_reasons_are_the_ai_sdk_names() {
        // The `ai` package's `finish` chunk schema accepts exactly these values.
        let names = [
            "stop",
            "length",
            "content-filter",
            "tool-calls",
            "error",
            "interrupted",
            "other",
        ];
        for name in names {
            let reason = FinishReason::parse(name).unwrap();
            assert_eq!(reason.as_str(), name);
            assert_eq!(serde_json::to_value(reason).unwrap(), json!(name));
        }
        assert_eq!(FinishReason::parse("tool_calls"), None);
    }
}
