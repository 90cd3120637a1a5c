//! Threads and messages. Every query filters by `owner`: a caller never reads or changes
//! another identity's threads.

use shared_types::chat::{Message, Role, Thread, Usage};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// A message as the context builder needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryMessage {
    pub role: Role,
    pub text: String,
}

/// What to insert as a new message.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub id: &'a str,
    pub thread_id: &'a str,
    pub role: Role,
    pub parts_json: &'a str,
    pub text: &'a str,
    pub run_id: Option<&'a str>,
    pub created_at_ms: i64,
    /// An assistant reply's metadata (`RunMessageMetadata` as JSON).
    pub metadata_json: Option<&'a str>,
}

const THREAD_COLUMNS: &str = "t.id, t.title, t.created_at_ms, t.updated_at_ms, \
    CAST(COALESCE((SELECT SUM(r.input_tokens) FROM chat_runs r WHERE r.thread_id = t.id), 0) AS BIGINT), \
    CAST(COALESCE((SELECT SUM(r.output_tokens) FROM chat_runs r WHERE r.thread_id = t.id), 0) AS BIGINT), \
    CAST(COALESCE((SELECT SUM(r.cost_micro_usd) FROM chat_runs r WHERE r.thread_id = t.id), 0) AS BIGINT), \
    t.agent";

fn thread_from_row(row: &AnyRow) -> Result<Thread, sqlx::Error> {
    let count = |index: usize| -> Result<u64, sqlx::Error> {
        Ok(u64::try_from(row.try_get::<i64, _>(index)?).unwrap_or(0))
    };
    Ok(Thread {
        id: row.try_get(0)?,
        title: row.try_get(1)?,
        created_at_ms: row.try_get(2)?,
        updated_at_ms: row.try_get(3)?,
        usage: Usage {
            input_tokens: count(4)?,
            output_tokens: count(5)?,
            cost_micro_usd: count(6)?,
        },
        agent: row.try_get(7)?,
    })
}

fn message_from_row(row: &AnyRow) -> Result<Message, sqlx::Error> {
    let role: String = row.try_get(1)?;
    let parts: String = row.try_get(2)?;
    Ok(Message {
        id: row.try_get(0)?,
        role: Role::parse(&role).unwrap_or(Role::Assistant),
        // Written by the brain from valid JSON; an unreadable row shows as no parts.
        parts: serde_json::from_str(&parts).unwrap_or_default(),
        created_at_ms: row.try_get(3)?,
        run_id: row.try_get(4)?,
        metadata: row
            .try_get::<Option<String>, _>(5)?
            .and_then(|json| serde_json::from_str(&json).ok()),
    })
}

