//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the API, generated from the
//! `shared-types` wire types (their `utoipa::ToSchema` derives, feature `openapi`).
//!
//! Every operation of [`shared_types::api::ENDPOINTS`] is declared here, in one place, with its
//! parameters, request body and responses (the handlers stay free of documentation attributes).
//! The functions below exist only to carry those declarations; the router serves the real
//! handlers. Every operation also answers errors as [`ErrorBody`] (`4XX`/`5XX`, added to each
//! operation by [`document`]). The route is signed like every `/api` route: callers reach it
//! through the edge.
//!
//! Adding an endpoint: its line in `shared_types::api::ENDPOINTS`, a declaration function here
//! (and its name in `paths(...)`); the tests check the three agree with the router.

#![allow(dead_code)] // The declaration functions are never called.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use shared_types::account::SessionClaim;
use shared_types::agent::{
    AgentList, ChartToolOutput, Escalation, EscalationList, KnowledgeSearchOutput,
    ResolveEscalation, SqlToolOutput,
};
use shared_types::chat::{
    ChatReply, CreateThread, MessagePage, RenameThread, Run, SendMessage, Thread, ThreadPage,
    UiMessageChunk, UsageReport,
};
use shared_types::data::{
    DatasetDescription, DatasetInfo, DatasetList, ImportDataset, JsonQuery, MemoryStats,
    QueryResult, RenameDataset, SqlQuery,
};
use shared_types::diag::{EchoReport, StreamTick, WhoAmI};
use shared_types::error::ErrorBody;
use shared_types::health::{HealthReport, ReadinessReport};
use shared_types::knowledge::{
    Document, DocumentDetail, DocumentList, SearchRequest, SearchResponse,
};
use utoipa::OpenApi;

use super::AppState;

/// Path of the document.
pub const PATH: &str = "/api/v1/openapi.json";

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, get(serve))
}

async fn serve() -> Response {
    static RENDERED: OnceLock<String> = OnceLock::new();
    let body = RENDERED.get_or_init(|| document().to_string());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.as_str(),
    )
        .into_response()
}

/// The complete document: the derived one plus, on every operation, the shared error responses.
pub fn document() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|error| {
        // Serializing a derived document cannot fail (string keys only); never panic anyway.
        json!({"openapi": "3.1.0", "info": {"title": "edgebrain", "version": crate::VERSION},
               "paths": {}, "x-error": error.to_string()})
    });
    let error = json!({
        "description": "The error shape: `{\"error\":{\"code\",\"message\",\"request_id\"}}`; the status is fixed by the code.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    });
    if let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                if let Some(responses) = operation
                    .get_mut("responses")
                    .and_then(Value::as_object_mut)
                {
                    responses.entry("4XX").or_insert_with(|| error.clone());
                    responses.entry("5XX").or_insert_with(|| error.clone());
                }
            }
        }
    }
    document
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "edgebrain",
        description = "The edgebrain API: datasets, queries, conversations and runs, behind the edge \
            (which authenticates, issues sessions in `x-session-id` or a cookie, and signs every request \
            for the brain). All paths are versioned under `/api/v1`; within v1 changes are additive. \
            Streams are Server-Sent Events: chat replies and run events carry one `UiMessageChunk` \
            (the Vercel AI SDK UI message stream v1) per event, then `data: [DONE]`.",
        license(name = "Apache-2.0")
    ),
    paths(
        health, ready, openapi_json,
        diag_stream, diag_whoami, diag_echo_get, diag_echo_post, diag_echo_put, diag_echo_patch,
        diag_echo_delete,
        list_datasets, create_dataset, import_dataset, dataset_memory, describe_dataset,
        rename_dataset, replace_dataset, delete_dataset, append_rows, pin_dataset, unpin_dataset,
        query_sql, query_json,
        list_threads, create_thread, get_thread, rename_thread, delete_thread, list_messages,
        send_message, get_run, run_events, cancel_run, usage,
        get_session, claim_session,
        list_agents, list_escalations, resolve_escalation, escalation_messages,
        list_documents, upload_document, get_document, delete_document, document_text,
        search_knowledge,
    ),
    // Tool outputs are not bodies of any path: they arrive inside `tool-output-available`
    // chunks of the chat stream, so they are listed here for clients to decode them.
    components(schemas(
        ErrorBody, shared_types::chat::RunMessageMetadata, ChartToolOutput, SqlToolOutput,
        KnowledgeSearchOutput, shared_types::agent::EscalationReceipt,
    )),
    tags(
        (name = "health", description = "Liveness and readiness (not under /api: the brain's own probes)"),
        (name = "meta", description = "This document"),
        (name = "diag", description = "Deployment diagnostics: for signed-in operators (scope `edgebrain:operator`) unless the brain runs with `--diag open`; 404 with `--diag off`"),
        (name = "datasets", description = "Tabular data held by the brain"),
        (name = "queries", description = "SQL and typed JSON queries over datasets"),
        (name = "threads", description = "Conversations and the chat stream"),
        (name = "runs", description = "Replies being generated, their events, and usage"),
        (name = "session", description = "The caller's edge session, and its move to the user at sign-in"),
        (name = "agents", description = "Agents threads can use, and escalations to humans"),
        (name = "knowledge", description = "Documents and retrieval (hybrid BM25 + vector search)"),
    )
)]
struct ApiDoc;

