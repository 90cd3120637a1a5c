//! Model names → ordered provider routes, with retries, backoff and fallback.
//!
//! For each route target in order: call the provider and wait for its *first* stream event.
//! A retryable error (429, 5xx, timeout, connection failure, a stream that breaks before its
//! first event) is retried up to `max_retries` times after `random(0, min(max, base · 2^n))`
//! (exponential backoff with full jitter); a fatal error is not retried. Either way, once a
//! target gives up, the next one is tried. The first event commits the call to that provider:
//! later errors are items of the returned stream, never a silent switch or a silent success.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::tokens::TokenCounter;
use super::{ChatProvider, ChatRequest, EventStream, ProviderError};

/// Retry settings of one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl RetryPolicy {
    /// The jittered delay before retry number `retry` (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self
            .backoff_base
            .saturating_mul(2_u32.saturating_pow(retry))
            .min(self.backoff_max);
        let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(fastrand::u64(0..=cap_ms))
    }
}

/// One hop of a model's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: String,
    pub model: String,
}

/// A model clients can ask for.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: String,
    pub route: Vec<Target>,
    pub context_tokens: u32,
    pub max_output_tokens: u32,
    pub tools: bool,
    pub input_usd_per_mtok: f64,
    pub output_usd_per_mtok: f64,
    pub system_template: String,
    /// The tokenizer of the route's first target (the model the context is sized for).
    pub tokenizer: Arc<dyn TokenCounter>,
}

impl ModelSpec {
    /// Cost in millionths of a US dollar (`usd_per_mtok` is dollars per million tokens, so one
    /// token costs exactly `usd_per_mtok` micro-dollars).
    pub fn cost_micro_usd(&self, input_tokens: u64, output_tokens: u64) -> u64 {
        let cost = input_tokens as f64 * self.input_usd_per_mtok
            + output_tokens as f64 * self.output_usd_per_mtok;
        if cost.is_finite() && cost > 0.0 {
            cost.round() as u64
        } else {
            0
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProviderSlot {
    pub provider: Arc<dyn ChatProvider>,
    pub retry: RetryPolicy,
}

/// A call committed to one provider: its first event arrived.
pub struct OpenedStream {
    pub provider: String,
    pub provider_model: String,
    /// Starts with that first event.
    pub events: EventStream,
    /// Errors of the attempts before this one (retries and fallbacks), oldest first.
    pub failed_attempts: Vec<ProviderError>,
}

impl std::fmt::Debug for OpenedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStream")
            .field("provider", &self.provider)
            .field("provider_model", &self.provider_model)
            .field("failed_attempts", &self.failed_attempts)
            .finish_non_exhaustive()
    }
}

/// Every target failed before its first event.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no provider could answer: {}", summary(.attempts))]
pub struct RouteError {
    pub attempts: Vec<ProviderError>,
}

fn summary(attempts: &[ProviderError]) -> String {
    attempts
        .last()
        .map_or_else(|| "no route".to_owned(), ToString::to_string)
}

#[derive(Debug, Clone)]
pub struct LlmRouter {
    providers: HashMap<String, ProviderSlot>,
    models: BTreeMap<String, ModelSpec>,
    default_model: String,
}

impl LlmRouter {
    pub fn new(
        providers: HashMap<String, ProviderSlot>,
        models: BTreeMap<String, ModelSpec>,
        default_model: String,
    ) -> Self {
        Self {
            providers,
            models,
            default_model,
        }
    }

    /// A router that serves `model` alone, as its default (what benches and tests run against).
    pub fn with_one_model(providers: HashMap<String, ProviderSlot>, model: ModelSpec) -> Self {
        let name = model.name.clone();
        Self::new(providers, BTreeMap::from([(name.clone(), model)]), name)
    }

    /// The named model, or the default one for `None`.
    pub fn model(&self, name: Option<&str>) -> Option<&ModelSpec> {
        self.models.get(name.unwrap_or(&self.default_model))
    }

