//! The thin I/O driver of the agent loop: it asks the [`Machine`] what to do, does it (input
//! guardrails, retrieval, a streaming model call, tool calls), and reports back. Everything a
//! step produces is appended to the run's event log as UI message stream chunks and recorded
//! in the [`Transcript`] (the stored assistant message's parts).

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde_json::{Value, json};
use shared_types::agent::{
    GroundingReport, GroundingStatus, KnowledgeSource, Notice, NoticeKind, Provenance,
    ToolChoiceSetting,
};
use shared_types::chat::{FinishReason, UiMessageChunk};
use uuid::Uuid;

use super::config::Agent;
use super::grounding::{self, Evidence};
use super::guardrails::{Filtered, OutputFilter};
use super::machine::{Action, Event, Finish, LoopRules, Machine, turn_finish_reason};
use super::results;
use super::tools::{ToolContext, ToolError, ToolServices};
use crate::data::sql;
use crate::llm::router::{LlmRouter, ModelSpec};
use crate::llm::{ChatMessage, ChatRequest, StreamEvent, TokenUsage, ToolCall};
use crate::run_log::LiveRun;

/// `id` of the `data-grounding` part.
pub const GROUNDING_PART_ID: &str = "grounding";
/// `id` of the `data-notice` part saying the model cannot call the agent's tools.
pub const TOOLS_UNAVAILABLE_PART_ID: &str = "tools-unavailable";

/// What one turn needs besides the request.
#[derive(Debug)]
pub struct Turn<'a> {
    pub run: &'a LiveRun,
    pub agent: &'a Agent,
    pub model: &'a ModelSpec,
    pub router: &'a LlmRouter,
    pub services: &'a ToolServices,
    /// The user's message (already redacted), for the input guardrails and retrieval.
    pub user_text: &'a str,
}

/// What a run produced so far: the assistant message's parts, its plain text, usage, and the
/// provider that answered. Partial results of cancelled or timed-out runs stay here.
#[derive(Debug, Default)]
pub struct Transcript {
    pub parts: Vec<Value>,
    pub all_text: String,
    open_text: Option<(String, String)>,
    text_parts: usize,
    pub usage: TokenUsage,
    pub provider: Option<String>,
    pub provider_model: Option<String>,
    /// Why a guardrail refused, if one did.
    pub refusal: Option<String>,
    /// Model calls made.
    pub steps: u32,
    /// The model's own text of the turn as the client saw it (not the brain's notes): what the
    /// grounding check reads.
    pub answer_text: String,
    /// Why the turn's latest model call stopped, as the provider said.
    pub model_finish: Option<crate::llm::FinishReason>,
    /// Why the turn ended (the `finish` chunk's `finishReason`), once it did.
    pub finish_reason: Option<FinishReason>,
    /// The question, tool inputs and outputs of the turn, for the grounding check.
    pub evidence: Evidence,
    /// The grounding check's verdict, when the turn was checked.
    pub grounding: Option<GroundingStatus>,
    /// The model's answer was withheld (see [`WITHHELD_ANSWER`]).
    pub withheld: bool,
    /// The model's text of the current call, held back instead of streamed (see "Why an
    /// answer is held back" above [`WITHHELD_ANSWER`]): dropped when a tool call follows it,
    /// released when it is an answer that passed the checks.
    held: Option<String>,
    /// The rows of the turn's latest `sql` or `chart` result: what the answer rests on (see
    /// [`state_result_if_left_out`]).
    last_result: Option<Value>,
    /// The first query of the turn that named a missing dataset: what it asked for and which
    /// datasets there are (see [`withhold_if_ungrounded`]).
    missing_dataset: Option<(String, String)>,
}

impl Transcript {
    pub fn text_delta(&mut self, run: &LiveRun, delta: &str) {
        if delta.is_empty() {
            return;
        }
        let (id, text) = self.open_text.get_or_insert_with(|| {
            self.text_parts += 1;
            let id = format!("text-{}", self.text_parts);
            run.emit(&UiMessageChunk::TextStart { id: id.clone() });
            (id, String::new())
        });
        run.emit(&UiMessageChunk::TextDelta {
            id: id.clone(),
            delta: delta.to_owned(),
        });
        text.push_str(delta);
        self.all_text.push_str(delta);
    }

    pub fn close_text(&mut self, run: &LiveRun) {
        if let Some((id, text)) = self.open_text.take() {
            run.emit(&UiMessageChunk::TextEnd { id });
            self.parts.push(json!({"type": "text", "text": text}));
        }
    }

