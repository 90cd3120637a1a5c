//! Builds the [`LlmRouter`] from the provider/model file (`--llm-config`) or, without one, from
//! the `--local-llm-*` flags.
//!
//! Keys are read from the environment variables the file names (`api_key_env`), never from the
//! file. A provider whose key variable is unset is disabled with a warning and dropped from every
//! route, so a configuration listing a paid provider before `local` still answers offline.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use shared_types::chat::{LlmConfigFile, ModelEntry, ProviderEntry, ProviderKind, TokenizerKind};

use super::anthropic::Anthropic;
use super::http::ProviderTimeouts;
use super::openai::OpenAiCompatible;
use super::router::{LlmRouter, ModelSpec, ProviderSlot, RetryPolicy, Target};
use super::tokens::{EstimateTokens, LlamaServerTokens, TokenCounter};
use super::{ApiKey, ChatProvider};
use crate::config::Config;

/// Name of the provider (and model) used without a configuration file.
pub const LOCAL: &str = "local";
/// Defaults of the per-provider settings.
const CONNECT_TIMEOUT_MS: u64 = 30_000;
const IDLE_TIMEOUT_MS: u64 = 60_000;
const MAX_RETRIES: u32 = 2;
const BACKOFF_BASE_MS: u64 = 250;
const BACKOFF_MAX_MS: u64 = 4_000;
const TOKENIZER_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads and validates the LLM configuration.
pub fn load(config: &Config) -> anyhow::Result<LlmRouter> {
    let file = match &config.chat.llm_config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the LLM configuration {}", path.display()))?;
            toml::from_str::<LlmConfigFile>(&text)
                .with_context(|| format!("invalid LLM configuration {}", path.display()))?
        }
        None => local_only(config),
    };
    build(&file, |name| std::env::var(name).ok())
}

/// The configuration used without a file: the local llama.cpp server as model `local`.
pub fn local_only(config: &Config) -> LlmConfigFile {
    LlmConfigFile {
        default_model: LOCAL.to_owned(),
        providers: vec![ProviderEntry {
            name: LOCAL.to_owned(),
            kind: ProviderKind::OpenaiCompatible,
            base_url: config.chat.local_llm_url.clone(),
            api_key_env: None,
            connect_timeout_ms: None,
            idle_timeout_ms: None,
            max_retries: None,
            backoff_base_ms: None,
            backoff_max_ms: None,
            tokenizer: Some(TokenizerKind::LlamaServer),
            tokenizer_url: None,
        }],
        models: vec![ModelEntry {
            name: LOCAL.to_owned(),
            route: vec![shared_types::chat::RouteTarget {
                provider: LOCAL.to_owned(),
                model: LOCAL.to_owned(),
            }],
            context_tokens: config.chat.local_llm_context_tokens,
            max_output_tokens: config.chat.local_llm_max_output_tokens,
            tools: config.chat.local_llm_tools,
            input_usd_per_mtok: 0.0,
            output_usd_per_mtok: 0.0,
            system_template: None,
        }],
    }
}

