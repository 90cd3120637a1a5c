//! Agent overhead per step, model time excluded: one turn of the agent loop (state machine,
//! driver, guardrail output filter, tool registry, UI-chunk event log) against an in-process
//! scripted provider that answers at once. Cases:
//!
//! - `answer_1_step`: one model call streaming 40 text deltas through the output filter;
//! - `tool_then_answer_2_steps`: a call to a trivial registered tool (`echo`, added through the
//!   public `Tool` trait), then the answer: loop overhead of a tool step;
//! - `list_datasets_then_answer_2_steps`: the same with the built-in `list_datasets` tool
//!   (a SQLite read), for scale.
//!
//! Per-step overhead = turn time / steps. Run: `cargo bench -p brain --bench agent_step`
//! (release). See BENCHMARKS.md "Agent overhead per step".

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use brain::agent::Agent;
use brain::agent::driver::{Transcript, Turn, run_turn};
use brain::agent::guardrails::Guardrails;
use brain::agent::tools::{Tool, ToolContext, ToolError, ToolLimits, ToolRegistry, ToolServices};
use brain::data::{DataLimits, DataPlane};
use brain::llm::router::{LlmRouter, ModelSpec, ProviderSlot, RetryPolicy, Target};
use brain::llm::tokens::EstimateTokens;
use brain::llm::{
    ChatMessage, ChatProvider, ChatRequest, EventStream, FinishReason, ProviderError, StreamEvent,
    TokenUsage,
};
use brain::metrics::Metrics;
use brain::run_log::LiveRun;
use brain::store::Store;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use schemars::JsonSchema;
use serde::Deserialize;
use shared_types::agent::{GuardrailsEntry, ToolChoiceSetting};

/// Calls `tool` when the conversation has no tool result yet, else answers in 40 deltas.
#[derive(Debug)]
struct Instant {
    tool: Option<&'static str>,
}

impl ChatProvider for Instant {
    fn name(&self) -> &str {
        "instant"
    }

    fn stream_chat(
        &self,
        request: ChatRequest,
    ) -> BoxFuture<'_, Result<EventStream, ProviderError>> {
        let answered = request
            .messages
            .iter()
            .any(|message| matches!(message, ChatMessage::ToolResult { .. }));
        let mut events = Vec::new();
        match self.tool.filter(|_| !answered && !request.tools.is_empty()) {
            Some(tool) => {
                events.push(Ok(StreamEvent::ToolCallStart {
                    index: 0,
                    id: "call_1".into(),
                    name: tool.into(),
                }));
                events.push(Ok(StreamEvent::ToolCallDelta {
                    index: 0,
                    arguments_delta: r#"{"text":"hello"}"#.into(),
                }));
                events.push(Ok(StreamEvent::Finish(FinishReason::ToolCalls)));
            }
            None => {
                for index in 0..40 {
                    events.push(Ok(StreamEvent::TextDelta(format!("word{index} "))));
                }
                events.push(Ok(StreamEvent::Finish(FinishReason::Stop)));
            }
        }
        events.push(Ok(StreamEvent::Usage(TokenUsage {
            input_tokens: 100,
            output_tokens: 40,
        })));
        async move { Ok(futures_util::stream::iter(events).boxed()) }.boxed()
    }
}

#[derive(Debug)]
struct Echo;

#[derive(Debug, Deserialize, JsonSchema)]
struct EchoInput {
    /// Text to echo (ignored by `list_datasets`).
    #[serde(default)]
    text: String,
}

impl Tool for Echo {
    const NAME: &'static str = "echo";
    const DESCRIPTION: &'static str = "Echo the text.";
    type Input = EchoInput;
    type Output = String;

    fn call<'a>(
        &'a self,
        _context: &'a ToolContext<'a>,
        input: EchoInput,
    ) -> BoxFuture<'a, Result<String, ToolError>> {
        async move { Ok(input.text) }.boxed()
    }
}

