//! `/api/v1/queries`: `POST /sql` ([`SqlQuery`]) and `POST /json` ([`JsonQuery`]) over the
//! caller's datasets (and public ones). The answer's format follows `Accept`: JSON
//! ([`QueryResult`], rows or columns), CSV or Arrow IPC (file format); CSV and Arrow carry the page in
//! the [`page_headers`].

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json as JsonResponse, Router};
use shared_types::data::{
    JsonQuery, Page, QueryResult, ResultShape, SqlQuery, media, page_headers,
};

use super::error::essence;
use super::extract::Json;
use super::identity::Identity;
use super::{AppState, Error, Result};
use crate::data::{DataError, QueryOutput, ingest, output};

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
) -> Result<Response> {
    let media = negotiate(&headers)?;
    let result = state.data.sql(&identity.owner(), &query).await?;
    render(result, media, query.shape).await
}

async fn json(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    Json(query): Json<JsonQuery>,
) -> Result<Response> {
    let media = negotiate(&headers)?;
    let result = state.data.json(&identity.owner(), &query).await?;
    render(result, media, query.shape).await
}

/// Result formats the brain can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    Json,
    Csv,
    Arrow,
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
