//! The client against a recording HTTP server on loopback (axum, port 0): what each method sends
//! and how it reads the answers.
//!
//! `every_listed_endpoint_has_a_client_method` is the contract check: every public method that
//! talks to `/api/v1` is called once, and the requests they sent must cover
//! `shared_types::api::ENDPOINTS` exactly (the brain's tests hold `ENDPOINTS` equal to its router
//! and its OpenAPI document, so an endpoint added there without a client method fails here).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgebrain_client::{Client, ClientError, Method, UploadOptions, UploadProgress};
use futures_util::StreamExt;
use serde_json::{Value, json};
use shared_types::agent::{EscalationFilter, ResolveEscalation};
use shared_types::api::{ENDPOINTS, Endpoint, PREFIX};
use shared_types::chat::{CreateThread, PageParams, SendMessage};
use shared_types::data::{DataFormat, ImportDataset, JsonQuery, SqlQuery, media};
use shared_types::diag::{StreamParams, StreamTick};
use shared_types::error::{ErrorBody, ErrorCode, ErrorDetail};
use shared_types::knowledge::{
    ChunkInfo, Document, DocumentChunk, DocumentDetail, DocumentList, SearchHit, SearchRequest,
    SearchResponse,
};

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

/// A loopback server that records every request and answers with `answer(&request)`.
struct Recorder {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    async fn spawn(answer: impl Fn(&Recorded) -> Response + Send + Sync + 'static) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let answer = Arc::new(answer);
        let log = Arc::clone(&requests);
        let app = Router::new().fallback(move |request: Request| {
            let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let recorded = Recorded {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    query: parts.uri.query().map(str::to_owned),
                    content_type: parts
                        .headers
                        .get(header::CONTENT_TYPE)
                        .map(|value| value.to_str().unwrap().to_owned()),
                    body: body.to_vec(),
                };
                let response = answer(&recorded);
                log.lock().unwrap().push(recorded);
                response
            }
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            requests,
            task,
        }
    }

    fn client(&self) -> Client {
        Client::builder(&self.base).build().unwrap()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The one request sent to `method path`.
    fn only(&self, method: &str, path: &str) -> Recorded {
        let mut found: Vec<Recorded> = self
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect();
        assert_eq!(found.len(), 1, "{method} {path} in {:?}", self.requests());
        found.remove(0)
    }
}

fn error_answer(code: ErrorCode) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message: "answered by the recorder".to_owned(),
            request_id: "rec-1".to_owned(),
        },
    };
    (
        StatusCode::from_u16(code.http_status()).unwrap(),
        axum::Json(body),
    )
        .into_response()
}

fn json_answer(status: StatusCode, value: impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

/// A fresh directory for files to upload.
fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgebrain-client-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The listed endpoint a request is an instance of: literal segments equal, a `{param}` matches
/// one non-empty segment; the most literal match wins (`/datasets/memory` over `/datasets/{id}`).
fn endpoint_of(method: &str, path: &str) -> Option<&'static Endpoint> {
    let segments: Vec<&str> = path.split('/').collect();
    ENDPOINTS
        .iter()
        .filter(|endpoint| endpoint.method == method)
        .filter_map(|endpoint| {
            let template: Vec<&str> = endpoint.path.split('/').collect();
            if template.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (want, got) in template.iter().zip(&segments) {
                if want.starts_with('{') {
                    if got.is_empty() {
                        return None;
                    }
                } else if want == got {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, endpoint))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, endpoint)| endpoint)
}

