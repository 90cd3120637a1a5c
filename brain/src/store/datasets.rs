//! Dataset metadata (`datasets` table, migration 0003). The rows themselves are Parquet objects
//! managed by [`crate::data`] (in the object store, `crate::data::objects`); this module only
//! stores what describes them, including the key of the object holding the current contents
//! (migration 0014): the row is what publishes an object, so every brain reads the one its
//! row names.
//!
//! Every read that serves a caller takes the caller's owner key and returns only datasets the
//! caller owns or that are public, so tenancy is enforced in the query itself.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// The stored `scope` of datasets every caller may read.
pub const SCOPE_PUBLIC: &str = "public";
/// The stored `scope` of datasets only their owner may read.
pub const SCOPE_PRIVATE: &str = "private";

/// One row of `datasets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetRecord {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub scope: String,
    /// JSON array of `shared_types::data::ColumnInfo`.
    pub columns_json: String,
    pub row_count: i64,
    /// Size of the Parquet object.
    pub bytes: i64,
    /// In-memory (Arrow) size of the contents as written; `None` for contents stored before
    /// it was recorded.
    pub frame_bytes: Option<i64>,
    pub pinned: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Starts at 1; every replace, append or rename adds one.
    pub version: i64,
    /// The object holding the contents (`crate::data::objects`); a rename keeps it.
    pub object_key: String,
}

/// What replacing or appending changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentsUpdate {
    pub columns_json: String,
    pub row_count: i64,
    pub bytes: i64,
    pub frame_bytes: i64,
    pub updated_at_ms: i64,
    /// The object just written with the new contents.
    pub object_key: String,
    /// The version the new contents replace: the update applies only if the row still has it
    /// (another brain may have written meanwhile).
    pub expected_version: i64,
}

/// What [`Store::update_dataset_contents`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentsUpdated {
    /// Committed as version `expected_version + 1`.
    Done,
    /// The dataset is gone (or not the owner's).
    Missing,
    /// Another writer committed a newer version first: nothing was changed.
    Conflict,
}

const COLUMNS: &str = "id, owner, name, scope, columns_json, row_count, bytes, frame_bytes, \
                       pinned, created_at_ms, updated_at_ms, version, object_key";

fn record(row: &AnyRow) -> Result<DatasetRecord, sqlx::Error> {
    Ok(DatasetRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        scope: row.try_get("scope")?,
        columns_json: row.try_get("columns_json")?,
        row_count: row.try_get("row_count")?,
        bytes: row.try_get("bytes")?,
        frame_bytes: row.try_get("frame_bytes")?,
        pinned: row.try_get::<i64, _>("pinned")? != 0,
        created_at_ms: row.try_get("created_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        version: row.try_get("version")?,
        object_key: row.try_get("object_key")?,
    })
}

impl Store {
    /// Inserts a new dataset. [`StoreError::Conflict`] when the owner already has one by that
    /// name.
    pub async fn insert_dataset(&self, dataset: &DatasetRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO datasets (id, owner, name, scope, columns_json, row_count, bytes, \
             frame_bytes, pinned, created_at_ms, updated_at_ms, version, object_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(dataset.id.clone())
        .bind(dataset.owner.clone())
        .bind(dataset.name.clone())
        .bind(dataset.scope.clone())
        .bind(dataset.columns_json.clone())
        .bind(dataset.row_count)
        .bind(dataset.bytes)
        .bind(dataset.frame_bytes)
        .bind(i64::from(dataset.pinned))
        .bind(dataset.created_at_ms)
        .bind(dataset.updated_at_ms)
        .bind(dataset.version)
        .bind(dataset.object_key.clone())
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_write)?;
        Ok(())
    }