const ID: &str = "The resource's id";

// ---- health (the brain's own probes; the edge answers its own `/health`) ----

#[utoipa::path(get, path = "/health", tag = "health", operation_id = "health",
    summary = "Liveness: the process serves HTTP",
    responses((status = 200, description = "Alive", body = HealthReport)))]
fn health() {}

#[utoipa::path(get, path = "/ready", tag = "health", operation_id = "ready",
    summary = "Readiness: the database answers",
    responses(
        (status = 200, description = "Ready", body = ReadinessReport),
        (status = 503, description = "Not ready; the report names the failed check", body = ReadinessReport)))]
fn ready() {}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", operation_id = "openapi",
    summary = "This OpenAPI 3.1 document",
    responses((status = 200, description = "The document", content_type = "application/json", body = Object)))]
fn openapi_json() {}

// ---- diag ----

#[utoipa::path(get, path = "/api/v1/diag/stream", tag = "diag", operation_id = "diagStream",
    summary = "N `tick` Server-Sent Events, one every M ms: proof that no hop buffers",
    params(
        ("events" = Option<u32>, Query, description = "Number of events (default 5; bounded by the brain)"),
        ("interval_ms" = Option<u64>, Query, description = "Pause between events (default 200; bounded)"),
        ("break_after" = Option<u32>, Query, description = "Abort the stream after this many events"),
    ),
    responses((status = 200, description = "`event: tick`, `id: <seq>`, `data: StreamTick`",
        content_type = "text/event-stream", body = StreamTick)))]
fn diag_stream() {}

#[utoipa::path(get, path = "/api/v1/diag/whoami", tag = "diag", operation_id = "whoami",
    summary = "The caller as the brain sees it",
    responses((status = 200, description = "The verified identity", body = WhoAmI)))]
fn diag_whoami() {}

macro_rules! echo {
    ($name:ident, $method:ident, $op:literal) => {
        #[utoipa::path($method, path = "/api/v1/diag/echo", tag = "diag", operation_id = $op,
                    summary = "The request as the brain received it (credentials redacted)",
                    request_body(content = Option<Object>, content_type = "application/json",
                        description = "Any JSON document, or no body"),
                    responses((status = 200, description = "What arrived", body = EchoReport)))]
        fn $name() {}
    };
}
echo!(diag_echo_get, get, "echoGet");
echo!(diag_echo_post, post, "echoPost");
echo!(diag_echo_put, put, "echoPut");
echo!(diag_echo_patch, patch, "echoPatch");
echo!(diag_echo_delete, delete, "echoDelete");

// ---- datasets ----

#[utoipa::path(get, path = "/api/v1/datasets", tag = "datasets", operation_id = "listDatasets",
    summary = "The caller's datasets and the public ones",
    responses((status = 200, description = "Datasets", body = DatasetList)))]
fn list_datasets() {}

