//! Conversations and runs: the logic between the HTTP handlers and the LLM providers.
//!
//! - [`ChatService::start_run`]: checks thread, model and budget, builds the context
//!   ([`context`] policy, [`templates`] system prompt), stores the user message, records the
//!   run (`queued`) and spawns it. The run is a tokio task, independent of any request.
//! - The run task ([`ChatService::execute`]): `running`, then the thread's agent
//!   ([`crate::agent`]: its state machine drives model calls through the [`LlmRouter`], tools,
//!   guardrails), every step appended to the run's event log ([`runs`]) as UI message stream
//!   chunks; at the end the assistant message, the usage and the event log are stored and the
//!   run becomes `succeeded`, `failed` or `cancelled`.
//! - Leases: every run is leased to this brain (`--brain-id`) until a time the brain keeps
//!   moving forward while the run lives ([`ChatService::keep_lease`], which also stores the
//!   run's new events in small batches for followers on other brains, [`remote`]). A run whose
//!   lease expired lost its brain (kill -9, crash, a partition): the reaper of any brain marks
//!   it `failed`, exactly once ([`ChatService::reap_expired_runs`]). At start, runs without a
//!   live lease (or of this brain id) are marked `failed`; on SQLite, a fleet of one, every
//!   unfinished run is (see README "Runs"). Runs cannot be resumed: their provider connection
//!   died with their brain.

pub mod context;
pub mod remote;
pub mod threads;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use prometheus::{IntCounterVec, Opts};
use serde_json::{Value, json};
use shared_types::chat::{
    FinishReason, MetadataUsage, Role, RunMessageMetadata, RunState, UiMessageChunk, Usage,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use uuid::Uuid;

use crate::agent::driver::{Transcript, Turn};
use crate::agent::machine::Finish;
use crate::agent::tools::ToolServices;
use crate::agent::{Agent, Agents};
use crate::clock::Clock;
use crate::config::RunLeaseTimings;
use crate::llm::ChatMessage;
use crate::llm::ChatRequest;
use crate::llm::router::{LlmRouter, ModelSpec};
use crate::llm::tokens::{EstimateTokens, MESSAGE_OVERHEAD_TOKENS};
use crate::metrics::Metrics;
use crate::prompts::{PromptTemplates, SystemVars};
use crate::run_log::{self, LiveRun, LogItem, RunRegistry, StopReason};
use crate::store::runs::{DeadRuns, NewRun, RunOutcome, StoredRun};
use crate::store::threads::NewMessage;
use crate::store::{Backend, Store, StoreError};
use remote::{RemoteFollow, stored_events};

/// Error text of runs found unfinished at start.
pub const INTERRUPTED: &str = "interrupted: the brain stopped while this run was in progress";
/// Error text of runs stopped by a graceful shutdown.
pub const SHUT_DOWN: &str = "interrupted: the brain shut down while this run was in progress";
/// Error text of runs another brain marked failed because their brain stopped renewing the lease.
pub const LEASE_EXPIRED: &str = "interrupted: the brain running this reply stopped (lease expired)";
/// Error text (not stored) of a run whose brain lost its lease while it still ran.
pub const LEASE_LOST: &str =
    "interrupted: this brain lost the run's lease (another brain ended the run)";

/// Longest wait of a follower on another brain without a signal (a missed `NOTIFY`).
const REMOTE_POLL_MAX: Duration = Duration::from_secs(1);

/// This brain's place in a fleet of brains on one database.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// This start of the brain (`brain_starts`), recorded with each run.
    pub instance_id: String,
    /// Owner of the leases of the runs this brain executes (`--brain-id`).
    pub brain_id: String,
    /// The clock leases are read on.
    pub clock: Clock,
    pub leases: RunLeaseTimings,
}

/// Run limits and policies from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ChatSettings {
    pub max_concurrent_runs: u32,
    pub run_timeout: Duration,
    pub run_retention: Duration,
    pub max_tool_steps: u32,
    pub context_max_messages: u32,
    pub budget_tokens_per_owner: Option<u64>,
}