/// Calls every public method of [`Client`] that talks to the API once. Answers do not matter
/// (the recorder refuses everything); what they sent does. A new method belongs here.
async fn call_every_method(client: &Client, dir: &Path) {
    let csv = dir.join("sales.csv");
    std::fs::write(&csv, "store,qty\na,1\n").unwrap();
    let markdown = dir.join("returns.md");
    std::fs::write(&markdown, "# Returns\nWithin 30 days.\n").unwrap();
    let csv_options = UploadOptions {
        format: Some(DataFormat::Csv),
        ..UploadOptions::default()
    };
    let sql = SqlQuery {
        sql: "SELECT 1".to_owned(),
        result: Default::default(),
    };
    let json_query: JsonQuery = serde_json::from_value(json!({"dataset": "sales"})).unwrap();
    let import = ImportDataset {
        name: "sales".to_owned(),
        path: "sales.csv".to_owned(),
        format: None,
        schema: Default::default(),
        scope: None,
    };
    let message = SendMessage {
        content: Some("hello".to_owned()),
        ..SendMessage::default()
    };
    let filter: EscalationFilter = serde_json::from_value(json!({})).unwrap();
    let search = SearchRequest {
        query: "refunds".to_owned(),
        limit: Some(3),
    };
    let (id, page) = ("id-1", PageParams::default());

    // The contract and diagnostics.
    let _ = client.health().await;
    let _ = client.openapi().await;
    let _ = client.whoami().await;
    let _ = client.diag_stream(&StreamParams::default()).await;
    for method in [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ] {
        let _ = client.echo(method, Some(&json!({"a": 1}))).await;
    }
    // Datasets.
    let _ = client.list_datasets().await;
    let _ = client.upload_bytes("sales", &csv_options, "a\n1\n").await;
    let _ = client
        .upload_file("sales", &csv, &UploadOptions::default(), |_| {})
        .await;
    let _ = client.import_dataset(&import).await;
    let _ = client.dataset_memory().await;
    let _ = client.describe_dataset(id).await;
    let _ = client.rename_dataset(id, "renamed").await;
    let _ = client
        .replace_dataset_bytes(id, &csv_options, "a\n2\n")
        .await;
    let _ = client
        .replace_dataset_file(id, &csv, &UploadOptions::default(), |_| {})
        .await;
    let _ = client.append_rows_bytes(id, &csv_options, "a\n3\n").await;
    let _ = client
        .append_rows_file(id, &csv, &UploadOptions::default(), |_| {})
        .await;
    let _ = client.delete_dataset(id).await;
    let _ = client.pin_dataset(id, true).await;
    let _ = client.pin_dataset(id, false).await;
    // Queries.
    let _ = client.sql(&sql).await;
    let _ = client.sql_raw(&sql, media::CSV).await;
    let _ = client.json_query(&json_query).await;
    let _ = client.json_query_raw(&json_query, media::ARROW_FILE).await;
    // Threads, chat, runs, usage.
    let _ = client.create_thread(&CreateThread::default()).await;
    let _ = client.list_threads(&page).await;
    let _ = client.get_thread(id).await;
    let _ = client.rename_thread(id, "title").await;
    let _ = client.delete_thread(id).await;
    let _ = client.list_messages(id, &page).await;
    let _ = client.send_message(id, &message).await;
    let _ = client.send_message_and_wait(id, &message).await;
    let _ = client.get_run(id).await;
    let _ = client.follow_run(id, Some(3)).await;
    let _ = client.cancel_run(id).await;
    let _ = client.usage().await;
    let _ = client.session_identity().await;
    let _ = client.claim_session().await;
    // Agents and escalations.
    let _ = client.agents().await;
    let _ = client.escalations(&filter).await;
    let _ = client
        .resolve_escalation(id, &ResolveEscalation::default())
        .await;
    let _ = client.escalation_messages(id, &page).await;
    // Documents and retrieval.
    let _ = client
        .upload_document("returns", shared_types::knowledge::media::PLAIN, "x")
        .await;
    let _ = client
        .upload_document_file("returns", &markdown, None, |_| {})
        .await;
    let _ = client.list_documents().await;
    let _ = client.get_document(id).await;
    let _ = client.document_text(id).await;
    let _ = client.delete_document(id).await;
    let _ = client.search_knowledge(&search).await;
}

#[tokio::test]
async fn every_listed_endpoint_has_a_client_method() {
    let recorder = Recorder::spawn(|_| error_answer(ErrorCode::NotFound)).await;
    let dir = work_dir("endpoints");
    call_every_method(&recorder.client(), &dir).await;
    std::fs::remove_dir_all(&dir).unwrap();

    let mut called = BTreeSet::new();
    let mut unlisted = BTreeSet::new();
    for request in recorder.requests() {
        match endpoint_of(&request.method, &request.path) {
            Some(endpoint) => {
                called.insert((endpoint.method, endpoint.path));
            }
            None if request.path.starts_with(PREFIX) => {
                unlisted.insert(format!("{} {}", request.method, request.path));
            }
            None => {}
        }
    }
    assert!(
        unlisted.is_empty(),
        "the client calls operations shared_types::api::ENDPOINTS does not list: {unlisted:?}"
    );
    let missing: Vec<String> = ENDPOINTS
        .iter()
        .filter(|endpoint| !called.contains(&(endpoint.method, endpoint.path)))
        .map(|endpoint| format!("{} {}", endpoint.method, endpoint.path))
        .collect();
    assert!(
        missing.is_empty(),
        "listed in shared_types::api::ENDPOINTS but called by no client method: {missing:?} \
         (add a method to client/src/lib.rs and call it in call_every_method)"
    );
}