    /// Text the model wrote (after the output filter).
    fn model_text(&mut self, run: &LiveRun, delta: &str) {
        self.answer_text.push_str(delta);
        match &mut self.held {
            Some(held) => held.push_str(delta),
            None => self.text_delta(run, delta),
        }
    }

    /// Streams the held text, if any, and stops holding.
    fn release_held(&mut self, run: &LiveRun) {
        if let Some(held) = self.held.take() {
            self.text_delta(run, &held);
        }
    }

    /// Drops the held text written before a tool call: before any data, it can only be a
    /// guess (the default model wrote "The weather in Berlin was sunny." and a made-up table,
    /// then queried `weather`). It stays in the model's context and the log, not in the
    /// answer; holding goes on for the rest of the call.
    fn drop_held(&mut self, run: &LiveRun) {
        if let Some(held) = &mut self.held
            && !held.is_empty()
        {
            tracing::info!(run_id = %run.id, text = %held,
                "text before a tool call, written before any data, not shown");
            // The held text is the end of the answer text (both grew together since the
            // call began).
            let kept = self.answer_text.len().saturating_sub(held.len());
            self.answer_text.truncate(kept);
            held.clear();
        }
    }

    /// A `data-*` part: emitted, and stored as the same JSON (`{"type","id","data"}`).
    fn data_part(&mut self, run: &LiveRun, chunk: &UiMessageChunk) {
        self.close_text(run);
        run.emit(chunk);
        match serde_json::to_value(chunk) {
            Ok(part) => self.parts.push(part),
            Err(error) => tracing::error!(run_id = %run.id, %error, "cannot store a data part"),
        }
    }

    /// A whole text part (notes, refusals).
    fn text_part(&mut self, run: &LiveRun, text: &str) {
        self.close_text(run);
        self.text_delta(run, text);
        self.close_text(run);
    }

    fn add_usage(&mut self, usage: TokenUsage) {
        self.usage.input_tokens += usage.input_tokens;
        self.usage.output_tokens += usage.output_tokens;
    }

    fn cite(&mut self, run: &LiveRun, hits: &[KnowledgeSource]) {
        for KnowledgeSource { chunk, .. } in hits {
            let source_id = format!("{}:{}", chunk.document_id, chunk.chunk_index);
            let metadata = json!({"edgebrain": {
                "documentId": chunk.document_id, "chunkIndex": chunk.chunk_index,
                "start": chunk.start, "end": chunk.end,
            }});
            run.emit(&UiMessageChunk::SourceDocument {
                source_id: source_id.clone(),
                media_type: "text/plain".to_owned(),
                title: chunk.document_name.clone(),
                filename: None,
                provider_metadata: Some(metadata.clone()),
            });
            self.parts.push(json!({
                "type": "source-document", "sourceId": source_id, "mediaType": "text/plain",
                "title": chunk.document_name, "providerMetadata": metadata,
            }));
        }
    }
}

/// What the model call of one step left for the tool step.
#[derive(Debug, Default)]
struct StepState {
    /// The model's raw text of this step (for the assistant message in the next request).
    text: String,
    /// Tool calls whose input streamed but that have not run.
    started: Vec<ToolCall>,
    /// A `start-step` was emitted and its `finish-step` not yet.
    open: bool,
}

