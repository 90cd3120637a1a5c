//! Agents on the wire: the agents a caller can choose (`GET /api/v1/agents`), the chart
//! specification the `chart` tool produces, human escalations (`/api/v1/escalations`), and the
//! schema of the agents configuration file (`--agents-config`, TOML).
//!
//! # The `chart` tool contract
//! Input: a SQL query (run exactly like the `sql` tool), a mark (`bar|line|point|area|arc`) and
//! the field names for `x`, `y` and optionally `color`. Output: [`ChartToolOutput`], i.e.
//! `{"spec": <Vega-Lite v5>, "rows": n, "truncated": bool}` where the spec carries `"$schema"`,
//! `"mark"`, `"encoding"` and the rows inline as `"data": {"values": [...]}`, so a client can
//! draw it with no further request.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::data::DatasetRef;
use crate::knowledge::DocumentChunk;

/// `$schema` of every chart spec the brain produces.
pub const VEGA_LITE_SCHEMA: &str = "https://vega.github.io/schema/vega-lite/v5.json";

/// The scope an identity needs (forwarded by the edge in `x-edgebrain-scopes`) to list and
/// resolve escalations.
pub const OPERATOR_SCOPE: &str = "edgebrain:operator";

/// Vega-Lite mark types the `chart` tool draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ChartMark {
    Bar,
    Line,
    Point,
    Area,
    /// Pie/donut: `theta` from the `y` field, `color` from the `x` field.
    Arc,
}

/// Vega-Lite measurement types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Quantitative,
    Nominal,
    Ordinal,
    Temporal,
}

/// One encoding channel: a field of the inline rows and its measurement type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldDef {
    pub field: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
}

/// The encoding channels the brain sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChartEncoding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<FieldDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<FieldDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theta: Option<FieldDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<FieldDef>,
}

/// Inline data: the query's rows as JSON objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InlineData {
    pub values: Vec<Value>,
}

/// A Vega-Lite v5 specification with inline data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChartSpec {
    /// Always [`VEGA_LITE_SCHEMA`].
    #[serde(rename = "$schema")]
    pub schema: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub mark: ChartMark,
    pub encoding: ChartEncoding,
    pub data: InlineData,
}

/// What the `chart` tool returns (the `output` of its `tool-output-available` part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChartToolOutput {
    pub spec: ChartSpec,
    /// Rows in `spec.data.values`.
    pub rows: u64,
    /// Whether the query had more rows than the chart's limit (the rest were left out).
    pub truncated: bool,
}

/// What the `sql` tool returns: the first rows of the result that fit the agent's token
/// budget, and how many there were in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SqlToolOutput {
    pub columns: Vec<String>,
    pub rows: Vec<Value>,
    /// Rows of the whole result (a lower bound when `total_rows_exact` is false).
    pub total_rows: u64,
    pub total_rows_exact: bool,
    /// Rows in `rows`.
    pub shown_rows: u64,
    /// Whether rows were left out (token budget or row limit).
    pub truncated: bool,
    /// The totals in words, for the model.
    pub note: String,
}

/// One data tool call behind an answer: the `data` of a `data-provenance` part (its `id` is
/// the tool call's id). The rows (or the first of them) and the chart spec are the `output` of
/// the tool part with the same `toolCallId`; this names what they were computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub tool_call_id: String,
    /// `sql`, `chart`, `describe_dataset` or `list_datasets`.
    pub tool: String,
    /// The SQL the tool ran (`sql`, `chart`), exactly as it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// The datasets read, at the versions read.
    pub datasets: Vec<DatasetRef>,
    /// Rows of the result (`sql`, `chart`) or of the dataset (`describe_dataset`); a lower
    /// bound when `row_count_exact` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_count: Option<u64>,
    pub row_count_exact: bool,
    /// Rows the tool output carries (the preview the model and the reader see).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_rows: Option<u64>,
    /// Whether rows were left out of the tool output.
    pub truncated: bool,
}

