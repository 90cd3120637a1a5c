//! Agents as configuration: the agents file (`--agents-config`, TOML, schema
//! `shared_types::agent::AgentsConfigFile`; default: the built-in `brain/agents/default.toml`)
//! is read and validated once at start. Unknown tools, unknown models, templates that do not
//! compile or render, and bad guardrail patterns stop the brain with an error naming the agent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use minijinja::{Environment, UndefinedBehavior, context};
use shared_types::agent::{AgentInfo, AgentList, AgentsConfigFile, ToolChoiceSetting};

use super::guardrails::Guardrails;
use super::tools::{self, ToolLimits, ToolRegistry};
use crate::config::Config;
use crate::llm::router::LlmRouter;
use crate::prompts::SystemVars;

/// The built-in agents file.
pub const BUILT_IN: &str = include_str!("../../agents/default.toml");

/// Defaults for limits an agent leaves unset (from the flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentDefaults {
    pub max_steps: u32,
    pub tool_timeout: Duration,
    pub result_token_budget: u32,
    pub chart_max_rows: u32,
}

impl AgentDefaults {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_steps: config.chat.max_tool_steps,
            tool_timeout: Duration::from_millis(config.chat.agent_tool_timeout_ms),
            result_token_budget: config.chat.agent_result_token_budget,
            chart_max_rows: config.chat.agent_chart_max_rows,
        }
    }
}

/// One validated agent.
#[derive(Debug)]
pub struct Agent {
    pub name: String,
    pub description: String,
    /// `None`: the default model.
    pub model: Option<String>,
    pub tools: ToolRegistry,
    pub tool_choice: ToolChoiceSetting,
    pub max_steps: u32,
    pub tool_limits: ToolLimits,
    pub guardrails: Guardrails,
    pub prefetch: bool,
}

/// Every agent, the default one's name, and their compiled system prompt templates.
#[derive(Debug)]
pub struct Agents {
    agents: BTreeMap<String, Arc<Agent>>,
    default_agent: String,
    templates: Environment<'static>,
}

impl Agents {
    /// Reads `--agents-config` (or the built-in file) and validates it against the models.
    pub fn load(config: &Config, router: &LlmRouter) -> anyhow::Result<Self> {
        let (text, origin) = match &config.chat.agents_config {
            Some(path) => (
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the agents file {}", path.display()))?,
                path.display().to_string(),
            ),
            None => (BUILT_IN.to_owned(), "built-in agents".to_owned()),
        };
        let file: AgentsConfigFile =
            toml::from_str(&text).with_context(|| format!("invalid agents file {origin}"))?;
        Self::from_file(&file, router, AgentDefaults::from_config(config), &|name| {
            std::env::var(name).ok()
        })
        .with_context(|| format!("invalid agents file {origin}"))
    }