/// What a caller asks for in one turn.
#[derive(Debug, Clone, Default)]
pub struct TurnRequest {
    /// Whose token budget the turn draws on (`Identity::budget_key`: the user, or an anonymous
    /// caller's network), which need not be the thread's owner.
    pub budget_key: String,
    pub text: String,
    pub model: Option<String>,
    pub json_mode: bool,
    pub instructions: Option<String>,
    pub context: Vec<String>,
    pub max_output_tokens: Option<u32>,
    /// Edit and resend / regenerate: the earlier turn that this one replaces, with every
    /// message after it.
    pub replaces: Option<TurnReplacement>,
}

/// Longest message id worth looking up (stored ids are 36-byte UUIDs).
const MAX_MESSAGE_ID_BYTES: usize = 128;

/// The stored user message a run answers.
#[derive(Debug)]
struct Question {
    id: String,
    text: String,
}

/// Which earlier turn of the thread a new turn takes the place of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnReplacement {
    /// The turn of this message (its user message and the reply to it).
    TurnOf(String),
    /// The thread's last turn (an AI SDK `regenerate()` naming no message).
    LastTurn,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("no such thread")]
    ThreadNotFound,
    #[error("`title` must have 1 to {} characters", threads::MAX_TITLE_CHARS)]
    InvalidTitle,
    #[error("`replace_from` (or `messageId`) names no message of this thread")]
    NoSuchMessage,
    #[error("no such run")]
    RunNotFound,
    #[error("unknown model `{0}`")]
    UnknownModel(String),
    #[error("unknown agent `{0}` (GET /api/v1/agents lists them)")]
    UnknownAgent(String),
    #[error("a reply is still being generated in this thread (run {0}); wait for it or cancel it")]
    ThreadBusy(String),
    #[error(
        "the run is executing on another brain, which alone can cancel it; retry through that \
         brain (cancelling across brains is not supported yet)"
    )]
    RunOnAnotherBrain,
    #[error("token budget exhausted: {used} of {budget} tokens used")]
    BudgetExhausted { used: u64, budget: u64 },
    #[error(transparent)]
    ContextTooLong(#[from] context::ContextTooLong),
    #[error("cannot render the prompt template: {0}")]
    Template(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything the chat endpoints need.
#[derive(Debug)]
pub struct ChatService {
    store: Store,
    router: LlmRouter,
    templates: PromptTemplates,
    registry: RunRegistry,
    settings: ChatSettings,
    fleet: Fleet,
    permits: Arc<Semaphore>,
    agents: Agents,
    services: ToolServices,
    metrics: ChatMetrics,
}

/// Counters of how replies ended, registered with the brain's metrics.
#[derive(Debug, Clone)]
struct ChatMetrics {
    /// `brain_chat_grounding_total{status}`: grounding verdicts (`verified`, `unverified`,
    /// `no-claims`) of answers by agents with tools.
    grounding: IntCounterVec,
    /// `brain_chat_finish_reasons_total{reason}`: why replies ended (`stop`, `length`, …).
    finish_reasons: IntCounterVec,
}

impl ChatMetrics {
    /// The counters, not yet registered anywhere.
    fn new() -> Result<Self, prometheus::Error> {
        let grounding = IntCounterVec::new(
            Opts::new(
                "brain_chat_grounding_total",
                "Answers by the grounding check's verdict on their numbers.",
            ),
            &["status"],
        )?;
        let finish_reasons = IntCounterVec::new(
            Opts::new(
                "brain_chat_finish_reasons_total",
                "Replies by why they ended (length: cut off at the output limit).",
            ),
            &["reason"],
        )?;
        Ok(Self {
            grounding,
            finish_reasons,
        })
    }

    fn register(&self, metrics: &Metrics) -> Result<(), prometheus::Error> {
        metrics.register(self.grounding.clone())?;
        metrics.register(self.finish_reasons.clone())
    }
}

/// A run as a reader sees it: id and the stream of its events.
pub type RunEvents = std::pin::Pin<Box<dyn Stream<Item = LogItem> + Send>>;

impl ChatService {
    pub fn new(
        store: Store,
        router: LlmRouter,
        templates: PromptTemplates,
        settings: ChatSettings,
        fleet: Fleet,
        agents: Agents,
        services: ToolServices,
    ) -> Self {
        let permits = Arc::new(Semaphore::new(settings.max_concurrent_runs as usize));
        #[allow(clippy::expect_used)] // constant, valid metric names and labels
        let metrics = ChatMetrics::new().expect("valid chat metrics");
        Self {
            store,
            router,
            templates,
            registry: RunRegistry::default(),
            settings,
            fleet,
            permits,
            agents,
            services,
            metrics,
        }
    }

    /// Exposes the chat counters (finish reasons, grounding verdicts) in `metrics`.
    pub fn register_metrics(&self, metrics: &Metrics) -> Result<(), prometheus::Error> {
        self.metrics.register(metrics)
    }

    pub fn agents(&self) -> &Agents {
        &self.agents
    }

    pub fn router(&self) -> &LlmRouter {
        &self.router
    }

    pub fn templates(&self) -> &PromptTemplates {
        &self.templates
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    /// Marks runs an earlier process left unfinished as failed. Called once at start, before
    /// this brain runs anything: on PostgreSQL the runs without a live lease and those of this
    /// brain id; on SQLite (a fleet of one) every unfinished run.
    pub async fn recover(&self) -> Result<u64, StoreError> {
        let now_ms = self.fleet.clock.now_ms();
        let which = match self.store.backend() {
            Backend::Sqlite => DeadRuns::AllUnfinished,
            Backend::Postgres => DeadRuns::AtStart {
                brain: &self.fleet.brain_id,
                now_ms,
            },
        };
        self.fail_dead_runs(which, INTERRUPTED, now_ms).await
    }

    /// Marks the runs whose lease expired (their brain stopped renewing it) as failed, with an
    /// error and a finish at the end of their stored events. Any number of brains may do this
    /// at once: each run is failed by exactly one of them. Returns how many this call failed.
    pub async fn reap_expired_runs(&self) -> Result<u64, StoreError> {
        let now_ms = self.fleet.clock.now_ms();
        self.fail_dead_runs(DeadRuns::LeaseExpired { now_ms }, LEASE_EXPIRED, now_ms)
            .await
    }

    async fn fail_dead_runs(
        &self,
        which: DeadRuns<'_>,
        reason: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let mut failed = 0;
        for id in self.store.dead_runs(which).await? {
            if self.registry.get(&id).is_some_and(|run| !run.is_finished()) {
                // This brain's own run, late renewing its lease (a slow database): it may yet
                // renew. Other brains fail it if it does not.
                continue;
            }
            let ending = remote::ending(&id, RunState::Failed, reason);
            if self
                .store
                .fail_dead_run(&id, which, reason, &ending, now_ms)
                .await?
            {
                tracing::warn!(run_id = %id, reason, "marked a run whose brain stopped as failed");
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// Every `--run-lease-renew-ms`, fails the runs whose lease expired, until `stop`.
    pub async fn reap_periodically(self: Arc<Self>, stop: impl Future<Output = ()>) {
        // The first look one period from now: the start already failed what was dead then.
        let period = self.fleet.leases.renew_every;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticks.tick() => {}
            }
            if let Err(error) = self.reap_expired_runs().await {
                tracing::warn!(error = %crate::telemetry::error_chain(&error),
                    "cannot look for runs whose brain stopped; retrying");
            }
        }
    }

    /// Starts a reply in `thread_id` (see the module docs). Returns the run id.
    pub async fn start_run(
        self: &Arc<Self>,
        owner: &str,
        thread_id: &str,
        mut turn: TurnRequest,
    ) -> Result<String, ChatError> {
        let thread = self
            .store
            .get_thread(owner, thread_id)
            .await?
            .ok_or(ChatError::ThreadNotFound)?;
        let agent = match self.agents.get(thread.agent.as_deref()) {
            Some(agent) => Arc::clone(agent),
            None => {
                // The thread's agent was removed from the configuration since.
                tracing::warn!(thread_id, agent = ?thread.agent,
                    "the thread's agent is not configured any more; using the default agent");
                self.agents
                    .get(None)
                    .map(Arc::clone)
                    .ok_or_else(|| ChatError::UnknownAgent(thread.agent.unwrap_or_default()))?
            }
        };
        let wanted = turn.model.as_deref().or(agent.model.as_deref());
        let model = self
            .router
            .model(wanted)
            .ok_or_else(|| ChatError::UnknownModel(wanted.unwrap_or_default().to_owned()))?
            .clone();
        // PII never reaches the model or the database.
        turn.text = agent.guardrails.redact(&turn.text);
        if let Some(budget) = self.settings.budget_tokens_per_owner {
            let used = self.store.budget_usage(&turn.budget_key).await?;
            if used >= budget {
                return Err(ChatError::BudgetExhausted { used, budget });
            }
        }
        if !self.registry.claim_thread(thread_id) {
            let busy = self
                .registry
                .of_thread(thread_id)
                .into_iter()
                .find(|run| !run.is_finished())
                .map(|run| run.id.clone())
                .unwrap_or_default();
            return Err(ChatError::ThreadBusy(busy));
        }
        match self
            .prepare_and_spawn(owner, thread_id, turn, model, agent)
            .await
        {
            Ok(id) => Ok(id),
            Err(error) => {
                self.registry.release_thread(thread_id);
                Err(error)
            }
        }
    }

    async fn prepare_and_spawn(
        self: &Arc<Self>,
        owner: &str,
        thread_id: &str,
        turn: TurnRequest,
        model: ModelSpec,
        agent: Arc<Agent>,
    ) -> Result<String, ChatError> {
        let max_output = turn
            .max_output_tokens
            .unwrap_or(model.max_output_tokens)
            .clamp(1, model.max_output_tokens);
        let replaces_from_seq = match &turn.replaces {
            None => None,
            Some(TurnReplacement::TurnOf(message_id)) => {
                // Stored ids are UUIDs: anything longer, or with a NUL (which PostgreSQL
                // refuses in text), names no message and is not worth a query.
                let storable =
                    message_id.len() <= MAX_MESSAGE_ID_BYTES && !message_id.contains('\0');
                let start = if storable {
                    self.store.turn_start(thread_id, Some(message_id)).await?
                } else {
                    None
                };
                Some(start.ok_or(ChatError::NoSuchMessage)?)
            }
            // Regenerating in a thread without a turn yet is just the first turn.
            Some(TurnReplacement::LastTurn) => self.store.turn_start(thread_id, None).await?,
        };
        let messages = self
            .build_context(
                thread_id,
                replaces_from_seq,
                &turn,
                &model,
                &agent,
                max_output,
            )
            .await?;

        let run_id = Uuid::new_v4().to_string();
        let now = self.fleet.clock.now_ms();
        let lease_expires_at_ms = self
            .fleet
            .clock
            .now_ms()
            .saturating_add(duration_ms(self.fleet.leases.lease));
        let permit = Arc::clone(&self.permits).try_acquire_owned().ok();
        let state = if permit.is_some() {
            RunState::Running
        } else {
            RunState::Queued
        };
        // The user message is committed before generation starts.
        let parts = json!([{"type": "text", "text": turn.text}]).to_string();
        let question_id = Uuid::new_v4().to_string();
        let stored = self
            .store
            .start_turn(
                &NewMessage {
                    id: &question_id,
                    thread_id,
                    role: Role::User,
                    parts_json: &parts,
                    text: &turn.text,
                    run_id: Some(&run_id),
                    created_at_ms: now,
                    metadata_json: None,
                },
                &NewRun {
                    id: &run_id,
                    owner,
                    budget_key: &turn.budget_key,
                    model: &model.name,
                    instance_id: &self.fleet.instance_id,
                    lease_owner: &self.fleet.brain_id,
                    lease_expires_at_ms,
                    state,
                    agent: Some(&agent.name),
                },
                replaces_from_seq,
            )
            .await?;
        if !stored {
            return Err(ChatError::ThreadNotFound);
        }
        let run = Arc::new(LiveRun::new(
            run_id.clone(),
            owner.to_owned(),
            thread_id.to_owned(),
        ));
        self.registry.insert(Arc::clone(&run));
        let service = Arc::clone(self);
        let request = ChatRequest {
            model: String::new(),
            messages,
            // Set per step by the agent's loop.
            tools: Vec::new(),
            max_output_tokens: max_output,
            json_mode: turn.json_mode,
            require_tool: false,
        };
        let question = Question {
            id: question_id,
            text: turn.text,
        };
        tokio::spawn(async move {
            service
                .execute(run, model, agent, question, request, permit)
                .await;
        });
        Ok(run_id)
    }

    /// System prompt + the most recent history before message number `before_seq` that fits
    /// (policy in [`context`]).
    async fn build_context(
        &self,
        thread_id: &str,
        before_seq: Option<i64>,
        turn: &TurnRequest,
        model: &ModelSpec,
        agent: &Agent,
        max_output: u32,
    ) -> Result<Vec<ChatMessage>, ChatError> {
        let history = self
            .store
            .recent_history(thread_id, before_seq, self.settings.context_max_messages)
            .await?;
        let mut vars = SystemVars {
            instructions: turn.instructions.clone(),
            context: turn.context.clone(),
            // Counted with the largest possible note; the real one is never longer.
            omitted_messages: history.len(),
            tools: if model.tools {
                agent.tools.names()
            } else {
                Vec::new()
            },
            json_mode: turn.json_mode,
        };
        let system = self.render_system(agent, &vars)?;
        let mut texts: Vec<String> = Vec::with_capacity(history.len() + 2);
        texts.push(system);
        texts.extend(history.iter().map(|message| message.text.clone()));
        texts.push(turn.text.clone());
        let counts = match model.tokenizer.count(&texts).await {
            Ok(counts) => counts,
            Err(error) => {
                tracing::warn!(%error, tokenizer = model.tokenizer.kind(),
                    "token counting failed; using the conservative estimate");
                texts
                    .iter()
                    .map(|text| EstimateTokens::estimate(text))
                    .collect()
            }
        };
        let budget = model.context_tokens.saturating_sub(max_output);
        let plan = context::plan(counts[0], &counts[1..], budget)?;
        vars.omitted_messages = plan.omitted;
        let system = self.render_system(agent, &vars)?;
        tracing::debug!(
            prompt_tokens = plan.prompt_tokens,
            omitted = plan.omitted,
            overhead_per_message = MESSAGE_OVERHEAD_TOKENS,
            "context planned"
        );
        let mut messages = vec![ChatMessage::System(system)];
        for message in &history[plan.kept_from..] {
            messages.push(match message.role {
                Role::User => ChatMessage::User(message.text.clone()),
                Role::Assistant => ChatMessage::Assistant {
                    text: message.text.clone(),
                    tool_calls: Vec::new(),
                },
                Role::System => ChatMessage::System(message.text.clone()),
            });
        }
        messages.push(ChatMessage::User(turn.text.clone()));
        Ok(messages)
    }

    /// The agent's system prompt for this turn.
    fn render_system(&self, agent: &Agent, vars: &SystemVars) -> Result<String, ChatError> {
        self.agents
            .render_system(agent, vars)
            .map_err(|error| ChatError::Template(error.to_string()))
    }

    /// The run task: the agent's turn, then store and close the log.
    async fn execute(
        self: Arc<Self>,
        run: Arc<LiveRun>,
        model: ModelSpec,
        agent: Arc<Agent>,
        question: Question,
        request: ChatRequest,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let (stop_keeper, keeper_stopped) = oneshot::channel();
        let keeper = tokio::spawn(Arc::clone(&self).keep_lease(Arc::clone(&run), keeper_stopped));
        let assistant_id = Uuid::new_v4().to_string();
        run.emit(&UiMessageChunk::Start {
            message_id: Some(assistant_id.clone()),
            message_metadata: serde_json::to_value(RunMessageMetadata {
                run_id: Some(run.id.clone()),
                thread_id: Some(run.thread_id.clone()),
                model: Some(model.name.clone()),
                agent: Some(agent.name.clone()),
                user_message_id: Some(question.id.clone()),
                ..RunMessageMetadata::default()
            })
            .ok(),
        });
        let mut generation = Transcript::default();
        // A run recorded as `queued` waits here for a generation slot; one that got its slot
        // at once was recorded as `running` (one commit less before the first token).
        let permit = match permit {
            Some(permit) => Ok(permit),
            None => tokio::select! {
                biased;
                reason = run.stop_requested() => Err(End::stopped(reason)),
                permit = Arc::clone(&self.permits).acquire_owned() => match permit {
                    Ok(permit) => {
                        if let Err(error) = self.store.mark_run_running(&run.id).await {
                            tracing::error!(run_id = %run.id, error = %crate::telemetry::error_chain(&error), "cannot mark run running");
                        }
                        Ok(permit)
                    }
                    Err(_) => Err(End::Failed("the brain is shutting down".to_owned())),
                },
            },
        };
        let end = match permit {
            Err(end) => end,
            Ok(_permit) => {
                let stop = run.stop_requested();
                let turn = Turn {
                    run: &run,
                    agent: &agent,
                    model: &model,
                    router: &self.router,
                    services: &self.services,
                    user_text: &question.text,
                };
                let work = tokio::time::timeout(
                    self.settings.run_timeout,
                    crate::agent::driver::run_turn(&turn, request, &mut generation),
                );
                tokio::select! {
                    biased;
                    reason = stop => End::stopped(reason),
                    result = work => match result {
                        Ok(Finish::Failed { message }) => End::Failed(message),
                        Ok(_) => End::Succeeded,
                        Err(_) => End::Failed(format!(
                            "the run exceeded its time limit of {} s", self.settings.run_timeout.as_secs()
                        )),
                    },
                }
            }
        };
        generation.close_text(&run);
        let usage = Usage {
            input_tokens: generation.usage.input_tokens,
            output_tokens: generation.usage.output_tokens,
            cost_micro_usd: model.cost_micro_usd(
                generation.usage.input_tokens,
                generation.usage.output_tokens,
            ),
        };
        let finish_reason = match &end {
            End::Succeeded => Some(generation.finish_reason.unwrap_or(FinishReason::Other)),
            End::Failed(_) => Some(FinishReason::Error),
            End::Cancelled => None,
        };
        let (state, error) = match &end {
            End::Succeeded => (RunState::Succeeded, None),
            End::Failed(message) => {
                run.emit(&UiMessageChunk::Error {
                    error_text: message.clone(),
                });
                (RunState::Failed, Some(message.clone()))
            }
            End::Cancelled => {
                run.emit(&UiMessageChunk::Abort);
                (
                    RunState::Cancelled,
                    Some("cancelled by the caller".to_owned()),
                )
            }
        };
        let metadata = RunMessageMetadata {
            run_id: Some(run.id.clone()),
            state: Some(state),
            usage: Some(MetadataUsage {
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
            }),
            steps: Some(generation.steps),
            refusal: generation.refusal.clone(),
            finish_reason,
            ..RunMessageMetadata::default()
        };
        if !matches!(end, End::Cancelled) {
            run.emit(&UiMessageChunk::Finish {
                finish_reason,
                message_metadata: serde_json::to_value(&metadata).ok(),
            });
        }
        if let Some(reason) = finish_reason {
            self.metrics
                .finish_reasons
                .with_label_values(&[reason.as_str()])
                .inc();
        }
        if let Some(status) = generation.grounding {
            self.metrics
                .grounding
                .with_label_values(&[status.as_str()])
                .inc();
        }
        // No lease write after this point: the outcome below replaces them all.
        let _ = stop_keeper.send(());
        let _ = keeper.await;
        self.persist(
            &run,
            &assistant_id,
            &generation,
            &metadata,
            error.as_deref(),
            usage,
        )
        .await;
        run.finish();
        self.registry.release_thread(&run.thread_id);
        tracing::info!(run_id = %run.id, state = state.as_str(), provider = ?generation.provider,
            input_tokens = usage.input_tokens, output_tokens = usage.output_tokens, "run finished");
        let service = Arc::clone(&self);
        tokio::spawn(async move {
            tokio::time::sleep(service.settings.run_retention).await;
            service.registry.remove(&run.id);
        });
    }

    /// Stores what the run produced (partial output of failed and cancelled runs too: the
    /// caller saw it) and the run's outcome.
    async fn persist(
        &self,
        run: &LiveRun,
        assistant_id: &str,
        generation: &Transcript,
        metadata: &RunMessageMetadata,
        error: Option<&str>,
        usage: Usage,
    ) {
        let now = self.fleet.clock.now_ms();
        let parts = Value::Array(generation.parts.clone()).to_string();
        let metadata_json = serde_json::to_string(metadata).ok();
        let reply = (!generation.parts.is_empty()).then(|| NewMessage {
            id: assistant_id,
            thread_id: &run.thread_id,
            role: Role::Assistant,
            parts_json: &parts,
            text: &generation.all_text,
            run_id: Some(&run.id),
            created_at_ms: now,
            metadata_json: metadata_json.as_deref(),
        });
        let events = run.events_json();
        let event_count = run.len();
        let outcome = RunOutcome {
            state: metadata.state.unwrap_or(RunState::Failed),
            provider: generation.provider.as_deref(),
            provider_model: generation.provider_model.as_deref(),
            error,
            usage,
            events_json: &events,
            finished_at_ms: now,
            refusal: generation.refusal.as_deref(),
            finish_reason: metadata.finish_reason,
            grounding: generation.grounding,
        };
        match self
            .store
            .finish_run(
                &run.id,
                &self.fleet.brain_id,
                reply.as_ref(),
                &outcome,
                event_count,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(run_id = %run.id,
                "the run was ended by another brain (its lease expired) or its thread deleted; \
                 its outcome here is not stored"),
            Err(error) => {
                tracing::error!(run_id = %run.id, error = %crate::telemetry::error_chain(&error), "cannot store the run outcome");
            }
        }
    }

    /// While the run lives: renews its lease every `renew_every` and stores its new events at
    /// once, or — within `event_flush` of the last write — batched at that write's `event_flush`
    /// mark (one transaction each: lease and events). Stops when
    /// `stop` fires (checked between writes, never during one) or the lease is lost — then the
    /// run is asked to stop, since another brain ended it.
    async fn keep_lease(self: Arc<Self>, run: Arc<LiveRun>, mut stop: oneshot::Receiver<()>) {
        let leases = self.fleet.leases;
        let mut changes = run.changes();
        let mut stored: u64 = 0;
        let mut renewed_at = tokio::time::Instant::now();
        // When events were last written: the next write waits until `event_flush` after it, so
        // a burst is batched while an event after a quiet spell is written at once.
        let mut flushed_at: Option<tokio::time::Instant> = None;
        loop {
            if run.len() <= stored {
                tokio::select! {
                    _ = &mut stop => return,
                    changed = changes.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep_until(renewed_at + leases.renew_every) => {}
                }
            }
            if run.len() > stored
                && let Some(flushed_at) = flushed_at
            {
                // At most one write per `event_flush`: what comes meanwhile joins the batch.
                tokio::select! {
                    _ = &mut stop => return,
                    () = tokio::time::sleep_until(flushed_at + leases.event_flush) => {}
                }
            }
            let events = run.events_from(stored);
            let now_ms = self.fleet.clock.now_ms();
            let expires = now_ms.saturating_add(duration_ms(leases.lease));
            let written = self
                .store
                .append_run_events(
                    &run.id,
                    &self.fleet.brain_id,
                    stored + 1,
                    &events,
                    expires,
                    now_ms,
                )
                .await;
            match written {
                Ok(true) => {
                    stored += events.len() as u64;
                    renewed_at = tokio::time::Instant::now();
                    if !events.is_empty() {
                        flushed_at = Some(renewed_at);
                    }
                }
                Ok(false) => {
                    tracing::warn!(run_id = %run.id,
                        "lost the run's lease (another brain ended it, or its thread was deleted); stopping it");
                    run.request_stop(StopReason::LeaseLost);
                    return;
                }
                Err(error) => {
                    tracing::warn!(run_id = %run.id, error = %crate::telemetry::error_chain(&error),
                        "cannot renew the run's lease or store its events; retrying");
                    tokio::select! {
                        _ = &mut stop => return,
                        () = tokio::time::sleep(leases.event_flush.max(Duration::from_millis(100))) => {}
                    }
                }
            }
        }
    }

    /// A reader of run `run_id` from event `after` on: the live log when the run is in memory;
    /// for a run in progress on another brain its stored events and their live tail
    /// ([`remote`]); else the stored log (or, for a run interrupted by a restart, its error).
    pub async fn follow(
        &self,
        owner: &str,
        run_id: &str,
        after: u64,
    ) -> Result<RunEvents, ChatError> {
        if let Some(run) = self.registry.get(run_id) {
            if run.owner != owner {
                return Err(ChatError::RunNotFound);
            }
            return Ok(Box::pin(run.follow(after)));
        }
        let stored = self
            .store
            .get_run(owner, run_id)
            .await?
            .ok_or(ChatError::RunNotFound)?;
        if matches!(stored.run.state, RunState::Queued | RunState::Running) {
            let follow = RemoteFollow {
                store: self.store.clone(),
                owner: owner.to_owned(),
                run_id: run_id.to_owned(),
                poll: self.fleet.leases.renew_every.min(REMOTE_POLL_MAX),
            };
            return Ok(Box::pin(follow.follow(after)));
        }
        let (first_seq, events) = stored_events(&stored, after);
        Ok(Box::pin(run_log::replay(events, first_seq, after)))
    }

    /// Number of runs of this brain still going (queued or running).
    pub fn runs_in_progress(&self) -> usize {
        self.registry.unfinished().len()
    }

    /// Resolves once this brain has no run in progress (while draining no new run starts).
    pub async fn wait_until_idle(&self) {
        loop {
            let live = self.registry.unfinished();
            if live.is_empty() {
                return;
            }
            futures_util::future::join_all(live.into_iter().map(|run| async move {
                // Past the end of the log: yields nothing until the run is over, then Done.
                let mut events = Box::pin(run.follow(u64::MAX));
                while events.next().await.is_some() {}
            }))
            .await;
        }
    }

    /// Requests cancellation; `Ok(false)` when the run already finished.
    pub async fn cancel(&self, owner: &str, run_id: &str) -> Result<bool, ChatError> {
        if let Some(run) = self.registry.get(run_id)
            && run.owner == owner
        {
            if run.is_finished() {
                return Ok(false);
            }
            run.request_stop(StopReason::Caller);
            return Ok(true);
        }
        match self.store.get_run(owner, run_id).await? {
            Some(stored) if matches!(stored.run.state, RunState::Queued | RunState::Running) => {
                Err(ChatError::RunOnAnotherBrain)
            }
            Some(_) => Ok(false),
            None => Err(ChatError::RunNotFound),
        }
    }

    /// Stops every live run as `failed` (interrupted), storing what each produced, and waits
    /// at most `within` for them to be written. Called once the server stopped serving.
    pub async fn shutdown(&self, within: Duration) {
        let live: Vec<Arc<LiveRun>> = self
            .registry
            .all()
            .into_iter()
            .filter(|run| !run.is_finished())
            .collect();
        if live.is_empty() {
            return;
        }
        tracing::warn!(runs = live.len(), "stopping runs still in progress");
        for run in &live {
            run.request_stop(StopReason::Shutdown);
        }
        let all_written = futures_util::future::join_all(live.into_iter().map(|run| async move {
            // Past the end of the log: yields nothing until the run is over, then Done.
            let mut events = Box::pin(run.follow(u64::MAX));
            while events.next().await.is_some() {}
        }));
        if tokio::time::timeout(within, all_written).await.is_err() {
            tracing::warn!(
                "runs still writing after the shutdown timeout; once their lease expires another brain (or the next start) marks them failed"
            );
        }
    }

    /// Cancels the runs of a thread about to be deleted.
    pub fn cancel_thread_runs(&self, thread_id: &str) {
        for run in self.registry.of_thread(thread_id) {
            run.request_stop(StopReason::Caller);
        }
    }

    pub async fn get_run(&self, owner: &str, run_id: &str) -> Result<StoredRun, ChatError> {
        self.store
            .get_run(owner, run_id)
            .await?
            .ok_or(ChatError::RunNotFound)
    }
}

#[derive(Debug)]
enum End {
    Succeeded,
    Failed(String),
    Cancelled,
}

impl End {
    fn stopped(reason: StopReason) -> Self {
        match reason {
            StopReason::Caller => End::Cancelled,
            StopReason::Shutdown => End::Failed(SHUT_DOWN.to_owned()),
            StopReason::LeaseLost => End::Failed(LEASE_LOST.to_owned()),
        }
    }
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
