//! Typed Rust client of the edgebrain API (`/api/v1`), for native programs and wasm32 (where
//! reqwest uses `fetch`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), edgebrain_client::ClientError> {
//! use futures_util::StreamExt;
//! use shared_types::chat::{CreateThread, SendMessage, UiMessageChunk};
//!
//! let client = edgebrain_client::Client::builder("http://127.0.0.1:8787").build()?;
//! let new_thread = CreateThread { title: Some("questions".into()), ..Default::default() };
//! let thread = client.create_thread(&new_thread).await?;
//! let mut reply = client
//!     .send_message(&thread.id, &SendMessage { content: Some("Hello?".into()), ..Default::default() })
//!     .await?;
//! while let Some(chunk) = reply.next().await {
//!     if let UiMessageChunk::TextDelta { delta, .. } = chunk? {
//!         print!("{delta}");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`Client`] (this file): one method per endpoint of `shared_types::api::ENDPOINTS`, with the
//!   wire types of `shared-types`; sessions and bearer tokens; error decoding.
//! - [`ChunkStream`] (`stream.rs`): a chat reply or a run's events as a `Stream` of
//!   [`UiMessageChunk`]s, parsed from Server-Sent Events ([`sse`]); [`TickStream`] likewise
//!   for the deployment stream probe.
//! - `upload.rs` (native only): datasets and documents streamed from files with a progress
//!   callback.
//! - [`ClientError`] (`error.rs`): the shared error body as [`ClientError::Api`].
//!
//! # Sessions and auth
//! The edge gives every caller a session. Browsers keep it in a cookie; this client keeps the
//! token the edge returns in `x-session-id` and sends it back on every request (`new` until it
//! has one), so everything it creates stays visible to it. [`Client::session`] /
//! [`ClientBuilder::session`] let a program persist it. An optional bearer token
//! ([`ClientBuilder::token`]) authenticates a user at the edge.

mod error;
pub mod sse;
mod stream;
#[cfg(not(target_arch = "wasm32"))]
mod upload;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared_types::account::SessionClaim;
use shared_types::agent::{
    AgentList, Escalation, EscalationFilter, EscalationList, ResolveEscalation,
};
use shared_types::api::fill_path;
use shared_types::chat::{
    ChatReply, CreateThread, MessagePage, PageParams, RUN_ID_HEADER, RenameThread, Run,
    SendMessage, Thread, ThreadPage, UsageReport,
};
use shared_types::data::{
    DataFormat, DatasetDescription, DatasetInfo, DatasetList, ImportDataset, JsonQuery,
    MemoryStats, QueryResult, RenameDataset, Scope, SqlQuery, media, page_headers,
};
use shared_types::diag::{EchoReport, StreamParams, WhoAmI};
use shared_types::error::ErrorBody;
use shared_types::headers::CLIENT_SESSION_ID;
use shared_types::health::HealthReport;
use shared_types::knowledge::{
    Document, DocumentDetail, DocumentList, SearchRequest, SearchResponse,
};
use url::Url;

pub use error::ClientError;
pub use reqwest::Method;
pub use stream::{ChunkStream, TickStream};
#[cfg(not(target_arch = "wasm32"))]
pub use upload::UploadProgress;

/// Result of every client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Explicit limits of what the client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest JSON response body read (default 64 MiB).
    pub json_bytes: usize,
    /// Largest CSV/Arrow query result read (default 256 MiB).
    pub raw_bytes: usize,
    /// How much of a non-JSON error body is kept for the error message (default 4 KiB).
    pub error_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            json_bytes: 64 << 20,
            raw_bytes: 256 << 20,
            error_body_bytes: 4 << 10,
        }
    }
}

/// Configures a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    token: Option<String>,
    session: Option<String>,
    limits: Limits,
    #[cfg(not(target_arch = "wasm32"))]
    connect_timeout: std::time::Duration,
    #[cfg(not(target_arch = "wasm32"))]
    request_timeout: std::time::Duration,
}

