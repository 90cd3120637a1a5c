//! `/api/v1/queries`: `POST /sql` ([`SqlQuery`]) and `POST /json` ([`JsonQuery`]) over the
//! caller's datasets (and public ones). The answer's format follows `Accept`: JSON
//! ([`QueryResult`], rows or columns), CSV or Arrow IPC (file format); CSV and Arrow carry the page in
//! the [`page_headers`].
//!
//! Caching: an answer depends only on the query (as parsed), the format and the exact datasets
//! (id and version) it reads, so its strong `ETag` is a digest of those, known *before* the
//! query runs. A request whose `If-None-Match` holds it is answered 304 without touching
//! polars. `Cache-Control` lets the edge keep an answer for a few seconds under the caller's
//! identity (its cache key holds the identity and the request body; `Vary: Accept` because the
//! format is negotiated), and makes browsers revalidate. A write to a dataset changes its
//! version, hence every `ETag` over it.
//!
//! Overload: a query that finds every turn taken and the queue full is answered 503
//! `unavailable` with `Retry-After` (seconds) at once.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json as JsonResponse, Router};
use serde::Serialize;
use shared_types::data::{
    DatasetRef, JsonQuery, Page, QueryResult, ResultShape, SqlQuery, media, page_headers,
};
use shared_types::signature::body_digest;

use super::error::essence;
use super::extract::Json;
use super::identity::Identity;
use super::{AppState, Error, Result};
use crate::data::{DataError, PreparedQuery, QueryOutput, ingest, output};

/// `Cache-Control` of query answers: browsers revalidate every time (`max-age=0`, cheap with
/// the `ETag`); a shared cache — the edge, whose key holds the caller's identity — may serve the
/// answer for this long. A dataset write is therefore visible through the edge within this time.
const QUERY_CACHE_CONTROL: &str = "max-age=0, s-maxage=10, must-revalidate";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sql", post(sql))
        .route("/json", post(json))
}

async fn sql(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Json(query): Json<SqlQuery>,
) -> Response {
    let owner = identity.owner();
    let prepare = state.data.queries.prepare_sql(&owner, &query);
    answer(&state, &headers, "sql", &query, query.result.shape, prepare).await
}

async fn json(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Json(query): Json<JsonQuery>,
) -> Response {
    let owner = identity.owner();
    let prepare = state.data.queries.prepare_json(&owner, &query);
    answer(
        &state,
        &headers,
        "json",
        &query,
        query.result.shape,
        prepare,
    )
    .await
}

/// Answers a query: the format negotiated first — `prepare` (the query's preparation, not yet
/// started) runs only once it is known, so a 406 costs nothing — then a 304 for a matching
/// `If-None-Match`, else the query run and its page rendered.
async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    kind: &'static str,
    query: &impl Serialize,
    shape: ResultShape,
    prepare: impl Future<Output = Result<PreparedQuery, DataError>>,
) -> Response {
    let media = match negotiate(headers) {
        Ok(media) => media,
        Err(error) => return error.into_response(),
    };
    let prepared = match prepare.await {
        Ok(prepared) => prepared,
        Err(error) => return data_error(error),
    };
    let etag = entity_tag(kind, query, media, prepared.datasets());
    if if_none_match(headers, &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        cache_headers(response.headers_mut(), &etag);
        return response;
    }
    let result = match state.data.queries.execute(prepared).await {
        Ok(result) => result,
        Err(error) => return data_error(error),
    };
    let metrics = state.data.queries.query_metrics().clone();
    let started = std::time::Instant::now();
    let rendered = render(result, media, shape).await;
    metrics.observe(kind, "serialise", started);
    match rendered {
        Ok(mut response) => {
            cache_headers(response.headers_mut(), &etag);
            response
        }
        Err(error) => error.into_response(),
    }
}

