//! Runs: one row per assistant reply, with its state, provider, usage and (once finished) its
//! event log; the lease saying which brain runs it until when (migration `0013`), and the events
//! of runs in progress (`chat_run_events`), stored as they happen for followers on other brains.
//!
//! Every write that ends a run is conditional on the run still being unfinished (and, for its
//! own brain, still leased to it), in one statement, so of two brains racing to end a run
//! exactly one does; the other learns it from the rows affected.

use std::sync::Arc;

use shared_types::agent::GroundingStatus;
use shared_types::chat::{FinishReason, GroundingCounts, Run, RunState, Usage};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::feed::{RUN_EVENTS_CHANNEL, RunSignal, payload};
use super::threads::{NewMessage, insert_message};
use super::{Backend, Store, StoreError};

/// Most stored events one [`Store::run_tail`] read returns.
pub const TAIL_BATCH: u32 = 512;

/// Most events one insert statement carries.
const INSERT_BATCH: usize = 200;

/// The condition (SQL, on `chat_runs`) of an unfinished run.
const UNFINISHED: &str = "(state = 'queued' OR state = 'running')";

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
    /// The brain id running it (the lease owner) and when its lease expires.
    pub lease_owner: &'a str,
    pub lease_expires_at_ms: i64,
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
    /// Set when another brain (or a restart) ended the run: how many events of `events_json`
    /// the run's own brain had stored; the ending after them is the finisher's.
    pub recovered_after_event: Option<u64>,
}

/// A run in progress as a follower reads it: its state and stored events after a cursor.
#[derive(Debug, Clone)]
pub struct RunTail {
    pub state: RunState,
    /// `(event number, JSON)`, in order.
    pub events: Vec<(u64, Arc<str>)>,
}

/// Which unfinished runs lost their brain.
#[derive(Debug, Clone, Copy)]
pub enum DeadRuns<'a> {
    /// Runs whose lease expired before `now_ms` (the periodic reaper of every brain).
    LeaseExpired { now_ms: i64 },
    /// At a brain's start: runs whose lease expired or that have none, and the runs of this
    /// brain id (an earlier process with the same `--brain-id` ran them).
    AtStart { brain: &'a str, now_ms: i64 },
    /// At start on SQLite, a fleet of one: every unfinished run (no other brain can run one).
    AllUnfinished,
}

impl DeadRuns<'_> {
    /// The SQL condition, with its parameters numbered from `$first`, and their values.
    fn condition(&self, first: usize) -> (String, Vec<Param>) {
        match *self {
            DeadRuns::LeaseExpired { now_ms } => (
                format!("lease_expires_at_ms < ${first}"),
                vec![Param::Int(now_ms)],
            ),
            DeadRuns::AtStart { brain, now_ms } => (
                format!(
                    "(lease_expires_at_ms IS NULL OR lease_expires_at_ms < ${first} \
                     OR lease_owner = ${})",
                    first + 1
                ),
                vec![Param::Int(now_ms), Param::Text(brain.to_owned())],
            ),
            DeadRuns::AllUnfinished => ("1 = 1".to_owned(), Vec::new()),
        }
    }
}

#[derive(Debug, Clone)]
enum Param {
    Int(i64),
    Text(String),
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    params: &[Param],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    for param in params {
        query = match param {
            Param::Int(value) => query.bind(*value),
            Param::Text(value) => query.bind(value.clone()),
        };
    }
    query
}

const RUN_COLUMNS: &str = "id, thread_id, state, model, provider, provider_model, error, \
    input_tokens, output_tokens, cost_micro_usd, created_at_ms, finished_at_ms, owner, events, \
    agent, refusal, finish_reason, grounding, recovered_after_event";

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
        recovered_after_event: row
            .try_get::<Option<i64>, _>(18)?
            .map(|count| u64::try_from(count).unwrap_or(0)),
    })
}

