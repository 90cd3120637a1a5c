//! The agent loop as an explicit state machine, free of I/O:
//!
//! ```text
//! LoadThread ─▶ Retrieve ─▶ CallModel(1) ─▶ ExecuteTools(1) ─▶ CallModel(2) ─▶ … ─▶ Finished
//!      │                          │                                   │
//!      └─ input refused ─▶ Finished(Refused)   no tool calls ─▶ Finished(Answered)
//!                                                                     │ a tool owed
//!                               CallModel(owed) ─▶ ExecuteTools ─▶ Finished(Answered)
//! ```
//!
//! A tool is *owed* when the model answered in text but left out a tool the user asked for
//! (the driver decides which: a chart after the data was queried). The answer stands; one
//! more call offers only that tool, requires it, and the turn ends once it has run — the model
//! is not asked to write the answer again, so the numbers it wrote after seeing the data stay.
//!
//! A first call that must call a tool (`require_tool_first`) but wrote text instead is made
//! once more, requiring a tool again, with the driver reminding the model (`remind_tool`):
//! small local models under llama.cpp may ignore the requirement (its grammar only binds once
//! a call opens) and answer from memory.
//!
//! [`Machine::advance`] takes what the last action produced ([`Event`]) and returns the next
//! [`Action`] for the driver (`driver.rs`) to carry out. Every rule (step cap, when tools are
//! offered, when to stop) lives here and is unit-tested without a model, a database or a clock.

use shared_types::chat::FinishReason as UiFinishReason;

use crate::llm::{FinishReason, ToolCall};

/// Where the loop is.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Check the user's message against the input guardrails (the thread's history was
    /// loaded when the turn was accepted).
    LoadThread,
    /// Search the knowledge base for context (agents with `retrieval.prefetch`).
    Retrieve,
    /// Model call number `step` (1-based) is streaming.
    CallModel {
        step: u32,
    },
    /// The tool calls of model call `step` are running.
    ExecuteTools {
        step: u32,
    },
    Finished(Finish),
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The model answered without (further) tool calls.
    Answered,
    /// The model still wanted tools after the last allowed call.
    StepCapReached { steps: u32 },
    /// A guardrail blocked the input or the output.
    Refused { reason: String },
    /// The model provider failed.
    Failed { message: String },
}

/// What the driver reports back.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Input guardrails passed (`None`) or refused (`Some(reason)`).
    ThreadLoaded {
        refused: Option<String>,
    },
    Retrieved,
    /// A model call ended: the tool calls it made, or a guardrail refusal of its output.
    ModelDone {
        tool_calls: Vec<ToolCall>,
        refused: Option<String>,
        /// The model answered (no tool calls) but a tool the user asked for was not called.
        tool_owed: bool,
    },
    ModelFailed {
        message: String,
    },
    ToolsDone,
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    CheckInput,
    Retrieve,
    /// Call the model; `offer_tools` is false on the last allowed call, so the model answers.
    /// `owed_tool`: offer only the owed tool (and require it); the turn ends after it runs.
    /// `remind_tool`: the previous call ignored a required tool; its text is dropped and the
    /// model is reminded to call one.
    CallModel {
        step: u32,
        offer_tools: bool,
        require_tool: bool,
        owed_tool: bool,
        remind_tool: bool,
    },
    ExecuteTools {
        step: u32,
        calls: Vec<ToolCall>,
    },
    Finish(Finish),
}

/// The rules of one agent's loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopRules {
    /// Model calls per turn (≥ 1).
    pub max_steps: u32,
    /// The agent has tools and the model may use them.
    pub tools: bool,
    /// Search the knowledge base before the first model call.
    pub prefetch: bool,
    /// The first model call must call a tool.
    pub require_tool_first: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    state: State,
    rules: LoopRules,
    /// The call for an owed tool was made: the turn ends after its tools run (at most once).
    owed_called: bool,
    /// A first call that ignored a required tool was made again (at most once).
    requirement_retried: bool,
}