impl ClientBuilder {
    /// A bearer token (JWT) for the edge's authentication.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The session token from an earlier run (what [`Client::session`] returned).
    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = Some(session.into());
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Time allowed to connect (native; default 10 s).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole non-streaming request, body included (native; default 120 s).
    /// Streams (chat replies, run events) and uploads are not cut by it.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn request_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn build(self) -> Result<Client> {
        let base = Url::parse(self.base_url.trim_end_matches('/')).map_err(|error| {
            ClientError::InvalidInput(format!("base URL `{}`: {error}", self.base_url))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(ClientError::InvalidInput(format!(
                "base URL `{}` must be http(s)://host[:port][/path]",
                self.base_url
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ClientError::InvalidInput(format!(
                "base URL `{}` must have no query or fragment",
                self.base_url
            )));
        }
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ClientError::InvalidInput("the token has characters a header cannot carry".into())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(session) = &self.session {
            HeaderValue::from_str(session).map_err(|_| {
                ClientError::InvalidInput("the session has characters a header cannot carry".into())
            })?;
        }
        let builder = reqwest::Client::builder().default_headers(headers);
        #[cfg(not(target_arch = "wasm32"))]
        let builder = {
            install_crypto_provider();
            builder
                .connect_timeout(self.connect_timeout)
                .redirect(reqwest::redirect::Policy::none())
        };
        Ok(Client {
            http: builder.build()?,
            base: base.as_str().trim_end_matches('/').to_owned(),
            session: Arc::new(Mutex::new(self.session)),
            limits: self.limits,
            #[cfg(not(target_arch = "wasm32"))]
            request_timeout: self.request_timeout,
        })
    }
}

/// reqwest's rustls needs a process-wide crypto provider (ring: no C build, the same as the
/// brain's). Installing twice is harmless; another one installed first is kept.
#[cfg(not(target_arch = "wasm32"))]
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Options of a dataset upload (query parameters of `POST /api/v1/datasets`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadOptions {
    /// Default: from the file name's extension (uploads from files), else required.
    pub format: Option<DataFormat>,
    /// Type overrides `col:type,…`.
    pub schema: Option<String>,
    /// Default private.
    pub scope: Option<Scope>,
}

/// A CSV or Arrow query result with its page headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawResult {
    pub content_type: String,
    pub body: Bytes,
    pub offset: Option<u64>,
    pub returned: Option<u64>,
    /// Absent on the last page.
    pub next_offset: Option<u64>,
}

/// The two query languages.
#[derive(Debug, Clone, Copy)]
enum QueryKind {
    Sql,
    Json,
}

/// A handle to one edgebrain deployment (normally its edge). Cheap to clone; clones share the
/// session.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Origin (and optional path prefix) without a trailing `/`.
    base: String,
    session: Arc<Mutex<Option<String>>>,
    limits: Limits,
    #[cfg(not(target_arch = "wasm32"))]
    request_timeout: std::time::Duration,
}

impl Client {
    /// A builder for the deployment at `base_url` (e.g. `https://app.example` or
    /// `http://127.0.0.1:8787`).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            token: None,
            session: None,
            limits: Limits::default(),
            #[cfg(not(target_arch = "wasm32"))]
            connect_timeout: std::time::Duration::from_secs(10),
            #[cfg(not(target_arch = "wasm32"))]
            request_timeout: std::time::Duration::from_secs(120),
        }
    }

    /// The session token the edge issued (persist it to keep the same session).
    pub fn session(&self) -> Option<String> {
        self.session.lock().ok().and_then(|session| session.clone())
    }

    // ---- plumbing ----

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn endpoint(&self, template: &str, args: &[&str]) -> Result<String> {
        fill_path(template, args)
            .map(|path| self.url(&path))
            .ok_or_else(|| ClientError::InvalidInput(format!("path {template} with {args:?}")))
    }

    /// A path template filled with one id, without the base URL.
    fn path_of(&self, template: &str, id: &str) -> Result<String> {
        fill_path(template, &[id])
            .ok_or_else(|| ClientError::InvalidInput(format!("path {template}")))
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let session = self
            .session
            .lock()
            .ok()
            .and_then(|session| session.clone())
            .unwrap_or_else(|| "new".to_owned());
        self.http
            .request(method, url)
            .header(CLIENT_SESSION_ID, session)
    }

    /// A request that is not a stream: bounded in time as a whole (native).
    fn bounded(&self, method: Method, url: &str) -> RequestBuilder {
        let request = self.request(method, url);
        #[cfg(not(target_arch = "wasm32"))]
        let request = request.timeout(self.request_timeout);
        request
    }

    /// Sends, remembers a (re)issued session, and turns non-2xx answers into errors.
    async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = request.send().await?;
        if let Some(session) = response
            .headers()
            .get(CLIENT_SESSION_ID)
            .and_then(|value| value.to_str().ok())
            && let Ok(mut stored) = self.session.lock()
        {
            *stored = Some(session.to_owned());
        }
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let text = read_limited(response, self.limits.json_bytes).await;
        let text = match text {
            Ok(bytes) => bytes,
            Err(ClientError::TooLarge { .. }) => Bytes::new(),
            Err(error) => return Err(error),
        };
        match serde_json::from_slice::<ErrorBody>(&text) {
            Ok(body) => Err(ClientError::Api { status, body }),
            Err(_) => {
                let mut body = String::from_utf8_lossy(&text).into_owned();
                truncate(&mut body, self.limits.error_body_bytes);
                Err(ClientError::UnexpectedStatus { status, body })
            }
        }
    }

    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T> {
        let response = self.send(request.header(ACCEPT, media::JSON)).await?;
        let bytes = read_limited(response, self.limits.json_bytes).await?;
        serde_json::from_slice(&bytes).map_err(|error| {
            let mut start = String::from_utf8_lossy(&bytes).into_owned();
            truncate(&mut start, 200);
            ClientError::Decode(format!("{error} in `{start}`"))
        })
    }

    async fn no_content(&self, request: RequestBuilder) -> Result<()> {
        let response = self.send(request).await?;
        // Read (bounded) so the connection can be reused.
        read_limited(response, self.limits.json_bytes).await?;
        Ok(())
    }

    // ---- health and diagnostics ----

    /// `GET /health` of the deployment (the edge answers it itself).
    pub async fn health(&self) -> Result<HealthReport> {
        self.json(self.bounded(Method::GET, &self.url("/health")))
            .await
    }

    /// `GET /api/v1/session`: who the brain thinks this client is (any caller).
    pub async fn session_identity(&self) -> Result<WhoAmI> {
        self.json(self.bounded(Method::GET, &self.url("/api/v1/session")))
            .await
    }

    /// `GET /api/v1/diag/whoami`: the same, among the operators' diagnostics.
    pub async fn whoami(&self) -> Result<WhoAmI> {
        self.json(self.bounded(Method::GET, &self.url("/api/v1/diag/whoami")))
            .await
    }

    /// `GET /api/v1/openapi.json`: the OpenAPI document of this deployment.
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        self.json(self.bounded(Method::GET, &self.url("/api/v1/openapi.json")))
            .await
    }

    /// `GET /api/v1/diag/stream`: the stream probe's ticks as they arrive (a deployment check:
    /// if the first arrives long before the last was sent, no hop buffers streams).
    pub async fn diag_stream(&self, params: &StreamParams) -> Result<TickStream> {
        let mut url = Url::parse(&self.url("/api/v1/diag/stream"))
            .map_err(|error| ClientError::InvalidInput(format!("URL: {error}")))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("events", &params.events.to_string());
            query.append_pair("interval_ms", &params.interval_ms.to_string());
            if let Some(break_after) = params.break_after {
                query.append_pair("break_after", &break_after.to_string());
            }
        }
        let request = self
            .request(Method::GET, url.as_str())
            .header(ACCEPT, "text/event-stream");
        let response = self.send(request).await?;
        Ok(TickStream::new(response))
    }

    /// `/api/v1/diag/echo` with `method` (GET, POST, PUT, PATCH or DELETE) and an optional JSON
    /// body: the request as the brain received it (credential headers redacted).
    pub async fn echo(
        &self,
        method: Method,
        body: Option<&serde_json::Value>,
    ) -> Result<EchoReport> {
        let request = self.bounded(method, &self.url("/api/v1/diag/echo"));
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        self.json(request).await
    }

    // ---- datasets ----

    pub async fn list_datasets(&self) -> Result<DatasetList> {
        self.json(self.bounded(Method::GET, &self.url("/api/v1/datasets")))
            .await
    }

    /// Creates a dataset from bytes in memory (all targets; files: `upload_file`).
    pub async fn upload_bytes(
        &self,
        name: &str,
        options: &UploadOptions,
        body: impl Into<Bytes>,
    ) -> Result<DatasetInfo> {
        self.upload_bytes_to(Method::POST, "/api/v1/datasets", Some(name), options, body)
            .await
    }

    /// Replaces the contents of dataset `id` with bytes in memory (`options.format` required).
    pub async fn replace_dataset_bytes(
        &self,
        id: &str,
        options: &UploadOptions,
        body: impl Into<Bytes>,
    ) -> Result<DatasetInfo> {
        let path = self.path_of("/api/v1/datasets/{id}", id)?;
        self.upload_bytes_to(Method::PUT, &path, None, options, body)
            .await
    }

    /// Appends rows in memory to dataset `id` (`options.format` required).
    pub async fn append_rows_bytes(
        &self,
        id: &str,
        options: &UploadOptions,
        body: impl Into<Bytes>,
    ) -> Result<DatasetInfo> {
        let path = self.path_of("/api/v1/datasets/{id}/rows", id)?;
        self.upload_bytes_to(Method::POST, &path, None, options, body)
            .await
    }

    async fn upload_bytes_to(
        &self,
        method: Method,
        path: &str,
        name: Option<&str>,
        options: &UploadOptions,
        body: impl Into<Bytes>,
    ) -> Result<DatasetInfo> {
        let format = options.format.ok_or_else(|| {
            ClientError::InvalidInput("an upload from memory needs `format`".into())
        })?;
        let url = self.upload_url_at(path, name, options, format)?;
        let request = self
            .request(method, &url)
            .header(CONTENT_TYPE, content_type_of(format))
            .body(body.into());
        self.json(request).await
    }

    fn upload_url_at(
        &self,
        path: &str,
        name: Option<&str>,
        options: &UploadOptions,
        format: DataFormat,
    ) -> Result<String> {
        let mut url = Url::parse(&self.url(path))
            .map_err(|error| ClientError::InvalidInput(format!("upload URL: {error}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(name) = name {
                if name.is_empty() {
                    return Err(ClientError::InvalidInput(
                        "a dataset name must not be empty".into(),
                    ));
                }
                query.append_pair("name", name);
            }
            query.append_pair("format", format_name(format));
            if let Some(schema) = &options.schema {
                query.append_pair("schema", schema);
            }
            if let Some(scope) = options.scope {
                query.append_pair(
                    "scope",
                    match scope {
                        Scope::Private => "private",
                        Scope::Public => "public",
                    },
                );
            }
        }
        Ok(url.into())
    }

    pub async fn import_dataset(&self, request: &ImportDataset) -> Result<DatasetInfo> {
        let url = self.url("/api/v1/datasets/import");
        self.json(self.bounded(Method::POST, &url).json(request))
            .await
    }

    pub async fn describe_dataset(&self, id: &str) -> Result<DatasetDescription> {
        let url = self.endpoint("/api/v1/datasets/{id}", &[id])?;
        self.json(self.bounded(Method::GET, &url)).await
    }

    pub async fn rename_dataset(&self, id: &str, name: &str) -> Result<DatasetInfo> {
        let url = self.endpoint("/api/v1/datasets/{id}", &[id])?;
        let body = RenameDataset {
            name: name.to_owned(),
        };
        self.json(self.bounded(Method::PATCH, &url).json(&body))
            .await
    }

    pub async fn delete_dataset(&self, id: &str) -> Result<()> {
        let url = self.endpoint("/api/v1/datasets/{id}", &[id])?;
        self.no_content(self.bounded(Method::DELETE, &url)).await
    }

    /// Pins (`true`) or unpins a dataset in the brain's memory.
    pub async fn pin_dataset(&self, id: &str, pinned: bool) -> Result<DatasetInfo> {
        let url = self.endpoint("/api/v1/datasets/{id}/pin", &[id])?;
        let method = if pinned { Method::PUT } else { Method::DELETE };
        self.json(self.bounded(method, &url)).await
    }

    pub async fn dataset_memory(&self) -> Result<MemoryStats> {
        self.json(self.bounded(Method::GET, &self.url("/api/v1/datasets/memory")))
            .await
    }

    // ---- queries ----

    /// `POST /api/v1/queries/sql` answered as JSON.
    pub async fn sql(&self, query: &SqlQuery) -> Result<QueryResult> {
        self.json(self.query_request(QueryKind::Sql, query)).await
    }

    /// `POST /api/v1/queries/json` answered as JSON.
    pub async fn json_query(&self, query: &JsonQuery) -> Result<QueryResult> {
        self.json(self.query_request(QueryKind::Json, query)).await
    }

    /// `POST /api/v1/queries/sql` answered as `accept` (`media::CSV` or `media::ARROW_FILE`).
    pub async fn sql_raw(&self, query: &SqlQuery, accept: &str) -> Result<RawResult> {
        self.raw(self.query_request(QueryKind::Sql, query), accept)
            .await
    }

    /// `POST /api/v1/queries/json` answered as `accept` (`media::CSV` or `media::ARROW_FILE`).
    pub async fn json_query_raw(&self, query: &JsonQuery, accept: &str) -> Result<RawResult> {
        self.raw(self.query_request(QueryKind::Json, query), accept)
            .await
    }

    fn query_request(&self, kind: QueryKind, body: &impl Serialize) -> RequestBuilder {
        let path = match kind {
            QueryKind::Sql => "/api/v1/queries/sql",
            QueryKind::Json => "/api/v1/queries/json",
        };
        self.bounded(Method::POST, &self.url(path)).json(body)
    }

    async fn raw(&self, request: RequestBuilder, accept: &str) -> Result<RawResult> {
        let response = self.send(request.header(ACCEPT, accept)).await?;
        let header = |name: &str| -> Option<u64> {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse().ok())
        };
        let (offset, returned, next_offset) = (
            header(page_headers::OFFSET),
            header(page_headers::RETURNED),
            header(page_headers::NEXT_OFFSET),
        );
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = read_limited(response, self.limits.raw_bytes).await?;
        Ok(RawResult {
            content_type,
            body,
            offset,
            returned,
            next_offset,
        })
    }

    // ---- threads ----

    /// A new thread; `body.agent` picks the agent that answers in it (see [`Client::agents`]).
    pub async fn create_thread(&self, body: &CreateThread) -> Result<Thread> {
        let url = self.url("/api/v1/threads");
        self.json(self.bounded(Method::POST, &url).json(body)).await
    }

    pub async fn list_threads(&self, page: &PageParams) -> Result<ThreadPage> {
        let url = with_page(&self.url("/api/v1/threads"), page)?;
        self.json(self.bounded(Method::GET, &url)).await
    }

    pub async fn get_thread(&self, id: &str) -> Result<Thread> {
        let url = self.endpoint("/api/v1/threads/{id}", &[id])?;
        self.json(self.bounded(Method::GET, &url)).await
    }

    pub async fn rename_thread(&self, id: &str, title: &str) -> Result<Thread> {
        let url = self.endpoint("/api/v1/threads/{id}", &[id])?;
        let body = RenameThread {
            title: title.to_owned(),
        };
        self.json(self.bounded(Method::PATCH, &url).json(&body))
            .await
    }

    pub async fn delete_thread(&self, id: &str) -> Result<()> {
        let url = self.endpoint("/api/v1/threads/{id}", &[id])?;
        self.no_content(self.bounded(Method::DELETE, &url)).await
    }

    pub async fn list_messages(&self, thread_id: &str, page: &PageParams) -> Result<MessagePage> {
        let url = with_page(
            &self.endpoint("/api/v1/threads/{id}/messages", &[thread_id])?,
            page,
        )?;
        self.json(self.bounded(Method::GET, &url)).await
    }

    // ---- chat and runs ----

    /// Sends a chat turn and streams the reply as UI message chunks (`stream` is forced on).
    /// The run id is known as soon as the headers arrived ([`ChunkStream::run_id`]).
    pub async fn send_message(
        &self,
        thread_id: &str,
        message: &SendMessage,
    ) -> Result<ChunkStream> {
        let url = self.endpoint("/api/v1/threads/{id}/messages", &[thread_id])?;
        let mut body = message.clone();
        body.stream = None;
        let request = self
            .request(Method::POST, &url)
            .header(ACCEPT, "text/event-stream")
            .json(&body);
        let response = self.send(request).await?;
        Ok(ChunkStream::new(response, run_id_of_headers))
    }

    /// Sends a chat turn and waits for the finished run (`"stream": false`).
    pub async fn send_message_and_wait(
        &self,
        thread_id: &str,
        message: &SendMessage,
    ) -> Result<ChatReply> {
        let url = self.endpoint("/api/v1/threads/{id}/messages", &[thread_id])?;
        let mut body = message.clone();
        body.stream = Some(false);
        // Bounded by the brain's run timeout, not the client's request timeout.
        self.json(self.request(Method::POST, &url).json(&body))
            .await
    }

    pub async fn get_run(&self, id: &str) -> Result<Run> {
        let url = self.endpoint("/api/v1/runs/{id}", &[id])?;
        self.json(self.bounded(Method::GET, &url)).await
    }

    /// Follows a run's events after event `after` (0 or `None`: from the start): the stored
    /// rest, then the live tail, until the run ends. Reconnect with
    /// [`ChunkStream::last_event_id`] to resume without loss or repeats.
    pub async fn follow_run(&self, id: &str, after: Option<u64>) -> Result<ChunkStream> {
        let mut url = self.endpoint("/api/v1/runs/{id}/events", &[id])?;
        if let Some(after) = after {
            url.push_str(&format!("?after={after}"));
        }
        let request = self
            .request(Method::GET, &url)
            .header(ACCEPT, "text/event-stream");
        let response = self.send(request).await?;
        Ok(ChunkStream::new(response, run_id_of_headers))
    }

    /// Asks a live run to stop (`Ok` on 202; a finished run is `ClientError::Api` 409).
    pub async fn cancel_run(&self, id: &str) -> Result<()> {
        let url = self.endpoint("/api/v1/runs/{id}/cancel", &[id])?;
        self.no_content(self.bounded(Method::POST, &url)).await
    }

    pub async fn usage(&self) -> Result<UsageReport> {
        self.json(self.bounded(Method::GET, &self.url("/api/v1/usage")))
            .await
    }

    // ---- the session ----

    /// `POST /api/v1/session/claim`: moves what this client's session made anonymously to the
    /// signed-in user (needs a bearer token and the session; idempotent).
    pub async fn claim_session(&self) -> Result<SessionClaim> {
        self.json(self.bounded(Method::POST, &self.url("/api/v1/session/claim")))
            .await
    }

    // ---- documents and retrieval ----

    /// `POST /api/v1/documents`: stores `body` as document `name`; `media_type` is one of
    /// `shared_types::knowledge::media` (files: `upload_document_file`). The brain extracts,
    /// chunks and embeds it before answering.
    pub async fn upload_document(
        &self,
        name: &str,
        media_type: &str,
        body: impl Into<Bytes>,
    ) -> Result<Document> {
        let url = self.document_upload_url(name)?;
        // Not bounded by the request timeout: embedding a large document takes a while.
        let request = self
            .request(Method::POST, &url)
            .header(CONTENT_TYPE, media_type)
            .body(body.into());
        self.json(request).await
    }

    fn document_upload_url(&self, name: &str) -> Result<String> {
        if name.is_empty() {
            return Err(ClientError::InvalidInput(
                "a document name must not be empty".into(),
            ));
        }
        let mut url = Url::parse(&self.url("/api/v1/documents"))
            .map_err(|error| ClientError::InvalidInput(format!("upload URL: {error}")))?;
        url.query_pairs_mut().append_pair("name", name);
        Ok(url.into())
    }

    /// The caller's documents, newest first.
    pub async fn list_documents(&self) -> Result<DocumentList> {
        self.json(self.bounded(Method::GET, &self.url("/api/v1/documents")))
            .await
    }

    /// A document's metadata and every chunk with its char offsets.
    pub async fn get_document(&self, id: &str) -> Result<DocumentDetail> {
        let url = self.endpoint("/api/v1/documents/{id}", &[id])?;
        self.json(self.bounded(Method::GET, &url)).await
    }

    /// The extracted text every chunk offset refers to (chars, not bytes).
    pub async fn document_text(&self, id: &str) -> Result<String> {
        let url = self.endpoint("/api/v1/documents/{id}/text", &[id])?;
        let response = self
            .send(self.bounded(Method::GET, &url).header(ACCEPT, "text/plain"))
            .await?;
        let bytes = read_limited(response, self.limits.raw_bytes).await?;
        String::from_utf8(bytes.into()).map_err(|error| {
            ClientError::Decode(format!("the document text is not UTF-8: {error}"))
        })
    }

    /// Deletes a document with its chunks.
    pub async fn delete_document(&self, id: &str) -> Result<()> {
        let url = self.endpoint("/api/v1/documents/{id}", &[id])?;
        self.no_content(self.bounded(Method::DELETE, &url)).await
    }

    /// `POST /api/v1/knowledge/search`: hybrid search over the caller's documents, best first.
    pub async fn search_knowledge(&self, request: &SearchRequest) -> Result<SearchResponse> {
        let url = self.url("/api/v1/knowledge/search");
        self.json(self.bounded(Method::POST, &url).json(request))
            .await
    }

    // ---- agents and escalations ----

    /// The agents a thread can be created with, and the default one.
    pub async fn agents(&self) -> Result<AgentList> {
        self.json(self.bounded(Method::GET, &self.url("/api/v1/agents")))
            .await
    }

    /// Operators only (scope `edgebrain:operator`): escalations, newest first.
    pub async fn escalations(&self, filter: &EscalationFilter) -> Result<EscalationList> {
        let mut url = Url::parse(&self.url("/api/v1/escalations"))
            .map_err(|error| ClientError::InvalidInput(format!("URL: {error}")))?;
        if let Some(status) = filter.status {
            url.query_pairs_mut().append_pair("status", status.as_str());
        }
        if let Some(limit) = filter.limit {
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
        }
        self.json(self.bounded(Method::GET, url.as_str())).await
    }

    /// Operators only: marks an escalation resolved.
    pub async fn resolve_escalation(
        &self,
        id: &str,
        body: &ResolveEscalation,
    ) -> Result<Escalation> {
        let url = self.endpoint("/api/v1/escalations/{id}/resolve", &[id])?;
        self.json(self.bounded(Method::POST, &url).json(body)).await
    }

    /// Operators only: the escalated conversation's messages, oldest first, whoever owns it.
    pub async fn escalation_messages(&self, id: &str, page: &PageParams) -> Result<MessagePage> {
        let url = with_page(
            &self.endpoint("/api/v1/escalations/{id}/messages", &[id])?,
            page,
        )?;
        self.json(self.bounded(Method::GET, &url)).await
    }
}

