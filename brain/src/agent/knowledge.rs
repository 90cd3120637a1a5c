//! The seam to the knowledge base (RAG), which is built elsewhere: the agent holds an
//! `Option<Arc<dyn KnowledgeSearch>>` and `search_knowledge` answers "no knowledge base
//! configured" without one.

use std::fmt::Debug;

use futures_util::future::BoxFuture;
use shared_types::agent::KnowledgeSource;

/// Searches the documents `owner` may read: the retrieved chunks as the `search_knowledge`
/// tool returns them. Errors are texts safe to show the model.
pub trait KnowledgeSearch: Send + Sync + Debug {
    fn search<'a>(
        &'a self,
        owner: &'a str,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<KnowledgeSource>, String>>;
}
