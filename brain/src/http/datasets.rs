//! `/api/v1/datasets`: create (upload or server-side import), list, describe, rename, replace,
//! append, delete, pin; and the memory statistics. Every handler is scoped to the caller's
//! [`Identity`]; datasets of other tenants answer 404 like missing ones.
//!
//! Uploads are streamed to a file in the uploads directory as they arrive (never wholly into
//! memory) and counted against `--upload-max-bytes`; past it the answer is 413 and the partial
//! file is removed. Raw bodies name their format by `?format=` or `Content-Type`; multipart
//! bodies send `name`/`format`/`schema` text fields and a `file` field.
//!
//! Publishing (`scope=public`, on upload or import) and pinning a frame in memory affect every
//! tenant, so they need a signed-in operator (`Identity::require_operator`; 403 otherwise).

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post, put};
use axum::{Extension, Json as JsonResponse, Router};
use futures_util::{Stream, StreamExt};
use shared_types::data::{
    DataFormat, DatasetDescription, DatasetInfo, DatasetList, ImportDataset, MemoryStats,
    RenameDataset, Scope, UploadParams,
};
use tokio::io::AsyncWriteExt;

use super::error::essence;
use super::extract::{Json, Query};
use super::identity::Identity;
use super::upload_form::UploadForm;
use super::{AppState, Error, Result};
use crate::data::ingest::{self, IngestOptions};
use crate::data::{DataError, FramesShown, StagedUpload, UploadMode};

pub fn router(upload_max_bytes: u64) -> Router<AppState> {
    // Multipart parsing honours `DefaultBodyLimit`: uploads get their own, larger limit.
    let upload_limit =
        DefaultBodyLimit::max(usize::try_from(upload_max_bytes).unwrap_or(usize::MAX));
    Router::new()
        .route("/", get(list).post(create.layer(upload_limit)))
        .route("/import", post(import))
        .route("/memory", get(memory))
        .route(
            "/{id}",
            get(describe).patch(rename).delete(delete).put(
                upload_into
                    .layer(upload_limit)
                    .layer(Extension(UploadMode::Replace)),
            ),
        )
        .route(
            "/{id}/rows",
            post(
                upload_into
                    .layer(upload_limit)
                    .layer(Extension(UploadMode::Append)),
            ),
        )
        .route("/{id}/pin", put(pin).delete(unpin))
}