impl Machine {
    pub fn new(rules: LoopRules) -> Self {
        Self {
            state: State::LoadThread,
            rules: LoopRules {
                max_steps: rules.max_steps.max(1),
                ..rules
            },
            owed_called: false,
            requirement_retried: false,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The first action of a turn.
    pub fn start(&self) -> Action {
        Action::CheckInput
    }

    fn call_model(&mut self, step: u32) -> Action {
        self.state = State::CallModel { step };
        let offer_tools = self.rules.tools && step < self.rules.max_steps;
        Action::CallModel {
            step,
            offer_tools,
            require_tool: offer_tools && step == 1 && self.rules.require_tool_first,
            owed_tool: false,
            remind_tool: false,
        }
    }

    /// The first call again, requiring a tool again: the model wrote text instead of the
    /// tool call the first call required. Only while tools may still be offered.
    fn call_again_for_required_tool(&mut self, step: u32) -> Action {
        self.requirement_retried = true;
        self.state = State::CallModel { step };
        Action::CallModel {
            step,
            offer_tools: true,
            require_tool: true,
            owed_tool: false,
            remind_tool: true,
        }
    }

    /// The call for an owed tool. It may be the last allowed call: no model call follows it.
    fn call_for_owed_tool(&mut self, step: u32) -> Action {
        self.owed_called = true;
        self.state = State::CallModel { step };
        Action::CallModel {
            step,
            offer_tools: true,
            require_tool: true,
            owed_tool: true,
            remind_tool: false,
        }
    }

    fn finish(&mut self, finish: Finish) -> Action {
        self.state = State::Finished(finish.clone());
        Action::Finish(finish)
    }

    /// The transition function: the current state and what just happened decide the next
    /// state and action. An event that does not fit the state is a driver bug; the turn then
    /// fails rather than loops.
    pub fn advance(&mut self, event: Event) -> Action {
        let state = std::mem::replace(&mut self.state, State::LoadThread);
        match (state, event) {
            (
                State::LoadThread,
                Event::ThreadLoaded {
                    refused: Some(reason),
                },
            ) => self.finish(Finish::Refused { reason }),
            (State::LoadThread, Event::ThreadLoaded { refused: None }) => {
                if self.rules.prefetch {
                    self.state = State::Retrieve;
                    Action::Retrieve
                } else {
                    self.call_model(1)
                }
            }
            (State::Retrieve, Event::Retrieved) => self.call_model(1),
            (State::CallModel { .. }, Event::ModelFailed { message }) => {
                self.finish(Finish::Failed { message })
            }
            (
                State::CallModel { .. },
                Event::ModelDone {
                    refused: Some(reason),
                    ..
                },
            ) => self.finish(Finish::Refused { reason }),
            (
                State::CallModel { step },
                Event::ModelDone {
                    tool_calls,
                    refused: None,
                    tool_owed,
                },
            ) => {
                if tool_calls.is_empty()
                    && tool_owed
                    && self.rules.tools
                    && !self.owed_called
                    && step < self.rules.max_steps
                {
                    self.call_for_owed_tool(step + 1)
                } else if tool_calls.is_empty()
                    && self.rules.tools
                    && self.rules.require_tool_first
                    && step == 1
                    && !self.requirement_retried
                    && step + 1 < self.rules.max_steps
                {
                    self.call_again_for_required_tool(step + 1)
                } else if tool_calls.is_empty() || !self.rules.tools {
                    self.finish(Finish::Answered)
                } else if step >= self.rules.max_steps && !self.owed_called {
                    self.finish(Finish::StepCapReached { steps: step })
                } else {
                    self.state = State::ExecuteTools { step };
                    Action::ExecuteTools {
                        step,
                        calls: tool_calls,
                    }
                }
            }
            (State::ExecuteTools { .. }, Event::ToolsDone) if self.owed_called => {
                self.finish(Finish::Answered)
            }
            (State::ExecuteTools { step }, Event::ToolsDone) => self.call_model(step + 1),
            (State::Finished(finish), _) => self.finish(finish),
            (state, event) => self.finish(Finish::Failed {
                message: format!("agent loop: unexpected {event:?} in state {state:?}"),
            }),
        }
    }
}

/// Why a turn ended, as the `finish` chunk says it: the model's own reason when it answered
/// (`length` when its last call hit the output limit), `tool-calls` when it still wanted tools
/// at the step limit, `content-filter` for guardrail refusals, `error` for failures.
pub fn turn_finish_reason(finish: &Finish, last_call: Option<&FinishReason>) -> UiFinishReason {
    match finish {
        Finish::Answered => match last_call {
            Some(FinishReason::Stop) => UiFinishReason::Stop,
            Some(FinishReason::Length) => UiFinishReason::Length,
            Some(FinishReason::ToolCalls) => UiFinishReason::ToolCalls,
            Some(FinishReason::Other(reason))
                if matches!(
                    reason.as_str(),
                    "content_filter" | "content-filter" | "refusal"
                ) =>
            {
                UiFinishReason::ContentFilter
            }
            Some(FinishReason::Other(_)) | None => UiFinishReason::Other,
        },
        Finish::StepCapReached { .. } => UiFinishReason::ToolCalls,
        Finish::Refused { .. } => UiFinishReason::ContentFilter,
        Finish::Failed { .. } => UiFinishReason::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(max_steps: u32) -> LoopRules {
        LoopRules {
            max_steps,
            tools: true,
            prefetch: false,
            require_tool_first: false,
        }
    }

    fn call(name: &str) -> ToolCall {
        ToolCall {
            id: format!("c-{name}"),
            name: name.into(),
            arguments: "{}".into(),
        }
    }

    fn model_done(calls: Vec<ToolCall>) -> Event {
        Event::ModelDone {
            tool_calls: calls,
            refused: None,
            tool_owed: false,
        }
    }

    fn answered_owing_a_tool() -> Event {
        Event::ModelDone {
            tool_calls: vec![],
            refused: None,
            tool_owed: true,
        }
    }

    #[test]
    fn a_multi_step_turn_alternates_model_and_tools_until_an_answer() {
        let mut machine = Machine::new(rules(4));
        assert_eq!(machine.start(), Action::CheckInput);
        assert_eq!(
            machine.advance(Event::ThreadLoaded { refused: None }),
            Action::CallModel {
                step: 1,
                offer_tools: true,
                require_tool: false,
                owed_tool: false,
                remind_tool: false,
            }
        );
        assert_eq!(
            machine.advance(model_done(vec![call("sql")])),
            Action::ExecuteTools {
                step: 1,
                calls: vec![call("sql")]
            }
        );
        assert_eq!(machine.state(), &State::ExecuteTools { step: 1 });
        assert!(matches!(
            machine.advance(Event::ToolsDone),
            Action::CallModel { step: 2, .. }
        ));
        assert_eq!(
            machine.advance(model_done(vec![])),
            Action::Finish(Finish::Answered)
        );
        assert_eq!(machine.state(), &State::Finished(Finish::Answered));
    }

    #[test]
    fn the_last_allowed_call_offers_no_tools_and_ignores_tool_calls() {
        let mut machine = Machine::new(rules(2));
        machine.advance(Event::ThreadLoaded { refused: None });
        machine.advance(model_done(vec![call("sql")]));
        assert_eq!(
            machine.advance(Event::ToolsDone),
            Action::CallModel {
                step: 2,
                offer_tools: false,
                require_tool: false,
                owed_tool: false,
                remind_tool: false,
            }
        );
        assert_eq!(
            machine.advance(model_done(vec![call("sql")])),
            Action::Finish(Finish::StepCapReached { steps: 2 })
        );
    }

    #[test]
    fn a_cap_of_one_never_runs_tools() {
        let mut machine = Machine::new(rules(0));
        assert_eq!(
            machine.advance(Event::ThreadLoaded { refused: None }),
            Action::CallModel {
                step: 1,
                offer_tools: false,
                require_tool: false,
                owed_tool: false,
                remind_tool: false,
            }
        );
        assert_eq!(
            machine.advance(model_done(vec![call("x")])),
            Action::Finish(Finish::StepCapReached { steps: 1 })
        );
    }

    #[test]
    fn an_answer_owing_a_tool_gets_one_call_for_it_then_the_turn_ends() {
        let mut machine = Machine::new(rules(4));
        machine.advance(Event::ThreadLoaded { refused: None });
        machine.advance(model_done(vec![call("sql")]));
        machine.advance(Event::ToolsDone);
        assert_eq!(
            machine.advance(answered_owing_a_tool()),
            Action::CallModel {
                step: 3,
                offer_tools: true,
                require_tool: true,
                owed_tool: true,
                remind_tool: false,
            }
        );
        assert_eq!(
            machine.advance(model_done(vec![call("chart")])),
            Action::ExecuteTools {
                step: 3,
                calls: vec![call("chart")]
            }
        );
        // No model call after the owed tool: the answer was written before it.
        assert_eq!(
            machine.advance(Event::ToolsDone),
            Action::Finish(Finish::Answered)
        );
    }

    #[test]
    fn a_tool_is_owed_at_most_once_and_only_within_the_step_cap() {
        // The owed call may be the last allowed one, and still offers the tool.
        let mut machine = Machine::new(rules(3));
        machine.advance(Event::ThreadLoaded { refused: None });
        machine.advance(model_done(vec![call("sql")]));
        machine.advance(Event::ToolsDone);
        assert!(matches!(
            machine.advance(answered_owing_a_tool()),
            Action::CallModel {
                step: 3,
                offer_tools: true,
                owed_tool: true,
                ..
            }
        ));
        // The model ignored the requirement and wrote text again: nothing more is owed.
        assert_eq!(
            machine.advance(answered_owing_a_tool()),
            Action::Finish(Finish::Answered)
        );
        // At the cap there is no call left to make.
        let mut machine = Machine::new(rules(2));
        machine.advance(Event::ThreadLoaded { refused: None });
        machine.advance(model_done(vec![call("sql")]));
        machine.advance(Event::ToolsDone);
        assert_eq!(
            machine.advance(answered_owing_a_tool()),
            Action::Finish(Finish::Answered)
        );
        // Without tools nothing is owed.
        let mut machine = Machine::new(LoopRules {
            tools: false,
            ..rules(3)
        });
        machine.advance(Event::ThreadLoaded { refused: None });
        assert_eq!(
            machine.advance(answered_owing_a_tool()),
            Action::Finish(Finish::Answered)
        );
    }

    #[test]
    fn refusals_and_failures_end_the_turn() {
        let mut machine = Machine::new(rules(3));
        assert_eq!(
            machine.advance(Event::ThreadLoaded {
                refused: Some("blocked phrase".into())
            }),
            Action::Finish(Finish::Refused {
                reason: "blocked phrase".into()
            })
        );
        let mut machine = Machine::new(rules(3));
        machine.advance(Event::ThreadLoaded { refused: None });
        assert_eq!(
            machine.advance(Event::ModelDone {
                tool_calls: vec![call("sql")],
                refused: Some("pii".into()),
                tool_owed: false,
            }),
            Action::Finish(Finish::Refused {
                reason: "pii".into()
            })
        );
        let mut machine = Machine::new(rules(3));
        machine.advance(Event::ThreadLoaded { refused: None });
        assert_eq!(
            machine.advance(Event::ModelFailed {
                message: "down".into()
            }),
            Action::Finish(Finish::Failed {
                message: "down".into()
            })
        );
    }

    #[test]
    fn prefetch_retrieves_before_the_first_call_and_required_tools_apply_once() {
        let mut machine = Machine::new(LoopRules {
            prefetch: true,
            require_tool_first: true,
            ..rules(3)
        });
        assert_eq!(
            machine.advance(Event::ThreadLoaded { refused: None }),
            Action::Retrieve
        );
        assert_eq!(
            machine.advance(Event::Retrieved),
            Action::CallModel {
                step: 1,
                offer_tools: true,
                require_tool: true,
                owed_tool: false,
                remind_tool: false,
            }
        );
        machine.advance(model_done(vec![call("sql")]));
        assert_eq!(
            machine.advance(Event::ToolsDone),
            Action::CallModel {
                step: 2,
                offer_tools: true,
                require_tool: false,
                owed_tool: false,
                remind_tool: false,
            }
        );
    }

    #[test]
    fn a_first_call_that_ignored_a_required_tool_is_made_once_more_with_a_reminder() {
        let required = LoopRules {
            require_tool_first: true,
            ..rules(4)
        };
        let mut machine = Machine::new(required);
        machine.advance(Event::ThreadLoaded { refused: None });
        let again = Action::CallModel {
            step: 2,
            offer_tools: true,
            require_tool: true,
            owed_tool: false,
            remind_tool: true,
        };
        assert_eq!(machine.advance(model_done(vec![])), again);
        // Ignored twice: the text is the answer.
        assert_eq!(
            machine.advance(model_done(vec![])),
            Action::Finish(Finish::Answered)
        );
        // Obeyed the second time: the loop goes on as usual, with no more requirement.
        let mut machine = Machine::new(required);
        machine.advance(Event::ThreadLoaded { refused: None });
        machine.advance(model_done(vec![]));
        machine.advance(model_done(vec![call("sql")]));
        assert_eq!(
            machine.advance(Event::ToolsDone),
            Action::CallModel {
                step: 3,
                offer_tools: true,
                require_tool: false,
                owed_tool: false,
                remind_tool: false,
            }
        );
        // Not without the requirement, and not when no call offering tools is left after it.
        let mut machine = Machine::new(rules(4));
        machine.advance(Event::ThreadLoaded { refused: None });
        assert_eq!(
            machine.advance(model_done(vec![])),
            Action::Finish(Finish::Answered)
        );
        let mut machine = Machine::new(LoopRules {
            require_tool_first: true,
            ..rules(2)
        });
        machine.advance(Event::ThreadLoaded { refused: None });
        assert_eq!(
            machine.advance(model_done(vec![])),
            Action::Finish(Finish::Answered)
        );
    }

    #[test]
    fn without_tools_tool_calls_are_ignored_and_bad_events_fail() {
        let mut machine = Machine::new(LoopRules {
            tools: false,
            ..rules(3)
        });
        assert!(matches!(
            machine.advance(Event::ThreadLoaded { refused: None }),
            Action::CallModel {
                offer_tools: false,
                ..
            }
        ));
        assert_eq!(
            machine.advance(model_done(vec![call("sql")])),
            Action::Finish(Finish::Answered)
        );
        let mut machine = Machine::new(rules(3));
        assert!(matches!(
            machine.advance(Event::ToolsDone),
            Action::Finish(Finish::Failed { .. })
        ));
        // Finished stays finished.
        assert!(matches!(
            machine.advance(Event::Retrieved),
            Action::Finish(Finish::Failed { .. })
        ));
    }

    #[test]
    fn the_turn_finish_reason_says_why_the_reply_ended() {
        let answered =
            |reason: Option<FinishReason>| turn_finish_reason(&Finish::Answered, reason.as_ref());
        assert_eq!(answered(Some(FinishReason::Stop)), UiFinishReason::Stop);
        assert_eq!(answered(Some(FinishReason::Length)), UiFinishReason::Length);
        assert_eq!(
            answered(Some(FinishReason::ToolCalls)),
            UiFinishReason::ToolCalls
        );
        assert_eq!(
            answered(Some(FinishReason::Other("content_filter".into()))),
            UiFinishReason::ContentFilter
        );
        assert_eq!(
            answered(Some(FinishReason::Other("eos".into()))),
            UiFinishReason::Other
        );
        assert_eq!(answered(None), UiFinishReason::Other);
        assert_eq!(
            turn_finish_reason(&Finish::StepCapReached { steps: 3 }, None),
            UiFinishReason::ToolCalls
        );
        assert_eq!(
            turn_finish_reason(
                &Finish::Refused {
                    reason: "blocked".into()
                },
                Some(&FinishReason::Stop)
            ),
            UiFinishReason::ContentFilter
        );
        assert_eq!(
            turn_finish_reason(
                &Finish::Failed {
                    message: "down".into()
                },
                Some(&FinishReason::Length)
            ),
            UiFinishReason::Error
        );
    }
}