/// The grounding check's verdict on one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum GroundingStatus {
    /// Every number the answer states matches the turn's tool outputs (or the question).
    Verified,
    /// The answer states a number nothing in the turn produced, or rests on a query that kept
    /// rows by a word the question never named (`unasked_conditions`): "not verified against
    /// your data".
    Unverified,
    /// The answer states no numbers.
    NoClaims,
}

impl GroundingStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            GroundingStatus::Verified => "verified",
            GroundingStatus::Unverified => "unverified",
            GroundingStatus::NoClaims => "no-claims",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            GroundingStatus::Verified,
            GroundingStatus::Unverified,
            GroundingStatus::NoClaims,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// What a number of the answer was matched with (README "Grounding check").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum GroundingBasis {
    /// A number in a tool's output (exactly, or within the answer's rounding).
    ToolOutput,
    /// A number in a tool's input (e.g. the SQL's `LIMIT 5`).
    ToolInput,
    /// A number the user's question states.
    Question,
    /// The number of rows of a result.
    RowCount,
    /// The sum of a result column (or of its first rows: "the top 3 together").
    Total,
    /// The mean of a result column.
    Average,
    /// The difference of two numbers of the outputs.
    Difference,
    /// One number as a percentage of another (or a fraction written as a percentage).
    Percentage,
    /// The change from one number to another, in percent.
    PercentChange,
    /// One number divided by another ("2.5x").
    Ratio,
}

/// One number the answer states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct NumericClaim {
    /// As written in the answer (`$1,234.50`, `12%`, `1.2k`).
    pub text: String,
    /// Its value (`1.2k` → 1200, `12%` → 12).
    pub value: f64,
    /// What it matched; `None`: nothing in the turn produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<GroundingBasis>,
}

/// The `data` of a `data-grounding` part: the numbers of a turn's answer compared with the
/// outputs of that turn's tool calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct GroundingReport {
    pub status: GroundingStatus,
    /// The numbers the answer states, in order (at most the first 100).
    pub claims: Vec<NumericClaim>,
    /// Tool calls of the turn whose outputs were compared.
    pub tool_calls: u32,
    /// Conditions of the turn's queries that keep rows by a word neither the question, the
    /// thread nor an earlier result named, as SQL (`region = 'north'` for "Which region has
    /// the most stores?"): the answer rests on an assumption (at most 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unasked_conditions: Vec<String>,
}

/// What a `data-notice` part is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// The agent has tools but its model cannot call them: the answer did not look at the data.
    ToolsUnavailable,
    /// No tool of the turn returned data and the model's answer stated numbers nothing
    /// produced: it was replaced by a reply saying the data cannot answer.
    AnswerWithheld,
}

/// The `data` of a `data-notice` part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub kind: NoticeKind,
    /// A sentence for the reader.
    pub message: String,
}

/// A retrieved chunk of a document (`search_knowledge`); `start`/`end` are character offsets
/// in the document's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KnowledgeSource {
    #[serde(flatten)]
    pub chunk: DocumentChunk,
    /// Relevance in 0..=1 (the brain's knowledge base: cosine similarity of chunk and query),
    /// compared with the agent's `retrieval.min_score`.
    pub score: f64,
}

/// What `search_knowledge` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KnowledgeSearchOutput {
    pub hits: Vec<KnowledgeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What `escalate_to_human` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationReceipt {
    pub escalation_id: String,
    pub status: EscalationStatus,
    pub urgency: Urgency,
}

/// One agent as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentInfo {
    pub name: String,
    pub description: String,
    /// The model it uses; `None` means the brain's default model.
    pub model: Option<String>,
    /// Names of the tools it may call.
    pub tools: Vec<String>,
    /// Whether threads created without `agent` use this one.
    pub default: bool,
}

/// `GET /api/v1/agents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentList {
    pub agents: Vec<AgentInfo>,
    pub default_agent: String,
}

