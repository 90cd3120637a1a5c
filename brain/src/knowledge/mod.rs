//! The knowledge base (retrieval): per-tenant documents, chunked, embedded and searched by
//! keywords and meaning together. No HTTP and no sqlx here: [`KnowledgeBase`] is the service,
//! `crate::store::knowledge` the persistence, `crate::http::documents` the endpoints.
//!
//! # Layout
//! - [`extract`]: upload bytes → text (plain and Markdown verbatim, HTML reduced to text, PDF
//!   through `lopdf`); malformed input is an error naming the problem.
//! - [`chunk`]: boundary-aware chunking with overlap; char offsets into the extracted text.
//! - [`embed`]: the [`embed::Embedder`] trait; the local all-MiniLM-L6-v2 (candle, CPU) and an
//!   OpenAI-compatible `/v1/embeddings` client.
//! - [`index`]: a tenant's chunks in memory: BM25, exact cosine, reciprocal rank fusion.
//!
//! # Flow
//! Upload: extract and chunk (`spawn_blocking`) → check the tenant's chunk quota → embed
//! (batched, off the executor, within `KnowledgeLimits::embed_timeout`) → store document, text
//! and chunks in one transaction, which also increments the tenant's stored generation → drop
//! the tenant's cached index. Search: embed the query → the tenant's [`index::TenantIndex`]
//! (from the cache if the stored generation still equals the one it was built from — so a
//! change made through another brain is seen — or built from the store in `spawn_blocking`)
//! → both legs and the fusion in `spawn_blocking`. The corpus is never re-embedded to search
//! it.

pub mod chunk;
pub mod embed;
pub mod extract;
pub mod index;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared_types::knowledge::{ChunkInfo, Document, DocumentChunk, DocumentDetail, SearchHit};
use uuid::Uuid;

use crate::clock::unix_millis;
use crate::config::{Config, EmbedderKind};
use crate::store::knowledge::{DocumentRecord, KnowledgeInsert, NewChunk};
use crate::store::{Store, StoreError};
use chunk::ChunkConfig;
use embed::{EmbedError, Embedder};
use extract::{DocumentFormat, ExtractError};
use index::{IndexedChunk, TenantIndex};

/// Longest accepted document name, in chars.
pub const MAX_NAME_CHARS: usize = 200;

/// Every limit of the knowledge base (all configurable, see `crate::config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnowledgeLimits {
    pub chunk: ChunkConfig,
    /// Largest upload in bytes.
    pub max_document_bytes: u64,
    /// Most chunks stored under one budget key (a user, or an anonymous caller's network),
    /// all documents together.
    pub max_chunks_per_owner: u64,
    /// Most hits one search returns (larger `limit`s are capped, not refused).
    pub max_search_limit: u32,
    /// Longest accepted query, in chars.
    pub max_query_chars: usize,
    /// Tenants whose search index stays cached in memory (least recently used evicted).
    pub index_cache_owners: usize,
    /// Longest time embedding one uploaded document may take.
    pub embed_timeout: Duration,
}

