//! Token counting for context budgets.
//!
//! [`LlamaServerTokens`] asks the llama.cpp server for the model's own tokenization (exact for
//! the local model family); [`EstimateTokens`] is a conservative stand-in for providers without
//! a tokenizer endpoint (UTF-8 bytes / 3, rounded up: English averages ~4 bytes per token in
//! BPE vocabularies, so it over-counts and budgets hold). Each message also costs
//! [`MESSAGE_OVERHEAD_TOKENS`] for the chat template's role markers, and each prompt
//! [`PROMPT_OVERHEAD_TOKENS`].

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use serde_json::{Value, json};

use super::ProviderError;

/// Tokenize requests in flight at once per context build.
const TOKENIZE_CONCURRENCY: usize = 8;

/// Tokens a chat template adds around each message, rounded up: ChatML's
/// `<|im_start|>role\n … <|im_end|>\n` is 5, Llama 3's header and `<|eot_id|>` 5.
pub const MESSAGE_OVERHEAD_TOKENS: u32 = 6;

/// Tokens a chat template adds once per prompt (BOS, the assistant header that opens the reply).
pub const PROMPT_OVERHEAD_TOKENS: u32 = 8;

pub trait TokenCounter: Send + Sync + fmt::Debug {
    /// Token counts of `texts`, in order (without the per-message overhead).
    fn count<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<u32>, ProviderError>>;

    /// `llama-server` or `estimate`, for logs.
    fn kind(&self) -> &'static str;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct EstimateTokens;

impl EstimateTokens {
    pub fn estimate(text: &str) -> u32 {
        u32::try_from(text.len().div_ceil(3)).unwrap_or(u32::MAX)
    }
}

impl TokenCounter for EstimateTokens {
    fn count<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<u32>, ProviderError>> {
        let counts = texts.iter().map(|text| Self::estimate(text)).collect();
        futures_util::future::ready(Ok(counts)).boxed()
    }

    fn kind(&self) -> &'static str {
        "estimate"
    }
}

/// `POST {root}/tokenize {"content": …}` → `{"tokens": [...]}` on a llama.cpp server.
#[derive(Debug)]
pub struct LlamaServerTokens {
    provider: String,
    endpoint: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl LlamaServerTokens {
    pub fn new(
        provider: String,
        root_url: &str,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Self {
        Self {
            provider,
            endpoint: format!("{}/tokenize", root_url.trim_end_matches('/')),
            client,
            timeout,
        }
    }

    async fn count_one(&self, text: &str) -> Result<u32, ProviderError> {
        let send = self
            .client
            .post(&self.endpoint)
            .json(&json!({"content": text}))
            .send();
        let response = tokio::time::timeout(self.timeout, send)
            .await
            .map_err(|_| ProviderError::retryable(&self.provider, "tokenizer timed out"))?
            .map_err(|error| ProviderError::from_transport(&self.provider, &error))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            return Err(ProviderError::from_status(
                &self.provider,
                status,
                "tokenize failed",
            ));
        }
        let body: Value = tokio::time::timeout(self.timeout, response.json())
            .await
            .map_err(|_| ProviderError::retryable(&self.provider, "tokenizer timed out"))?
            .map_err(|error| ProviderError::from_transport(&self.provider, &error))?;
        let tokens = body
            .get("tokens")
            .and_then(Value::as_array)
            .ok_or_else(|| ProviderError::fatal(&self.provider, "tokenize answer has no tokens"))?;
        Ok(u32::try_from(tokens.len()).unwrap_or(u32::MAX))
    }
}

impl TokenCounter for LlamaServerTokens {
    fn count<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<u32>, ProviderError>> {
        // A few requests in flight at once: a long history is many small calls.
        futures_util::stream::iter(texts)
            .map(|text| self.count_one(text))
            .buffered(TOKENIZE_CONCURRENCY)
            .try_collect()
            .boxed()
    }

    fn kind(&self) -> &'static str {
        "llama-server"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_rounds_up() {
        assert_eq!(EstimateTokens::estimate(""), 0);
        assert_eq!(EstimateTokens::estimate("abcd"), 2);
        assert_eq!(EstimateTokens::estimate("€"), 1);
    }
}