impl Store {
    pub async fn create_thread(
        &self,
        id: &str,
        owner: &str,
        title: &str,
        agent: Option<&str>,
        now_ms: i64,
    ) -> Result<Thread, StoreError> {
        sqlx::query(
            "INSERT INTO chat_threads (id, owner, title, created_at_ms, updated_at_ms, agent) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(id.to_owned())
        .bind(owner.to_owned())
        .bind(title.to_owned())
        .bind(now_ms)
        .bind(agent.map(str::to_owned))
        .execute(&self.pool)
        .await?;
        Ok(Thread {
            id: id.to_owned(),
            title: title.to_owned(),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            usage: Usage::default(),
            agent: agent.map(str::to_owned),
        })
    }

    pub async fn get_thread(&self, owner: &str, id: &str) -> Result<Option<Thread>, StoreError> {
        let sql =
            format!("SELECT {THREAD_COLUMNS} FROM chat_threads t WHERE t.owner = $1 AND t.id = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_owned())
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        super::decode_row(row.as_ref(), thread_from_row)
    }

    /// Most recently active first. `after` is the `(updated_at_ms, id)` of the previous page's
    /// last thread. Returns `limit + 1` rows at most so the caller knows whether more exist.
    pub async fn list_threads(
        &self,
        owner: &str,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<Thread>, StoreError> {
        let (after_ms, after_id) = after.unwrap_or((i64::MAX, String::new()));
        let unbounded = after_id.is_empty();
        let sql = format!(
            "SELECT {THREAD_COLUMNS} FROM chat_threads t WHERE t.owner = $1 \
             AND ($2 = 1 OR t.updated_at_ms < $3 OR (t.updated_at_ms = $3 AND t.id < $4)) \
             ORDER BY t.updated_at_ms DESC, t.id DESC LIMIT $5"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner.to_owned())
            .bind(i64::from(unbounded))
            .bind(after_ms)
            .bind(after_id)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        super::decode_rows(&rows, thread_from_row)
    }

    /// Renames; `false` when the caller has no such thread.
    pub async fn rename_thread(
        &self,
        owner: &str,
        id: &str,
        title: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE chat_threads SET title = $1, updated_at_ms = $2 WHERE owner = $3 AND id = $4",
        )
        .bind(title.to_owned())
        .bind(now_ms)
        .bind(owner.to_owned())
        .bind(id.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Deletes the thread with its messages and runs; `false` when the caller has no such
    /// thread.
    pub async fn delete_thread(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM chat_threads WHERE owner = $1 AND id = $2")
            .bind(owner.to_owned())
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM chat_messages WHERE thread_id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await?;
        // The runs first (waiting for a brain storing events of one of them to commit), then
        // their stored events: a brain writing events later finds its run gone and stops it.
        let runs = sqlx::query("DELETE FROM chat_runs WHERE thread_id = $1 RETURNING id")
            .bind(id.to_owned())
            .fetch_all(&mut *tx)
            .await?;
        for run in &runs {
            let run_id: String = run.try_get(0).map_err(StoreError::Query)?;
            sqlx::query("DELETE FROM chat_run_events WHERE run_id = $1")
                .bind(run_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Oldest first, after message number `after_seq`; at most `limit + 1` rows, each with its
    /// `seq` (the pagination cursor).
    pub async fn list_messages(
        &self,
        owner: &str,
        thread_id: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Message)>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.id, m.role, m.parts, m.created_at_ms, m.run_id, m.metadata, m.seq \
             FROM chat_messages m \
             JOIN chat_threads t ON t.id = m.thread_id \
             WHERE t.owner = $1 AND m.thread_id = $2 AND m.seq > $3 ORDER BY m.seq LIMIT $4",
        )
        .bind(owner.to_owned())
        .bind(thread_id.to_owned())
        .bind(after_seq)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get::<i64, _>(6)?, message_from_row(row)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::Query)
    }

    /// The assistant message a run stored, if any.
    pub async fn assistant_message_of_run(
        &self,
        run_id: &str,
    ) -> Result<Option<Message>, StoreError> {
        let row = sqlx::query(
            "SELECT id, role, parts, created_at_ms, run_id, metadata FROM chat_messages \
             WHERE run_id = $1 AND role = $2",
        )
        .bind(run_id.to_owned())
        .bind(Role::Assistant.as_str())
        .fetch_optional(&self.pool)
        .await?;
        super::decode_row(row.as_ref(), message_from_row)
    }

    /// Where the turn that message `message_id` of the thread belongs to begins (its last turn
    /// with `None`): the `seq` of the turn's user message (an assistant message's turn begins
    /// at the user message of its run). `None` when the thread has no such message.
    pub async fn turn_start(
        &self,
        thread_id: &str,
        message_id: Option<&str>,
    ) -> Result<Option<i64>, StoreError> {
        let seq: Option<i64> = match message_id {
            Some(message_id) => {
                sqlx::query_scalar(
                    "SELECT CAST(MIN(t.seq) AS BIGINT) FROM chat_messages m \
                     JOIN chat_messages t ON t.thread_id = m.thread_id \
                      AND (t.id = m.id OR (m.run_id IS NOT NULL AND t.run_id = m.run_id)) \
                     WHERE m.thread_id = $1 AND m.id = $2",
                )
                .bind(thread_id.to_owned())
                .bind(message_id.to_owned())
                .fetch_one(&self.pool)
                .await?
            }
            None => {
                sqlx::query_scalar(
                    "SELECT CAST(MAX(seq) AS BIGINT) FROM chat_messages \
                     WHERE thread_id = $1 AND role = $2",
                )
                .bind(thread_id.to_owned())
                .bind(Role::User.as_str())
                .fetch_one(&self.pool)
                .await?
            }
        };
        Ok(seq)
    }

    /// The last `limit` messages of a thread before message number `before_seq` (all of them
    /// with `None`) as plain text, oldest first.
    pub async fn recent_history(
        &self,
        thread_id: &str,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<HistoryMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT role, text FROM chat_messages WHERE thread_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(thread_id.to_owned())
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut history = rows
            .iter()
            .map(|row| {
                let role: String = row.try_get(0)?;
                Ok(HistoryMessage {
                    role: Role::parse(&role).unwrap_or(Role::Assistant),
                    text: row.try_get(1)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(StoreError::Query)?;
        history.reverse();
        Ok(history)
    }
}

/// Inside `tx`: appends `message` to its thread unless the thread is gone (then `false`: a run
/// finishing after its thread was deleted must not leave orphan messages).
pub(super) async fn insert_message(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    message: &NewMessage<'_>,
) -> Result<bool, sqlx::Error> {
    // A no-op UPDATE, not a SELECT: it locks the thread row until this transaction ends, so a
    // concurrent `delete_thread` either finishes first (then no row is found here) or waits and
    // deletes this message with the thread. A plain read let a run finishing during the delete
    // leave a message behind on PostgreSQL (READ COMMITTED); SQLite serializes writers anyway.
    let threads =
        sqlx::query("UPDATE chat_threads SET updated_at_ms = updated_at_ms WHERE id = $1")
            .bind(message.thread_id.to_owned())
            .execute(&mut **tx)
            .await?
            .rows_affected();
    if threads == 0 {
        return Ok(false);
    }
    let next: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(MAX(seq), 0) + 1 AS BIGINT) FROM chat_messages WHERE thread_id = $1",
    )
    .bind(message.thread_id.to_owned())
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO chat_messages (id, thread_id, seq, role, parts, text, run_id, created_at_ms, \
         metadata) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(message.id.to_owned())
    .bind(message.thread_id.to_owned())
    .bind(next)
    .bind(message.role.as_str())
    .bind(message.parts_json.to_owned())
    .bind(message.text.to_owned())
    .bind(message.run_id.map(str::to_owned))
    .bind(message.created_at_ms)
    .bind(message.metadata_json.map(str::to_owned))
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE chat_threads SET updated_at_ms = $1 WHERE id = $2")
        .bind(message.created_at_ms)
        .bind(message.thread_id.to_owned())
        .execute(&mut **tx)
        .await?;
    Ok(true)
}