    pub fn model_names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// Opens a stream on the first target that produces an event (see the module docs).
    pub async fn open(
        &self,
        model: &ModelSpec,
        request: ChatRequest,
    ) -> Result<OpenedStream, RouteError> {
        let mut attempts = Vec::new();
        for target in &model.route {
            let Some(slot) = self.providers.get(&target.provider) else {
                continue;
            };
            let mut retry = 0;
            loop {
                let mut call = request.clone();
                call.model = target.model.clone();
                match first_event(slot.provider.as_ref(), call).await {
                    Ok(events) => {
                        return Ok(OpenedStream {
                            provider: target.provider.clone(),
                            provider_model: target.model.clone(),
                            events,
                            failed_attempts: attempts,
                        });
                    }
                    Err(error) => {
                        tracing::warn!(
                            provider = %target.provider,
                            model = %target.model,
                            retry,
                            retryable = error.is_retryable(),
                            error = %error,
                            "LLM call failed before its first event"
                        );
                        let retryable = error.is_retryable();
                        attempts.push(error);
                        if !retryable || retry >= slot.retry.max_retries {
                            break;
                        }
                        tokio::time::sleep(slot.retry.delay(retry)).await;
                        retry += 1;
                    }
                }
            }
        }
        Err(RouteError { attempts })
    }
}

/// Starts the call and waits for its first event; the returned stream yields that event first.
async fn first_event(
    provider: &dyn ChatProvider,
    request: ChatRequest,
) -> Result<EventStream, ProviderError> {
    let mut events = provider.stream_chat(request).await?;
    match events.next().await {
        Some(Ok(first)) => Ok(futures_util::stream::once(async move { Ok(first) })
            .chain(events)
            .boxed()),
        Some(Err(error)) => Err(error),
        None => Err(ProviderError::retryable(
            provider.name(),
            "the stream ended before its first event",
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use futures_util::FutureExt;
    use futures_util::future::BoxFuture;

    use super::*;
    use crate::llm::tokens::EstimateTokens;
    use crate::llm::{FinishReason, StreamEvent};

    /// A provider that answers from a script of outcomes, one per call.
    #[derive(Debug)]
    struct Scripted {
        name: String,
        outcomes: Mutex<Vec<Result<(), ProviderError>>>,
        calls: Mutex<u32>,
    }

    impl Scripted {
        fn new(name: &str, outcomes: Vec<Result<(), ProviderError>>) -> Arc<Self> {
            Arc::new(Self {
                name: name.into(),
                outcomes: Mutex::new(outcomes),
                calls: Mutex::new(0),
            })
        }
        fn calls(&self) -> u32 {
            *self.calls.lock().unwrap()
        }
    }

    impl ChatProvider for Scripted {
        fn name(&self) -> &str {
            &self.name
        }
        fn stream_chat(
            &self,
            _request: ChatRequest,
        ) -> BoxFuture<'_, Result<EventStream, ProviderError>> {
            *self.calls.lock().unwrap() += 1;
            let outcome = self.outcomes.lock().unwrap().remove(0);
            async move {
                outcome?;
                let events = vec![
                    Ok(StreamEvent::TextDelta("x".into())),
                    Ok(StreamEvent::Finish(FinishReason::Stop)),
                ];
                Ok(futures_util::stream::iter(events).boxed())
            }
            .boxed()
        }
    }

    fn router(slots: &[(&Arc<Scripted>, u32)]) -> (LlmRouter, ModelSpec) {
        let providers = slots
            .iter()
            .map(|(provider, max_retries)| {
                let slot = ProviderSlot {
                    provider: Arc::clone(provider) as Arc<dyn ChatProvider>,
                    retry: RetryPolicy {
                        max_retries: *max_retries,
                        backoff_base: Duration::from_millis(1),
                        backoff_max: Duration::from_millis(2),
                    },
                };
                (provider.name.clone(), slot)
            })
            .collect();
        let model = ModelSpec {
            name: "m".into(),
            route: slots
                .iter()
                .map(|(provider, _)| Target {
                    provider: provider.name.clone(),
                    model: "x".into(),
                })
                .collect(),
            context_tokens: 100,
            max_output_tokens: 10,
            tools: false,
            input_usd_per_mtok: 0.0,
            output_usd_per_mtok: 0.0,
            system_template: "system".into(),
            tokenizer: Arc::new(EstimateTokens),
        };
        (LlmRouter::with_one_model(providers, model.clone()), model)
    }

    fn request() -> ChatRequest {
        ChatRequest {
            model: String::new(),
            messages: vec![],
            tools: vec![],
            max_output_tokens: 5,
            json_mode: false,
            require_tool: false,
        }
    }

    #[tokio::test]
    async fn retryable_errors_are_retried_then_fall_back() {
        let primary = Scripted::new(
            "primary",
            vec![
                Err(ProviderError::retryable("primary", "503")),
                Err(ProviderError::retryable("primary", "503")),
            ],
        );
        let backup = Scripted::new("backup", vec![Ok(())]);
        let (router, model) = router(&[(&primary, 1), (&backup, 0)]);
        let opened = router.open(&model, request()).await.unwrap();
        assert_eq!(opened.provider, "backup");
        assert_eq!((primary.calls(), backup.calls()), (2, 1));
        assert_eq!(opened.failed_attempts.len(), 2);
    }

    #[tokio::test]
    async fn fatal_errors_are_not_retried_but_fall_back() {
        let primary = Scripted::new("primary", vec![Err(ProviderError::fatal("primary", "401"))]);
        let backup = Scripted::new("backup", vec![Ok(())]);
        let (router, model) = router(&[(&primary, 3), (&backup, 0)]);
        let opened = router.open(&model, request()).await.unwrap();
        assert_eq!(opened.provider, "backup");
        assert_eq!(primary.calls(), 1);
    }

    #[tokio::test]
    async fn every_target_failing_is_an_error_naming_the_last_cause() {
        let only = Scripted::new(
            "only",
            vec![Err(ProviderError::fatal("only", "HTTP 400: bad"))],
        );
        let (router, model) = router(&[(&only, 2)]);
        let error = router.open(&model, request()).await.unwrap_err();
        assert!(error.to_string().contains("HTTP 400"), "{error}");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let policy = RetryPolicy {
            max_retries: 5,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1_000),
        };
        for retry in 0..8 {
            let cap = (100_u64 << retry).min(1_000);
            for _ in 0..50 {
                assert!(policy.delay(retry) <= Duration::from_millis(cap));
            }
        }
        let delays: std::collections::HashSet<Duration> =
            (0..50).map(|_| policy.delay(3)).collect();
        assert!(delays.len() > 1, "full jitter varies the delay");
    }
}