#[test]
fn requests_map_to_the_most_literal_listed_endpoint() {
    let memory = endpoint_of("GET", "/api/v1/datasets/memory").unwrap();
    assert_eq!(memory.path, "/api/v1/datasets/memory");
    let dataset = endpoint_of("GET", "/api/v1/datasets/d%201").unwrap();
    assert_eq!(dataset.path, "/api/v1/datasets/{id}");
    assert!(endpoint_of("GET", "/api/v1/datasets/").is_none());
    assert!(endpoint_of("POST", "/api/v1/usage").is_none());
    assert!(endpoint_of("GET", "/api/v1/documents/x/text/more").is_none());
}

fn document() -> Document {
    Document {
        id: "doc 1".to_owned(),
        name: "returns policy.md".to_owned(),
        media_type: shared_types::knowledge::media::MARKDOWN.to_owned(),
        bytes: 29,
        chars: 27,
        chunk_count: 1,
        embedder: "all-MiniLM-L6-v2".to_owned(),
        created_at_ms: 1_764_000_000_000,
    }
}

fn hit() -> SearchHit {
    SearchHit {
        chunk: DocumentChunk {
            document_id: "doc 1".to_owned(),
            document_name: "returns policy.md".to_owned(),
            chunk_index: 0,
            start: 0,
            end: 9,
            text: "# Returns".to_owned(),
        },
        score: 0.03,
        bm25_rank: Some(1),
        vector_rank: None,
        bm25_score: Some(1.5),
        vector_score: None,
    }
}

/// The brain's document endpoints as far as the client can tell them apart.
fn answer_documents(request: &Recorded) -> Response {
    let method = request.method.as_str();
    match (method, request.path.as_str()) {
        ("POST", "/api/v1/documents") => json_answer(StatusCode::CREATED, document()),
        ("GET", "/api/v1/documents") => json_answer(
            StatusCode::OK,
            DocumentList {
                documents: vec![document()],
            },
        ),
        ("GET", "/api/v1/documents/doc%201") => json_answer(
            StatusCode::OK,
            DocumentDetail {
                document: document(),
                chunks: vec![ChunkInfo {
                    index: 0,
                    start: 0,
                    end: 9,
                    text: "# Returns".to_owned(),
                }],
            },
        ),
        ("GET", "/api/v1/documents/doc%201/text") => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            Body::from("# Returns — within 30 days."),
        )
            .into_response(),
        ("GET", "/api/v1/documents/not-utf8/text") => (
            [(header::CONTENT_TYPE, "text/plain")],
            Body::from(vec![0xff, 0xfe]),
        )
            .into_response(),
        ("DELETE", "/api/v1/documents/doc%201") => StatusCode::NO_CONTENT.into_response(),
        ("POST", "/api/v1/knowledge/search") => {
            json_answer(StatusCode::OK, SearchResponse { hits: vec![hit()] })
        }
        _ => error_answer(ErrorCode::NotFound),
    }
}