fn run_id_of_headers(headers: &HeaderMap) -> Option<String> {
    headers
        .get(RUN_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn with_page(url: &str, page: &PageParams) -> Result<String> {
    let mut url =
        Url::parse(url).map_err(|error| ClientError::InvalidInput(format!("URL: {error}")))?;
    if page.limit.is_some() || page.cursor.is_some() {
        let mut query = url.query_pairs_mut();
        if let Some(limit) = page.limit {
            query.append_pair("limit", &limit.to_string());
        }
        if let Some(cursor) = &page.cursor {
            query.append_pair("cursor", cursor);
        }
    }
    Ok(url.into())
}

/// The format's name in `?format=`.
pub fn format_name(format: DataFormat) -> &'static str {
    match format {
        DataFormat::Csv => "csv",
        DataFormat::Parquet => "parquet",
        DataFormat::Ndjson => "ndjson",
        DataFormat::Json => "json",
    }
}

/// The media type an upload in `format` is sent as.
pub fn content_type_of(format: DataFormat) -> &'static str {
    match format {
        DataFormat::Csv => "text/csv",
        DataFormat::Parquet => "application/vnd.apache.parquet",
        DataFormat::Ndjson => "application/x-ndjson",
        DataFormat::Json => "application/json",
    }
}

/// The format a file name's extension names (`.csv`, `.parquet`, `.ndjson`/`.jsonl`, `.json`).
pub fn format_of_file_name(name: &str) -> Option<DataFormat> {
    DataFormat::from_extension(name.rsplit_once('.')?.1)
}

