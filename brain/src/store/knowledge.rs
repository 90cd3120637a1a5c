//! The knowledge base's documents and chunks (migration 0006).
//!
//! A document and all its chunks are written in one transaction, and deleted in one, so a
//! reader never sees half a document. Every statement filters by `owner` in the SQL itself.
//! Embeddings are stored as little-endian `f32` bytes (`BYTEA`, a blob in SQLite): portable,
//! and searched exactly in Rust (`crate::knowledge::index`).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// One row of `knowledge_documents` (without its text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRecord {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub media_type: String,
    pub bytes: i64,
    pub chars: i64,
    pub chunk_count: i64,
    pub embedder: String,
    pub created_at_ms: i64,
}

/// One chunk to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChunk {
    pub chunk_index: i64,
    pub start_char: i64,
    pub end_char: i64,
    pub text: String,
    pub embedding: Vec<f32>,
}

/// One stored chunk, as a document's detail lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    pub chunk_index: i64,
    pub start_char: i64,
    pub end_char: i64,
    pub text: String,
}

/// One chunk with what the search index needs.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    pub document_id: String,
    pub document_name: String,
    pub embedder: String,
    pub chunk: ChunkRecord,
    pub embedding: Vec<f32>,
}

const DOCUMENT_COLUMNS: &str =
    "id, owner, name, media_type, bytes, chars, chunk_count, embedder, created_at_ms";

fn document(row: &AnyRow) -> Result<DocumentRecord, sqlx::Error> {
    Ok(DocumentRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        media_type: row.try_get("media_type")?,
        bytes: row.try_get("bytes")?,
        chars: row.try_get("chars")?,
        chunk_count: row.try_get("chunk_count")?,
        embedder: row.try_get("embedder")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

fn chunk(row: &AnyRow) -> Result<ChunkRecord, sqlx::Error> {
    Ok(ChunkRecord {
        chunk_index: row.try_get("chunk_index")?,
        start_char: row.try_get("start_char")?,
        end_char: row.try_get("end_char")?,
        text: row.try_get("text")?,
    })
}

/// `f32`s as little-endian bytes.
pub fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`encode_vector`]; `None` when the length is not a multiple of 4.
pub fn decode_vector(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
    )
}

/// What [`Store::insert_knowledge_document`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnowledgeInsert {
    Stored,
    /// Nothing was stored: the owner already has `existing` chunks and the new ones would
    /// pass the quota.
    OverQuota {
        existing: u64,
    },
}

/// The chunk count under `budget_key` from the quota counter (0 for a key with none).
async fn usage(connection: &mut sqlx::AnyConnection, budget_key: &str) -> Result<u64, StoreError> {
    let chunks: Option<i64> =
        sqlx::query_scalar("SELECT chunks FROM knowledge_usage WHERE budget_key = $1")
            .bind(budget_key.to_owned())
            .fetch_optional(&mut *connection)
            .await?;
    Ok(chunks.map_or(0, |chunks| u64::try_from(chunks).unwrap_or_default()))
}

/// Adds one to `owner`'s knowledge generation (migration 0014), inside the transaction that
/// changes the owner's documents: brains caching that owner's search index see the new value
/// at their next search and rebuild it.
pub(super) async fn bump_generation(
    connection: &mut sqlx::AnyConnection,
    owner: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO knowledge_generations (owner, generation) VALUES ($1, 1) \
         ON CONFLICT (owner) DO UPDATE SET generation = knowledge_generations.generation + 1",
    )
    .bind(owner.to_owned())
    .execute(&mut *connection)
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

impl Store {
    /// `owner`'s knowledge generation: changes with every committed upload or delete of the
    /// owner's documents, by any brain (0 before the first).
    pub async fn knowledge_generation(&self, owner: &str) -> Result<i64, StoreError> {
        let generation: Option<i64> =
            sqlx::query_scalar("SELECT generation FROM knowledge_generations WHERE owner = $1")
                .bind(owner.to_owned())
                .fetch_optional(&self.pool)
                .await?;
        Ok(generation.unwrap_or(0))
    }