/// Runs one turn of `turn.agent` to its end. `request` holds the context (system prompt,
/// history, the user's message); tools and tool choice are set per step.
pub async fn run_turn(
    turn: &Turn<'_>,
    mut request: ChatRequest,
    transcript: &mut Transcript,
) -> Finish {
    let agent = turn.agent;
    let tools_usable = turn.model.tools && !agent.tools.is_empty();
    let specs = if tools_usable {
        agent.tools.specs()
    } else {
        Vec::new()
    };
    let mut machine = Machine::new(LoopRules {
        max_steps: agent.max_steps,
        tools: tools_usable,
        prefetch: agent.prefetch && turn.services.knowledge.is_some(),
        require_tool_first: agent.tool_choice == ToolChoiceSetting::RequiredFirst,
    });
    let mut filter = OutputFilter::new(&agent.guardrails);
    let mut step = StepState::default();
    for message in &request.messages {
        match message {
            ChatMessage::User(text) | ChatMessage::Assistant { text, .. } => {
                transcript.evidence.add_context(text);
            }
            ChatMessage::ToolResult { output, .. } => transcript.evidence.add_context(output),
            // The system prompt names datasets and columns, not what the user asked about.
            ChatMessage::System(_) => {}
        }
    }
    transcript.evidence.add_question(turn.user_text);
    // Tools the model called this turn (see `chart_owed`).
    let mut called: Vec<String> = Vec::new();
    // How the model's text answer ended, kept while an owed chart is drawn after it.
    let mut answer_finish = None;
    // A tool call of this turn returned data an answer can rest on (see "Why an answer is held back").
    let mut found_data = false;
    let mut action = machine.start();
    loop {
        action = match action {
            Action::CheckInput => {
                let refused = agent.guardrails.check_input(turn.user_text).await.err();
                machine.advance(Event::ThreadLoaded { refused })
            }
            Action::Retrieve => {
                prefetch(turn, &mut request, transcript).await;
                machine.advance(Event::Retrieved)
            }
            Action::CallModel {
                step: number,
                offer_tools,
                require_tool,
                owed_tool,
                remind_tool,
            } => {
                request.tools = if offer_tools {
                    specs.clone()
                } else {
                    Vec::new()
                };
                request.require_tool = require_tool;
                if owed_tool {
                    // The answer stands (in the context, as the model wrote it); this call
                    // only draws the chart the user asked for. The answer's step ends here.
                    if step.open {
                        turn.run.emit(&UiMessageChunk::FinishStep);
                    }
                    request.messages.push(ChatMessage::Assistant {
                        text: std::mem::take(&mut step.text),
                        tool_calls: Vec::new(),
                    });
                    request.tools.retain(|spec| spec.name == CHART_TOOL);
                    request.require_tool = true;
                    // The turn's finish reason is the answer's, not the chart call's.
                    answer_finish = transcript.model_finish.take();
                }
                if remind_tool {
                    // The text written instead of the required call was held (no data yet):
                    // it goes, unseen, and so does its step.
                    transcript.drop_held(turn.run);
                    if step.open {
                        turn.run.emit(&UiMessageChunk::FinishStep);
                    }
                    request
                        .messages
                        .push(ChatMessage::User(TOOL_REMINDER.to_owned()));
                }
                step = StepState {
                    open: true,
                    ..StepState::default()
                };
                turn.run.emit(&UiMessageChunk::StartStep);
                transcript.steps = number;
                if number == 1 && !agent.tools.is_empty() && !turn.model.tools {
                    announce_tools_unavailable(turn, transcript);
                }
                transcript.held = (tools_usable && !found_data).then(String::new);
                let mut event =
                    call_model(turn, &request, transcript, &mut filter, &mut step).await;
                if let Event::ModelDone {
                    tool_calls,
                    refused: None,
                    tool_owed,
                } = &mut event
                {
                    // Asked for a chart, given the data, answered in text, yet no chart drawn
                    // (small models write "a chart is available"). An answer cut at the
                    // output limit owes nothing more: it ends as `length`.
                    *tool_owed = tool_calls.is_empty()
                        && found_data
                        && transcript.model_finish != Some(crate::llm::FinishReason::Length)
                        && request.tools.iter().any(|spec| spec.name == CHART_TOOL)
                        && chart_owed(turn.user_text, &called);
                }
                machine.advance(event)
            }
            Action::ExecuteTools { calls, .. } => {
                called.extend(calls.iter().map(|call| call.name.clone()));
                request.messages.push(ChatMessage::Assistant {
                    text: std::mem::take(&mut step.text),
                    tool_calls: calls.clone(),
                });
                step.started.clear();
                for call in &calls {
                    let (output, succeeded) = execute_tool(turn, call, transcript).await;
                    found_data |= succeeded && call.name != LIST_DATASETS_TOOL;
                    request.messages.push(ChatMessage::ToolResult {
                        call_id: call.id.clone(),
                        output,
                    });
                }
                let next = machine.advance(Event::ToolsDone);
                // A turn that ends after its tools (an owed chart) keeps the step open for the
                // grounding verdict, which `conclude` reports within the last step.
                if !matches!(next, Action::Finish(_)) {
                    turn.run.emit(&UiMessageChunk::FinishStep);
                    step.open = false;
                }
                next
            }
            Action::Finish(finish) => {
                if answer_finish.is_some() {
                    transcript.model_finish = answer_finish.take();
                }
                conclude(turn, &finish, transcript, &mut step, found_data).await;
                transcript.finish_reason = Some(turn_finish_reason(
                    &finish,
                    transcript.model_finish.as_ref(),
                ));
                return finish;
            }
        };
    }
}