/// Reads a whole body, refusing more than `limit` bytes.
async fn read_limited(response: Response, limit: usize) -> Result<Bytes> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(ClientError::TooLarge { limit });
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(ClientError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

fn truncate(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert!(Client::builder("http://127.0.0.1:8787/").build().is_ok());
        assert!(
            Client::builder("https://app.example/prefix")
                .build()
                .is_ok()
        );
        for bad in ["127.0.0.1:8787", "ftp://x", "http://x/?a=1", "not a url"] {
            assert!(
                matches!(
                    Client::builder(bad).build(),
                    Err(ClientError::InvalidInput(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Client::builder("http://x").token("a\nb").build(),
            Err(ClientError::InvalidInput(_))
        ));
    }

    #[test]
    fn upload_urls_carry_the_options_encoded() {
        let client = Client::builder("http://127.0.0.1:1/").build().unwrap();
        let url = client
            .upload_url_at(
                "/api/v1/datasets",
                Some("my sales"),
                &UploadOptions {
                    format: None,
                    schema: Some("qty:int64,day:date".into()),
                    scope: Some(Scope::Public),
                },
                DataFormat::Csv,
            )
            .unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:1/api/v1/datasets?name=my+sales&format=csv&schema=qty%3Aint64%2Cday%3Adate&scope=public"
        );
        assert!(
            client
                .upload_url_at(
                    "/api/v1/datasets",
                    Some(""),
                    &UploadOptions::default(),
                    DataFormat::Csv
                )
                .is_err()
        );
    }

    #[test]
    fn formats_follow_file_names() {
        assert_eq!(format_of_file_name("a/b.CSV"), Some(DataFormat::Csv));
        assert_eq!(format_of_file_name("x.jsonl"), Some(DataFormat::Ndjson));
        assert_eq!(format_of_file_name("x.parquet"), Some(DataFormat::Parquet));
        assert_eq!(format_of_file_name("x"), None);
        assert_eq!(format_of_file_name("x.txt"), None);
    }

    #[test]
    fn page_params_become_query_parameters() {
        let url = with_page(
            "http://h/api/v1/threads",
            &PageParams {
                limit: Some(5),
                cursor: Some("17.a b".into()),
            },
        )
        .unwrap();
        assert_eq!(url, "http://h/api/v1/threads?limit=5&cursor=17.a+b");
        assert_eq!(
            with_page("http://h/api/v1/threads", &PageParams::default()).unwrap(),
            "http://h/api/v1/threads"
        );
    }

    #[test]
    fn long_error_bodies_are_cut_on_a_character_boundary() {
        let mut text = "é".repeat(10);
        truncate(&mut text, 5);
        assert_eq!(text, "éé…");
    }
}