macro_rules! upload {
    ($name:ident, $method:ident, $path:literal, $op:literal, $summary:literal, $status:literal,
     [$($param:tt)*]) => {
        #[utoipa::path($method, path = $path, tag = "datasets", operation_id = $op, summary = $summary,
            params(
                $($param)*
                ("name" = Option<String>, Query, description = "Dataset name (required when creating; or a form field)"),
                ("format" = Option<shared_types::data::DataFormat>, Query, description = "Default: from Content-Type"),
                ("schema" = Option<String>, Query, description = "Type overrides `col:type,…` (types of ColumnType)"),
                ("scope" = Option<shared_types::data::Scope>, Query, description = "Sharing of a new dataset (default private; `public` only for signed-in operators, scope `edgebrain:operator`, else 403)"),
            ),
            request_body(description = "The file, streamed: a raw body in one of these types, or a multipart form \
                with text fields `name`, `format`, `schema`, `scope` before a `file` field. Bounded by `--upload-max-bytes` \
                (and the edge's `MAX_BODY_BYTES`).",
                content(("text/csv"), ("application/vnd.apache.parquet"), ("application/x-ndjson"),
                        ("application/json"), ("multipart/form-data"))),
            responses((status = $status, description = "The dataset", body = DatasetInfo)))]
        fn $name() {}
    };
}
upload!(
    create_dataset,
    post,
    "/api/v1/datasets",
    "createDataset",
    "Create a dataset from an upload",
    201,
    []
);
upload!(
    replace_dataset,
    put,
    "/api/v1/datasets/{id}",
    "replaceDataset",
    "Replace a dataset's contents",
    200,
    [("id" = String, Path, description = ID),]
);
upload!(
    append_rows,
    post,
    "/api/v1/datasets/{id}/rows",
    "appendRows",
    "Append rows (same columns)",
    200,
    [("id" = String, Path, description = ID),]
);

#[utoipa::path(post, path = "/api/v1/datasets/import", tag = "datasets", operation_id = "importDataset",
    summary = "Create a dataset from a file in the brain's import directory",
    request_body = ImportDataset,
    responses((status = 201, description = "The dataset", body = DatasetInfo),
        (status = 403, description = "`scope: public` from a caller who is not a signed-in operator", body = ErrorBody)))]
fn import_dataset() {}

#[utoipa::path(get, path = "/api/v1/datasets/memory", tag = "datasets", operation_id = "datasetMemory",
    summary = "Memory budget, use, loads and evictions",
    responses((status = 200, description = "Statistics", body = MemoryStats)))]
fn dataset_memory() {}

#[utoipa::path(get, path = "/api/v1/datasets/{id}", tag = "datasets", operation_id = "describeDataset",
    summary = "Columns, per-column statistics and the first rows",
    params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The description", body = DatasetDescription)))]
fn describe_dataset() {}

#[utoipa::path(patch, path = "/api/v1/datasets/{id}", tag = "datasets", operation_id = "renameDataset",
    summary = "Rename", params(("id" = String, Path, description = ID)),
    request_body = RenameDataset,
    responses((status = 200, description = "The dataset", body = DatasetInfo)))]
fn rename_dataset() {}

#[utoipa::path(delete, path = "/api/v1/datasets/{id}", tag = "datasets", operation_id = "deleteDataset",
    summary = "Delete (metadata, file, frame)", params(("id" = String, Path, description = ID)),
    responses((status = 204, description = "Deleted")))]
fn delete_dataset() {}

#[utoipa::path(put, path = "/api/v1/datasets/{id}/pin", tag = "datasets", operation_id = "pinDataset",
    summary = "Keep in memory (never evicted; signed-in operators only)", params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The dataset", body = DatasetInfo),
        (status = 403, description = "The caller is not a signed-in operator", body = ErrorBody)))]
fn pin_dataset() {}

#[utoipa::path(delete, path = "/api/v1/datasets/{id}/pin", tag = "datasets", operation_id = "unpinDataset",
    summary = "Allow eviction again", params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The dataset", body = DatasetInfo)))]
fn unpin_dataset() {}

// ---- queries ----

macro_rules! query {
    ($name:ident, $path:literal, $op:literal, $body:ty, $summary:literal) => {
        #[utoipa::path(post, path = $path, tag = "queries", operation_id = $op, summary = $summary,
            params(("accept" = Option<String>, Header,
                description = "application/json (default), text/csv or application/vnd.apache.arrow.file")),
            request_body = $body,
            responses((status = 200, description = "The page of the result. CSV and Arrow carry the page in \
                    `x-edgebrain-page-offset`, `x-edgebrain-page-returned` and (unless last) `x-edgebrain-page-next-offset`",
                content((QueryResult = "application/json"), ("text/csv"), ("application/vnd.apache.arrow.file")))))]
        fn $name() {}
    };
}
query!(
    query_sql,
    "/api/v1/queries/sql",
    "querySql",
    SqlQuery,
    "One read-only SELECT over datasets by name"
);
query!(
    query_json,
    "/api/v1/queries/json",
    "queryJson",
    JsonQuery,
    "A typed query (filter, group, aggregate, sort, page)"
);