    /// Stores a document, its extracted text and its chunks, all or nothing, unless the chunks
    /// counted under `budget_key` (`Identity::budget_key`: the user, or an anonymous caller's
    /// network) would then exceed `max_chunks`: the chunks are reserved against that counter
    /// first, atomically, so concurrent uploads cannot together pass the quota. The document
    /// remembers the key, so deleting it gives the chunks back to the same counter.
    pub async fn insert_knowledge_document(
        &self,
        document: &DocumentRecord,
        budget_key: &str,
        text: &str,
        chunks: &[NewChunk],
        max_chunks: u64,
    ) -> Result<KnowledgeInsert, StoreError> {
        let new = i64::try_from(chunks.len()).unwrap_or(i64::MAX);
        let limit = i64::try_from(max_chunks).unwrap_or(i64::MAX);
        let mut tx = self.pool.begin().await?;
        // On PostgreSQL a concurrent upload of the same owner waits on the row here and then
        // re-checks the condition against the committed count; SQLite serialises writers.
        let reserved = sqlx::query(
            "INSERT INTO knowledge_usage (budget_key, chunks) SELECT $1, $2 WHERE $2 <= $3 \
             ON CONFLICT (budget_key) DO UPDATE \
             SET chunks = knowledge_usage.chunks + excluded.chunks \
             WHERE knowledge_usage.chunks + excluded.chunks <= $3",
        )
        .bind(budget_key.to_owned())
        .bind(new)
        .bind(limit)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_write)?;
        if reserved.rows_affected() != 1 {
            let existing = usage(&mut tx, budget_key).await?;
            tx.rollback().await?;
            return Ok(KnowledgeInsert::OverQuota { existing });
        }
        sqlx::query(
            "INSERT INTO knowledge_documents (id, owner, name, media_type, bytes, chars, \
             chunk_count, embedder, created_at_ms, text, budget_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(document.id.clone())
        .bind(document.owner.clone())
        .bind(document.name.clone())
        .bind(document.media_type.clone())
        .bind(document.bytes)
        .bind(document.chars)
        .bind(document.chunk_count)
        .bind(document.embedder.clone())
        .bind(document.created_at_ms)
        .bind(text.to_owned())
        .bind(budget_key.to_owned())
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_write)?;
        for chunk in chunks {
            sqlx::query(
                "INSERT INTO knowledge_chunks (document_id, owner, chunk_index, start_char, \
                 end_char, text, embedding) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(document.id.clone())
            .bind(document.owner.clone())
            .bind(chunk.chunk_index)
            .bind(chunk.start_char)
            .bind(chunk.end_char)
            .bind(chunk.text.clone())
            .bind(encode_vector(&chunk.embedding))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::from_write)?;
        }
        bump_generation(&mut tx, &document.owner).await?;
        tx.commit().await?;
        Ok(KnowledgeInsert::Stored)
    }

    /// `owner`'s documents, newest first.
    pub async fn knowledge_documents(
        &self,
        owner: &str,
    ) -> Result<Vec<DocumentRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents WHERE owner = $1 \
             ORDER BY created_at_ms DESC, id"
        )))
        .bind(owner.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| document(row).map_err(StoreError::Query))
            .collect()
    }

    /// The document `id` if `owner` owns it; another tenant's is `None`, like a missing one.
    pub async fn knowledge_document(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<DocumentRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {DOCUMENT_COLUMNS} FROM knowledge_documents WHERE id = $1 AND owner = $2"
        )))
        .bind(id.to_owned())
        .bind(owner.to_owned())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(document)
            .transpose()
            .map_err(StoreError::Query)
    }

    /// The extracted text of a document `owner` owns.
    pub async fn knowledge_document_text(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT text FROM knowledge_documents WHERE id = $1 AND owner = $2")
            .bind(id.to_owned())
            .bind(owner.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from_sqlx)
    }

    /// The chunks of a document `owner` owns, in order (empty for anyone else's).
    pub async fn knowledge_chunks(
        &self,
        owner: &str,
        document_id: &str,
    ) -> Result<Vec<ChunkRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT chunk_index, start_char, end_char, text FROM knowledge_chunks \
             WHERE document_id = $1 AND owner = $2 ORDER BY chunk_index",
        )
        .bind(document_id.to_owned())
        .bind(owner.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| chunk(row).map_err(StoreError::Query))
            .collect()
    }

    /// Every chunk of `owner` with its document and embedding, in a stable order (documents
    /// oldest first, chunks in order): what the search index is built from.
    pub async fn knowledge_index_rows(&self, owner: &str) -> Result<Vec<IndexRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.document_id, d.name, d.embedder, c.chunk_index, c.start_char, c.end_char, \
             c.text, c.embedding FROM knowledge_chunks c \
             JOIN knowledge_documents d ON d.id = c.document_id AND d.owner = c.owner \
             WHERE c.owner = $1 ORDER BY d.created_at_ms, c.document_id, c.chunk_index",
        )
        .bind(owner.to_owned())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = row.try_get("embedding")?;
                Ok(IndexRow {
                    document_id: row.try_get("document_id")?,
                    document_name: row.try_get("name")?,
                    embedder: row.try_get("embedder")?,
                    chunk: chunk(row)?,
                    embedding: decode_vector(&bytes).unwrap_or_default(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::Query)
    }

    /// How many chunks are counted under `budget_key` (the quota's counter).
    pub async fn count_knowledge_chunks(&self, budget_key: &str) -> Result<u64, StoreError> {
        let mut connection = self.pool.acquire().await?;
        usage(&mut connection, budget_key).await
    }

    /// Deletes a document `owner` owns and its chunks, together; `false` if there is none.
    ///
    /// The transaction's first statement is a write: two deletes at once then queue for
    /// SQLite's write lock, where two readers upgrading would deadlock (`SQLITE_BUSY`).
    pub async fn delete_knowledge_document(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted =
            sqlx::query("DELETE FROM knowledge_chunks WHERE document_id = $1 AND owner = $2")
                .bind(id.to_owned())
                .bind(owner.to_owned())
                .execute(&mut *tx)
                .await?;
        let budget_key: Option<Option<String>> = sqlx::query_scalar(
            "SELECT budget_key FROM knowledge_documents WHERE id = $1 AND owner = $2",
        )
        .bind(id.to_owned())
        .bind(owner.to_owned())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(budget_key) = budget_key else {
            // Nothing of this owner's: the (empty) delete is rolled back with the transaction.
            return Ok(false);
        };
        // Migration 0012 gave every older document its owner as the key.
        let budget_key = budget_key.unwrap_or_else(|| owner.to_owned());
        sqlx::query("UPDATE knowledge_usage SET chunks = chunks - $2 WHERE budget_key = $1")
            .bind(budget_key)
            .bind(i64::try_from(deleted.rows_affected()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM knowledge_documents WHERE id = $1 AND owner = $2")
            .bind(id.to_owned())
            .bind(owner.to_owned())
            .execute(&mut *tx)
            .await?;
        bump_generation(&mut tx, owner).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_as_little_endian_bytes() {
        let vector = vec![1.0f32, -0.5, 0.25, f32::MIN_POSITIVE];
        let bytes = encode_vector(&vector);
        assert_eq!(bytes.len(), 16);
        assert_eq!(&bytes[..4], &1.0f32.to_le_bytes());
        assert_eq!(decode_vector(&bytes).unwrap(), vector);
        assert_eq!(decode_vector(&[0, 1, 2]), None);
    }
}
