//! `search_knowledge`: the agent's door to the knowledge base (built elsewhere, behind
//! [`KnowledgeSearch`](crate::agent::knowledge::KnowledgeSearch)). Hits are returned with
//! their document ids and character offsets, and cited in the stream as `source-document`
//! parts by the driver.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use shared_types::agent::KnowledgeSearchOutput;

use super::{Tool, ToolContext, ToolError};

#[derive(Debug, Clone, Copy, Default)]
pub struct SearchKnowledge;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchKnowledgeInput {
    /// What to look for, in plain words.
    pub query: String,
    /// Most hits wanted (at most the agent's configured k).
    #[serde(default)]
    pub limit: Option<u32>,
}

impl Tool for SearchKnowledge {
    const NAME: &'static str = "search_knowledge";
    const DESCRIPTION: &'static str = "Search the user's documents (policies, manuals, notes) \
        for passages relevant to a question. Cite what you use.";
    type Input = SearchKnowledgeInput;
    type Output = KnowledgeSearchOutput;

    fn call<'a>(
        &'a self,
        context: &'a ToolContext<'a>,
        input: SearchKnowledgeInput,
    ) -> BoxFuture<'a, Result<KnowledgeSearchOutput, ToolError>> {
        async move {
            let Some(knowledge) = &context.services.knowledge else {
                return Ok(KnowledgeSearchOutput {
                    hits: Vec::new(),
                    note: Some("no knowledge base configured".to_owned()),
                });
            };
            if input.query.trim().is_empty() {
                return Err(ToolError::InvalidInput {
                    tool: Self::NAME.to_owned(),
                    message: "`query` is empty".to_owned(),
                });
            }
            let k = context.limits.retrieval_k.max(1);
            let limit = input.limit.unwrap_or(k).clamp(1, k) as usize;
            let hits = knowledge
                .search(context.owner, &input.query, limit)
                .await
                .map_err(ToolError::Failed)?;
            let hits: Vec<_> = hits
                .into_iter()
                .filter(|hit| hit.score >= context.limits.retrieval_min_score)
                .take(limit)
                .collect();
            context.cite(&hits);
            let note = hits.is_empty().then(|| "no matching passages".to_owned());
            Ok(KnowledgeSearchOutput { hits, note })
        }
        .boxed()
    }
}