// ---- threads ----

#[utoipa::path(get, path = "/api/v1/threads", tag = "threads", operation_id = "listThreads",
    summary = "The caller's threads, newest activity first",
    params(
        ("limit" = Option<u32>, Query, description = "1..=100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, description = "A page", body = ThreadPage)))]
fn list_threads() {}

#[utoipa::path(post, path = "/api/v1/threads", tag = "threads", operation_id = "createThread",
    summary = "Start a conversation", request_body = CreateThread,
    responses((status = 201, description = "The thread", body = Thread)))]
fn create_thread() {}

#[utoipa::path(get, path = "/api/v1/threads/{id}", tag = "threads", operation_id = "getThread",
    summary = "One thread", params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The thread", body = Thread)))]
fn get_thread() {}

#[utoipa::path(patch, path = "/api/v1/threads/{id}", tag = "threads", operation_id = "renameThread",
    summary = "Rename", params(("id" = String, Path, description = ID)), request_body = RenameThread,
    responses((status = 200, description = "The thread", body = Thread)))]
fn rename_thread() {}

#[utoipa::path(delete, path = "/api/v1/threads/{id}", tag = "threads", operation_id = "deleteThread",
    summary = "Delete with its messages and runs (live runs are cancelled)",
    params(("id" = String, Path, description = ID)),
    responses((status = 204, description = "Deleted")))]
fn delete_thread() {}

#[utoipa::path(get, path = "/api/v1/threads/{id}/messages", tag = "threads", operation_id = "listMessages",
    summary = "Stored messages, oldest first (AI SDK UIMessage shape)",
    params(
        ("id" = String, Path, description = ID),
        ("limit" = Option<u32>, Query, description = "1..=100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, description = "A page", body = MessagePage)))]
fn list_messages() {}

#[utoipa::path(post, path = "/api/v1/threads/{id}/messages", tag = "threads", operation_id = "sendMessage",
    summary = "A chat turn: the reply streams as the AI SDK UI message stream v1",
    params(("id" = String, Path, description = ID)), request_body = SendMessage,
    responses((status = 200,
        description = "SSE (`x-vercel-ai-ui-message-stream: v1`, run id in `x-edgebrain-run-id`): \
            `id: <n>` + `data: UiMessageChunk` per event, then `data: [DONE]`; \
            or, with `\"stream\": false`, one ChatReply",
        content((UiMessageChunk = "text/event-stream"), (ChatReply = "application/json")))))]
fn send_message() {}

// ---- runs ----

#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", operation_id = "getRun",
    summary = "A run's state, provider and usage", params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The run", body = Run)))]
fn get_run() {}

#[utoipa::path(get, path = "/api/v1/runs/{id}/events", tag = "runs", operation_id = "runEvents",
    summary = "The run's stream from an event on: the rest, the live tail, then [DONE]",
    params(
        ("id" = String, Path, description = ID),
        ("after" = Option<u64>, Query, description = "Send events after this id (the query form of Last-Event-ID)"),
        ("last-event-id" = Option<u64>, Header, description = "Wins over `after`"),
    ),
    responses((status = 200, description = "SSE: `id: <n>` + `data: UiMessageChunk`, then `data: [DONE]`",
        content_type = "text/event-stream", body = UiMessageChunk)))]
fn run_events() {}

#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs", operation_id = "cancelRun",
    summary = "Stop a live run", params(("id" = String, Path, description = ID)),
    responses(
        (status = 202, description = "Cancellation requested"),
        (status = 409, description = "The run already finished", body = ErrorBody)))]
fn cancel_run() {}

#[utoipa::path(get, path = "/api/v1/usage", tag = "runs", operation_id = "usage",
    summary = "The caller's runs, tokens, cost and budget",
    responses((status = 200, description = "Totals", body = UsageReport)))]
fn usage() {}

// ---- the session ----

#[utoipa::path(get, path = "/api/v1/session", tag = "session", operation_id = "getSession",
    summary = "The caller as the brain sees it: signed-in user, session, scopes",
    responses(
        (status = 200, description = "The caller", body = WhoAmI),
        (status = 401, description = "No caller identity", body = ErrorBody)))]