/// The error answer; a refusal at the admission gate carries `Retry-After`.
fn data_error(error: DataError) -> Response {
    let retry_after = match &error {
        DataError::Busy { retry_after, .. } => Some(retry_after.as_secs().max(1)),
        _ => None,
    };
    let mut response = Error::from(error).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A strong entity tag: SHA-256 over the kind, the query as parsed (so insignificant JSON
/// whitespace and key order do not matter), the format and the datasets read.
fn entity_tag(
    kind: &str,
    query: &impl Serialize,
    media: Media,
    datasets: &[DatasetRef],
) -> HeaderValue {
    let mut material = Vec::with_capacity(256);
    material.extend_from_slice(b"edgebrain-query-etag-v1\0");
    material.extend_from_slice(kind.as_bytes());
    material.push(0);
    // Serialising a parsed wire type cannot fail; an empty query part would still be correct
    // (the versions and the kind remain), only less specific.
    material.extend_from_slice(&serde_json::to_vec(query).unwrap_or_default());
    material.push(0);
    material.extend_from_slice(media.content_type().as_bytes());
    for dataset in datasets {
        material.push(0);
        material.extend_from_slice(dataset.id.as_bytes());
        material.push(0);
        material.extend_from_slice(dataset.version.to_string().as_bytes());
        material.push(0);
        material.extend_from_slice(dataset.name.as_bytes());
    }
    let digest = body_digest(&material);
    // Hex digits only: always a valid header value.
    HeaderValue::from_str(&format!("\"{}\"", &digest[..32]))
        .unwrap_or_else(|_| HeaderValue::from_static("\"invalid\""))
}

/// RFC 9110 §13.1.2: `*` or any listed tag equal to ours by weak comparison.
fn if_none_match(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours)
}

fn cache_headers(headers: &mut HeaderMap, etag: &HeaderValue) {
    headers.insert(header::ETAG, etag.clone());
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(QUERY_CACHE_CONTROL),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept"));
}

/// Result formats the brain can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    Csv,
    Arrow,
}

impl Media {
    fn content_type(self) -> &'static str {
        match self {
            Media::Json => media::JSON,
            Media::Csv => media::CSV,
            Media::Arrow => media::ARROW_FILE,
        }
    }
}

/// The first type in `Accept` the brain can produce (in the client's order; `q` values are not
/// weighed). No `Accept`, or `*/*`: JSON.
fn negotiate(headers: &HeaderMap) -> Result<Media> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(Media::Json);
    };
    let accept = String::from_utf8_lossy(accept.as_bytes());
    for item in accept.split(',') {
        let wanted = essence(item).to_ascii_lowercase();
        match wanted.as_str() {
            media::JSON | "application/*" | "*/*" => return Ok(Media::Json),
            media::CSV | "text/*" => return Ok(Media::Csv),
            media::ARROW_FILE => return Ok(Media::Arrow),
            _ => {}
        }
    }
    Err(Error::BadRequest(format!(
        "cannot answer in any type of `Accept: {accept}`; use {}, {} or {}",
        media::JSON,
        media::CSV,
        media::ARROW_FILE
    )))
}

async fn render(result: QueryOutput, media: Media, shape: ResultShape) -> Result<Response> {
    let QueryOutput {
        mut frame,
        page,
        elapsed,
        datasets,
        permit,
    } = result;
    let rendered = tokio::task::spawn_blocking(move || -> Result<Response, DataError> {
        Ok(match media {
            Media::Json => {
                let columns = ingest::column_infos(&frame);
                let (rows, data) = match shape {
                    ResultShape::Rows => (Some(output::rows(&frame)?), None),
                    ResultShape::Columns => (None, Some(output::columns(&frame)?)),
                };
                JsonResponse(QueryResult {
                    columns,
                    rows,
                    data,
                    page,
                    elapsed_ms: elapsed.as_secs_f64() * 1000.0,
                    datasets,
                })
                .into_response()
            }
            Media::Csv => paged(output::csv(&mut frame)?, media::CSV, &page),
            Media::Arrow => paged(output::arrow_file(&mut frame)?, media::ARROW_FILE, &page),
        })
    })
    .await
    .map_err(|error| Error::Internal(error.into()))??;
    // The query's turn ends once its answer is serialised.
    drop(permit);
    Ok(rendered)
}

fn paged(body: Vec<u8>, content_type: &'static str, page: &Page) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let mut set = |name: &'static str, value: u64| {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    };
    set(page_headers::OFFSET, page.offset);
    set(page_headers::RETURNED, page.returned);
    if let Some(next) = page.next_offset {
        set(page_headers::NEXT_OFFSET, next);
    }
    response
}