/// Validates `file` and builds the router; `env` looks up key variables.
pub fn build(
    file: &LlmConfigFile,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<LlmRouter> {
    super::install_tls_crypto();
    let client = reqwest::Client::builder()
        .build()
        .context("cannot build the HTTP client for LLM providers")?;
    let mut providers: HashMap<String, ProviderSlot> = HashMap::new();
    let mut tokenizers: HashMap<String, Arc<dyn TokenCounter>> = HashMap::new();
    let mut disabled = Vec::new();
    for entry in &file.providers {
        if providers.contains_key(&entry.name) || disabled.contains(&entry.name) {
            bail!("provider `{}` is defined twice", entry.name);
        }
        let api_key = match &entry.api_key_env {
            Some(variable) => match env(variable).filter(|key| !key.trim().is_empty()) {
                Some(key) => Some(ApiKey::new(key.trim().to_owned())),
                None => {
                    tracing::warn!(provider = %entry.name, variable = %variable,
                        "LLM provider disabled: its API key variable is not set");
                    disabled.push(entry.name.clone());
                    continue;
                }
            },
            None => None,
        };
        url::Url::parse(&entry.base_url)
            .with_context(|| format!("provider `{}`: base_url is not a URL", entry.name))?;
        let timeouts = ProviderTimeouts {
            connect: Duration::from_millis(entry.connect_timeout_ms.unwrap_or(CONNECT_TIMEOUT_MS)),
            idle: Duration::from_millis(entry.idle_timeout_ms.unwrap_or(IDLE_TIMEOUT_MS)),
        };
        let provider: Arc<dyn ChatProvider> = match entry.kind {
            ProviderKind::OpenaiCompatible => Arc::new(OpenAiCompatible::new(
                entry.name.clone(),
                &entry.base_url,
                api_key,
                client.clone(),
                timeouts,
            )),
            ProviderKind::Anthropic => Arc::new(Anthropic::new(
                entry.name.clone(),
                &entry.base_url,
                api_key,
                client.clone(),
                timeouts,
            )),
        };
        let tokenizer: Arc<dyn TokenCounter> =
            match entry.tokenizer.unwrap_or(TokenizerKind::Estimate) {
                TokenizerKind::Estimate => Arc::new(EstimateTokens),
                TokenizerKind::LlamaServer => {
                    let root = entry.tokenizer_url.clone().unwrap_or_else(|| {
                        let base = entry.base_url.trim_end_matches('/');
                        base.strip_suffix("/v1").unwrap_or(base).to_owned()
                    });
                    Arc::new(LlamaServerTokens::new(
                        entry.name.clone(),
                        &root,
                        client.clone(),
                        TOKENIZER_TIMEOUT,
                    ))
                }
            };
        let retry = RetryPolicy {
            max_retries: entry.max_retries.unwrap_or(MAX_RETRIES),
            backoff_base: Duration::from_millis(entry.backoff_base_ms.unwrap_or(BACKOFF_BASE_MS)),
            backoff_max: Duration::from_millis(entry.backoff_max_ms.unwrap_or(BACKOFF_MAX_MS)),
        };
        tokenizers.insert(entry.name.clone(), tokenizer);
        providers.insert(entry.name.clone(), ProviderSlot { provider, retry });
    }

    let mut models = BTreeMap::new();
    for entry in &file.models {
        if models.contains_key(&entry.name) {
            bail!("model `{}` is defined twice", entry.name);
        }
        if entry.max_output_tokens == 0 || entry.max_output_tokens >= entry.context_tokens {
            bail!(
                "model `{}`: max_output_tokens must be between 1 and context_tokens - 1",
                entry.name
            );
        }
        let mut route = Vec::new();
        for target in &entry.route {
            if disabled.contains(&target.provider) {
                continue;
            }
            if !providers.contains_key(&target.provider) {
                bail!(
                    "model `{}` routes to unknown provider `{}`",
                    entry.name,
                    target.provider
                );
            }
            route.push(Target {
                provider: target.provider.clone(),
                model: target.model.clone(),
            });
        }
        let Some(first) = route.first() else {
            tracing::warn!(model = %entry.name, "model disabled: every provider of its route is disabled");
            continue;
        };
        let tokenizer = tokenizers
            .get(&first.provider)
            .cloned()
            .unwrap_or_else(|| Arc::new(EstimateTokens));
        models.insert(
            entry.name.clone(),
            ModelSpec {
                name: entry.name.clone(),
                route,
                context_tokens: entry.context_tokens,
                max_output_tokens: entry.max_output_tokens,
                tools: entry.tools,
                input_usd_per_mtok: entry.input_usd_per_mtok.max(0.0),
                output_usd_per_mtok: entry.output_usd_per_mtok.max(0.0),
                system_template: entry
                    .system_template
                    .clone()
                    .unwrap_or_else(|| "system".to_owned()),
                tokenizer,
            },
        );
    }
    if !models.contains_key(&file.default_model) {
        bail!(
            "default_model `{}` is not an enabled model (enabled: {})",
            file.default_model,
            models.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(LlmRouter::new(
        providers,
        models,
        file.default_model.clone(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FILE: &str = r#"
default_model = "smart"

[[providers]]
name = "openai"
kind = "openai-compatible"
base_url = "https://api.openai.com/v1"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
name = "local"
kind = "openai-compatible"
base_url = "http://127.0.0.1:8081/v1"
tokenizer = "llama-server"

[[models]]
name = "smart"
route = [{ provider = "openai", model = "gpt-4o-mini" }, { provider = "local", model = "local" }]
context_tokens = 8192
max_output_tokens = 512
input_usd_per_mtok = 0.15
output_usd_per_mtok = 0.6
"#;

    #[test]
    fn a_provider_without_its_key_drops_out_of_routes() {
        let file: LlmConfigFile = toml::from_str(FILE).unwrap();
        let with_key = build(&file, |_| Some("sk-test".into())).unwrap();
        assert_eq!(with_key.model(None).unwrap().route.len(), 2);
        let without = build(&file, |_| None).unwrap();
        let route = &without.model(Some("smart")).unwrap().route;
        assert_eq!(route.len(), 1);
        assert_eq!(route[0].provider, "local");
        assert_eq!(
            without.model(None).unwrap().tokenizer.kind(),
            "llama-server"
        );
    }

    #[test]
    fn invalid_files_are_rejected_with_a_reason() {
        let unknown = FILE.replace(r#"provider = "local""#, r#"provider = "nope""#);
        let file: LlmConfigFile = toml::from_str(&unknown).unwrap();
        let error = build(&file, |_| Some("k".into())).unwrap_err().to_string();
        assert!(error.contains("unknown provider `nope`"), "{error}");

        let bad_default = FILE.replace(r#"default_model = "smart""#, r#"default_model = "x""#);
        let file: LlmConfigFile = toml::from_str(&bad_default).unwrap();
        assert!(build(&file, |_| None).is_err());

        assert!(toml::from_str::<LlmConfigFile>(&format!("{FILE}\nsurprise = 1")).is_err());
    }

    #[test]
    fn costs_use_the_configured_prices() {
        let file: LlmConfigFile = toml::from_str(FILE).unwrap();
        let router = build(&file, |_| Some("k".into())).unwrap();
        // 1000 * 0.15 + 100 * 0.6 micro-dollars.
        assert_eq!(router.model(None).unwrap().cost_micro_usd(1000, 100), 210);
    }
}