const CHART_TOOL: &str = "chart";
/// Said to a model that wrote text instead of the tool call its first call required (see
/// `machine`'s `remind_tool`). Part of this turn's model context only, never stored.
const TOOL_REMINDER: &str = "Call a tool first: sql for a question about the data (list_datasets \
    shows what there is). Answer only from what the tools return.";
const SQL_TOOL: &str = "sql";
/// Dataset names and sizes: nothing an answer to a question could rest on.
const LIST_DATASETS_TOOL: &str = "list_datasets";

// Why an answer is held back. Small local models, once every query of a turn failed (the
// weather, customers: nothing in the data), often answer anyway with invented numbers
// ("sunny, 15°C") — measured in BENCHMARKS.md "Local models". So while no tool of the turn has
// returned data, the model's text is not streamed but held: if it calls a tool after all, the
// text is dropped (a guess written before any data); if it is the answer, it is checked first
// and replaced after a query of a missing dataset, or when it states numbers that nothing
// produced, by a plain "your data cannot answer this" with a `data-notice` (`answer-withheld`)
// saying why (`withhold_if_ungrounded`). Answers resting on data stream as always and are only
// marked by the check.

/// The text shown instead of a withheld answer. It states no numbers.
pub const WITHHELD_ANSWER: &str = "I cannot answer this from your data: no query of this \
    turn returned data for it, and the answer I wrote stated numbers that did not come from \
    your data, so it is not shown.";
/// `id` of the `data-notice` part saying an answer was withheld.
pub const ANSWER_WITHHELD_PART_ID: &str = "answer-withheld";

/// True when the user asked for a chart (or plot, graph, visualisation), the turn has queried
/// the data, and no chart was drawn yet. Asked once the model has answered in text: one more
/// call then draws it (the machine's owed tool), and the answer — written with the query's
/// rows in view, so with their numbers — stays as it is. Forcing the chart before the answer
/// made small models answer about the chart instead ("here is the chart") and drop the numbers.
fn chart_owed(question: &str, called: &[String]) -> bool {
    let question = question.to_lowercase();
    let asked = question.split(|c: char| !c.is_alphanumeric()).any(|word| {
        matches!(
            word,
            "chart"
                | "charts"
                | "plot"
                | "plots"
                | "graph"
                | "graphs"
                | "visualise"
                | "visualize"
                | "visualisation"
                | "visualization"
        )
    });
    asked
        && called.iter().any(|name| name == SQL_TOOL)
        && !called.iter().any(|name| name == CHART_TOOL)
}

/// Says (in the stream and the stored reply) that the agent's tools are out of reach: its
/// model cannot call tools, so the answer cannot have looked at the data.
fn announce_tools_unavailable(turn: &Turn<'_>, transcript: &mut Transcript) {
    let message = format!(
        "The model `{}` cannot call tools, so this answer was written without looking at your \
         data (the agent `{}` needs {}). Choose a model with tool support for answers from \
         your data.",
        turn.model.name,
        turn.agent.name,
        turn.agent.tools.names().join(", ")
    );
    tracing::info!(run_id = %turn.run.id, model = %turn.model.name, agent = %turn.agent.name,
        "the agent's tools are unavailable on this model");
    transcript.data_part(
        turn.run,
        &UiMessageChunk::DataNotice {
            id: TOOLS_UNAVAILABLE_PART_ID.to_owned(),
            data: Notice {
                kind: NoticeKind::ToolsUnavailable,
                message,
            },
        },
    );
}