fn get_session() {}

#[utoipa::path(post, path = "/api/v1/session/claim", tag = "session", operation_id = "claimSession",
    summary = "Move what this session made anonymously to the signed-in user",
    description = "Threads, runs, datasets (renamed when the user already has the name), documents         and escalations of the caller's session move to the caller's user, in one transaction,         and the session is bound to that user for good. Idempotent.",
    responses(
        (status = 200, description = "What moved", body = SessionClaim),
        (status = 400, description = "No session to claim", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 409, description = "Another user claimed this session", body = ErrorBody)))]
fn claim_session() {}

// ---- agents and escalations ----

#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", operation_id = "listAgents",
    summary = "The agents a thread can be created with (`CreateThread.agent`)",
    responses((status = 200, description = "The agents and the default", body = AgentList)))]
fn list_agents() {}

#[utoipa::path(get, path = "/api/v1/escalations", tag = "agents", operation_id = "listEscalations",
    summary = "Operators (scope `edgebrain:operator`): escalations, newest first, across owners",
    params(
        ("status" = Option<String>, Query, description = "`open` or `resolved`"),
        ("limit" = Option<u32>, Query, description = "1..=500, default 50"),
    ),
    responses(
        (status = 200, description = "The escalations", body = EscalationList),
        (status = 403, description = "The caller is not an operator", body = ErrorBody)))]
fn list_escalations() {}

#[utoipa::path(post, path = "/api/v1/escalations/{id}/resolve", tag = "agents",
    operation_id = "resolveEscalation", summary = "Operators: mark an escalation resolved",
    params(("id" = String, Path, description = ID)), request_body = ResolveEscalation,
    responses(
        (status = 200, description = "The resolved escalation", body = Escalation),
        (status = 403, description = "The caller is not an operator", body = ErrorBody),
        (status = 409, description = "Already resolved", body = ErrorBody)))]
fn resolve_escalation() {}

#[utoipa::path(get, path = "/api/v1/escalations/{id}/messages", tag = "agents",
    operation_id = "escalationMessages",
    summary = "Operators: the escalated conversation's messages, oldest first, whoever owns it",
    params(
        ("id" = String, Path, description = ID),
        ("limit" = Option<u32>, Query, description = "1..=100, default 20"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 403, description = "The caller is not an operator", body = ErrorBody),
        (status = 404, description = "No such escalation, or its thread was deleted", body = ErrorBody)))]
fn escalation_messages() {}

// ---- documents and retrieval ----

#[utoipa::path(get, path = "/api/v1/documents", tag = "knowledge", operation_id = "listDocuments",
    summary = "The caller's documents, newest first",
    responses((status = 200, description = "The documents", body = DocumentList)))]
fn list_documents() {}

#[utoipa::path(post, path = "/api/v1/documents", tag = "knowledge", operation_id = "uploadDocument",
    summary = "Upload a document (raw body with its Content-Type, or multipart `file` + `name`); it is extracted, chunked and embedded",
    params(("name" = Option<String>, Query, description = "The document's name (a multipart `name` field wins)")),
    request_body(description = "text/plain, text/markdown, text/html or application/pdf; or multipart/form-data",
        content((String = "text/plain"), (String = "text/markdown"), (String = "text/html"),
                (Vec<u8> = "application/pdf"), (Vec<u8> = "multipart/form-data"))),
    responses(
        (status = 201, description = "The stored document", body = Document),
        (status = 413, description = "Over the document size limit", body = ErrorBody),
        (status = 415, description = "Not a supported document type", body = ErrorBody)))]
fn upload_document() {}

#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "knowledge", operation_id = "getDocument",
    summary = "Metadata and every chunk with its char offsets", params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The document", body = DocumentDetail)))]
fn get_document() {}

#[utoipa::path(delete, path = "/api/v1/documents/{id}", tag = "knowledge", operation_id = "deleteDocument",
    summary = "Delete with its chunks and embeddings", params(("id" = String, Path, description = ID)),
    responses((status = 204, description = "Deleted")))]
fn delete_document() {}

#[utoipa::path(get, path = "/api/v1/documents/{id}/text", tag = "knowledge", operation_id = "documentText",
    summary = "The extracted text the chunk offsets index into", params(("id" = String, Path, description = ID)),
    responses((status = 200, description = "The text", content_type = "text/plain", body = String)))]
