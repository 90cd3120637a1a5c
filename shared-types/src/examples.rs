//! One example per public wire type, in its canonical JSON form: each must deserialize into its
//! type and serialize back to exactly the same JSON (a table; add a row with every new type).
//! The examples double as documentation of what each type looks like on the wire.

#![allow(clippy::unwrap_used, clippy::panic)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::agent::*;
use crate::chat::*;
use crate::data::*;
use crate::diag::*;
use crate::error::*;
use crate::health::*;
use crate::knowledge::*;

fn round_trip<T: Serialize + DeserializeOwned>(name: &str, example: Value) {
    let typed: T = serde_json::from_value(example.clone())
        .unwrap_or_else(|error| panic!("{name}: the example does not deserialize: {error}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, example, "{name}: the example does not round-trip");
}

/// A request that omits every optional field deserializes with the defaults.
fn minimal<T: DeserializeOwned>(name: &str, example: Value) -> T {
    serde_json::from_value(example)
        .unwrap_or_else(|error| panic!("{name}: the minimal example does not deserialize: {error}"))
}

fn dataset_info() -> Value {
    json!({
        "id": "0b9f1c9e-3a43-4bb1-9d0c-5d2f0a1b2c3d", "name": "sales", "scope": "private",
        "owned": true, "columns": [{"name": "store", "dtype": "str"}, {"name": "qty", "dtype": "i64"}],
        "row_count": 3, "bytes": 812, "pinned": false,
        "created_at_ms": 1_764_000_000_000_i64, "updated_at_ms": 1_764_000_000_000_i64,
        "version": 1
    })
}

fn run() -> Value {
    json!({
        "id": "r1", "thread_id": "t1", "state": "succeeded", "model": "local",
        "provider": "local", "provider_model": "local", "error": null,
        "usage": {"input_tokens": 40, "output_tokens": 12, "cost_micro_usd": 0},
        "created_at_ms": 1_764_000_000_000_i64, "finished_at_ms": 1_764_000_001_000_i64,
        "finish_reason": "length", "grounding": "verified"
    })
}

fn message() -> Value {
    json!({
        "id": "m2", "role": "assistant", "parts": [{"type": "text", "text": "Hello!"}],
        "created_at_ms": 1_764_000_001_000_i64, "run_id": "r1",
        "metadata": {"runId": "r1", "state": "succeeded", "usage": {"inputTokens": 40, "outputTokens": 12},
                     "steps": 1, "finishReason": "stop"}
    })
}

fn provenance() -> Value {
    json!({"toolCallId": "call_1", "tool": "sql",
           "sql": "SELECT store_id, SUM(quantity) AS units FROM transactions GROUP BY store_id",
           "datasets": [{"id": "0b9f1c9e-3a43-4bb1-9d0c-5d2f0a1b2c3d", "name": "transactions", "version": 3}],
           "rowCount": 50, "rowCountExact": true, "shownRows": 20, "truncated": true})
}

fn grounding_report() -> Value {
    json!({"status": "unverified", "toolCalls": 1, "claims": [
        {"text": "150,561", "value": 150_561.0, "basis": "tool-output"},
        {"text": "12%", "value": 12.0, "basis": "percentage"},
        {"text": "470.71", "value": 470.71}],
        "unaskedConditions": ["region = 'north'"]})
}

fn thread() -> Value {
    json!({
        "id": "t1", "title": "Sales questions", "created_at_ms": 1_764_000_000_000_i64,
        "updated_at_ms": 1_764_000_001_000_i64,
        "usage": {"input_tokens": 40, "output_tokens": 12, "cost_micro_usd": 0}
    })
}

#[test]
fn every_public_type_round_trips_its_example() {
    // error
    round_trip::<ErrorBody>(
        "ErrorBody",
        json!({"error": {"code": "not_found", "message": "no such thread", "request_id": "req-1"}}),
    );
    // health
    round_trip::<HealthReport>(
        "HealthReport",
        json!({"status": "ok", "service": "edge", "version": "0.1.0"}),
    );
    round_trip::<ReadinessReport>(
        "ReadinessReport",
        json!({"status": "unavailable", "service": "brain", "version": "0.1.0", "checks": [
            {"name": "database", "status": "unavailable", "latency_ms": 2000, "detail": "postgres",
             "error": "no answer within 2000 ms"}]}),
    );
    // diag
    round_trip::<StreamParams>(
        "StreamParams",
        json!({"events": 3, "interval_ms": 100, "break_after": 2}),
    );
    round_trip::<StreamTick>(
        "StreamTick",
        json!({"seq": 1, "of": 3, "sent_at_ms": 1_764_000_000_000_i64}),
    );
    round_trip::<WhoAmI>(
        "WhoAmI",
        json!({"user_id": null, "session_id": "0123456789abcdef0123456789abcdef", "scopes": [],
               "owner": "session:0123456789abcdef0123456789abcdef",
               "budget_key": "network:2001:db8:1:2::/64"}),
    );
    round_trip::<EchoReport>(
        "EchoReport",
        json!({"method": "POST", "path": "/api/v1/diag/echo", "query": "a=1",
               "headers": [["content-type", "application/json"], ["authorization", "[redacted]"]],
               "body_bytes": 9, "body": {"x": [1]}, "request_id": "req-2"}),
    );
    // data
    round_trip::<DatasetInfo>("DatasetInfo", dataset_info());
    round_trip::<DatasetList>("DatasetList", json!({"datasets": [dataset_info()]}));
    round_trip::<DatasetDescription>(
        "DatasetDescription",
        json!({"dataset": dataset_info(), "stats": [
                {"name": "store", "dtype": "str", "null_count": 0, "min": "a", "max": "c"},
                {"name": "qty", "dtype": "i64", "null_count": 1, "min": 1, "max": 5, "mean": 3.0}],
               "sample_rows": [{"store": "a", "qty": 1}, {"store": "c", "qty": null}]}),
    );
    round_trip::<UploadParams>(
        "UploadParams",
        json!({"name": "sales", "format": "csv", "schema": "qty:int64,day:date", "scope": "public"}),
    );
    round_trip::<ImportDataset>(
        "ImportDataset",
        json!({"name": "big", "path": "exports/big.parquet", "format": "parquet",
               "schema": {"day": "date", "flag": "bool"}, "scope": "private"}),
    );
    round_trip::<RenameDataset>("RenameDataset", json!({"name": "sales_2025"}));
    round_trip::<MemoryStats>(
        "MemoryStats",
        json!({"budget_bytes": 1_073_741_824_u64, "used_bytes": 4096, "loaded_frames": 1,
               "loads": 3, "evictions": 2,
               "frames": [{"id": "0b9f1c9e-3a43-4bb1-9d0c-5d2f0a1b2c3d", "bytes": 4096, "pinned": true}]}),
    );
    round_trip::<SqlQuery>(
        "SqlQuery",
        json!({"sql": "SELECT store, SUM(qty) AS units FROM sales GROUP BY store",
               "offset": 0, "limit": 100, "shape": "columns"}),
    );
    round_trip::<JsonQuery>(
        "JsonQuery",
        json!({"dataset": "transactions", "select": [],
               "filter": {"op": "and", "args": [{"op": "gt", "column": "quantity", "value": 3},
                                                  {"op": "is_not_null", "column": "promo"}]},
               "group_by": ["store_id"],
               "aggregates": [{"function": "sum", "column": "quantity", "alias": "units"},
                              {"function": "count_distinct", "column": "product_id", "alias": null}],
               "sort": [{"column": "units", "descending": true}],
               "offset": 0, "limit": 5, "shape": "rows"}),
    );
    round_trip::<QueryResult>(
        "QueryResult (rows)",
        json!({"columns": [{"name": "store", "dtype": "str"}, {"name": "units", "dtype": "i64"}],
               "rows": [{"store": "a", "units": 7}],
               "page": {"offset": 0, "limit": 100, "returned": 1, "next_offset": null},
               "elapsed_ms": 1.5,
               "datasets": [{"id": "0b9f1c9e-3a43-4bb1-9d0c-5d2f0a1b2c3d", "name": "sales",
                             "version": 3}]}),
    );
    round_trip::<QueryResult>(
        "QueryResult (columns)",
        json!({"columns": [{"name": "store", "dtype": "str"}],
               "data": {"store": ["a", "b"]},
               "page": {"offset": 0, "limit": 2, "returned": 2, "next_offset": 2},
               "elapsed_ms": 0.25,
               "datasets": [{"id": "0b9f1c9e-3a43-4bb1-9d0c-5d2f0a1b2c3d", "name": "sales",
                             "version": 1}]}),
    );
    for column_type in [
        "bool", "int32", "int64", "float64", "string", "date", "datetime",
    ] {
        round_trip::<ColumnType>("ColumnType", json!(column_type));
    }
    // chat
    round_trip::<Thread>("Thread", thread());
    round_trip::<CreateThread>("CreateThread", json!({"title": "Sales questions"}));
    round_trip::<RenameThread>("RenameThread", json!({"title": "Renamed"}));
    round_trip::<ThreadPage>(
        "ThreadPage",
        json!({"threads": [thread()], "next_cursor": "1764000001000.t1"}),
    );
    round_trip::<PageParams>(
        "PageParams",
        json!({"limit": 20, "cursor": "1764000001000.t1"}),
    );
    round_trip::<Message>("Message", message());
    round_trip::<MessagePage>(
        "MessagePage",
        json!({"messages": [message()], "next_cursor": null}),
    );
    round_trip::<SendMessage>(
        "SendMessage",
        json!({"content": "How many units per store?", "messages": null, "model": "local",
               "stream": true, "json": false, "instructions": "Be brief.",
               "context": ["stores: 50"], "max_output_tokens": 64,
               "replace_from": "0b6c1d2e-5f60-4a1b-9c2d-3e4f5a6b7c8d",
               "trigger": "submit-message", "messageId": null}),
    );
    round_trip::<ChatReply>("ChatReply", json!({"run": run(), "message": message()}));
    round_trip::<Run>("Run", run());
    round_trip::<UsageReport>(
        "UsageReport",
        json!({"owner": "user:alice", "runs": 2,
               "usage": {"input_tokens": 80, "output_tokens": 24, "cost_micro_usd": 3},
               "budget_tokens": null,
               "grounding": {"verified": 1, "unverified": 1, "no_claims": 0}}),
    );
    round_trip::<crate::account::SessionClaim>(
        "SessionClaim",
        json!({"first_claim": true, "threads": 2, "runs": 3, "datasets": 1, "documents": 0,
               "escalations": 0,
               "renamed_datasets": [{"id": "d1", "from": "sales", "to": "sales_2"}]}),
    );
    round_trip::<RunEventsParams>("RunEventsParams", json!({"after": 4}));
    round_trip::<RunMessageMetadata>(
        "RunMessageMetadata (start)",
        json!({"runId": "r1", "threadId": "t1", "model": "local"}),
    );
    round_trip::<RunMessageMetadata>(
        "RunMessageMetadata (finish)",
        json!({"runId": "r1", "state": "succeeded", "usage": {"inputTokens": 40, "outputTokens": 12},
               "steps": 2, "refusal": "blocked phrase", "finishReason": "length"}),
    );
    round_trip::<Provenance>("Provenance", provenance());
    round_trip::<GroundingReport>("GroundingReport", grounding_report());
    round_trip::<Notice>(
        "Notice",
        json!({"kind": "tools-unavailable", "message": "The model `fast` cannot call tools."}),
    );
    for chunk in [
        json!({"type": "start", "messageId": "m2", "messageMetadata": {"runId": "r1"}}),
        json!({"type": "start-step"}),
        json!({"type": "text-start", "id": "text-1"}),
        json!({"type": "text-delta", "id": "text-1", "delta": "Hel"}),
        json!({"type": "text-end", "id": "text-1"}),
        json!({"type": "tool-input-start", "toolCallId": "c1", "toolName": "add", "dynamic": true}),
        json!({"type": "tool-input-delta", "toolCallId": "c1", "inputTextDelta": "{\"a\":"}),
        json!({"type": "tool-input-available", "toolCallId": "c1", "toolName": "add", "input": {"a": 1, "b": 2}}),
        json!({"type": "tool-output-available", "toolCallId": "c1", "output": {"sum": 3}, "dynamic": true}),
        json!({"type": "tool-output-error", "toolCallId": "c1", "errorText": "bad input"}),
        json!({"type": "error", "errorText": "provider local failed"}),
        json!({"type": "message-metadata", "messageMetadata": {"runId": "r1"}}),
        json!({"type": "finish-step"}),
        json!({"type": "finish", "messageMetadata": {"runId": "r1", "state": "succeeded"}}),
        json!({"type": "finish", "finishReason": "length", "messageMetadata": {"runId": "r1", "finishReason": "length"}}),
        json!({"type": "data-provenance", "id": "call_1", "data": provenance()}),
        json!({"type": "data-grounding", "id": "grounding", "data": grounding_report()}),
        json!({"type": "data-notice", "id": "tools-unavailable",
               "data": {"kind": "tools-unavailable", "message": "The model `fast` cannot call tools."}}),
        json!({"type": "abort"}),
        json!({"type": "source-document", "sourceId": "d1:0", "mediaType": "text/plain",
               "title": "Returns policy",
               "providerMetadata": {"edgebrain": {"documentId": "d1", "chunkIndex": 0, "start": 0, "end": 120}}}),
    ] {
        round_trip::<UiMessageChunk>("UiMessageChunk", chunk);
    }
    // agent
    round_trip::<AgentList>(
        "AgentList",
        json!({"agents": [{"name": "retail-coach", "description": "Answers questions about the sample retail data",
                           "model": null, "tools": ["list_datasets", "sql", "chart"], "default": true}],
               "default_agent": "retail-coach"}),
    );
    round_trip::<ChartToolOutput>(
        "ChartToolOutput",
        json!({"spec": {"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                        "title": "Units per store", "mark": "bar",
                        "encoding": {"x": {"field": "store_id", "type": "nominal"},
                                     "y": {"field": "units", "type": "quantitative"}},
                        "data": {"values": [{"store_id": 1, "units": 40}]}},
               "rows": 1, "truncated": false}),
    );
    round_trip::<SqlToolOutput>(
        "SqlToolOutput",
        json!({"columns": ["store_id", "units"], "rows": [{"store_id": 1, "units": 40}],
               "total_rows": 50, "total_rows_exact": true, "shown_rows": 1, "truncated": true,
               "note": "50 rows in all; the first 1 shown"}),
    );
    round_trip::<KnowledgeSearchOutput>(
        "KnowledgeSearchOutput",
        json!({"hits": [{"document_id": "d1", "document_name": "returns.md", "chunk_index": 0,
                         "start": 0, "end": 120, "text": "Returns are accepted…", "score": 0.032}]}),
    );
    round_trip::<EscalationReceipt>(
        "EscalationReceipt",
        json!({"escalation_id": "e1", "status": "open", "urgency": "high"}),
    );
    round_trip::<EscalationList>(
        "EscalationList",
        json!({"escalations": [{"id": "e1", "owner": "session:s1", "thread_id": "t1", "run_id": "r1",
                                "agent": "retail-coach", "reason": "refund dispute", "urgency": "high",
                                "status": "resolved", "created_at_ms": 1_764_000_000_000_i64,
                                "resolved_at_ms": 1_764_000_100_000_i64, "resolved_by": "user:op",
                                "resolution": "called the customer"}]}),
    );
    round_trip::<EscalationFilter>("EscalationFilter", json!({"status": "open", "limit": 10}));
    round_trip::<ResolveEscalation>("ResolveEscalation", json!({"resolution": "done"}));
    // knowledge
    let document = json!({"id": "d1", "name": "returns.md", "media_type": "text/markdown",
                          "bytes": 2048, "chars": 2011, "chunk_count": 3,
                          "embedder": "all-MiniLM-L6-v2", "created_at_ms": 1_764_000_000_000_i64});
    round_trip::<UploadDocumentParams>("UploadDocumentParams", json!({"name": "returns.md"}));
    round_trip::<DocumentList>("DocumentList", json!({"documents": [document.clone()]}));
    round_trip::<DocumentDetail>(
        "DocumentDetail",
        json!({"document": document, "chunks": [{"index": 0, "start": 0, "end": 12, "text": "# Returns…"}]}),
    );
    round_trip::<SearchRequest>(
        "SearchRequest",
        json!({"query": "refund window", "limit": 5}),
    );
    round_trip::<SearchResponse>(
        "SearchResponse",
        json!({"hits": [{"document_id": "d1", "document_name": "returns.md", "chunk_index": 0,
                         "start": 0, "end": 12, "text": "# Returns…", "score": 0.0328,
                         "bm25_rank": 1, "vector_rank": 2, "bm25_score": 3.1, "vector_score": 0.61}]}),
    );
}

#[test]
fn requests_need_only_their_required_fields() {
    let params: StreamParams = minimal("StreamParams", json!({}));
    assert_eq!(params, StreamParams::default());
    let upload: UploadParams = minimal("UploadParams", json!({}));
    assert_eq!(upload, UploadParams::default());
    let import: ImportDataset = minimal("ImportDataset", json!({"name": "n", "path": "p.csv"}));
    assert!(import.schema.is_empty() && import.format.is_none() && import.scope.is_none());
    let sql: SqlQuery = minimal("SqlQuery", json!({"sql": "SELECT 1"}));
    assert_eq!(
        (sql.result.page, sql.result.shape),
        (PageRequest::default(), ResultShape::Rows)
    );
    let query: JsonQuery = minimal("JsonQuery", json!({"dataset": "d"}));
    assert!(query.select.is_empty() && query.sort.is_empty() && query.filter.is_none());
    let sort: SortKey = minimal("SortKey", json!({"column": "c"}));
    assert!(!sort.descending);
    let create: CreateThread = minimal("CreateThread", json!({}));
    assert_eq!(create, CreateThread::default());
    let send: SendMessage = minimal("SendMessage", json!({"content": "hi"}));
    assert_eq!(send.stream, None);
    let page: PageParams = minimal("PageParams", json!({}));
    assert_eq!(page, PageParams::default());
    let events: RunEventsParams = minimal("RunEventsParams", json!({}));
    assert_eq!(events.after, None);
    let metadata: RunMessageMetadata = minimal("RunMessageMetadata", json!({"extra": 1}));
    assert_eq!(metadata, RunMessageMetadata::default());
}