    pub fn from_file(
        file: &AgentsConfigFile,
        router: &LlmRouter,
        defaults: AgentDefaults,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        crate::llm::install_tls_crypto();
        let client = reqwest::Client::builder()
            .build()
            .context("cannot build the HTTP client for moderation")?;
        let mut templates = Environment::new();
        templates.set_undefined_behavior(UndefinedBehavior::Strict);
        let mut agents = BTreeMap::new();
        for entry in &file.agents {
            let name = entry.name.trim();
            if name.is_empty() {
                bail!("an agent has an empty name");
            }
            if agents.contains_key(name) {
                bail!("agent `{name}` is defined twice");
            }
            let model = match &entry.model {
                Some(model) => match router.model(Some(model)) {
                    Some(spec) => Some(spec.name.clone()),
                    None => bail!(
                        "agent `{name}`: unknown model `{model}` (models: {})",
                        router.model_names().collect::<Vec<_>>().join(", ")
                    ),
                },
                None => None,
            };
            let limits = &entry.limits;
            let tool_timeout = limits
                .tool_timeout_ms
                .map_or(defaults.tool_timeout, Duration::from_millis);
            let mut registry = ToolRegistry::default();
            for tool in &entry.tools {
                let timeout = limits
                    .tool_timeouts_ms
                    .get(tool)
                    .map_or(tool_timeout, |ms| Duration::from_millis(*ms));
                if timeout.is_zero() {
                    bail!("agent `{name}`: the timeout of `{tool}` must be at least 1 ms");
                }
                if !tools::register_built_in(&mut registry, tool, timeout) {
                    bail!(
                        "agent `{name}`: unknown tool `{tool}` (tools: {})",
                        tools::BUILT_IN.join(", ")
                    );
                }
            }
            if let Some(unknown) = limits
                .tool_timeouts_ms
                .keys()
                .find(|tool| !entry.tools.contains(tool))
            {
                bail!("agent `{name}`: tool_timeouts_ms names `{unknown}`, which it does not use");
            }
            let model_spec = router.model(model.as_deref());
            if !registry.is_empty() && model_spec.is_some_and(|spec| !spec.tools) {
                tracing::warn!(agent = %name, model = ?model_spec.map(|spec| &spec.name),
                    "the agent's model is not configured for tools; its tools will not be offered");
            }
            let max_steps = limits.max_steps.unwrap_or(defaults.max_steps);
            if max_steps == 0 {
                bail!("agent `{name}`: max_steps must be at least 1");
            }
            let guardrails = Guardrails::from_entry(&entry.guardrails, env, &client)
                .with_context(|| format!("agent `{name}`: guardrails"))?;
            if !entry.retrieval.min_score.is_finite() {
                bail!("agent `{name}`: retrieval.min_score must be a finite number");
            }
            templates
                .add_template_owned(name.to_owned(), entry.system_prompt.clone())
                .with_context(|| format!("agent `{name}`: the system prompt does not compile"))?;
            agents.insert(
                name.to_owned(),
                Arc::new(Agent {
                    name: name.to_owned(),
                    description: entry.description.clone(),
                    model,
                    tools: registry,
                    tool_choice: entry.tool_choice,
                    max_steps,
                    tool_limits: ToolLimits {
                        result_token_budget: limits
                            .result_token_budget
                            .unwrap_or(defaults.result_token_budget)
                            .max(1),
                        chart_max_rows: limits
                            .chart_max_rows
                            .unwrap_or(defaults.chart_max_rows)
                            .max(1),
                        retrieval_k: entry.retrieval.k.max(1),
                        retrieval_min_score: entry.retrieval.min_score,
                    },
                    guardrails,
                    prefetch: entry.retrieval.prefetch,
                }),
            );
        }
        if !agents.contains_key(&file.default_agent) {
            bail!(
                "default_agent `{}` is not defined (agents: {})",
                file.default_agent,
                agents.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        let loaded = Self {
            agents,
            default_agent: file.default_agent.clone(),
            templates,
        };
        let sample = SystemVars {
            instructions: Some("sample instructions".into()),
            context: vec!["sample passage".into()],
            omitted_messages: 2,
            tools: vec!["sql".into()],
            json_mode: true,
        };
        for agent in loaded.agents.values() {
            loaded.render_system(agent, &sample).with_context(|| {
                format!(
                    "agent `{}`: the system prompt fails on sample variables",
                    agent.name
                )
            })?;
        }
        Ok(loaded)
    }

    /// The named agent, or the default one for `None`.
    pub fn get(&self, name: Option<&str>) -> Option<&Arc<Agent>> {
        self.agents.get(name.unwrap_or(&self.default_agent))
    }

    pub fn default_name(&self) -> &str {
        &self.default_agent
    }

    pub fn list(&self) -> AgentList {
        AgentList {
            agents: self
                .agents
                .values()
                .map(|agent| AgentInfo {
                    name: agent.name.clone(),
                    description: agent.description.clone(),
                    model: agent.model.clone(),
                    tools: agent.tools.names(),
                    default: agent.name == self.default_agent,
                })
                .collect(),
            default_agent: self.default_agent.clone(),
        }
    }

    /// The agent's system prompt for one turn.
    pub fn render_system(
        &self,
        agent: &Agent,
        vars: &SystemVars,
    ) -> Result<String, minijinja::Error> {
        let template = self.templates.get_template(&agent.name)?;
        vars.render(&template, context! { agent => agent.name })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use shared_types::chat::LlmConfigFile;

    fn router() -> LlmRouter {
        let file: LlmConfigFile = toml::from_str(
            r#"
default_model = "m"
[[providers]]
name = "p"
kind = "openai-compatible"
base_url = "http://127.0.0.1:1/v1"
[[models]]
name = "m"
route = [{ provider = "p", model = "x" }]
context_tokens = 1000
max_output_tokens = 100
tools = true
"#,
        )
        .unwrap();
        crate::llm::config::build(&file, |_| None).unwrap()
    }

    fn defaults() -> AgentDefaults {
        AgentDefaults {
            max_steps: 4,
            tool_timeout: Duration::from_secs(10),
            result_token_budget: 1000,
            chart_max_rows: 500,
        }
    }

    fn load(text: &str) -> anyhow::Result<Agents> {
        let file: AgentsConfigFile = toml::from_str(text)?;
        Agents::from_file(&file, &router(), defaults(), &|_| None)
    }

    #[test]
    fn the_built_in_file_defines_the_retail_coach() {
        let agents = load(BUILT_IN).unwrap();
        let coach = agents.get(None).unwrap();
        assert_eq!(coach.name, "retail-coach");
        assert_eq!(
            coach.tools.names(),
            [
                "chart",
                "describe_dataset",
                "list_datasets",
                "search_knowledge",
                "sql"
            ]
        );
        assert_eq!(coach.max_steps, 4);
        let prompt = agents
            .render_system(
                coach,
                &SystemVars {
                    tools: vec!["sql".into()],
                    ..SystemVars::default()
                },
            )
            .unwrap();
        assert!(
            prompt.contains("transactions") && prompt.contains("sql"),
            "{prompt}"
        );
        assert_eq!(agents.list().default_agent, "retail-coach");
    }

    #[test]
    fn invalid_agents_fail_with_a_reason() {
        let base = "default_agent = \"a\"\n[[agents]]\nname = \"a\"\nsystem_prompt = \"hi\"\n";
        assert!(load(base).is_ok());
        for (extra, expected) in [
            ("tools = [\"rm_rf\"]\n", "unknown tool `rm_rf`"),
            ("model = \"gpt-9\"\n", "unknown model `gpt-9`"),
            (
                "[agents.guardrails]\npii_patterns = [\"(\"]\n",
                "guardrails",
            ),
            ("[agents.limits]\nmax_steps = 0\n", "max_steps"),
        ] {
            let error = format!("{:#}", load(&format!("{base}{extra}")).unwrap_err());
            assert!(error.contains(expected), "{extra}: {error}");
        }
        let error = format!(
            "{:#}",
            load(&base.replace("system_prompt = \"hi\"", "system_prompt = \"{{ nope }}\""))
                .unwrap_err()
        );
        assert!(error.contains("sample variables"), "{error}");
        let error = format!(
            "{:#}",
            load(&base.replace("default_agent = \"a\"", "default_agent = \"b\"")).unwrap_err()
        );
        assert!(error.contains("default_agent"), "{error}");
        assert!(load(&format!("{base}surprise = 1\n")).is_err());
    }
}