/// How pressing an escalation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    Low,
    #[default]
    Normal,
    High,
}

impl Urgency {
    pub const fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "low" => Some(Urgency::Low),
            "normal" => Some(Urgency::Normal),
            "high" => Some(Urgency::High),
            _ => None,
        }
    }
}

/// Whether an escalation still needs a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EscalationStatus {
    Open,
    Resolved,
}

impl EscalationStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            EscalationStatus::Open => "open",
            EscalationStatus::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(EscalationStatus::Open),
            "resolved" => Some(EscalationStatus::Resolved),
            _ => None,
        }
    }
}

/// A conversation an agent handed to a human (`escalate_to_human`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Escalation {
    pub id: String,
    /// The identity whose conversation it is (`user:<id>` / `session:<id>`).
    pub owner: String,
    pub thread_id: String,
    pub run_id: Option<String>,
    pub agent: String,
    pub reason: String,
    pub urgency: Urgency,
    pub status: EscalationStatus,
    pub created_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    /// The operator (tenancy key) who resolved it.
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

/// `GET /api/v1/escalations?status=open|resolved&limit=`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationList {
    pub escalations: Vec<Escalation>,
}

/// Query of `GET /api/v1/escalations`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct EscalationFilter {
    #[serde(default)]
    pub status: Option<EscalationStatus>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `POST /api/v1/escalations/{id}/resolve`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct ResolveEscalation {
    /// What the operator did about it.
    #[serde(default)]
    pub resolution: Option<String>,
}

/// The agents configuration file (`--agents-config`, TOML). Without one the brain uses its
/// built-in file (`brain/agents/default.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsConfigFile {
    /// The agent of threads created without `agent`; must be one of `agents`.
    pub default_agent: String,
    pub agents: Vec<AgentEntry>,
}

/// When the model must call a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ToolChoiceSetting {
    /// The model decides.
    #[default]
    Auto,
    /// The first model call of a turn must call a tool; later ones decide (a way to steer
    /// small models).
    RequiredFirst,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// A model name of the LLM configuration; default: the default model.
    #[serde(default)]
    pub model: Option<String>,
    /// The system prompt, a minijinja template (variables: `agent`, `tools`, `datasets`,
    /// `instructions`, `context`, `omitted_messages`, `json_mode`).
    pub system_prompt: String,
    /// Tool names: `list_datasets`, `describe_dataset`, `sql`, `chart`, `search_knowledge`,
    /// `escalate_to_human`.
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default)]
    pub tool_choice: ToolChoiceSetting,
    #[serde(default)]
    pub limits: AgentLimitsEntry,
    #[serde(default)]
    pub guardrails: GuardrailsEntry,
    #[serde(default)]
    pub retrieval: RetrievalEntry,
}

/// Every limit of an agent's loop; unset ones take the brain's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentLimitsEntry {
    /// Model calls per turn (default `--max-tool-steps`).
    #[serde(default)]
    pub max_steps: Option<u32>,
    /// Time one tool call may take before it fails with a timeout (default 10000).
    #[serde(default)]
    pub tool_timeout_ms: Option<u64>,
    /// Tokens of query rows a `sql` result may give the model (estimated; default 1000).
    #[serde(default)]
    pub result_token_budget: Option<u32>,
    /// Rows a chart may carry inline (default 500).
    #[serde(default)]
    pub chart_max_rows: Option<u32>,
    /// Per-tool overrides of `tool_timeout_ms`, by tool name.
    #[serde(default)]
    pub tool_timeouts_ms: std::collections::BTreeMap<String, u64>,
}