#[tokio::test]
async fn documents_are_uploaded_listed_read_searched_and_deleted() {
    let recorder = Recorder::spawn(answer_documents).await;
    let client = recorder.client();

    // From memory: the media type as Content-Type, the name as `?name=`.
    let stored = client
        .upload_document(
            "returns policy.md",
            shared_types::knowledge::media::MARKDOWN,
            "# Returns\nWithin 30 days.\n",
        )
        .await
        .unwrap();
    assert_eq!(stored, document());
    let sent = recorder.only("POST", "/api/v1/documents");
    assert_eq!(sent.query.as_deref(), Some("name=returns+policy.md"));
    assert_eq!(sent.content_type.as_deref(), Some("text/markdown"));
    assert_eq!(sent.body, b"# Returns\nWithin 30 days.\n");

    assert_eq!(
        client.list_documents().await.unwrap().documents,
        vec![document()]
    );
    let detail = client.get_document("doc 1").await.unwrap();
    assert_eq!(detail.chunks[0].text, "# Returns");
    assert_eq!(
        client.document_text("doc 1").await.unwrap(),
        "# Returns — within 30 days."
    );
    assert!(matches!(
        client.document_text("not-utf8").await,
        Err(ClientError::Decode(_))
    ));
    client.delete_document("doc 1").await.unwrap();
    recorder.only("DELETE", "/api/v1/documents/doc%201");

    let request = SearchRequest {
        query: "how long do refunds take".to_owned(),
        limit: Some(3),
    };
    let found = client.search_knowledge(&request).await.unwrap();
    assert_eq!(found.hits, vec![hit()]);
    let sent = recorder.only("POST", "/api/v1/knowledge/search");
    assert_eq!(sent.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(
        body,
        json!({"query": "how long do refunds take", "limit": 3})
    );

    // Another caller's or a missing document: the error body, typed.
    let missing = client.get_document("someone-elses").await.unwrap_err();
    assert_eq!(missing.status(), Some(404));
    assert_eq!(missing.body().unwrap().error.code, ErrorCode::NotFound);
}

#[tokio::test]
async fn document_files_stream_with_their_type_and_progress() {
    let recorder = Recorder::spawn(answer_documents).await;
    let client = recorder.client();
    let dir = work_dir("document-file");
    let page = dir.join("Guide.HTM");
    let html = "<p>Refunds within 30 days.</p>".repeat(4000);
    std::fs::write(&page, &html).unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress = {
        let seen = Arc::clone(&seen);
        move |p: UploadProgress| seen.lock().unwrap().push(p)
    };
    client
        .upload_document_file("guide", &page, None, progress)
        .await
        .unwrap();
    let sent = recorder.only("POST", "/api/v1/documents");
    assert_eq!(sent.query.as_deref(), Some("name=guide"));
    assert_eq!(sent.content_type.as_deref(), Some("text/html"));
    assert_eq!(sent.body, html.as_bytes());
    let seen = seen.lock().unwrap().clone();
    let total = html.len() as u64;
    assert_eq!(seen.first(), Some(&UploadProgress { sent: 0, total }));
    assert_eq!(seen.last(), Some(&UploadProgress { sent: total, total }));
    assert!(seen.windows(2).all(|pair| pair[0].sent <= pair[1].sent));

    // An explicit type wins over the extension.
    let notes = dir.join("notes.data");
    std::fs::write(&notes, "plain words").unwrap();
    client
        .upload_document_file("notes", &notes, Some("text/plain"), |_| {})
        .await
        .unwrap();
    let plain = recorder
        .requests()
        .into_iter()
        .find(|r| r.query.as_deref() == Some("name=notes"))
        .unwrap();
    assert_eq!(plain.content_type.as_deref(), Some("text/plain"));

    // Refused before anything is sent: an unknown extension without a type, an empty name.
    let before = recorder.requests().len();
    assert!(matches!(
        client
            .upload_document_file("notes", &notes, None, |_| {})
            .await,
        Err(ClientError::InvalidInput(_))
    ));
    assert!(matches!(
        client.upload_document("", "text/plain", "x").await,
        Err(ClientError::InvalidInput(_))
    ));
    assert_eq!(recorder.requests().len(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tick(seq: u32, of: u32) -> String {
    let tick = StreamTick {
        seq,
        of,
        sent_at_ms: 1_764_000_000_000 + u64::from(seq),
    };
    format!(
        "event: tick\nid: {seq}\ndata: {}\n\n",
        serde_json::to_string(&tick).unwrap()
    )
}

fn event_stream(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from(body),
    )
        .into_response()
}

#[tokio::test]
async fn the_stream_probe_yields_every_tick_and_reports_a_broken_stream() {
    let recorder = Recorder::spawn(|request| {
        match request.query.as_deref() {
            // Complete, with a comment line between events.
            Some("events=2&interval_ms=0") => event_stream(format!("{}: keep-alive\n\n{}", tick(1, 2), tick(2, 2))),
            // What the edge sends when the brain's stream breaks off.
            Some("events=3&interval_ms=0&break_after=1") => event_stream(format!(
                "{}event: error\ndata: {{\"type\":\"error\",\"errorText\":\"the brain's stream broke off\",\"code\":\"bad_gateway\",\"request_id\":\"r\"}}\n\n",
                tick(1, 3)
            )),
            // Ends cleanly but early.
            Some("events=3&interval_ms=5") => event_stream(tick(1, 3)),
            _ => error_answer(ErrorCode::InvalidQuery),
        }
    })
    .await;
    let client = recorder.client();
    let params = |events, interval_ms, break_after| StreamParams {
        events,
        interval_ms,
        break_after,
    };

    let ticks: Vec<_> = client
        .diag_stream(&params(2, 0, None))
        .await
        .unwrap()
        .collect()
        .await;
    let ticks: Vec<u32> = ticks.into_iter().map(|t| t.unwrap().seq).collect();
    assert_eq!(ticks, [1, 2]);

    let mut broken = client.diag_stream(&params(3, 0, Some(1))).await.unwrap();
    assert_eq!(broken.next().await.unwrap().unwrap().seq, 1);
    match broken.next().await {
        Some(Err(ClientError::Stream(message))) => {
            assert_eq!(message, "the brain's stream broke off (bad_gateway)");
        }
        other => panic!("{other:?}"),
    }
    assert!(broken.next().await.is_none());

    let mut early = client.diag_stream(&params(3, 5, None)).await.unwrap();
    assert_eq!(early.next().await.unwrap().unwrap().seq, 1);
    match early.next().await {
        Some(Err(ClientError::Stream(message))) => {
            assert_eq!(message, "the stream ended after 1 of 3 events");
        }
        other => panic!("{other:?}"),
    }

    // A refused probe is the error body, before any stream.
    let refused = client.diag_stream(&params(0, 0, None)).await.unwrap_err();
    assert_eq!(refused.body().unwrap().error.code, ErrorCode::InvalidQuery);
}

#[tokio::test]
async fn echo_sends_the_method_and_json_body_it_is_given() {
    let recorder = Recorder::spawn(|request| {
        json_answer(
            StatusCode::OK,
            json!({
                "method": request.method, "path": request.path, "headers": [],
                "body_bytes": request.body.len(), "request_id": "rec-1",
                "body": serde_json::from_slice::<Value>(&request.body).ok(),
            }),
        )
    })
    .await;
    let client = recorder.client();
    let report = client
        .echo(Method::PATCH, Some(&json!({"ünïcode": [1, null]})))
        .await
        .unwrap();
    assert_eq!(report.method, "PATCH");
    assert_eq!(report.path, "/api/v1/diag/echo");
    assert_eq!(report.body, Some(json!({"ünïcode": [1, null]})));
    let sent = recorder.only("PATCH", "/api/v1/diag/echo");
    assert_eq!(sent.content_type.as_deref(), Some("application/json"));

    let bare = client.echo(Method::DELETE, None).await.unwrap();
    assert_eq!((bare.method.as_str(), bare.body_bytes), ("DELETE", 0));
    assert_eq!(
        recorder.only("DELETE", "/api/v1/diag/echo").content_type,
        None
    );
}

#[tokio::test]
async fn datasets_replace_and_append_from_memory() {
    let recorder = Recorder::spawn(|_| error_answer(ErrorCode::Conflict)).await;
    let client = recorder.client();
    let options = UploadOptions {
        format: Some(DataFormat::Ndjson),
        ..UploadOptions::default()
    };
    let replaced = client
        .replace_dataset_bytes("d/1", &options, "{\"a\":1}\n")
        .await
        .unwrap_err();
    assert_eq!(replaced.status(), Some(409));
    let sent = recorder.only("PUT", "/api/v1/datasets/d%2F1");
    assert_eq!(sent.query.as_deref(), Some("format=ndjson"));
    assert_eq!(sent.content_type.as_deref(), Some("application/x-ndjson"));
    assert_eq!(sent.body, b"{\"a\":1}\n");

    let _ = client
        .append_rows_bytes("d1", &options, "{\"a\":2}\n")
        .await;
    recorder.only("POST", "/api/v1/datasets/d1/rows");

    // Bytes carry no file name: the format must be given.
    let before = recorder.requests().len();
    assert!(matches!(
        client
            .append_rows_bytes("d1", &UploadOptions::default(), "a\n")
            .await,
        Err(ClientError::InvalidInput(_))
    ));
    assert_eq!(recorder.requests().len(), before);
}
