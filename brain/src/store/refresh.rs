//! Refresh-token families (migration 0016): the state behind the edge's sign-in sessions.
//!
//! A family is one sign-in; its tokens succeed each other. Only SHA-256 hashes of tokens are
//! stored. Exchanging a token marks it used and stores its successor in one transaction; a
//! used token presented again revokes the family ("reuse"), unless it was used no longer than
//! the caller's leeway ago (a browser's concurrent requests racing to refresh).

use sqlx::Row;

use super::{Store, StoreError};

/// Why a family was revoked (`refresh_families.revoked_reason`).
pub const REVOKED_BY_SIGN_OUT: &str = "sign-out";
pub const REVOKED_FOR_REUSE: &str = "reuse";

/// A new sign-in: the family and its first token.
#[derive(Debug, Clone)]
pub struct NewFamily<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    /// `shared_types::account::SignedInUser` as JSON.
    pub user_json: &'a str,
    pub token_hash: &'a str,
    pub now_ms: i64,
    pub token_expires_at_ms: i64,
    pub family_expires_at_ms: i64,
}

/// The exchange of a token for its successor.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    pub token_hash: &'a str,
    pub new_token_hash: &'a str,
    /// Clamped to the family's end.
    pub new_token_expires_at_ms: i64,
    pub now_ms: i64,
    /// How long after its use a token may still be presented without revoking the family.
    pub reuse_leeway_ms: i64,
}

/// The family a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRecord {
    pub id: String,
    pub user_json: String,
    pub expires_at_ms: i64,
}

/// What [`Store::exchange_refresh_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchanged {
    /// The token was current: it is used now and its successor stored.
    Rotated(FamilyRecord),
    /// The token had been exchanged within the leeway: valid, nothing stored.
    WithinLeeway(FamilyRecord),
    /// The token had been exchanged before the leeway: the family is revoked now.
    Reused,
    Unknown,
    Expired,
    Revoked,
}

impl Store {
    /// Stores a new family and its first token, and deletes families that ended over a day ago
    /// (sign-ins are rare enough to carry that housekeeping).
    pub async fn start_refresh_family(&self, family: &NewFamily<'_>) -> Result<(), StoreError> {
        const KEEP_ENDED_MS: i64 = 24 * 60 * 60 * 1000;
        let mut tx = self.pool.begin().await?;
        let ended_before = family.now_ms.saturating_sub(KEEP_ENDED_MS);
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE family_id IN \
             (SELECT id FROM refresh_families WHERE expires_at_ms < $1)",
        )
        .bind(ended_before)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM refresh_families WHERE expires_at_ms < $1")
            .bind(ended_before)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO refresh_families (id, user_id, user_json, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(family.id.to_owned())
        .bind(family.user_id.to_owned())
        .bind(family.user_json.to_owned())
        .bind(family.now_ms)
        .bind(family.family_expires_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_write)?;
        insert_token(
            &mut tx,
            family.token_hash,
            family.id,
            family.now_ms,
            family.token_expires_at_ms.min(family.family_expires_at_ms),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from_sqlx)
    }

    /// Exchanges a token for its successor (see [`Exchanged`]). Of two concurrent exchanges of
    /// one token exactly one rotates; the other finds it used (within the leeway, normally).
    ///
    /// The transaction's first statement is the conditional write, so concurrent exchanges
    /// queue for SQLite's write lock instead of two readers deadlocking on its upgrade (which
    /// SQLite answers with an immediate `SQLITE_BUSY`); on PostgreSQL the second waits on the
    /// row and re-checks the condition.
    pub async fn exchange_refresh_token(
        &self,
        exchange: &Exchange<'_>,
    ) -> Result<Exchanged, StoreError> {
        let mut tx = self.pool.begin().await?;
        let used = sqlx::query(
            "UPDATE refresh_tokens SET used_at_ms = $1 \
             WHERE token_hash = $2 AND used_at_ms IS NULL AND expires_at_ms > $1 \
             AND family_id IN (SELECT id FROM refresh_families \
                               WHERE revoked_at_ms IS NULL AND expires_at_ms > $1)",
        )
        .bind(exchange.now_ms)
        .bind(exchange.token_hash.to_owned())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT t.family_id, t.expires_at_ms AS token_expires, t.used_at_ms, f.user_json, \
             f.expires_at_ms AS family_expires, f.revoked_at_ms \
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.token_hash = $1",
        )
        .bind(exchange.token_hash.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(Exchanged::Unknown);
        };
        let get = |name: &str| row.try_get::<i64, _>(name).map_err(StoreError::Query);
        let family = FamilyRecord {
            id: row.try_get("family_id").map_err(StoreError::Query)?,
            user_json: row.try_get("user_json").map_err(StoreError::Query)?,
            expires_at_ms: get("family_expires")?,
        };
        if used.rows_affected() == 1 {
            insert_token(
                &mut tx,
                exchange.new_token_hash,
                &family.id,
                exchange.now_ms,
                exchange.new_token_expires_at_ms.min(family.expires_at_ms),
            )
            .await?;
            tx.commit().await?;
            return Ok(Exchanged::Rotated(family));
        }
        let revoked: Option<i64> = row.try_get("revoked_at_ms").map_err(StoreError::Query)?;
        if revoked.is_some() {
            return Ok(Exchanged::Revoked);
        }
        if get("token_expires")? <= exchange.now_ms || family.expires_at_ms <= exchange.now_ms {
            return Ok(Exchanged::Expired);
        }
        // Valid but already exchanged.
        let used_at: Option<i64> = row.try_get("used_at_ms").map_err(StoreError::Query)?;
        let used_at = used_at.unwrap_or(i64::MIN);
        if exchange.now_ms.saturating_sub(used_at) <= exchange.reuse_leeway_ms {
            return Ok(Exchanged::WithinLeeway(family));
        }
        revoke_family(&mut tx, &family.id, exchange.now_ms, REVOKED_FOR_REUSE).await?;
        tx.commit().await?;
        Ok(Exchanged::Reused)
    }

    /// Revokes the family of `token_hash` (any of its tokens, used or not); `false` when no
    /// such token is stored or the family was already revoked. One statement: no transaction
    /// to deadlock.
    pub async fn revoke_refresh_family(
        &self,
        token_hash: &str,
        now_ms: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE refresh_families SET revoked_at_ms = $1, revoked_reason = $2 \
             WHERE revoked_at_ms IS NULL \
             AND id IN (SELECT family_id FROM refresh_tokens WHERE token_hash = $3)",
        )
        .bind(now_ms)
        .bind(reason.to_owned())
        .bind(token_hash.to_owned())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

/// Stores a family's next token (unused); a hash already stored is [`StoreError::Conflict`].
async fn insert_token(
    connection: &mut sqlx::AnyConnection,
    token_hash: &str,
    family_id: &str,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, issued_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash.to_owned())
    .bind(family_id.to_owned())
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(&mut *connection)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

async fn revoke_family(
    connection: &mut sqlx::AnyConnection,
    family: &str,
    now_ms: i64,
    reason: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE refresh_families SET revoked_at_ms = $1, revoked_reason = $2 \
         WHERE id = $3 AND revoked_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(reason.to_owned())
    .bind(family.to_owned())
    .execute(&mut *connection)
    .await?;
    Ok(done.rows_affected() == 1)
}