/// Input and output policies of an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsEntry {
    /// Phrases refused in input and output: case-insensitive, whole words.
    #[serde(default)]
    pub blocked_phrases: Vec<String>,
    #[serde(default = "default_max_input_chars")]
    pub max_input_chars: u32,
    #[serde(default = "default_max_output_chars")]
    pub max_output_chars: u32,
    /// Replace PII (`pii_patterns`, default: e-mail addresses, phone and card numbers) with
    /// `[redacted]` in input before the model sees it and in output before the client does.
    #[serde(default = "default_true")]
    pub redact_pii: bool,
    /// Regular expressions replacing the default PII patterns.
    #[serde(default)]
    pub pii_patterns: Option<Vec<String>>,
    /// An OpenAI-compatible moderation endpoint checked on input and output.
    #[serde(default)]
    pub moderation: Option<ModerationEntry>,
    /// What the client sees when a guardrail blocks (default: a short refusal).
    #[serde(default)]
    pub refusal_message: Option<String>,
}

impl Default for GuardrailsEntry {
    fn default() -> Self {
        Self {
            blocked_phrases: Vec::new(),
            max_input_chars: default_max_input_chars(),
            max_output_chars: default_max_output_chars(),
            redact_pii: true,
            pii_patterns: None,
            moderation: None,
            refusal_message: None,
        }
    }
}

fn default_max_input_chars() -> u32 {
    8_000
}

fn default_max_output_chars() -> u32 {
    16_000
}

fn default_true() -> bool {
    true
}

/// `POST {base_url}/moderations` (OpenAI's moderation API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModerationEntry {
    pub base_url: String,
    /// Name of the environment variable holding the API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// Retrieval settings of `search_knowledge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrievalEntry {
    /// Hits returned per search.
    #[serde(default = "default_k")]
    pub k: u32,
    /// Hits less relevant than this are dropped (the knowledge base's relevance is the cosine
    /// similarity of chunk and query, 0..=1; 0 keeps every hit).
    #[serde(default)]
    pub min_score: f64,
    /// Search the knowledge base with the user's message before the first model call and put
    /// the hits in the system prompt (cited in the stream); otherwise only the
    /// `search_knowledge` tool searches.
    #[serde(default)]
    pub prefetch: bool,
}

impl Default for RetrievalEntry {
    fn default() -> Self {
        Self {
            k: default_k(),
            min_score: 0.0,
            prefetch: false,
        }
    }
}

fn default_k() -> u32 {
    4
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_chart_spec_is_vega_lite_json() {
        let output = ChartToolOutput {
            spec: ChartSpec {
                schema: VEGA_LITE_SCHEMA.into(),
                title: None,
                mark: ChartMark::Bar,
                encoding: ChartEncoding {
                    x: Some(FieldDef {
                        field: "city".into(),
                        kind: FieldType::Nominal,
                    }),
                    y: Some(FieldDef {
                        field: "n".into(),
                        kind: FieldType::Quantitative,
                    }),
                    ..ChartEncoding::default()
                },
                data: InlineData {
                    values: vec![json!({"city": "Oslo", "n": 3})],
                },
            },
            rows: 1,
            truncated: false,
        };
        let value = serde_json::to_value(&output).unwrap();
        assert_eq!(
            value,
            json!({"spec": {
                "$schema": VEGA_LITE_SCHEMA, "mark": "bar",
                "encoding": {"x": {"field": "city", "type": "nominal"}, "y": {"field": "n", "type": "quantitative"}},
                "data": {"values": [{"city": "Oslo", "n": 3}]}},
              "rows": 1, "truncated": false})
        );
        let back: ChartToolOutput = serde_json::from_value(value).unwrap();
        assert_eq!(back, output);
    }

    #[test]
    fn enums_round_trip() {
        for urgency in [Urgency::Low, Urgency::Normal, Urgency::High] {
            assert_eq!(Urgency::parse(urgency.as_str()), Some(urgency));
        }
        for status in [EscalationStatus::Open, EscalationStatus::Resolved] {
            assert_eq!(EscalationStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            serde_json::to_value(ToolChoiceSetting::RequiredFirst).unwrap(),
            json!("required-first")
        );
    }
}