fn document_text() {}

#[utoipa::path(post, path = "/api/v1/knowledge/search", tag = "knowledge", operation_id = "searchKnowledge",
    summary = "Hybrid search (BM25 + vector, fused by reciprocal rank) over the caller's documents",
    request_body = SearchRequest,
    responses((status = 200, description = "Best hit first", body = SearchResponse)))]
fn search_knowledge() {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::collections::BTreeSet;

    use shared_types::api::ENDPOINTS;

    use super::*;

    fn operations(document: &Value) -> BTreeSet<(String, String)> {
        let mut found = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                found.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        found
    }

    #[test]
    fn the_document_lists_exactly_the_api_endpoints() {
        let document = document();
        let documented: BTreeSet<(String, String)> = operations(&document)
            .into_iter()
            .filter(|(_, path)| path.starts_with(shared_types::api::PREFIX))
            .collect();
        let listed: BTreeSet<(String, String)> = ENDPOINTS
            .iter()
            .map(|e| (e.method.to_owned(), e.path.to_owned()))
            .collect();
        assert_eq!(documented, listed);
    }

    /// Every `$ref` in the document names a schema under `components/schemas`.
    fn check_refs(value: &Value, schemas: &serde_json::Map<String, Value>, at: &str) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let name = reference
                        .strip_prefix("#/components/schemas/")
                        .unwrap_or_else(|| panic!("{at}: unexpected $ref {reference}"));
                    assert!(
                        schemas.contains_key(name),
                        "{at}: dangling $ref {reference}"
                    );
                }
                for (key, inner) in map {
                    check_refs(inner, schemas, &format!("{at}/{key}"));
                }
            }
            Value::Array(items) => {
                for (index, inner) in items.iter().enumerate() {
                    check_refs(inner, schemas, &format!("{at}/{index}"));
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_with_resolving_schemas() {
        let document = document();
        assert!(document.get("x-error").is_none());
        assert_eq!(document["openapi"], "3.1.0");
        assert_eq!(document["info"]["title"], "edgebrain");
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for name in [
            "ErrorBody",
            "ErrorCode",
            "DatasetInfo",
            "QueryResult",
            "SqlQuery",
            "JsonQuery",
            "Filter",
            "Thread",
            "SendMessage",
            "UiMessageChunk",
            "Run",
            "UsageReport",
        ] {
            assert!(schemas.contains_key(name), "schema {name} missing");
        }
        check_refs(&document, schemas, "#");
        let mut ids = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            let placeholders: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, operation) in item.as_object().unwrap() {
                let at = format!("{method} {path}");
                let id = operation["operationId"].as_str().unwrap();
                assert!(
                    ids.insert(id.to_owned()),
                    "{at}: duplicate operationId {id}"
                );
                let responses = operation["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|status| status.starts_with('2')),
                    "{at}: no success response"
                );
                assert!(responses.contains_key("4XX") && responses.contains_key("5XX"));
                // Every path placeholder is declared as a required path parameter.
                let declared: BTreeSet<&str> = operation["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|p| p["in"] == "path" && p["required"] == true)
                    .filter_map(|p| p["name"].as_str())
                    .collect();
                assert_eq!(declared, placeholders, "{at}: path parameters");
            }
        }
    }

    #[test]
    fn schemas_follow_the_serde_shapes() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        // Internally tagged chunks: the `type` tag is a property of every variant.
        let chunk = serde_json::to_string(&schemas["UiMessageChunk"]).unwrap();
        for tag in ["\"text-delta\"", "\"tool-input-available\"", "\"finish\""] {
            assert!(chunk.contains(tag), "UiMessageChunk lacks {tag}: {chunk}");
        }
        assert!(chunk.contains("toolCallId"), "camelCase variant fields");
        // Codes are the wire strings.
        let codes = serde_json::to_string(&schemas["ErrorCode"]).unwrap();
        for code in shared_types::error::ErrorCode::ALL {
            assert!(codes.contains(&format!("\"{}\"", code.as_str())), "{code}");
        }
        // Optional request fields are not required.
        let required = schemas["SendMessage"]["required"].as_array();
        assert!(required.is_none_or(|r| r.is_empty()), "{required:?}");
    }
}
