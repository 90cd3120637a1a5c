//! The seam to the knowledge base (RAG), which is built elsewhere: the agent holds an
//! `Option<Arc<dyn KnowledgeSearch>>` and `search_knowledge` answers "no knowledge base
//! configured" without one.

use std::fmt::Debug;

use futures_util::future::BoxFuture;

/// One retrieved chunk. `start`/`end` are character offsets in the document's text.
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeHit {
    pub document_id: String,
    pub document_name: String,
    pub chunk_index: u32,
    pub start: u64,
    pub end: u64,
    pub text: String,
    /// Relevance in 0..=1 (the brain's knowledge base: cosine similarity of chunk and query),
    /// compared with the agent's `retrieval.min_score`.
    pub score: f64,
}

/// Searches the documents `owner` may read. Errors are texts safe to show the model.
pub trait KnowledgeSearch: Send + Sync + Debug {
    fn search<'a>(
        &'a self,
        owner: &'a str,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KnowledgeHit>, String>>;
}
