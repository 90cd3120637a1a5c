//! Runs: one row per assistant reply, with its state, provider, usage and (once finished) its
//! event log.

use shared_types::agent::GroundingStatus;
use shared_types::chat::{FinishReason, GroundingCounts, Run, RunState, Usage};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::threads::{NewMessage, insert_message};
use super::{Store, StoreError};

/// The final facts of a run.
#[derive(Debug, Clone)]
pub struct RunOutcome<'a> {
    pub state: RunState,
    pub provider: Option<&'a str>,
    pub provider_model: Option<&'a str>,
    pub error: Option<&'a str>,
    pub usage: Usage,
    /// The UI message stream as a JSON array.
    pub events_json: &'a str,
    pub finished_at_ms: i64,
    /// Why a guardrail refused (or cut) the reply.
    pub refusal: Option<&'a str>,
    /// Why the reply ended.
    pub finish_reason: Option<FinishReason>,
    /// The grounding check's verdict, when checked.
    pub grounding: Option<GroundingStatus>,
}

/// A run to record.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub id: &'a str,
    pub owner: &'a str,
    /// Whose token budget the run draws on (`Identity::budget_key`).
    pub budget_key: &'a str,
    pub model: &'a str,
    /// The brain start running it.
    pub instance_id: &'a str,
    /// `queued`, or `running` when it got a generation slot at once.
    pub state: RunState,
    /// The agent answering.
    pub agent: Option<&'a str>,
}

/// A run row with its owner and stored events.
#[derive(Debug, Clone)]
pub struct StoredRun {
    pub run: Run,
    pub owner: String,
    pub events_json: Option<String>,
}

const RUN_COLUMNS: &str = "id, thread_id, state, model, provider, provider_model, error, \
    input_tokens, output_tokens, cost_micro_usd, created_at_ms, finished_at_ms, owner, events, \
    agent, refusal, finish_reason, grounding";

fn run_from_row(row: &AnyRow) -> Result<StoredRun, sqlx::Error> {
    let state: String = row.try_get(2)?;
    let count = |index: usize| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(row.try_get::<i64, _>(index)?).unwrap_or(0))
    };
    Ok(StoredRun {
        run: Run {
            id: row.try_get(0)?,
            thread_id: row.try_get(1)?,
            state: RunState::parse(&state).unwrap_or(RunState::Failed),
            model: row.try_get(3)?,
            provider: row.try_get(4)?,
            provider_model: row.try_get(5)?,
            error: row.try_get(6)?,
            usage: Usage {
                input_tokens: count(7)?,
                output_tokens: count(8)?,
                cost_micro_usd: count(9)?,
            },
            created_at_ms: row.try_get(10)?,
            finished_at_ms: row.try_get(11)?,
            agent: row.try_get(14)?,
            refusal: row.try_get(15)?,
            finish_reason: row
                .try_get::<Option<String>, _>(16)?
                .as_deref()
                .and_then(FinishReason::parse),
            grounding: row
                .try_get::<Option<String>, _>(17)?
                .as_deref()
                .and_then(GroundingStatus::parse),
        },
        owner: row.try_get(12)?,
        events_json: row.try_get(13)?,
    })
}