fn router(tool: Option<&'static str>) -> (LlmRouter, ModelSpec) {
    let provider: Arc<dyn ChatProvider> = Arc::new(Instant { tool });
    let mut providers = HashMap::new();
    providers.insert(
        "instant".to_owned(),
        ProviderSlot {
            provider,
            retry: RetryPolicy {
                max_retries: 0,
                backoff_base: Duration::from_millis(1),
                backoff_max: Duration::from_millis(1),
            },
        },
    );
    let model = ModelSpec {
        name: "m".into(),
        route: vec![Target {
            provider: "instant".into(),
            model: "m".into(),
        }],
        context_tokens: 4096,
        max_output_tokens: 256,
        tools: true,
        input_usd_per_mtok: 0.0,
        output_usd_per_mtok: 0.0,
        system_template: "system".into(),
        tokenizer: Arc::new(EstimateTokens),
    };
    (LlmRouter::with_one_model(providers, model.clone()), model)
}

fn agent(tool: Option<&str>) -> Agent {
    let mut tools = ToolRegistry::default();
    match tool {
        Some("echo") => tools.register(Echo, Duration::from_secs(10)),
        Some(name) => {
            brain::agent::tools::register_built_in(&mut tools, name, Duration::from_secs(10));
        }
        None => {}
    }
    let guardrails = GuardrailsEntry {
        blocked_phrases: vec!["ignore previous instructions".into()],
        ..GuardrailsEntry::default()
    };
    Agent {
        name: "bench".into(),
        description: String::new(),
        model: None,
        tools,
        tool_choice: ToolChoiceSetting::Auto,
        max_steps: 4,
        tool_limits: ToolLimits {
            result_token_budget: 1000,
            chart_max_rows: 500,
            retrieval_k: 4,
            retrieval_min_score: 0.0,
        },
        guardrails: Guardrails::from_entry(&guardrails, &|_| None, &reqwest::Client::new())
            .unwrap(),
        prefetch: false,
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        model: String::new(),
        messages: vec![
            ChatMessage::System("You are a retail data coach.".into()),
            ChatMessage::User("Which store sold most last week?".into()),
        ],
        tools: Vec::new(),
        max_output_tokens: 256,
        json_mode: false,
        require_tool: false,
    }
}

fn benches(c: &mut Criterion) {
    brain::llm::install_tls_crypto();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("edgebrain-bench-{}", uuid::Uuid::new_v4()));
    let services = runtime.block_on(async {
        let mut config = brain::Config::from_args(["brain"]).unwrap();
        config.server.data_dir = dir.clone();
        tokio::fs::create_dir_all(&dir).await.unwrap();
        let store = Store::connect(&config.database().unwrap()).await.unwrap();
        let data = DataPlane::open(
            &dir,
            brain::data::objects::Objects::open(None, &[], &dir).unwrap(),
            store.clone(),
            Arc::new(Metrics::new().unwrap()),
            DataLimits::from_config(&config),
            0,
            brain::clock::Clock::system(),
        )
        .await
        .unwrap();
        ToolServices {
            data,
            store,
            knowledge: None,
        }
    });

    let mut group = c.benchmark_group("agent_turn");
    group.sample_size(200);
    for (case, tool) in [
        ("answer_1_step", None),
        ("tool_then_answer_2_steps", Some("echo")),
        ("list_datasets_then_answer_2_steps", Some("list_datasets")),
    ] {
        let (router, model) = router(tool);
        let agent = agent(tool);
        group.bench_function(case, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let run = LiveRun::new("run".into(), "user:bench".into(), "thread".into());
                    let turn = Turn {
                        run: &run,
                        agent: &agent,
                        model: &model,
                        router: &router,
                        services: &services,
                        user_text: "Which store sold most last week?",
                    };
                    let mut transcript = Transcript::default();
                    let finish = run_turn(&turn, request(), &mut transcript).await;
                    assert_eq!(transcript.steps, if tool.is_some() { 2 } else { 1 });
                    std::hint::black_box((finish, run.events_json()))
                })
            });
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(agent_step, benches);
criterion_main!(agent_step);
