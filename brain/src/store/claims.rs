//! Session claims (migration 0016): everything an anonymous session owns moves to the user who
//! signed in with it, in one transaction, and the session stays bound to that user.
//!
//! Owner keys are passed in (`crate::account` makes them); this module only knows which tables
//! hold an `owner`. Budget keys (`chat_runs.budget_key`, `knowledge_documents.budget_key`) stay
//! as they were: tokens and chunks already counted against the visitor's network stay counted
//! there, and a deleted document gives its chunks back to the key it was counted under.

use std::collections::HashSet;

use shared_types::account::{RenamedDataset, SessionClaim};
use sqlx::Row;

use super::knowledge::bump_generation;
use super::{Store, StoreError};

/// Longest dataset name (the data plane's rule: it is an SQL table name).
const MAX_NAME_BYTES: usize = 64;
/// How many `<name>_<n>` candidates a colliding dataset name tries.
const MAX_RENAME_TRIES: usize = 1_000;

/// Who claims which session.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    pub session_id: &'a str,
    pub user_id: &'a str,
    /// The session's owner key (what its anonymous work is stored under).
    pub session_owner: &'a str,
    /// The user's owner key (where it moves).
    pub user_owner: &'a str,
    pub now_ms: i64,
}

/// What [`Store::claim_session`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Moved(SessionClaim),
    /// Another user claimed this session first: nothing moved.
    ClaimedByAnotherUser,
}

/// `<base>_<n>`, the base cut so the whole stays within [`MAX_NAME_BYTES`] (names are ASCII).
fn numbered(base: &str, n: usize) -> String {
    let suffix = format!("_{n}");
    let keep = MAX_NAME_BYTES.saturating_sub(suffix.len()).min(base.len());
    format!("{}{suffix}", &base[..keep])
}

/// Moves every row of `table` from owner `from` to owner `to`; how many moved.
async fn move_owner(
    connection: &mut sqlx::AnyConnection,
    table: &'static str,
    from: &str,
    to: &str,
) -> Result<u64, StoreError> {
    // `table` is one of the caller's literals, never input.
    let sql = format!("UPDATE {table} SET owner = $1 WHERE owner = $2");
    let moved = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(to.to_owned())
        .bind(from.to_owned())
        .execute(&mut *connection)
        .await
        .map_err(StoreError::from_write)?;
    Ok(moved.rows_affected())
}

impl Store {
    /// Moves `request.session_owner`'s threads, runs, escalations, documents and datasets to
    /// `request.user_owner`, all or nothing, and binds the session to the user. A dataset whose
    /// name the user (or, for a public one, anyone) already uses moves as `<name>_<n>`; every
    /// moved dataset gets a new version (cached answers about it are stale). Idempotent; a
    /// session bound to another user moves nothing.
    pub async fn claim_session(
        &self,
        request: &ClaimRequest<'_>,
    ) -> Result<ClaimOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        // On PostgreSQL a concurrent claim of the same session waits here for the first one's
        // commit; SQLite serialises writers.
        let inserted = sqlx::query(
            "INSERT INTO session_claims (session_id, user_id, claimed_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (session_id) DO NOTHING",
        )
        .bind(request.session_id.to_owned())
        .bind(request.user_id.to_owned())
        .bind(request.now_ms)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_write)?;
        let bound_to: String =
            sqlx::query_scalar("SELECT user_id FROM session_claims WHERE session_id = $1")
                .bind(request.session_id.to_owned())
                .fetch_one(&mut *tx)
                .await?;
        if bound_to != request.user_id {
            tx.rollback().await?;
            return Ok(ClaimOutcome::ClaimedByAnotherUser);
        }
        let mut moved = SessionClaim {
            first_claim: inserted.rows_affected() == 1,
            ..SessionClaim::default()
        };
        let (from, to) = (request.session_owner, request.user_owner);
        moved.threads = move_owner(&mut tx, "chat_threads", from, to).await?;
        moved.runs = move_owner(&mut tx, "chat_runs", from, to).await?;
        moved.escalations = move_owner(&mut tx, "escalations", from, to).await?;
        moved.documents = move_owner(&mut tx, "knowledge_documents", from, to).await?;
        move_owner(&mut tx, "knowledge_chunks", from, to).await?;
        if moved.documents > 0 {
            // Both owners' cached search indexes are stale, on every brain.
            bump_generation(&mut tx, from).await?;
            bump_generation(&mut tx, to).await?;
        }

        let datasets = sqlx::query("SELECT id, name, scope FROM datasets WHERE owner = $1")
            .bind(from.to_owned())
            .fetch_all(&mut *tx)
            .await?;
        if !datasets.is_empty() {
            // Names the moved datasets must not take: the user's own, and every public one.
            let existing = sqlx::query(
                "SELECT name, scope, owner FROM datasets WHERE owner = $1 OR scope = 'public'",
            )
            .bind(to.to_owned())
            .fetch_all(&mut *tx)
            .await?;
            let mut users: HashSet<String> = HashSet::new();
            let mut public: HashSet<String> = HashSet::new();
            for row in &existing {
                let name: String = row.try_get("name").map_err(StoreError::Query)?;
                let scope: String = row.try_get("scope").map_err(StoreError::Query)?;
                let owner: String = row.try_get("owner").map_err(StoreError::Query)?;
                if owner == to {
                    users.insert(name.clone());
                }
                if scope == super::datasets::SCOPE_PUBLIC && owner != from {
                    public.insert(name);
                }
            }
            for row in &datasets {
                let id: String = row.try_get("id").map_err(StoreError::Query)?;
                let name: String = row.try_get("name").map_err(StoreError::Query)?;
                let scope: String = row.try_get("scope").map_err(StoreError::Query)?;
                let is_public = scope == super::datasets::SCOPE_PUBLIC;
                let taken = |candidate: &str| {
                    users.contains(candidate) || (is_public && public.contains(candidate))
                };
                let free = |candidate: &str| !taken(candidate);
                let new_name = if free(&name) {
                    name.clone()
                } else {
                    (2..MAX_RENAME_TRIES + 2)
                        .map(|n| numbered(&name, n))
                        .find(|candidate| free(candidate))
                        // Past a thousand `<name>_<n>` the name is made of the id: unique.
                        .unwrap_or_else(|| format!("dataset_{}", id.replace('-', "")))
                };
                sqlx::query(
                    "UPDATE datasets SET owner = $1, name = $2, version = version + 1, \
                     updated_at_ms = $3 WHERE id = $4",
                )
                .bind(to.to_owned())
                .bind(new_name.clone())
                .bind(request.now_ms)
                .bind(id.clone())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                users.insert(new_name.clone());
                if new_name != name {
                    moved.renamed_datasets.push(RenamedDataset {
                        id,
                        from: name,
                        to: new_name,
                    });
                }
                moved.datasets += 1;
            }
        }
        tx.commit().await?;
        Ok(ClaimOutcome::Moved(moved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_stay_within_the_limit() {
        assert_eq!(numbered("sales", 2), "sales_2");
        let long = "x".repeat(MAX_NAME_BYTES);
        let name = numbered(&long, 1_000);
        assert_eq!(name.len(), MAX_NAME_BYTES);
        assert!(name.ends_with("_1000"));
    }
}