/// A held answer (no tool of the turn returned data) is checked, then:
/// - after a query that asked for a dataset that does not exist, it is always replaced by a
///   reply saying what is missing ([`cannot_answer_text`]): whatever the model wrote then cannot
///   rest on the data, and small models answer "sunny" to a weather question right after
///   `FROM weather` failed (BENCHMARKS.md, "Local models") — words the numbers check cannot see;
/// - otherwise, if it states numbers nothing produced, it is replaced by [`WITHHELD_ANSWER`];
/// - otherwise it is left to be released.
///
/// A replaced answer gets a notice (`answer-withheld`) saying why, and the `data-grounding`
/// part reports the replaced answer's claims (that is what was checked), so a run that invented
/// numbers counts as `unverified`. The model's own text goes to the log only.
async fn withhold_if_ungrounded(run: &LiveRun, transcript: &mut Transcript) {
    let evidence = transcript.evidence.clone();
    let Some(report) = grounding_report(run, &transcript.answer_text, evidence).await else {
        return;
    };
    // Unverified for a number nothing produced (not only for a condition the question did
    // not name, which is no reason to withhold).
    let invented = report.status == GroundingStatus::Unverified
        && (report.unasked_conditions.is_empty()
            || report.claims.iter().any(|claim| claim.basis.is_none()));
    let (text, why) = match &transcript.missing_dataset {
        Some((missing, datasets)) => (
            cannot_answer_text(missing, datasets),
            "The model's reply was replaced: this turn's queries asked for data that none of \
             your datasets holds, so no answer could rest on your data.",
        ),
        None if invented => (
            WITHHELD_ANSWER.to_owned(),
            "The model's answer stated numbers that no query of this turn produced, and no \
             query returned data, so it was withheld.",
        ),
        None => return,
    };
    let withheld = transcript.held.take().unwrap_or_default();
    tracing::info!(run_id = %run.id, answer = %withheld, reason = why, "answer withheld");
    transcript.withheld = true;
    transcript.grounding = Some(report.status);
    transcript.text_part(run, &text);
    transcript.data_part(
        run,
        &UiMessageChunk::DataNotice {
            id: ANSWER_WITHHELD_PART_ID.to_owned(),
            data: Notice {
                kind: NoticeKind::AnswerWithheld,
                message: why.to_owned(),
            },
        },
    );
    transcript.data_part(
        run,
        &UiMessageChunk::DataGrounding {
            id: GROUNDING_PART_ID.to_owned(),
            data: report,
        },
    );
}

/// The reply to a question about data that does not exist (`missing` as the data plane says
/// it: "no dataset named `weather`").
pub fn cannot_answer_text(missing: &str, datasets: &str) -> String {
    if datasets.is_empty() {
        format!(
            "Your data cannot answer this question: there is {missing}, and there are no \
             datasets to query yet."
        )
    } else {
        format!(
            "Your data cannot answer this question: there is {missing} (your datasets are \
             {datasets})."
        )
    }
}

/// An answer resting on a small result (the turn's latest `sql` or `chart` rows) that leaves
/// some of its numbers out gets the result as a table after it (see [`results`]): the reply
/// always states what it rests on.
fn state_result_if_left_out(run: &LiveRun, transcript: &mut Transcript) {
    let Some(result) = &transcript.last_result else {
        return;
    };
    if let Some(table) = results::answer_table(result, &transcript.answer_text) {
        tracing::info!(run_id = %run.id, "the answer left out numbers of its result: stating the result");
        let text_before = transcript.all_text.len();
        transcript.text_part(run, &format!("The query's result:\n\n{table}"));
        // A part of the reply, not of its `text`, which is what later turns show the model:
        // the default model copied the table's pattern into an invented answer.
        transcript.all_text.truncate(text_before);
    }
}

/// [`grounding::check`] of `answer` against `evidence`; `None` (logged) if the check could not
/// run. Bounded, but CPU work over the whole answer and every tool output: off the executor.
async fn grounding_report(
    run: &LiveRun,
    answer: &str,
    mut evidence: Evidence,
) -> Option<GroundingReport> {
    let answer = answer.to_owned();
    match tokio::task::spawn_blocking(move || grounding::check(&answer, &mut evidence)).await {
        Ok(report) => Some(report),
        Err(error) => {
            tracing::error!(run_id = %run.id, %error, "the grounding check failed");
            None
        }
    }
}

/// Compares the numbers of the turn's answer with what its tools produced and reports the
/// verdict as a `data-grounding` part.
async fn check_grounding(run: &LiveRun, transcript: &mut Transcript) {
    let evidence = std::mem::take(&mut transcript.evidence);
    let Some(report) = grounding_report(run, &transcript.answer_text, evidence).await else {
        return;
    };
    transcript.grounding = Some(report.status);
    if report.status == GroundingStatus::Unverified {
        let unmatched: Vec<&str> = report
            .claims
            .iter()
            .filter(|claim| claim.basis.is_none())
            .map(|claim| claim.text.as_str())
            .collect();
        let unasked = &report.unasked_conditions;
        tracing::info!(run_id = %run.id, ?unmatched, ?unasked, "answer not verified against the data");
    }
    transcript.data_part(
        run,
        &UiMessageChunk::DataGrounding {
            id: GROUNDING_PART_ID.to_owned(),
            data: report,
        },
    );
}