impl Store {
    /// Stores a turn's user message and records its run in one transaction, so
    /// neither exists without the other. `false` (nothing written) when the thread is gone.
    pub async fn start_turn(
        &self,
        user_message: &NewMessage<'_>,
        run: &NewRun<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        if !insert_message(&mut tx, user_message)
            .await
            .map_err(StoreError::from_sqlx)?
        {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO chat_runs (id, thread_id, owner, state, model, instance_id, created_at_ms, \
             agent, budget_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(run.id.to_owned())
        .bind(user_message.thread_id.to_owned())
        .bind(run.owner.to_owned())
        .bind(run.state.as_str())
        .bind(run.model.to_owned())
        .bind(run.instance_id.to_owned())
        .bind(user_message.created_at_ms)
        .bind(run.agent.map(str::to_owned))
        .bind(run.budget_key.to_owned())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        tx.commit().await.map_err(StoreError::from_sqlx)?;
        Ok(true)
    }

    pub async fn mark_run_running(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE chat_runs SET state = $1 WHERE id = $2 AND state = $3")
            .bind(RunState::Running.as_str())
            .bind(id.to_owned())
            .bind(RunState::Queued.as_str())
            .execute(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        Ok(())
    }

    /// Stores what a run produced (if anything, and if its thread still exists) and its outcome
    /// in one transaction: a crash never leaves a stored reply under a run still `running`.
    pub async fn finish_run(
        &self,
        id: &str,
        reply: Option<&NewMessage<'_>>,
        outcome: &RunOutcome<'_>,
    ) -> Result<(), StoreError> {
        let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await.map_err(StoreError::from_sqlx)?;
        if let Some(reply) = reply {
            insert_message(&mut tx, reply)
                .await
                .map_err(StoreError::from_sqlx)?;
        }
        sqlx::query(
            "UPDATE chat_runs SET state = $1, provider = $2, provider_model = $3, error = $4, \
             input_tokens = $5, output_tokens = $6, cost_micro_usd = $7, events = $8, \
             finished_at_ms = $9, refusal = $10, finish_reason = $11, grounding = $12 \
             WHERE id = $13",
        )
        .bind(outcome.state.as_str())
        .bind(outcome.provider.map(str::to_owned))
        .bind(outcome.provider_model.map(str::to_owned))
        .bind(outcome.error.map(str::to_owned))
        .bind(as_i64(outcome.usage.input_tokens))
        .bind(as_i64(outcome.usage.output_tokens))
        .bind(as_i64(outcome.usage.cost_micro_usd))
        .bind(outcome.events_json.to_owned())
        .bind(outcome.finished_at_ms)
        .bind(outcome.refusal.map(str::to_owned))
        .bind(outcome.finish_reason.map(|reason| reason.as_str()))
        .bind(outcome.grounding.map(|status| status.as_str()))
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_sqlx)?;
        tx.commit().await.map_err(StoreError::from_sqlx)
    }

    /// The run if it belongs to `owner`.
    pub async fn get_run(&self, owner: &str, id: &str) -> Result<Option<StoredRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM chat_runs WHERE owner = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_owned())
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)?;
        row.as_ref()
            .map(run_from_row)
            .transpose()
            .map_err(StoreError::Query)
    }

    /// Marks every run still `queued` or `running` as `failed`: called at start, when no run of
    /// an earlier process can still be alive. Returns how many were marked.
    pub async fn fail_interrupted_runs(
        &self,
        reason: &str,
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE chat_runs SET state = $1, error = $2, finished_at_ms = $3 \
             WHERE state = $4 OR state = $5",
        )
        .bind(RunState::Failed.as_str())
        .bind(reason.to_owned())
        .bind(now_ms)
        .bind(RunState::Queued.as_str())
        .bind(RunState::Running.as_str())
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(result.rows_affected())
    }

    /// One owner's runs per grounding verdict.
    pub async fn owner_grounding(&self, owner: &str) -> Result<GroundingCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT grounding, CAST(COUNT(*) AS BIGINT) FROM chat_runs \
             WHERE owner = $1 AND grounding IS NOT NULL GROUP BY grounding",
        )
        .bind(owner.to_owned())
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        let mut counts = GroundingCounts::default();
        for row in &rows {
            let status: String = row.try_get(0).map_err(StoreError::Query)?;
            let count: i64 = row.try_get(1).map_err(StoreError::Query)?;
            let count = u64::try_from(count).unwrap_or(0);
            match GroundingStatus::parse(&status) {
                Some(GroundingStatus::Verified) => counts.verified += count,
                Some(GroundingStatus::Unverified) => counts.unverified += count,
                Some(GroundingStatus::NoClaims) => counts.no_claims += count,
                None => {}
            }
        }
        Ok(counts)
    }

    /// Number of runs and summed usage of one owner.
    /// Tokens (in + out) of every run drawing on the budget `key` (`Identity::budget_key`).
    pub async fn budget_usage(&self, key: &str) -> Result<u64, StoreError> {
        let used: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(input_tokens), 0) + COALESCE(SUM(output_tokens), 0) \
             AS BIGINT) FROM chat_runs WHERE budget_key = $1",
        )
        .bind(key.to_owned())
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        Ok(u64::try_from(used).unwrap_or(0))
    }

    pub async fn owner_usage(&self, owner: &str) -> Result<(u64, Usage), StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(cost_micro_usd), 0) AS BIGINT) FROM chat_runs WHERE owner = $1",
        )
        .bind(owner.to_owned())
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::from_sqlx)?;
        let count = |index: usize| -> Result<u64, StoreError> {
            Ok(
                u64::try_from(row.try_get::<i64, _>(index).map_err(StoreError::Query)?)
                    .unwrap_or(0),
            )
        };
        Ok((
            count(0)?,
            Usage {
                input_tokens: count(1)?,
                output_tokens: count(2)?,
                cost_micro_usd: count(3)?,
            },
        ))
    }
}
