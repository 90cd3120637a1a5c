//! `/api/v1/documents` (upload, list, detail, text, delete) and `/api/v1/knowledge/search`:
//! the knowledge base over HTTP. Every handler is scoped to the caller's [`Identity`]; another
//! tenant's document answers 404 exactly like a missing one, and search only ever sees the
//! caller's own chunks.
//!
//! Uploads: a raw body whose `Content-Type` names the format (`text/plain`, `text/markdown`,
//! `text/html`, `application/pdf`) with `?name=`, or `multipart/form-data` with a `name` field
//! and a `file` field (format from the part's content type, else its file name). The body is
//! read into memory up to `--knowledge-max-document-bytes`; past it the answer is 413 and
//! nothing is stored (a document is stored in one transaction, after extraction and
//! embedding succeeded).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::handler::Handler;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json as JsonResponse, Router};
use futures_util::{Stream, StreamExt};
use shared_types::knowledge::{
    Document, DocumentDetail, DocumentList, SearchRequest, SearchResponse, UploadDocumentParams,
};

use super::error::essence;
use super::extract::{Json, Query};
use super::identity::Identity;
use super::upload_form::UploadForm;
use super::{AppState, Error, Result};
use crate::knowledge::KnowledgeError;
use crate::knowledge::extract::DocumentFormat;

/// Hits returned when a search names no `limit`.
const DEFAULT_SEARCH_LIMIT: u32 = 5;

/// `/api/v1/documents`.
pub fn router(max_document_bytes: u64) -> Router<AppState> {
    // Multipart parsing honours `DefaultBodyLimit`: uploads get their own limit.
    // The multipart framing adds a little on top of the file itself.
    let limit = usize::try_from(max_document_bytes.saturating_add(64 * 1024)).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/",
            get(list).post(upload.layer(DefaultBodyLimit::max(limit))),
        )
        .route("/{id}", get(detail).delete(delete))
        .route("/{id}/text", get(text))
}

/// `/api/v1/knowledge`.
pub fn search_router() -> Router<AppState> {
    Router::new().route("/search", post(search))
}

async fn upload(
    State(state): State<AppState>,
    identity: Identity,
    Query(params): Query<UploadDocumentParams>,
    request: Request,
) -> Result<(StatusCode, JsonResponse<Document>)> {
    let limit = state.knowledge.limits().max_document_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let multipart = essence(&content_type).eq_ignore_ascii_case("multipart/form-data");
    if !multipart && declared.is_some_and(|length| length > limit) {
        return Err(KnowledgeError::TooLarge { limit }.into());
    }
    let mut name = params.name;
    let (format, bytes) = if multipart {
        let mut form = UploadForm::from_request(request, &state, limit, |limit| {
            KnowledgeError::TooLarge { limit }.into()
        })
        .await?;
        let fields = form.fields();
        let mut file = None;
        while let Some(field) = form.next_field().await? {
            let field_name = field.name().unwrap_or_default().to_owned();
            match field_name.as_str() {
                "name" => name = Some(fields.text(field).await?),
                "file" => {
                    if file.is_some() {
                        return Err(Error::BadRequest("one `file` field per upload".to_owned()));
                    }
                    let format = field
                        .content_type()
                        .and_then(DocumentFormat::from_media_type)
                        .or_else(|| field.file_name().and_then(DocumentFormat::from_file_name));
                    if name.is_none() {
                        name = field.file_name().map(str::to_owned);
                    }
                    let described = field
                        .content_type()
                        .or(field.file_name())
                        .unwrap_or("(none)")
                        .to_owned();
                    let format =
                        format.ok_or_else(|| KnowledgeError::UnsupportedFormat(described))?;
                    file = Some((format, read_limited(fields.chunks(field), limit).await?));
                }
                other => {
                    return Err(Error::BadRequest(format!(
                        "unexpected form field `{other}` (expected name, file)"
                    )));
                }
            }
        }
        file.ok_or_else(|| Error::BadRequest("the multipart form has no `file` field".to_owned()))?
    } else {
        // Refuse an unknown format before reading the body.
        let format = DocumentFormat::from_media_type(&content_type).ok_or_else(|| {
            KnowledgeError::UnsupportedFormat(if content_type.is_empty() {
                "(none)".to_owned()
            } else {
                content_type.clone()
            })
        })?;
        let chunks = request.into_body().into_data_stream().map(|chunk| {
            chunk.map_err(|error| Error::BadRequest(format!("reading the body: {error}")))
        });
        (format, read_limited(chunks, limit).await?)
    };
    let name = name.unwrap_or_default();
    let document = state
        .knowledge
        .upload(
            &identity.owner(),
            &identity.budget_key(),
            &name,
            format.media_type(),
            bytes,
        )
        .await?;
    Ok((StatusCode::CREATED, JsonResponse(document)))
}

async fn list(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<JsonResponse<DocumentList>> {
    let documents = state.knowledge.list(&identity.owner()).await?;
    Ok(JsonResponse(DocumentList { documents }))
}

async fn detail(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<JsonResponse<DocumentDetail>> {
    Ok(JsonResponse(
        state.knowledge.get(&identity.owner(), &id).await?,
    ))
}

async fn text(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<Response> {
    let text = state.knowledge.text(&identity.owner(), &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from(text),
    )
        .into_response())
}

async fn delete(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    state.knowledge.delete(&identity.owner(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn search(
    State(state): State<AppState>,
    identity: Identity,
    Json(request): Json<SearchRequest>,
) -> Result<JsonResponse<SearchResponse>> {
    let limit = request.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    if limit == 0 {
        return Err(Error::BadRequest("`limit` must be at least 1".to_owned()));
    }
    let hits = state
        .knowledge
        .search(
            &identity.owner(),
            &request.query,
            usize::try_from(limit).unwrap_or(usize::MAX),
        )
        .await?;
    Ok(JsonResponse(SearchResponse { hits }))
}

/// Collects `chunks`, refusing (413) as soon as more than `limit` bytes came.
async fn read_limited<S, B>(chunks: S, limit: u64) -> Result<Vec<u8>>
where
    S: Stream<Item = Result<B>>,
    B: AsRef<[u8]>,
{
    let mut bytes = Vec::new();
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let chunk = chunk.as_ref();
        if bytes.len() as u64 + chunk.len() as u64 > limit {
            return Err(KnowledgeError::TooLarge { limit }.into());
        }
        bytes.extend_from_slice(chunk);
    }
    Ok(bytes)
}