/// Emits what the end of a turn needs: refusal text, notes for unexecuted tool calls, the
/// last `finish-step`.
async fn conclude(
    turn: &Turn<'_>,
    finish: &Finish,
    transcript: &mut Transcript,
    step: &mut StepState,
    found_data: bool,
) {
    let run = turn.run;
    let checked = !turn.agent.tools.is_empty()
        && matches!(finish, Finish::Answered | Finish::StepCapReached { .. });
    if checked && transcript.held.is_some() && !found_data {
        withhold_if_ungrounded(run, transcript).await;
    }
    let checked = checked && !transcript.withheld;
    transcript.release_held(run);
    transcript.close_text(run);
    if checked && found_data {
        state_result_if_left_out(run, transcript);
    }
    let abandoned = match finish {
        Finish::Answered | Finish::Failed { .. } => None,
        Finish::StepCapReached { steps } => Some(format!(
            "not run: the step limit of {steps} model calls was reached"
        )),
        Finish::Refused { .. } => Some("not run: the reply was blocked".to_owned()),
    };
    if let Some(why) = abandoned {
        for call in std::mem::take(&mut step.started) {
            let input = parse_input(&call.arguments).unwrap_or(Value::String(call.arguments));
            run.emit(&UiMessageChunk::ToolInputAvailable {
                tool_call_id: call.id.clone(),
                tool_name: call.name.clone(),
                input: input.clone(),
                dynamic: Some(true),
            });
            run.emit(&UiMessageChunk::ToolOutputError {
                tool_call_id: call.id.clone(),
                error_text: why.clone(),
                dynamic: Some(true),
            });
            transcript.parts.push(json!({
                "type": "dynamic-tool", "toolName": call.name, "toolCallId": call.id,
                "state": "output-error", "input": input, "errorText": why,
            }));
        }
    }
    match finish {
        Finish::Refused { reason } => {
            tracing::warn!(run_id = %run.id, agent = %turn.agent.name, reason = %reason,
                "guardrail refused the turn");
            if !step.open {
                run.emit(&UiMessageChunk::StartStep);
                step.open = true;
            }
            transcript.text_part(run, &turn.agent.guardrails.refusal_message);
            transcript.refusal = Some(reason.clone());
        }
        Finish::StepCapReached { steps } => {
            tracing::info!(run_id = %run.id, steps, "step limit reached; ending the turn");
            transcript.text_part(
                run,
                &format!("(I stopped after {steps} steps, the most this assistant may take for one question.)"),
            );
        }
        Finish::Answered | Finish::Failed { .. } => {}
    }
    // Checked within the last step, so the stream keeps the step's shape.
    if checked {
        check_grounding(run, transcript).await;
    }
    if step.open {
        run.emit(&UiMessageChunk::FinishStep);
        step.open = false;
    }
}

/// One streaming model call: text through the output filter, tool calls collected.
async fn call_model(
    turn: &Turn<'_>,
    request: &ChatRequest,
    transcript: &mut Transcript,
    filter: &mut OutputFilter<'_>,
    step: &mut StepState,
) -> Event {
    let run = turn.run;
    let opened = match turn.router.open(turn.model, request.clone()).await {
        Ok(opened) => opened,
        Err(error) => {
            // Details (URLs, provider bodies) go to the log; clients learn which providers
            // were tried.
            tracing::error!(run_id = %run.id, error = %error, "no provider could answer");
            let tried: Vec<&str> = turn
                .model
                .route
                .iter()
                .map(|target| target.provider.as_str())
                .collect();
            return Event::ModelFailed {
                message: format!(
                    "the model is unavailable: no provider could answer (tried {})",
                    tried.join(", ")
                ),
            };
        }
    };
    if transcript.provider.is_none() {
        transcript.provider = Some(opened.provider.clone());
        transcript.provider_model = Some(opened.provider_model.clone());
    }
    let mut events = opened.events;
    transcript.model_finish = None;
    let mut calls: BTreeMap<usize, ToolCall> = BTreeMap::new();
    let mut refused = None;
    while let Some(event) = events.next().await {
        match event {
            Ok(StreamEvent::TextDelta(delta)) => {
                step.text.push_str(&delta);
                match filter.push(&delta) {
                    Filtered::Emit(text) => transcript.model_text(run, &text),
                    Filtered::Blocked { emit, reason } => {
                        transcript.model_text(run, &emit);
                        refused = Some(reason);
                        break;
                    }
                }
            }
            Ok(StreamEvent::ToolCallStart { index, id, name }) => {
                // Text before a tool call is complete: stream it (or, held before any data,
                // drop it).
                if let Some(reason) = release(turn, transcript, filter).await {
                    refused = Some(reason);
                    break;
                }
                transcript.drop_held(run);
                transcript.close_text(run);
                let id = if id.is_empty() {
                    format!("call-{}", Uuid::new_v4().simple())
                } else {
                    id
                };
                run.emit(&UiMessageChunk::ToolInputStart {
                    tool_call_id: id.clone(),
                    tool_name: name.clone(),
                    dynamic: Some(true),
                });
                calls.insert(
                    index,
                    ToolCall {
                        id,
                        name,
                        arguments: String::new(),
                    },
                );
            }
            Ok(StreamEvent::ToolCallDelta {
                index,
                arguments_delta,
            }) => {
                if let Some(call) = calls.get_mut(&index) {
                    run.emit(&UiMessageChunk::ToolInputDelta {
                        tool_call_id: call.id.clone(),
                        input_text_delta: arguments_delta.clone(),
                    });
                    call.arguments.push_str(&arguments_delta);
                }
            }
            Ok(StreamEvent::Usage(usage)) => transcript.add_usage(usage),
            Ok(StreamEvent::Finish(reason)) => transcript.model_finish = Some(reason),
            Err(error) => {
                tracing::error!(run_id = %run.id, error = %error, "the provider failed mid-reply");
                // What was held back passed no check yet: release it only if it passes.
                if release(turn, transcript, filter).await.is_none() {
                    transcript.release_held(run);
                    transcript.close_text(run);
                }
                step.started = calls.into_values().collect();
                return Event::ModelFailed {
                    message: format!(
                        "the model provider `{}` failed mid-reply; the reply is incomplete",
                        error.provider
                    ),
                };
            }
        }
    }
    if refused.is_none() {
        refused = release(turn, transcript, filter).await;
    }
    transcript.close_text(run);
    let tool_calls: Vec<ToolCall> = calls.into_values().collect();
    step.started.clone_from(&tool_calls);
    Event::ModelDone {
        tool_calls,
        refused,
        tool_owed: false,
    }
}