impl Store {
    /// Stores a turn's user message and records its run in one transaction, so
    /// neither exists without the other; with `replaces_from_seq`, the thread's messages from
    /// that number on are removed first (edit and resend). `false` (nothing written) when the
    /// thread is gone.
    pub async fn start_turn(
        &self,
        user_message: &NewMessage<'_>,
        run: &NewRun<'_>,
        replaces_from_seq: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(seq) = replaces_from_seq {
            // Edit and resend: the replaced turn and all after it go in the same transaction
            // as the new message takes their place (a thread gone meanwhile rolls both back).
            sqlx::query("DELETE FROM chat_messages WHERE thread_id = $1 AND seq >= $2")
                .bind(user_message.thread_id.to_owned())
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        if !insert_message(&mut tx, user_message).await? {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO chat_runs (id, thread_id, owner, state, model, instance_id, created_at_ms, \
             agent, budget_key, lease_owner, lease_expires_at_ms, heartbeat_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
        .bind(run.lease_owner.to_owned())
        .bind(run.lease_expires_at_ms)
        .bind(user_message.created_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn mark_run_running(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE chat_runs SET state = $1 WHERE id = $2 AND state = $3")
            .bind(RunState::Running.as_str())
            .bind(id.to_owned())
            .bind(RunState::Queued.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores what a run produced (if anything, and if its thread still exists) and its outcome
    /// in one transaction: a crash never leaves a stored reply under a run still `running`.
    /// Only while `brain` holds the run: `false` (nothing written) when another brain ended it
    /// meanwhile (its lease had expired) or its thread was deleted. The run's event rows are
    /// dropped (its log is in `outcome`) and followers are signalled.
    pub async fn finish_run(
        &self,
        id: &str,
        brain: &str,
        reply: Option<&NewMessage<'_>>,
        outcome: &RunOutcome<'_>,
        event_count: u64,
    ) -> Result<bool, StoreError> {
        let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await?;
        // The thread first (as `delete_thread` locks it first), then the run.
        if let Some(reply) = reply {
            insert_message(&mut tx, reply).await?;
        }
        let sql = format!(
            "UPDATE chat_runs SET state = $1, provider = $2, provider_model = $3, error = $4, \
             input_tokens = $5, output_tokens = $6, cost_micro_usd = $7, events = $8, \
             finished_at_ms = $9, refusal = $10, finish_reason = $11, grounding = $12, \
             lease_expires_at_ms = NULL WHERE id = $13 AND lease_owner = $14 AND {UNFINISHED}"
        );
        let updated = sqlx::query(sqlx::AssertSqlSafe(sql))
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
            .bind(brain.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.end_events(&mut tx, id, event_count).await?;
        tx.commit().await?;
        self.signal_committed(id);
        Ok(true)
    }

    /// Renews `brain`'s lease of run `id` (until `lease_expires_at_ms`) and stores `events`,
    /// numbered from `first_seq`, in one transaction; on PostgreSQL followers are notified at
    /// commit. `false` (nothing written) when `brain` no longer holds the run: it ended, another
    /// brain failed it after its lease expired, or its thread was deleted. The renewal takes the
    /// run's row lock first, so a brain failing the run at the same moment either waits and
    /// then sees the renewed lease, or wins and this write finds the run ended.
    pub async fn append_run_events(
        &self,
        id: &str,
        brain: &str,
        first_seq: u64,
        events: &[Arc<str>],
        lease_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE chat_runs SET lease_expires_at_ms = $1, heartbeat_at_ms = $2 \
             WHERE id = $3 AND lease_owner = $4 AND {UNFINISHED}"
        );
        let renewed = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lease_expires_at_ms)
            .bind(now_ms)
            .bind(id.to_owned())
            .bind(brain.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if renewed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if events.is_empty() {
            tx.commit().await?;
            return Ok(true);
        }
        for (chunk_index, chunk) in events.chunks(INSERT_BATCH).enumerate() {
            let mut sql = String::from("INSERT INTO chat_run_events (run_id, seq, data) VALUES ");
            for index in 0..chunk.len() {
                if index > 0 {
                    sql.push_str(", ");
                }
                let base = 3 * index;
                sql.push_str(&format!("(${}, ${}, ${})", base + 1, base + 2, base + 3));
            }
            // A retry after a commit whose answer was lost writes the same events again.
            sql.push_str(" ON CONFLICT (run_id, seq) DO NOTHING");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            let offset = u64::try_from(chunk_index * INSERT_BATCH).unwrap_or(u64::MAX);
            for (index, data) in chunk.iter().enumerate() {
                let seq = first_seq
                    .saturating_add(offset)
                    .saturating_add(u64::try_from(index).unwrap_or(u64::MAX));
                query = query
                    .bind(id.to_owned())
                    .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                    .bind(data.to_string());
            }
            query.execute(&mut *tx).await?;
        }
        let last = first_seq.saturating_add(u64::try_from(events.len()).unwrap_or(u64::MAX)) - 1;
        self.signal_in(&mut tx, id, last).await?;
        tx.commit().await?;
        self.signal_committed(id);
        Ok(true)
    }

    /// The state and stored events after event `after` of a run in progress, if it belongs to
    /// `owner` (at most [`TAIL_BATCH`] events; one statement, so state and events agree).
    pub async fn run_tail(
        &self,
        owner: &str,
        id: &str,
        after: u64,
    ) -> Result<Option<RunTail>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.state, e.seq, e.data FROM chat_runs r \
             LEFT JOIN chat_run_events e ON e.run_id = r.id AND e.seq > $3 \
             WHERE r.owner = $1 AND r.id = $2 ORDER BY e.seq LIMIT $4",
        )
        .bind(owner.to_owned())
        .bind(id.to_owned())
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(TAIL_BATCH))
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let state: String = first.try_get(0).map_err(StoreError::Query)?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: Option<i64> = row.try_get(1).map_err(StoreError::Query)?;
            let data: Option<String> = row.try_get(2).map_err(StoreError::Query)?;
            if let (Some(seq), Some(data)) = (seq, data) {
                events.push((u64::try_from(seq).unwrap_or(0), Arc::from(data)));
            }
        }
        Ok(Some(RunTail {
            state: RunState::parse(&state).unwrap_or(RunState::Failed),
            events,
        }))
    }

    /// Ids of the unfinished runs that lost their brain (see [`DeadRuns`]).
    pub async fn dead_runs(&self, which: DeadRuns<'_>) -> Result<Vec<String>, StoreError> {
        let (condition, params) = which.condition(1);
        let sql = format!("SELECT id FROM chat_runs WHERE {UNFINISHED} AND {condition}");
        let query = bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), &params);
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(StoreError::Query)
    }

    /// Marks run `id` failed with `reason` if it still is one of `which` — one conditional
    /// `UPDATE`, so of brains racing to do this exactly one does (`true`); the others find
    /// nothing to update (`false`). The winner moves the events the run's brain stored into the
    /// run's log, appends `ending` (the error and finish events, JSON) and signals followers.
    pub async fn fail_dead_run(
        &self,
        id: &str,
        which: DeadRuns<'_>,
        reason: &str,
        ending: &[String],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (condition, params) = which.condition(5);
        let sql = format!(
            "UPDATE chat_runs SET state = $1, error = $2, finished_at_ms = $3, \
             finish_reason = 'error', lease_expires_at_ms = NULL \
             WHERE id = $4 AND {UNFINISHED} AND {condition}"
        );
        let query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(RunState::Failed.as_str())
            .bind(reason.to_owned())
            .bind(now_ms)
            .bind(id.to_owned());
        let failed = bind_all(query, &params)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if failed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let rows = sqlx::query("SELECT data FROM chat_run_events WHERE run_id = $1 ORDER BY seq")
            .bind(id.to_owned())
            .fetch_all(&mut *tx)
            .await?;
        let mut log = String::from("[");
        for (index, row) in rows.iter().enumerate() {
            if index > 0 {
                log.push(',');
            }
            log.push_str(&row.try_get::<String, _>(0).map_err(StoreError::Query)?);
        }
        for (index, event) in ending.iter().enumerate() {
            if index > 0 || !rows.is_empty() {
                log.push(',');
            }
            log.push_str(event);
        }
        log.push(']');
        let stored = u64::try_from(rows.len()).unwrap_or(u64::MAX);
        sqlx::query("UPDATE chat_runs SET events = $1, recovered_after_event = $2 WHERE id = $3")
            .bind(log)
            .bind(i64::try_from(stored).unwrap_or(i64::MAX))
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        let total = stored.saturating_add(u64::try_from(ending.len()).unwrap_or(u64::MAX));
        self.end_events(&mut tx, id, total).await?;
        tx.commit().await?;
        self.signal_committed(id);
        Ok(true)
    }

    /// A run ended: its event rows go (the log is in `chat_runs.events` now) and followers are
    /// signalled.
    async fn end_events(
        &self,
        tx: &mut Transaction<'_, Any>,
        id: &str,
        event_count: u64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM chat_run_events WHERE run_id = $1")
            .bind(id.to_owned())
            .execute(&mut **tx)
            .await?;
        self.signal_in(tx, id, event_count).await
    }

    /// PostgreSQL: `NOTIFY` the run's followers on every brain when `tx` commits.
    async fn signal_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        id: &str,
        last_event: u64,
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // `pg_notify` returns `void`, which the Any driver cannot decode: select a number
            // from it instead (a volatile function is never optimised away).
            sqlx::query("SELECT CAST(1 AS BIGINT) FROM (SELECT pg_notify($1, $2)) AS sent")
                .bind(RUN_EVENTS_CHANNEL)
                .bind(payload(id, last_event))
                .fetch_all(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// SQLite: signal this process's followers once a write committed.
    fn signal_committed(&self, id: &str) {
        if self.backend == Backend::Sqlite {
            self.feed.send(RunSignal::Changed {
                run_id: id.to_owned(),
            });
        }
    }

    /// The run if it belongs to `owner`.
    pub async fn get_run(&self, owner: &str, id: &str) -> Result<Option<StoredRun>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM chat_runs WHERE owner = $1 AND id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_owned())
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        super::decode_row(row.as_ref(), run_from_row)
    }

    /// One owner's runs per grounding verdict.
    pub async fn owner_grounding(&self, owner: &str) -> Result<GroundingCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT grounding, CAST(COUNT(*) AS BIGINT) FROM chat_runs \
             WHERE owner = $1 AND grounding IS NOT NULL GROUP BY grounding",
        )
        .bind(owner.to_owned())
        .fetch_all(&self.pool)
        .await?;
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
        .await?;
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
        .await?;
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