async fn list(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<JsonResponse<DatasetList>> {
    let datasets = state.data.datasets.list(&identity.owner()).await?;
    Ok(JsonResponse(DatasetList { datasets }))
}

async fn create(
    State(state): State<AppState>,
    identity: Identity,
    Query(params): Query<UploadParams>,
    request: Request,
) -> Result<(StatusCode, JsonResponse<DatasetInfo>)> {
    // Refused before the body is read when the query says so; a form field is checked below.
    check_publisher(&identity, params.scope)?;
    let upload = receive(&state, params, request).await?;
    check_publisher(&identity, upload.scope)?;
    let name = upload.name.ok_or_else(|| {
        Error::BadRequest("a new dataset needs a `name` (query parameter or form field)".to_owned())
    })?;
    let info = state
        .data
        .datasets
        .create(
            &identity.owner(),
            &name,
            upload.scope.unwrap_or(Scope::Private),
            upload.file,
            upload.options,
        )
        .await?;
    Ok((StatusCode::CREATED, JsonResponse(info)))
}

async fn import(
    State(state): State<AppState>,
    identity: Identity,
    Json(request): Json<ImportDataset>,
) -> Result<(StatusCode, JsonResponse<DatasetInfo>)> {
    check_publisher(&identity, request.scope)?;
    let info = state
        .data
        .datasets
        .import(&identity.owner(), request)
        .await?;
    Ok((StatusCode::CREATED, JsonResponse(info)))
}

async fn describe(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<JsonResponse<DatasetDescription>> {
    Ok(JsonResponse(
        state.data.datasets.describe(&identity.owner(), &id).await?,
    ))
}

async fn rename(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    Json(request): Json<RenameDataset>,
) -> Result<JsonResponse<DatasetInfo>> {
    Ok(JsonResponse(
        state
            .data
            .datasets
            .rename(&identity.owner(), &id, &request.name)
            .await?,
    ))
}

/// `PUT /{id}` (replace the rows) and `POST /{id}/rows` (append rows): the route says which.
async fn upload_into(
    State(state): State<AppState>,
    identity: Identity,
    Extension(mode): Extension<UploadMode>,
    Path(id): Path<String>,
    Query(params): Query<UploadParams>,
    request: Request,
) -> Result<JsonResponse<DatasetInfo>> {
    state
        .data
        .datasets
        .check_writable(&identity.owner(), &id)
        .await?;
    let upload = receive(&state, params, request).await?;
    Ok(JsonResponse(
        state
            .data
            .datasets
            .upload_into(&identity.owner(), &id, upload.file, upload.options, mode)
            .await?,
    ))
}

async fn delete(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    state.data.datasets.delete(&identity.owner(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn pin(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<JsonResponse<DatasetInfo>> {
    // A pinned frame is never evicted: it takes memory from every tenant's budget.
    identity.require_operator("pinning a dataset in memory")?;
    Ok(JsonResponse(
        state
            .data
            .datasets
            .set_pinned(&identity.owner(), &id, true)
            .await?,
    ))
}

async fn unpin(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<JsonResponse<DatasetInfo>> {
    Ok(JsonResponse(
        state
            .data
            .datasets
            .set_pinned(&identity.owner(), &id, false)
            .await?,
    ))
}

/// The memory manager's totals, and the frames in memory the caller may see: its own and
/// public ones, or — for an operator — every tenant's.
async fn memory(
    State(state): State<AppState>,
    identity: Identity,
) -> Result<JsonResponse<MemoryStats>> {
    let frames = if identity.is_operator() {
        FramesShown::All
    } else {
        FramesShown::VisibleTo(identity.owner())
    };
    Ok(JsonResponse(state.data.datasets.memory(frames).await?))
}

/// A public dataset is read by every tenant (and its name resolves for all of them), so only
/// signed-in operators publish; everyone else's datasets stay private to them.
fn check_publisher(identity: &Identity, scope: Option<Scope>) -> Result<()> {
    match scope {
        Some(Scope::Public) => identity.require_operator("publishing a dataset (`scope=public`)"),
        Some(Scope::Private) | None => Ok(()),
    }
}

/// A received upload: the staged file and what the request said about it.
#[derive(Debug)]
struct Upload {
    file: StagedUpload,
    name: Option<String>,
    scope: Option<Scope>,
    options: IngestOptions,
}

/// Streams the upload (raw body or the `file` field of a multipart form) to a staged file.
async fn receive(state: &AppState, params: UploadParams, request: Request) -> Result<Upload> {
    let limit = state.data.limits().upload_max_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(DataError::TooLarge { limit }.into());
    }
    let content_type = content_type(request.headers());
    let UploadParams {
        mut name,
        mut format,
        schema,
        mut scope,
    } = params;
    let mut schema = schema;
    let file = state.data.datasets.stage_upload();
    if essence(&content_type).eq_ignore_ascii_case("multipart/form-data") {
        let mut form = UploadForm::from_request(request, state, limit, |limit| {
            DataError::TooLarge { limit }.into()
        })
        .await?;
        let fields = form.fields();
        let mut received = false;
        while let Some(field) = form.next_field().await? {
            let field_name = field.name().unwrap_or_default().to_owned();
            match field_name.as_str() {
                "name" => name = Some(fields.text(field).await?),
                "schema" => schema = Some(fields.text(field).await?),
                "scope" => scope = Some(parse_scope(&fields.text(field).await?)?),
                "format" => format = Some(parse_format(&fields.text(field).await?)?),
                "file" => {
                    if received {
                        return Err(Error::BadRequest("one `file` field per upload".to_owned()));
                    }
                    if format.is_none() {
                        format = field
                            .content_type()
                            .and_then(ingest::format_from_content_type)
                            .or_else(|| field.file_name().and_then(ingest::format_from_file_name));
                    }
                    if let Some(format) = format {
                        check_upload_format(state, format)?;
                    }
                    write_limited(&file, fields.chunks(field), limit).await?;
                    received = true;
                }
                other => {
                    return Err(Error::BadRequest(format!(
                        "unexpected form field `{other}` (expected name, format, schema, scope, file)"
                    )));
                }
            }
        }
        if !received {
            return Err(Error::BadRequest(
                "the multipart form has no `file` field".to_owned(),
            ));
        }
    } else {
        if format.is_none() {
            format = ingest::format_from_content_type(essence(&content_type));
        }
        // Without a known format, refuse before reading the body.
        match format {
            None => return Err(missing_format(&content_type)),
            Some(format) => check_upload_format(state, format)?,
        }
        let chunks = request.into_body().into_data_stream().map(|chunk| {
            chunk.map_err(|error| Error::BadRequest(format!("reading the body: {error}")))
        });
        write_limited(&file, chunks, limit).await?;
    }
    let format = format.ok_or_else(|| missing_format(&content_type))?;
    // Again: a `format` field may follow the file.
    check_upload_format(state, format)?;
    let overrides = match schema.as_deref() {
        Some(text) => ingest::parse_overrides(text)?,
        None => Default::default(),
    };
    Ok(Upload {
        file,
        name,
        scope,
        options: state.data.limits().ingest_options(format, overrides),
    })
}

/// Refuses, before the body is read, a format this brain does not take as an upload: Parquet
/// unless `--parquet-uploads` (polars-parquet trusts the values encoded in a page: see
/// `Config::parquet_uploads`).
fn check_upload_format(state: &AppState, format: DataFormat) -> Result<()> {
    if format == DataFormat::Parquet && !state.data.limits().parquet_uploads {
        return Err(Error::UnsupportedMediaType(
            "Parquet uploads are off on this brain (its Parquet decoder is reserved for trusted \
             uploaders); upload CSV, NDJSON or JSON, or ask the operator (--parquet-uploads)"
                .to_owned(),
        ));
    }
    Ok(())
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default()
}

fn parse_format(text: &str) -> Result<DataFormat> {
    serde_json::from_value(serde_json::Value::String(text.trim().to_ascii_lowercase())).map_err(
        |_| {
            Error::UnsupportedMediaType(format!(
                "unknown format `{text}` (csv, parquet, ndjson, json)"
            ))
        },
    )
}

fn parse_scope(text: &str) -> Result<Scope> {
    serde_json::from_value(serde_json::Value::String(text.trim().to_ascii_lowercase()))
        .map_err(|_| Error::BadRequest(format!("unknown scope `{text}` (private, public)")))
}

fn missing_format(content_type: &str) -> Error {
    Error::UnsupportedMediaType(format!(
        "cannot tell the upload's format from the content type `{content_type}`: send \
         ?format=csv|parquet|ndjson|json or a Content-Type of text/csv, \
         application/vnd.apache.parquet, application/x-ndjson or application/json"
    ))
}

/// Appends `chunks` to the staged file, refusing (413) as soon as more than `limit` bytes came.
async fn write_limited<S, B>(file: &StagedUpload, chunks: S, limit: u64) -> Result<()>
where
    S: Stream<Item = Result<B>>,
    B: AsRef<[u8]>,
{
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file.path())
        .await
        .map_err(|error| Error::Internal(error.into()))?;
    let mut written = 0u64;
    let mut chunks = std::pin::pin!(chunks);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        let bytes = chunk.as_ref();
        written += bytes.len() as u64;
        if written > limit {
            return Err(DataError::TooLarge { limit }.into());
        }
        out.write_all(bytes)
            .await
            .map_err(|error| Error::Internal(error.into()))?;
    }
    out.flush()
        .await
        .map_err(|error| Error::Internal(error.into()))?;
    Ok(())
}