/// Releases the text the filter holds (after moderation, if configured); `Some(reason)` when
/// it is blocked.
async fn release(
    turn: &Turn<'_>,
    transcript: &mut Transcript,
    filter: &mut OutputFilter<'_>,
) -> Option<String> {
    if filter.is_blocked() {
        return None;
    }
    let guardrails = &turn.agent.guardrails;
    if guardrails.has_moderation() && !filter.pending().trim().is_empty() {
        let pending = filter.pending().to_owned();
        if let Err(reason) = guardrails.moderate("output", &pending).await {
            // Nothing of it was emitted.
            filter.discard();
            return Some(reason);
        }
    }
    match filter.finish() {
        Filtered::Emit(text) => {
            transcript.model_text(turn.run, &text);
            None
        }
        Filtered::Blocked { emit, reason } => {
            transcript.model_text(turn.run, &emit);
            Some(reason)
        }
    }
}

fn parse_input(arguments: &str) -> Result<Value, String> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(arguments).map_err(|error| format!("the tool input is not JSON: {error}"))
}

/// Runs one tool call: emits its input and output (or error) chunks and any citations,
/// records the part, and returns the text the model gets back.
async fn execute_tool(
    turn: &Turn<'_>,
    call: &ToolCall,
    transcript: &mut Transcript,
) -> (String, bool) {
    let run = turn.run;
    let input = parse_input(&call.arguments);
    let input_value = input
        .clone()
        .unwrap_or_else(|_| Value::String(call.arguments.clone()));
    run.emit(&UiMessageChunk::ToolInputAvailable {
        tool_call_id: call.id.clone(),
        tool_name: call.name.clone(),
        input: input_value.clone(),
        dynamic: Some(true),
    });
    let context = ToolContext {
        owner: &run.owner,
        thread_id: &run.thread_id,
        run_id: &run.id,
        agent: &turn.agent.name,
        services: turn.services,
        limits: turn.agent.tool_limits,
        citations: std::sync::Mutex::default(),
        reads: std::sync::Mutex::default(),
    };
    let result = match input {
        Ok(input) => turn.agent.tools.call(&call.name, &context, input).await,
        Err(message) => Err(ToolError::InvalidInput {
            tool: call.name.clone(),
            message,
        }),
    };
    let citations = context.take_citations();
    match result {
        Ok(output) => {
            run.emit(&UiMessageChunk::ToolOutputAvailable {
                tool_call_id: call.id.clone(),
                output: output.clone(),
                dynamic: Some(true),
            });
            if let Some(sql) = input_value.get("sql").and_then(Value::as_str) {
                transcript
                    .evidence
                    .add_query_conditions(&sql::word_conditions(sql));
            }
            transcript.evidence.add_tool_input(&input_value);
            transcript.evidence.add_tool_output(&output);
            transcript.parts.push(json!({
                "type": "dynamic-tool", "toolName": call.name, "toolCallId": call.id,
                "state": "output-available", "input": input_value, "output": output,
            }));
            transcript.cite(run, &citations);
            let reads = context.take_reads();
            let several = reads.len() > 1;
            for (index, read) in reads.into_iter().enumerate() {
                let id = if several {
                    format!("{}-{}", call.id, index + 1)
                } else {
                    call.id.clone()
                };
                transcript.data_part(
                    run,
                    &UiMessageChunk::DataProvenance {
                        id,
                        data: Provenance {
                            tool_call_id: call.id.clone(),
                            tool: call.name.clone(),
                            sql: read.sql,
                            datasets: read.datasets,
                            row_count: read.row_count,
                            row_count_exact: read.row_count_exact,
                            shown_rows: read.shown_rows,
                            truncated: read.truncated,
                        },
                    },
                );
            }
            let for_model = results::for_model(&output);
            if let Some(rows) = results::result_rows(&call.name, &output) {
                transcript.last_result = Some(rows);
            }
            (for_model, true)
        }
        Err(error) => {
            if let ToolError::MissingDataset { message, datasets } = &error
                && transcript.missing_dataset.is_none()
            {
                transcript.missing_dataset = Some((message.clone(), datasets.clone()));
            }
            let error_text = error.to_string();
            tracing::info!(run_id = %run.id, tool = %call.name, error = %error_text, "tool call failed");
            run.emit(&UiMessageChunk::ToolOutputError {
                tool_call_id: call.id.clone(),
                error_text: error_text.clone(),
                dynamic: Some(true),
            });
            transcript.parts.push(json!({
                "type": "dynamic-tool", "toolName": call.name, "toolCallId": call.id,
                "state": "output-error", "input": input_value, "errorText": error_text,
            }));
            (json!({"error": error_text}).to_string(), false)
        }
    }
}

