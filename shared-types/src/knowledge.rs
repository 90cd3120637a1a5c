//! The knowledge base (retrieval): documents a caller uploads, their chunks, and hybrid search.
//!
//! Endpoints (all under `/api/v1`, all scoped to the caller's identity):
//! - `POST /documents?name=…` (raw body: `text/plain`, `text/markdown`, `text/html`,
//!   `application/pdf`; or `multipart/form-data` with `name` and `file` fields) → 201
//!   [`Document`];
//! - `GET /documents` → [`DocumentList`]; `GET /documents/{id}` → [`DocumentDetail`];
//!   `GET /documents/{id}/text` → the extracted text (`text/plain; charset=utf-8`), the text
//!   every offset refers to; `DELETE /documents/{id}` → 204;
//! - `POST /knowledge/search` ([`SearchRequest`]) → [`SearchResponse`].
//!
//! Offsets (`start`, `end`) count Unicode scalar values (Rust `char`s, not bytes or UTF-16
//! units) into the document's extracted text, end exclusive: the chars `start..end` of that text
//! are exactly the chunk's `text`.

use serde::{Deserialize, Serialize};

/// Media types a document may be uploaded as.
pub mod media {
    pub const PLAIN: &str = "text/plain";
    pub const MARKDOWN: &str = "text/markdown";
    pub const HTML: &str = "text/html";
    pub const PDF: &str = "application/pdf";

    /// The media type a file name's extension stands for (case-insensitive): `.txt`/`.text`,
    /// `.md`/`.markdown`, `.html`/`.htm`/`.xhtml`, `.pdf`. What the brain assumes for a multipart
    /// file without a useful content type, and what clients send for a file.
    pub fn of_file_name(name: &str) -> Option<&'static str> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "txt" | "text" => Some(PLAIN),
            "md" | "markdown" => Some(MARKDOWN),
            "html" | "htm" | "xhtml" => Some(HTML),
            "pdf" => Some(PDF),
            _ => None,
        }
    }
}

/// Query parameters of `POST /documents` (a multipart `name` field overrides `name`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct UploadDocumentParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A stored document (metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Document {
    pub id: String,
    pub name: String,
    /// One of [`media`].
    pub media_type: String,
    /// Size of the upload.
    pub bytes: u64,
    /// Length of the extracted text in chars.
    pub chars: u64,
    pub chunk_count: u32,
    /// The embedding model its chunks were embedded with (e.g. `all-MiniLM-L6-v2`).
    pub embedder: String,
    pub created_at_ms: i64,
}

/// `GET /documents`: the caller's documents, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentList {
    pub documents: Vec<Document>,
}

/// One chunk of a document: `text` is the chars `start..end` of the extracted text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChunkInfo {
    pub index: u32,
    pub start: u64,
    pub end: u64,
    pub text: String,
}

/// `GET /documents/{id}`: metadata and every chunk, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentDetail {
    pub document: Document,
    pub chunks: Vec<ChunkInfo>,
}

/// `POST /knowledge/search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    /// Hits wanted (default 5; capped by the server's limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A chunk of a document with enough to cite it: the document, the chunk and its char
/// offsets. Retrieval results carry it flattened, first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentChunk {
    pub document_id: String,
    pub document_name: String,
    pub chunk_index: u32,
    /// First char of the chunk in the document's extracted text.
    pub start: u64,
    /// One past its last char.
    pub end: u64,
    pub text: String,
}

/// One retrieved chunk, with its scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    #[serde(flatten)]
    pub chunk: DocumentChunk,
    /// The fused score (reciprocal rank fusion of the two legs); higher is better.
    pub score: f64,
    /// 1-based rank in the keyword (BM25) leg, if the chunk was among its candidates.
    pub bm25_rank: Option<u32>,
    /// 1-based rank in the vector (cosine) leg, if the chunk was among its candidates.
    pub vector_rank: Option<u32>,
    /// The BM25 score, when ranked by that leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bm25_score: Option<f64>,
    /// The cosine similarity of chunk and query embeddings, when ranked by that leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_score: Option<f64>,
}

/// Answer of `POST /knowledge/search`: best hit first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResponse {
    pub hits: Vec<SearchHit>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn file_names_name_their_media_type() {
        assert_eq!(media::of_file_name("guide.MD"), Some(media::MARKDOWN));
        assert_eq!(media::of_file_name("a.b/page.htm"), Some(media::HTML));
        assert_eq!(media::of_file_name("notes.txt"), Some(media::PLAIN));
        assert_eq!(media::of_file_name("manual.pdf"), Some(media::PDF));
        assert_eq!(media::of_file_name("noext"), None);
        assert_eq!(media::of_file_name("sales.csv"), None);
    }

    #[test]
    fn search_request_refuses_unknown_fields() {
        let ok: SearchRequest = serde_json::from_str(r#"{"query":"returns","limit":3}"#).unwrap();
        assert_eq!(ok.limit, Some(3));
        assert!(serde_json::from_str::<SearchRequest>(r#"{"query":"x","k":3}"#).is_err());
    }

    #[test]
    fn hit_without_leg_scores_round_trips() {
        let hit = SearchHit {
            chunk: DocumentChunk {
                document_id: "d".into(),
                document_name: "n".into(),
                chunk_index: 0,
                start: 0,
                end: 4,
                text: "text".into(),
            },
            score: 0.5,
            bm25_rank: Some(1),
            vector_rank: None,
            bm25_score: None,
            vector_score: None,
        };
        let json = serde_json::to_string(&hit).unwrap();
        // Flattened: the chunk's fields stand first, at the top level, in their order.
        assert_eq!(
            json,
            r#"{"document_id":"d","document_name":"n","chunk_index":0,"start":0,"end":4,"text":"text","score":0.5,"bm25_rank":1,"vector_rank":null}"#
        );
        assert_eq!(serde_json::from_str::<SearchHit>(&json).unwrap(), hit);
    }
}