/// Why a knowledge-base operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "unsupported document type `{0}`: send text/plain, text/markdown, text/html or application/pdf"
    )]
    UnsupportedFormat(String),
    #[error("the document exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    Unreadable(#[from] ExtractError),
    #[error(
        "this document has {new} chunks and {existing} are stored; the limit per caller is {limit}"
    )]
    QuotaExceeded { new: u64, existing: u64, limit: u64 },
    #[error("no such document")]
    NotFound,
    #[error("embeddings unavailable: {0}")]
    EmbedderUnavailable(String),
    #[error("embedding failed: {0}")]
    EmbedFailed(String),
    #[error(
        "embedding this document took longer than the limit of {limit_ms} ms: split it into smaller documents, or raise --knowledge-embed-timeout-ms"
    )]
    EmbedTimedOut { limit_ms: u128 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<EmbedError> for KnowledgeError {
    fn from(error: EmbedError) -> Self {
        match error {
            EmbedError::Unavailable(message) => KnowledgeError::EmbedderUnavailable(message),
            EmbedError::Failed(message) => KnowledgeError::EmbedFailed(message),
        }
    }
}

/// The knowledge base service. Cheap to share (`Arc`) and to call concurrently: searches hold
/// no lock while they work (the index cache's std mutex only guards swapping `Arc`s).
#[derive(Debug)]
pub struct KnowledgeBase {
    store: Store,
    embedder: Arc<dyn Embedder>,
    limits: KnowledgeLimits,
    cache: Mutex<IndexCache>,
}

/// Built indexes by owner, least recently used evicted past `capacity`. `epoch` grows on every
/// invalidation in this process, so an index built from data read before a change is never
/// cached; each entry also keeps the owner's stored knowledge generation it was built from
/// (`Store::knowledge_generation`, bumped by every brain's upload and delete), so a change
/// made through another brain is seen at the next search.
#[derive(Debug, Default)]
struct IndexCache {
    /// Owner → (index, generation it was built from, last use).
    entries: HashMap<String, (Arc<TenantIndex>, i64, u64)>,
    clock: u64,
    epoch: u64,
}

impl KnowledgeLimits {
    pub fn from_config(config: &Config) -> Result<Self, String> {
        Ok(Self {
            chunk: ChunkConfig::new(
                config.knowledge.knowledge_chunk_chars,
                config.knowledge.knowledge_chunk_overlap_chars,
            )?,
            max_document_bytes: config.knowledge.knowledge_max_document_bytes,
            max_chunks_per_owner: config.knowledge.knowledge_max_chunks_per_owner,
            max_search_limit: config.knowledge.knowledge_max_search_limit,
            max_query_chars: config.knowledge.knowledge_max_query_chars,
            index_cache_owners: config.knowledge.knowledge_index_cache_owners,
            embed_timeout: Duration::from_millis(config.knowledge.knowledge_embed_timeout_ms),
        })
    }
}

/// The embedder the configuration asks for. A local model whose files are missing gives an
/// [`embed::UnavailableEmbedder`] (the knowledge endpoints answer 503 naming the missing file)
/// and a warning, rather than stopping the whole brain.
pub fn embedder_from_config(config: &Config) -> Result<Arc<dyn Embedder>, EmbedError> {
    let batch = usize::try_from(config.knowledge.knowledge_embed_batch).unwrap_or(32);
    match config.knowledge.knowledge_embedder {
        EmbedderKind::Local => {
            let dir = config.knowledge_model_dir();
            match embed::MiniLmEmbedder::new(&dir, batch) {
                Ok(embedder) => Ok(Arc::new(embedder)),
                Err(EmbedError::Unavailable(reason)) => {
                    tracing::warn!(%reason, "knowledge base unavailable (its endpoints answer 503)");
                    Ok(Arc::new(embed::UnavailableEmbedder::new(
                        embed::MINILM_NAME,
                        reason,
                    )))
                }
                Err(error) => Err(error),
            }
        }
        EmbedderKind::OpenaiCompatible => {
            let api_key = std::env::var(&config.knowledge.embeddings_api_key_env)
                .ok()
                .filter(|key| !key.is_empty())
                .map(crate::llm::ApiKey::new);
            Ok(Arc::new(embed::OpenAiEmbedder::new(
                &config.knowledge.embeddings_url,
                &config.knowledge.embeddings_model,
                api_key,
                batch,
                std::time::Duration::from_millis(config.knowledge.embeddings_timeout_ms),
            )?))
        }
    }
}

impl KnowledgeBase {
    pub fn new(store: Store, embedder: Arc<dyn Embedder>, limits: KnowledgeLimits) -> Self {
        Self {
            store,
            embedder,
            limits,
            cache: Mutex::new(IndexCache::default()),
        }
    }

    pub fn limits(&self) -> &KnowledgeLimits {
        &self.limits
    }

    /// The embedder in use.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    /// Reads, chunks, embeds and stores a document of `owner`'s, its chunks counted against
    /// the quota of `budget_key` (`Identity::budget_key`: the user, or an anonymous caller's
    /// network, so that fresh sessions bring no fresh quota).
    pub async fn upload(
        &self,
        owner: &str,
        budget_key: &str,
        name: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Document, KnowledgeError> {
        let name = validate_name(name)?;
        let format = DocumentFormat::from_media_type(media_type)
            .ok_or_else(|| KnowledgeError::UnsupportedFormat(media_type.to_owned()))?;
        let size = bytes.len() as u64;
        if size > self.limits.max_document_bytes {
            return Err(KnowledgeError::TooLarge {
                limit: self.limits.max_document_bytes,
            });
        }
        let chunk_config = self.limits.chunk;
        let (text, chunks) = tokio::task::spawn_blocking(move || {
            let text = extract::extract_text(format, &bytes)?;
            let chunks = chunk::chunk_text(&text, chunk_config);
            Ok::<_, ExtractError>((text, chunks))
        })
        .await
        .map_err(|error| anyhow::anyhow!("document extraction stopped: {error}"))??;
        if chunks.is_empty() {
            return Err(ExtractError::Empty.into());
        }
        let existing = self.store.count_knowledge_chunks(budget_key).await?;
        let new = chunks.len() as u64;
        if existing + new > self.limits.max_chunks_per_owner {
            return Err(KnowledgeError::QuotaExceeded {
                new,
                existing,
                limit: self.limits.max_chunks_per_owner,
            });
        }
        // On timeout the embedding future is dropped: an API call is cancelled with it, and the
        // local model stops after the batch it is running (see `embed::MiniLmEmbedder`).
        let limit = self.limits.embed_timeout;
        let vectors = tokio::time::timeout(
            limit,
            self.embedder
                .embed(chunks.iter().map(|chunk| chunk.text.clone()).collect()),
        )
        .await
        .map_err(|_| KnowledgeError::EmbedTimedOut {
            limit_ms: limit.as_millis(),
        })??;
        if vectors.len() != chunks.len() {
            return Err(KnowledgeError::EmbedFailed(format!(
                "{} vectors for {} chunks",
                vectors.len(),
                chunks.len()
            )));
        }
        let record = DocumentRecord {
            id: Uuid::new_v4().to_string(),
            owner: owner.to_owned(),
            name,
            media_type: format.media_type().to_owned(),
            bytes: i64::try_from(size).unwrap_or(i64::MAX),
            chars: i64::try_from(text.chars().count()).unwrap_or(i64::MAX),
            chunk_count: i64::try_from(chunks.len()).unwrap_or(i64::MAX),
            embedder: self.embedder.model().to_owned(),
            created_at_ms: i64::try_from(unix_millis()).unwrap_or(i64::MAX),
        };
        let new_chunks: Vec<NewChunk> = chunks
            .into_iter()
            .zip(vectors)
            .enumerate()
            .map(|(index, (chunk, embedding))| NewChunk {
                chunk_index: i64::try_from(index).unwrap_or(i64::MAX),
                start_char: i64::try_from(chunk.start).unwrap_or(i64::MAX),
                end_char: i64::try_from(chunk.end).unwrap_or(i64::MAX),
                text: chunk.text,
                embedding,
            })
            .collect();
        let max_chunks = self.limits.max_chunks_per_owner;
        match self
            .store
            .insert_knowledge_document(&record, budget_key, &text, &new_chunks, max_chunks)
            .await?
        {
            KnowledgeInsert::Stored => {}
            // Another upload under this budget key was stored while this one was embedded.
            KnowledgeInsert::OverQuota { existing } => {
                return Err(KnowledgeError::QuotaExceeded {
                    new,
                    existing,
                    limit: max_chunks,
                });
            }
        }
        self.invalidate(owner);
        Ok(document(record))
    }

    /// `owner`'s documents, newest first.
    pub async fn list(&self, owner: &str) -> Result<Vec<Document>, KnowledgeError> {
        Ok(self
            .store
            .knowledge_documents(owner)
            .await?
            .into_iter()
            .map(document)
            .collect())
    }

    /// A document of `owner`'s with its chunks. Another tenant's is [`KnowledgeError::NotFound`].
    pub async fn get(&self, owner: &str, id: &str) -> Result<DocumentDetail, KnowledgeError> {
        let record = self
            .store
            .knowledge_document(owner, id)
            .await?
            .ok_or(KnowledgeError::NotFound)?;
        let chunks = self
            .store
            .knowledge_chunks(owner, id)
            .await?
            .into_iter()
            .map(|chunk| ChunkInfo {
                index: u32::try_from(chunk.chunk_index).unwrap_or(u32::MAX),
                start: u64::try_from(chunk.start_char).unwrap_or_default(),
                end: u64::try_from(chunk.end_char).unwrap_or_default(),
                text: chunk.text,
            })
            .collect();
        Ok(DocumentDetail {
            document: document(record),
            chunks,
        })
    }

    /// The extracted text of a document of `owner`'s: what every offset refers to.
    pub async fn text(&self, owner: &str, id: &str) -> Result<String, KnowledgeError> {
        self.store
            .knowledge_document_text(owner, id)
            .await?
            .ok_or(KnowledgeError::NotFound)
    }

    /// Deletes a document of `owner`'s and its chunks.
    pub async fn delete(&self, owner: &str, id: &str) -> Result<(), KnowledgeError> {
        let deleted = self.store.delete_knowledge_document(owner, id).await?;
        // Even when nothing was deleted: cheap, and never leaves a stale index behind.
        self.invalidate(owner);
        if deleted {
            Ok(())
        } else {
            Err(KnowledgeError::NotFound)
        }
    }

    /// The best `limit` chunks of `owner`'s documents for `query`, by BM25 and embedding
    /// similarity fused (see [`index`]). `limit` is capped at the configured maximum; an empty
    /// knowledge base gives no hits. Safe and cheap to call concurrently (the agent's
    /// `search_knowledge` tool calls this).
    pub async fn search(
        &self,
        owner: &str,
        query: &str,
        limit: usize,
    ) -> Result<Vec<SearchHit>, KnowledgeError> {
        let query = query.trim();
        if query.is_empty() {
            return Err(KnowledgeError::BadRequest("the query is empty".to_owned()));
        }
        if query.chars().count() > self.limits.max_query_chars {
            return Err(KnowledgeError::BadRequest(format!(
                "the query is longer than {} chars",
                self.limits.max_query_chars
            )));
        }
        let limit = limit.min(usize::try_from(self.limits.max_search_limit).unwrap_or(usize::MAX));
        let index = self.index(owner).await?;
        if index.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let query_vector = self
            .embedder
            .embed(vec![query.to_owned()])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let query = query.to_owned();
        let hits = tokio::task::spawn_blocking(move || index.search(&query, &query_vector, limit))
            .await
            .map_err(|error| anyhow::anyhow!("search stopped: {error}"))?;
        Ok(hits)
    }

    /// `owner`'s index: cached (if no brain changed the owner's documents since it was built),
    /// or built from the store (off the executor) and cached. The generation is read before
    /// the rows, so a cached index is never older than the generation it is filed under.
    pub async fn index(&self, owner: &str) -> Result<Arc<TenantIndex>, KnowledgeError> {
        let generation = self.store.knowledge_generation(owner).await?;
        let epoch = {
            let mut cache = self.lock_cache();
            cache.clock += 1;
            let now = cache.clock;
            match cache.entries.get_mut(owner) {
                Some((index, built_from, used)) if *built_from == generation => {
                    *used = now;
                    return Ok(Arc::clone(index));
                }
                Some(_) => {
                    // Another brain (or this one) changed the owner's documents.
                    cache.entries.remove(owner);
                }
                None => {}
            }
            cache.epoch
        };
        let rows = self.store.knowledge_index_rows(owner).await?;
        let model = self.embedder.model().to_owned();
        let index = tokio::task::spawn_blocking(move || {
            let chunks = rows
                .into_iter()
                .map(|row| IndexedChunk {
                    chunk: DocumentChunk {
                        document_id: row.document_id,
                        document_name: row.document_name,
                        chunk_index: u32::try_from(row.chunk.chunk_index).unwrap_or(u32::MAX),
                        start: u64::try_from(row.chunk.start_char).unwrap_or_default(),
                        end: u64::try_from(row.chunk.end_char).unwrap_or_default(),
                        text: row.chunk.text,
                    },
                    vector: (row.embedder == model && !row.embedding.is_empty())
                        .then_some(row.embedding),
                })
                .collect();
            Arc::new(TenantIndex::build(chunks))
        })
        .await
        .map_err(|error| anyhow::anyhow!("index building stopped: {error}"))?;
        let mut cache = self.lock_cache();
        if cache.epoch == epoch && self.limits.index_cache_owners > 0 {
            cache.clock += 1;
            let now = cache.clock;
            cache
                .entries
                .insert(owner.to_owned(), (Arc::clone(&index), generation, now));
            while cache.entries.len() > self.limits.index_cache_owners {
                let oldest = cache
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, _, used))| *used)
                    .map(|(owner, _)| owner.clone());
                match oldest {
                    Some(oldest) => cache.entries.remove(&oldest),
                    None => break,
                };
            }
        }
        Ok(index)
    }

    fn invalidate(&self, owner: &str) {
        let mut cache = self.lock_cache();
        cache.entries.remove(owner);
        cache.epoch += 1;
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, IndexCache> {
        // A panic while holding this lock leaves plain data behind: keep using it.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn validate_name(name: &str) -> Result<String, KnowledgeError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(KnowledgeError::BadRequest(
            "a document needs a `name` (query parameter or form field)".to_owned(),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(KnowledgeError::BadRequest(format!(
            "the document name is longer than {MAX_NAME_CHARS} chars"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(KnowledgeError::BadRequest(
            "the document name contains control characters".to_owned(),
        ));
    }
    Ok(name.to_owned())
}

fn document(record: DocumentRecord) -> Document {
    Document {
        id: record.id,
        name: record.name,
        media_type: record.media_type,
        bytes: u64::try_from(record.bytes).unwrap_or_default(),
        chars: u64::try_from(record.chars).unwrap_or_default(),
        chunk_count: u32::try_from(record.chunk_count).unwrap_or(u32::MAX),
        embedder: record.embedder,
        created_at_ms: record.created_at_ms,
    }
}

/// The agent's `search_knowledge` tool searches this knowledge base (see
/// [`crate::agent::knowledge`]): hits keep the fused order, and their `score` is the cosine
/// similarity to the query. Store and internal failures reach the log, not the model.
impl crate::agent::knowledge::KnowledgeSearch for KnowledgeBase {
    fn search<'a>(
        &'a self,
        owner: &'a str,
        query: &'a str,
        limit: usize,
    ) -> futures_util::future::BoxFuture<
        'a,
        Result<Vec<shared_types::agent::KnowledgeSource>, String>,
    > {
        Box::pin(async move {
            let hits = KnowledgeBase::search(self, owner, query, limit)
                .await
                .map_err(|error| match error {
                    KnowledgeError::Store(_) | KnowledgeError::Internal(_) => {
                        tracing::error!(error = %crate::telemetry::error_chain(&error), "knowledge search failed");
                        "the knowledge base failed; try again later".to_owned()
                    }
                    other => other.to_string(),
                })?;
            Ok(hits
                .into_iter()
                .map(|hit| shared_types::agent::KnowledgeSource {
                    chunk: hit.chunk,
                    // Agents filter on `min_score`, which needs an absolute scale: the cosine
                    // similarity, not the fused rank score (at most 2/61). A hit only the
                    // keyword leg found counts as 0.
                    score: hit.vector_score.unwrap_or(0.0),
                })
                .collect())
        })
    }
}
