//! Typed tools. A tool is a Rust type implementing [`Tool`]: its input is a
//! `Deserialize + JsonSchema` type (the JSON Schema offered to the model is generated from it
//! with `schemars`), its output a `Serialize` wire type from `shared_types::agent`. Agents
//! register tools by name in a [`ToolRegistry`]; the driver calls them through the
//! object-safe [`DynTool`] with a per-tool timeout.
//!
//! Adding a tool: a unit struct, an input struct deriving `Deserialize` and `JsonSchema`
//! (doc comments become the schema's descriptions), an output type, `impl Tool`, and a line in
//! [`built_in`].

pub mod data;
pub mod escalate;
pub mod knowledge;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared_types::agent::KnowledgeSource;
use shared_types::data::DatasetRef;

use super::knowledge::KnowledgeSearch;
use crate::data::DataPlane;
use crate::llm::ToolSpec;
use crate::store::Store;

/// Why a tool call failed. `Display` is what the model and the client see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("invalid input for `{tool}`: {message}")]
    InvalidInput { tool: String, message: String },
    #[error("{0}")]
    Failed(String),
    /// A query named a dataset the caller cannot read; `datasets` names the ones it can.
    #[error("{}", data::missing_dataset_hint(.message, .datasets))]
    MissingDataset { message: String, datasets: String },
    #[error("the tool `{tool}` did not finish within {ms} ms")]
    Timeout { tool: String, ms: u128 },
    #[error("unknown tool `{0}`; call one of the tools offered")]
    Unknown(String),
}

/// The brain's services a tool may use, shared by all runs.
#[derive(Debug, Clone)]
pub struct ToolServices {
    pub data: DataPlane,
    pub store: Store,
    pub knowledge: Option<Arc<dyn KnowledgeSearch>>,
}

/// Limits tools apply (from the agent's configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolLimits {
    /// Estimated tokens of rows a `sql` result may carry.
    pub result_token_budget: u32,
    pub chart_max_rows: u32,
    pub retrieval_k: u32,
    pub retrieval_min_score: f64,
}

/// Everything one tool call knows: who is asking, in which conversation, and with which
/// services and limits. Tools reach data only through `owner`, so they see what the caller may
/// see and nothing else.
#[derive(Debug)]
pub struct ToolContext<'a> {
    pub owner: &'a str,
    pub thread_id: &'a str,
    pub run_id: &'a str,
    pub agent: &'a str,
    pub services: &'a ToolServices,
    pub limits: ToolLimits,
    /// Knowledge chunks the call used; the driver cites them in the stream.
    pub citations: Mutex<Vec<KnowledgeSource>>,
    /// What the call read from datasets; the driver reports it as the answer's provenance.
    pub reads: Mutex<Vec<DataRead>>,
}

/// What a data tool read: the facts of a `data-provenance` part besides the call's id and
/// tool name (`shared_types::agent::Provenance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRead {
    pub sql: Option<String>,
    pub datasets: Vec<DatasetRef>,
    pub row_count: Option<u64>,
    pub row_count_exact: bool,
    pub shown_rows: Option<u64>,
    pub truncated: bool,
}

impl ToolContext<'_> {
    pub fn cite(&self, hits: &[KnowledgeSource]) {
        self.citations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(hits);
    }

    pub fn record_read(&self, read: DataRead) {
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(read);
    }

    pub fn take_reads(&self) -> Vec<DataRead> {
        std::mem::take(&mut *self.reads.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn take_citations(&self) -> Vec<KnowledgeSource> {
        std::mem::take(
            &mut *self
                .citations
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }
}

/// A typed tool.
pub trait Tool: Send + Sync + Debug + 'static {
    /// The name the model calls it by.
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    type Input: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + Send + 'static;

    fn call<'a>(
        &'a self,
        context: &'a ToolContext<'a>,
        input: Self::Input,
    ) -> BoxFuture<'a, Result<Self::Output, ToolError>>;
}

/// A tool behind a trait object: JSON in, JSON out.
pub trait DynTool: Send + Sync + Debug {
    fn name(&self) -> &'static str;
    fn spec(&self) -> ToolSpec;
    fn call_json<'a>(
        &'a self,
        context: &'a ToolContext<'a>,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>>;
}

#[derive(Debug)]
struct Typed<T> {
    tool: T,
    parameters: Value,
}

impl<T: Tool> DynTool for Typed<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: T::NAME.to_owned(),
            description: T::DESCRIPTION.to_owned(),
            parameters: self.parameters.clone(),
        }
    }

    fn call_json<'a>(
        &'a self,
        context: &'a ToolContext<'a>,
        input: Value,
    ) -> BoxFuture<'a, Result<Value, ToolError>> {
        async move {
            let input: T::Input =
                serde_json::from_value(input).map_err(|error| ToolError::InvalidInput {
                    tool: T::NAME.to_owned(),
                    message: error.to_string(),
                })?;
            let output = self.tool.call(context, input).await?;
            serde_json::to_value(output)
                .map_err(|error| ToolError::Failed(format!("unserializable output: {error}")))
        }
        .boxed()
    }
}

