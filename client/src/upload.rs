//! Uploads streamed from files (native targets), datasets and documents: the file is read in
//! chunks as the request body goes out, never wholly into memory, and a callback hears how far
//! it got.

use std::path::Path;

use futures_util::StreamExt;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde::de::DeserializeOwned;
use shared_types::data::{DataFormat, DatasetInfo};
use shared_types::knowledge::{Document, media};

use crate::{Client, ClientError, Result, UploadOptions, content_type_of, format_of_file_name};

/// Bytes read from the file per body chunk.
const CHUNK_BYTES: usize = 64 * 1024;

/// Progress of an upload: bytes handed to the connection so far, of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadProgress {
    pub sent: u64,
    pub total: u64,
}

/// What to do with the uploaded file.
#[derive(Debug, Clone, Copy)]
enum Target<'a> {
    Create { name: &'a str },
    Replace { id: &'a str },
    Append { id: &'a str },
}

impl Client {
    /// Creates dataset `name` from the file at `path` (format from `options.format`, else the
    /// file's extension), calling `progress` as the body is sent.
    pub async fn upload_file(
        &self,
        name: &str,
        path: &Path,
        options: &UploadOptions,
        progress: impl FnMut(UploadProgress) + Send + 'static,
    ) -> Result<DatasetInfo> {
        self.upload_file_to(Target::Create { name }, path, options, progress)
            .await
    }

    /// Replaces the contents of dataset `id` with the file at `path`.
    pub async fn replace_dataset_file(
        &self,
        id: &str,
        path: &Path,
        options: &UploadOptions,
        progress: impl FnMut(UploadProgress) + Send + 'static,
    ) -> Result<DatasetInfo> {
        self.upload_file_to(Target::Replace { id }, path, options, progress)
            .await
    }

    /// Appends the rows of the file at `path` to dataset `id`.
    pub async fn append_rows_file(
        &self,
        id: &str,
        path: &Path,
        options: &UploadOptions,
        progress: impl FnMut(UploadProgress) + Send + 'static,
    ) -> Result<DatasetInfo> {
        self.upload_file_to(Target::Append { id }, path, options, progress)
            .await
    }

    /// Uploads the file at `path` as document `name` (media type from `media_type`, else the
    /// file's extension: `.txt`, `.md`, `.html`, `.pdf`; see `shared_types::knowledge::media`),
    /// calling `progress` as the body is sent.
    pub async fn upload_document_file(
        &self,
        name: &str,
        path: &Path,
        media_type: Option<&str>,
        progress: impl FnMut(UploadProgress) + Send + 'static,
    ) -> Result<Document> {
        let media_type = match media_type {
            Some(media_type) => media_type,
            None => path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(media::of_file_name)
                .ok_or_else(|| {
                    ClientError::InvalidInput(format!(
                        "cannot tell the type of {} from its extension (.txt, .md, .html, .pdf): give one",
                        path.display()
                    ))
                })?,
        };
        let url = self.document_upload_url(name)?;
        self.stream_file(Method::POST, &url, path, media_type, progress)
            .await
    }

    async fn upload_file_to(
        &self,
        target: Target<'_>,
        path: &Path,
        options: &UploadOptions,
        progress: impl FnMut(UploadProgress) + Send + 'static,
    ) -> Result<DatasetInfo> {
        let format = match options.format {
            Some(format) => format,
            None => format_from_path(path)?,
        };
        let (method, url) = match target {
            Target::Create { name } => (
                Method::POST,
                self.upload_url_at("/api/v1/datasets", Some(name), options, format)?,
            ),
            Target::Replace { id } => (
                Method::PUT,
                self.upload_url_at(
                    &self.path_of("/api/v1/datasets/{id}", id)?,
                    None,
                    options,
                    format,
                )?,
            ),
            Target::Append { id } => (
                Method::POST,
                self.upload_url_at(
                    &self.path_of("/api/v1/datasets/{id}/rows", id)?,
                    None,
                    options,
                    format,
                )?,
            ),
        };
        self.stream_file(method, &url, path, content_type_of(format), progress)
            .await
    }

    /// Sends the file at `path` as the body of `method url` with a known length, in chunks,
    /// and reads the JSON answer.
    async fn stream_file<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        path: &Path,
        content_type: &str,
        mut progress: impl FnMut(UploadProgress) + Send + 'static,
    ) -> Result<T> {
        let file = tokio::fs::File::open(path).await.map_err(|error| {
            std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
        })?;
        let total = file.metadata().await?.len();
        let mut sent = 0u64;
        progress(UploadProgress { sent, total });
        let chunks =
            tokio_util::io::ReaderStream::with_capacity(file, CHUNK_BYTES).map(move |chunk| {
                if let Ok(bytes) = &chunk {
                    sent += bytes.len() as u64;
                    progress(UploadProgress { sent, total });
                }
                chunk
            });
        let request = self
            .request(method, url)
            .header(CONTENT_TYPE, content_type)
            // A known length: the edge checks it against its body limit before anything flows.
            .header(CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(chunks));
        self.json(request).await
    }
}

fn format_from_path(path: &Path) -> Result<DataFormat> {
    path.file_name()
        .and_then(|name| name.to_str())
        .and_then(format_of_file_name)
        .ok_or_else(|| {
            ClientError::InvalidInput(format!(
                "cannot tell the format of {} from its extension (.csv, .parquet, .ndjson/.jsonl, .json): give one",
                path.display()
            ))
        })
}
