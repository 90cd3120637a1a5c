//! The context window policy: what of a thread's history the model sees.
//!
//! Budget = the model's `context_tokens` − the reply's output tokens. The system prompt (with
//! instructions and retrieved context) and the new user message are always included; if they
//! alone exceed the budget the turn is refused (422). Then earlier messages are added newest
//! first while they fit; the first one that does not fit ends the walk, so the model always sees
//! one contiguous, most recent stretch of the conversation (never a turn with a gap before it).
//! Dropped turns are not summarised; the system prompt tells the model how many were left out.
//! Messages are counted with the model's tokenizer plus fixed per-message and per-prompt
//! overheads for the chat template's markers.

use super::super::llm::tokens::{MESSAGE_OVERHEAD_TOKENS, PROMPT_OVERHEAD_TOKENS};

/// Which history messages to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextPlan {
    /// Index of the oldest history message kept.
    pub kept_from: usize,
    /// Messages left out (`kept_from`).
    pub omitted: usize,
    /// Prompt tokens of the plan (system + kept history, overhead included).
    pub prompt_tokens: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the prompt needs {needed} tokens but the model allows {budget} (after reserving the reply)"
)]
pub struct ContextTooLong {
    pub needed: u32,
    pub budget: u32,
}

/// Plans the context: `system_tokens` for the system prompt, `history_tokens` for each history
/// message oldest first (the last one is the new user message), `budget` for the whole prompt.
pub fn plan(
    system_tokens: u32,
    history_tokens: &[u32],
    budget: u32,
) -> Result<ContextPlan, ContextTooLong> {
    let cost = |tokens: u32| tokens.saturating_add(MESSAGE_OVERHEAD_TOKENS);
    let mut used = cost(system_tokens).saturating_add(PROMPT_OVERHEAD_TOKENS);
    let Some((newest, earlier)) = history_tokens.split_last() else {
        return Ok(ContextPlan {
            kept_from: 0,
            omitted: 0,
            prompt_tokens: used,
        });
    };
    used = used.saturating_add(cost(*newest));
    if used > budget {
        return Err(ContextTooLong {
            needed: used,
            budget,
        });
    }
    let mut kept_from = earlier.len();
    for (index, tokens) in earlier.iter().enumerate().rev() {
        let next = used.saturating_add(cost(*tokens));
        if next > budget {
            break;
        }
        used = next;
        kept_from = index;
    }
    Ok(ContextPlan {
        kept_from,
        omitted: kept_from,
        prompt_tokens: used,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const O: u32 = MESSAGE_OVERHEAD_TOKENS;
    const P: u32 = PROMPT_OVERHEAD_TOKENS;

    #[test]
    fn everything_fits() {
        let plan = plan(10, &[5, 5, 5], 100).unwrap();
        assert_eq!((plan.kept_from, plan.omitted), (0, 0));
        assert_eq!(plan.prompt_tokens, 25 + 4 * O + P);
    }

    #[test]
    fn oldest_turns_are_dropped_first_and_contiguously() {
        // Budget fits system + newest + one more; the 1-token message at index 0 would fit too,
        // but keeping it would leave a gap, so it is dropped with the 50-token one.
        let budget = (10 + O) + (5 + O) + (5 + O) + P + 1;
        let plan = plan(10, &[1, 50, 5, 5], budget).unwrap();
        assert_eq!(plan.kept_from, 2);
        assert_eq!(plan.omitted, 2);
    }

    #[test]
    fn a_prompt_that_cannot_fit_is_refused() {
        let error = plan(90, &[20], 100).unwrap_err();
        assert_eq!(error.needed, 110 + 2 * O + P);
        assert!(plan(0, &[], 100).is_ok());
    }
}