    /// Datasets `owner` may read: its own and the public ones, by name.
    pub async fn visible_datasets(&self, owner: &str) -> Result<Vec<DatasetRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM datasets WHERE owner = $1 OR scope = $2 ORDER BY name, id"
        )))
        .bind(owner.to_owned())
        .bind(SCOPE_PUBLIC)
        .fetch_all(&self.pool)
        .await?;
        super::decode_rows(&rows, record)
    }

    /// The dataset `id` if `owner` may read it. Another tenant's dataset is `None`, exactly
    /// like a missing one, so callers cannot learn that it exists.
    pub async fn visible_dataset(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<DatasetRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM datasets WHERE id = $1 AND (owner = $2 OR scope = $3)"
        )))
        .bind(id.to_owned())
        .bind(owner.to_owned())
        .bind(SCOPE_PUBLIC)
        .fetch_optional(&self.pool)
        .await?;
        super::decode_row(row.as_ref(), record)
    }

    /// Every dataset of `owner` (the sample generator asks for its own).
    pub async fn datasets_of(&self, owner: &str) -> Result<Vec<DatasetRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM datasets WHERE owner = $1 ORDER BY name"
        )))
        .bind(owner.to_owned())
        .fetch_all(&self.pool)
        .await?;
        super::decode_rows(&rows, record)
    }

    /// Renames a dataset `owner` owns (a new version: SQL names resolve differently now);
    /// `false` if there is none. [`StoreError::Conflict`] when
    /// the name is taken.
    pub async fn rename_dataset(
        &self,
        owner: &str,
        id: &str,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE datasets SET name = $1, updated_at_ms = $2, version = version + 1 \
             WHERE id = $3 AND owner = $4",
        )
        .bind(name.to_owned())
        .bind(now_ms)
        .bind(id.to_owned())
        .bind(owner.to_owned())
        .execute(&self.pool)
        .await
        .map_err(StoreError::from_write)?;
        Ok(done.rows_affected() == 1)
    }

    /// Records new contents (after replace or append) of a dataset `owner` owns, as a new
    /// version, if its version is still `update.expected_version` (compare-and-set: of two
    /// brains writing the same dataset at once, one wins and the other learns it lost).
    pub async fn update_dataset_contents(
        &self,
        owner: &str,
        id: &str,
        update: &ContentsUpdate,
    ) -> Result<ContentsUpdated, StoreError> {
        let done = sqlx::query(
            "UPDATE datasets SET columns_json = $1, row_count = $2, bytes = $3, updated_at_ms = $4, \
             object_key = $5, frame_bytes = $9, version = version + 1 \
             WHERE id = $6 AND owner = $7 AND version = $8",
        )
        .bind(update.columns_json.clone())
        .bind(update.row_count)
        .bind(update.bytes)
        .bind(update.updated_at_ms)
        .bind(update.object_key.clone())
        .bind(id.to_owned())
        .bind(owner.to_owned())
        .bind(update.expected_version)
        .bind(update.frame_bytes)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(ContentsUpdated::Done);
        }
        Ok(match self.visible_dataset(owner, id).await? {
            Some(record) if record.owner == owner => ContentsUpdated::Conflict,
            _ => ContentsUpdated::Missing,
        })
    }

    /// The object key dataset `id` currently names, whoever owns it (`None`: no such dataset).
    /// Only for telling a replaced dataset from a damaged one; never answers a caller.
    pub async fn dataset_object(&self, id: &str) -> Result<Option<(i64, String)>, StoreError> {
        let row = sqlx::query("SELECT version, object_key FROM datasets WHERE id = $1")
            .bind(id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((row.try_get("version")?, row.try_get("object_key")?)))
            .transpose()
            .map_err(StoreError::Query)
    }

    /// Pins or unpins a dataset `owner` owns; `false` if there is none.
    pub async fn set_dataset_pinned(
        &self,
        owner: &str,
        id: &str,
        pinned: bool,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE datasets SET pinned = $1 WHERE id = $2 AND owner = $3")
            .bind(i64::from(pinned))
            .bind(id.to_owned())
            .bind(owner.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a dataset `owner` owns and returns the object key it named (the caller removes
    /// the object once the row is gone); `None` if there is none.
    pub async fn delete_dataset(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("DELETE FROM datasets WHERE id = $1 AND owner = $2 RETURNING object_key")
            .bind(id.to_owned())
            .bind(owner.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)
    }
}
