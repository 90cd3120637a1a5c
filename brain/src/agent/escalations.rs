//! The operators' queue of conversations agents handed to humans (the `escalate_to_human`
//! tool writes to it): listing it and resolving an item, with the rules — a note of at most
//! [`MAX_RESOLUTION_CHARS`], an item resolved once. Who may call this (operators) is the HTTP
//! layer's check; this module trusts its caller.

use shared_types::agent::{Escalation, EscalationStatus};

use crate::clock::Clock;
use crate::store::{Store, StoreError};

/// Longest resolution note, in characters.
pub const MAX_RESOLUTION_CHARS: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum EscalationError {
    #[error("no escalation with id `{0}`")]
    NotFound(String),
    #[error("escalation `{0}` is already resolved")]
    AlreadyResolved(String),
    #[error("`resolution` may have at most {MAX_RESOLUTION_CHARS} characters")]
    NoteTooLong,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct EscalationQueue {
    store: Store,
    clock: Clock,
}

impl EscalationQueue {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Every owner's escalations, newest first, optionally of one status.
    pub async fn list(
        &self,
        status: Option<EscalationStatus>,
        limit: u32,
    ) -> Result<Vec<Escalation>, StoreError> {
        self.store.list_escalations(status, limit).await
    }

    /// Escalation `id`, or [`EscalationError::NotFound`].
    pub async fn get(&self, id: &str) -> Result<Escalation, EscalationError> {
        self.store
            .get_escalation(id)
            .await?
            .ok_or_else(|| EscalationError::NotFound(id.to_owned()))
    }

    /// Resolves open escalation `id` by `operator`, with an optional note (trimmed; empty is
    /// none); the resolved escalation.
    pub async fn resolve(
        &self,
        id: &str,
        operator: &str,
        note: Option<&str>,
    ) -> Result<Escalation, EscalationError> {
        let note = note.map(str::trim).filter(|text| !text.is_empty());
        if note.is_some_and(|text| text.chars().count() > MAX_RESOLUTION_CHARS) {
            return Err(EscalationError::NoteTooLong);
        }
        if self.get(id).await?.status == EscalationStatus::Resolved {
            return Err(EscalationError::AlreadyResolved(id.to_owned()));
        }
        let now = self.clock.now_ms();
        // Conditional on still being open: of two operators at once, one wins.
        if !self
            .store
            .resolve_escalation(id, operator, note, now)
            .await?
        {
            return Err(EscalationError::AlreadyResolved(id.to_owned()));
        }
        let resolved = self.get(id).await?;
        tracing::info!(escalation_id = %id, %operator, "escalation resolved");
        Ok(resolved)
    }
}
