//! Escalations to humans (`escalate_to_human`), listed and resolved by operators. Callers'
//! reads filter by owner in SQL; the operator listing is deliberately across owners (it is
//! the operator's job) and is reachable only with the operator scope (see
//! `http::escalations`).

use shared_types::agent::{Escalation, EscalationStatus, Urgency};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// What the agent records.
#[derive(Debug, Clone)]
pub struct NewEscalation<'a> {
    pub id: &'a str,
    pub owner: &'a str,
    pub thread_id: &'a str,
    pub run_id: Option<&'a str>,
    pub agent: &'a str,
    pub reason: &'a str,
    pub urgency: Urgency,
    pub created_at_ms: i64,
}

const COLUMNS: &str = "id, owner, thread_id, run_id, agent, reason, urgency, status, \
    created_at_ms, resolved_at_ms, resolved_by, resolution";

fn escalation_from_row(row: &AnyRow) -> Result<Escalation, sqlx::Error> {
    let urgency: String = row.try_get(6)?;
    let status: String = row.try_get(7)?;
    Ok(Escalation {
        id: row.try_get(0)?,
        owner: row.try_get(1)?,
        thread_id: row.try_get(2)?,
        run_id: row.try_get(3)?,
        agent: row.try_get(4)?,
        reason: row.try_get(5)?,
        urgency: Urgency::parse(&urgency).unwrap_or_default(),
        status: EscalationStatus::parse(&status).unwrap_or(EscalationStatus::Open),
        created_at_ms: row.try_get(8)?,
        resolved_at_ms: row.try_get(9)?,
        resolved_by: row.try_get(10)?,
        resolution: row.try_get(11)?,
    })
}

impl Store {
    pub async fn insert_escalation(
        &self,
        escalation: &NewEscalation<'_>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO escalations (id, owner, thread_id, run_id, agent, reason, urgency, \
             status, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(escalation.id.to_owned())
        .bind(escalation.owner.to_owned())
        .bind(escalation.thread_id.to_owned())
        .bind(escalation.run_id.map(str::to_owned))
        .bind(escalation.agent.to_owned())
        .bind(escalation.reason.to_owned())
        .bind(escalation.urgency.as_str())
        .bind(EscalationStatus::Open.as_str())
        .bind(escalation.created_at_ms)
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Every owner's escalations (operators only), newest first, optionally of one status.
    pub async fn list_escalations(
        &self,
        status: Option<EscalationStatus>,
        limit: u32,
    ) -> Result<Vec<Escalation>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM escalations WHERE ($1 = '' OR status = $1) \
             ORDER BY created_at_ms DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(status.map_or("", EscalationStatus::as_str))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        super::decode_rows(&rows, escalation_from_row)
    }

    /// The escalations of one owner's thread (what the conversation's owner may see).
    pub async fn escalations_of_thread(
        &self,
        owner: &str,
        thread_id: &str,
    ) -> Result<Vec<Escalation>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM escalations WHERE owner = $1 AND thread_id = $2 \
             ORDER BY created_at_ms, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_owned())
            .bind(thread_id.to_owned())
            .fetch_all(&self.pool)
            .await?;
        super::decode_rows(&rows, escalation_from_row)
    }

    pub async fn get_escalation(&self, id: &str) -> Result<Option<Escalation>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM escalations WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        super::decode_row(row.as_ref(), escalation_from_row)
    }

    /// Resolves an open escalation; `false` when there is no open one with that id.
    pub async fn resolve_escalation(
        &self,
        id: &str,
        resolved_by: &str,
        resolution: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE escalations SET status = $1, resolved_at_ms = $2, resolved_by = $3, \
             resolution = $4 WHERE id = $5 AND status = $6",
        )
        .bind(EscalationStatus::Resolved.as_str())
        .bind(now_ms)
        .bind(resolved_by.to_owned())
        .bind(resolution.map(str::to_owned))
        .bind(id.to_owned())
        .bind(EscalationStatus::Open.as_str())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }
}