/// The JSON Schema of a tool's input, as providers expect `parameters`: an inline object
/// schema (no `$schema`, `title` or `$defs` references).
pub fn input_schema<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft07()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    let mut value =
        serde_json::to_value(&schema).unwrap_or_else(|_| Value::Object(Default::default()));
    if let Some(object) = value.as_object_mut() {
        object.remove("$schema");
        object.remove("title");
        object.remove("definitions");
        object.remove("$defs");
    }
    value
}

/// The tools of one agent, by name.
#[derive(Debug, Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<&'static str, Arc<dyn DynTool>>,
    timeouts: BTreeMap<&'static str, Duration>,
}

impl ToolRegistry {
    /// Adds `tool` with its timeout (replacing a tool of the same name).
    pub fn register<T: Tool>(&mut self, tool: T, timeout: Duration) {
        let parameters = input_schema::<T::Input>();
        self.tools
            .insert(T::NAME, Arc::new(Typed { tool, parameters }));
        self.timeouts.insert(T::NAME, timeout);
    }

    pub fn get(&self, name: &str) -> Option<(&Arc<dyn DynTool>, Duration)> {
        let (key, tool) = self.tools.get_key_value(name)?;
        let timeout = self
            .timeouts
            .get(key)
            .copied()
            .unwrap_or(Duration::from_secs(10));
        Some((tool, timeout))
    }

    pub fn names(&self) -> Vec<String> {
        self.tools.keys().map(|name| (*name).to_owned()).collect()
    }

    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|tool| tool.spec()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// Runs tool `name` on `input` within its timeout.
    pub async fn call(
        &self,
        name: &str,
        context: &ToolContext<'_>,
        input: Value,
    ) -> Result<Value, ToolError> {
        let (tool, timeout) = self
            .get(name)
            .ok_or_else(|| ToolError::Unknown(name.to_owned()))?;
        tokio::time::timeout(timeout, tool.call_json(context, input))
            .await
            .unwrap_or_else(|_| {
                Err(ToolError::Timeout {
                    tool: name.to_owned(),
                    ms: timeout.as_millis(),
                })
            })
    }
}

/// Names of the built-in tools.
pub const BUILT_IN: [&str; 6] = [
    data::ListDatasets::NAME,
    data::DescribeDataset::NAME,
    data::Sql::NAME,
    data::Chart::NAME,
    knowledge::SearchKnowledge::NAME,
    escalate::EscalateToHuman::NAME,
];

/// Registers built-in tool `name`; `false` if there is none of that name.
pub fn register_built_in(registry: &mut ToolRegistry, name: &str, timeout: Duration) -> bool {
    match name {
        data::ListDatasets::NAME => registry.register(data::ListDatasets, timeout),
        data::DescribeDataset::NAME => registry.register(data::DescribeDataset, timeout),
        data::Sql::NAME => registry.register(data::Sql, timeout),
        data::Chart::NAME => registry.register(data::Chart, timeout),
        knowledge::SearchKnowledge::NAME => registry.register(knowledge::SearchKnowledge, timeout),
        escalate::EscalateToHuman::NAME => registry.register(escalate::EscalateToHuman, timeout),
        _ => return false,
    }
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn input_schemas_are_inline_objects_generated_from_the_types() {
        let schema = input_schema::<data::ChartInput>();
        assert_eq!(schema["type"], "object");
        assert!(schema.get("$schema").is_none() && schema.get("title").is_none());
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in ["sql", "mark", "x", "y"] {
            assert!(required.contains(&field), "{schema}");
        }
        // The mark enum is inlined, not a $ref.
        assert!(!schema.to_string().contains("$ref"), "{schema}");
        assert!(schema.to_string().contains("\"arc\""), "{schema}");
        assert!(
            schema["properties"]["sql"]["description"]
                .as_str()
                .unwrap()
                .contains("SELECT"),
            "{schema}"
        );
    }

    #[test]
    fn every_built_in_registers_under_its_name() {
        let mut registry = ToolRegistry::default();
        for name in BUILT_IN {
            assert!(register_built_in(
                &mut registry,
                name,
                Duration::from_secs(1)
            ));
        }
        assert!(!register_built_in(
            &mut registry,
            "rm_rf",
            Duration::from_secs(1)
        ));
        assert_eq!(registry.names().len(), 6);
        for spec in registry.specs() {
            assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
            assert!(!spec.description.is_empty());
        }
    }
}