/// Retrieval before the first model call: the hits go into the prompt (after the system
/// prompt) and are cited in the stream. Failures are logged; the turn goes on without.
async fn prefetch(turn: &Turn<'_>, request: &mut ChatRequest, transcript: &mut Transcript) {
    let Some(knowledge) = &turn.services.knowledge else {
        return;
    };
    let limits = turn.agent.tool_limits;
    let k = limits.retrieval_k.max(1) as usize;
    let hits = match knowledge.search(&turn.run.owner, turn.user_text, k).await {
        Ok(hits) => hits,
        Err(error) => {
            tracing::warn!(run_id = %turn.run.id, %error, "knowledge prefetch failed");
            return;
        }
    };
    let hits: Vec<KnowledgeSource> = hits
        .into_iter()
        .filter(|hit| hit.score >= limits.retrieval_min_score)
        .take(k)
        .collect();
    if hits.is_empty() {
        return;
    }
    for hit in &hits {
        transcript.evidence.add_text(&hit.chunk.text);
    }
    let mut passages = String::from("Passages from the user's documents (cite them):");
    for (index, hit) in hits.iter().enumerate() {
        passages.push_str(&format!(
            "\n[{}] {} (chunk {}): {}",
            index + 1,
            hit.chunk.document_name,
            hit.chunk.chunk_index,
            hit.chunk.text
        ));
    }
    let position = usize::from(matches!(
        request.messages.first(),
        Some(ChatMessage::System(_))
    ));
    request
        .messages
        .insert(position, ChatMessage::System(passages));
    transcript.cite(turn.run, &hits);
}

#[cfg(test)]
mod tests {
    use super::chart_owed;

    #[test]
    fn a_requested_chart_is_owed_once_after_the_data_was_queried() {
        let called = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let question = "Which 5 stores had the highest revenue in 2025? Show a chart.";
        assert!(!chart_owed(question, &called(&[])));
        assert!(chart_owed(question, &called(&["sql"])));
        assert!(!chart_owed(question, &called(&["sql", "chart"])));
        assert!(!chart_owed(
            "Which 5 stores had the highest revenue?",
            &called(&["sql"])
        ));
        assert!(chart_owed(
            "plot revenue by month",
            &called(&["list_datasets", "sql"])
        ));
        assert!(!chart_owed(
            "What is a chartered accountant?",
            &called(&["sql"])
        ));
    }
}
