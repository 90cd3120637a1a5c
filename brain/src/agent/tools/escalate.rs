//! `escalate_to_human`: records an escalation (thread, reason, urgency) that operators list
//! and resolve at `/api/v1/escalations`.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use shared_types::agent::{EscalationReceipt, EscalationStatus, Urgency};

use super::{Tool, ToolContext, ToolError};
use crate::store::escalations::NewEscalation;

/// Longest reason stored.
const MAX_REASON_CHARS: usize = 2_000;

#[derive(Debug, Clone, Copy, Default)]
pub struct EscalateToHuman;

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum UrgencyInput {
    Low,
    Normal,
    High,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EscalateInput {
    /// Why a human should take over (what the user needs that you cannot do).
    pub reason: String,
    /// low, normal (default) or high.
    #[serde(default)]
    pub urgency: Option<UrgencyInput>,
}

impl Tool for EscalateToHuman {
    const NAME: &'static str = "escalate_to_human";
    const DESCRIPTION: &'static str = "Hand this conversation to a human operator when the \
        user asks for a person, is upset, or needs something you cannot do.";
    type Input = EscalateInput;
    type Output = EscalationReceipt;

    fn call<'a>(
        &'a self,
        context: &'a ToolContext<'a>,
        input: EscalateInput,
    ) -> BoxFuture<'a, Result<EscalationReceipt, ToolError>> {
        async move {
            let reason: String = input.reason.trim().chars().take(MAX_REASON_CHARS).collect();
            if reason.is_empty() {
                return Err(ToolError::InvalidInput {
                    tool: Self::NAME.to_owned(),
                    message: "`reason` is empty".to_owned(),
                });
            }
            let urgency = match input.urgency {
                Some(UrgencyInput::Low) => Urgency::Low,
                Some(UrgencyInput::High) => Urgency::High,
                Some(UrgencyInput::Normal) | None => Urgency::Normal,
            };
            let id = uuid::Uuid::new_v4().to_string();
            context
                .services
                .store
                .insert_escalation(&NewEscalation {
                    id: &id,
                    owner: context.owner,
                    thread_id: context.thread_id,
                    run_id: Some(context.run_id),
                    agent: context.agent,
                    reason: &reason,
                    urgency,
                    created_at_ms: crate::clock::now_ms(),
                })
                .await
                .map_err(|error| {
                    tracing::error!(error = %crate::telemetry::error_chain(&error), "cannot record an escalation");
                    ToolError::Failed("the escalation could not be recorded".to_owned())
                })?;
            tracing::info!(escalation_id = %id, thread_id = %context.thread_id,
                run_id = %context.run_id, urgency = urgency.as_str(), "escalated to a human");
            Ok(EscalationReceipt {
                escalation_id: id,
                status: EscalationStatus::Open,
                urgency,
            })
        }
        .boxed()
    }
}
