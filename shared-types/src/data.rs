//! The data plane: datasets held by the brain, the memory they use, and queries over them.
//!
//! Endpoints (all under `/api/v1`, all scoped to the caller's identity):
//! - `GET /datasets` → [`DatasetList`]; `POST /datasets?name=…&format=…` (raw body or multipart)
//!   and `POST /datasets/import` ([`ImportDataset`]) → [`DatasetInfo`];
//!   `GET /datasets/{id}` → [`DatasetDescription`]; `PATCH /datasets/{id}` ([`RenameDataset`]);
//!   `PUT /datasets/{id}` (replace) and `POST /datasets/{id}/rows` (append), bodies as for
//!   creation; `DELETE /datasets/{id}`; `PUT|DELETE /datasets/{id}/pin`;
//!   `GET /datasets/memory` → [`MemoryStats`].
//! - `POST /queries/sql` ([`SqlQuery`]) and `POST /queries/json` ([`JsonQuery`]) → [`QueryResult`]
//!   (or CSV / Arrow IPC by `Accept`, see [`media`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Media types of query results, chosen by the request's `Accept` header.
pub mod media {
    /// [`super::QueryResult`] as JSON (the default).
    pub const JSON: &str = "application/json";
    /// RFC 4180 CSV with a header line; pagination in the `x-edgebrain-*` page headers.
    pub const CSV: &str = "text/csv";
    /// The Arrow IPC file format.
    pub const ARROW_FILE: &str = "application/vnd.apache.arrow.file";
}

/// Response headers carrying the page of a CSV or Arrow result (JSON has [`Page`] in the body).
pub mod page_headers {
    pub const OFFSET: &str = "x-edgebrain-page-offset";
    pub const RETURNED: &str = "x-edgebrain-page-returned";
    /// Present only when more rows follow.
    pub const NEXT_OFFSET: &str = "x-edgebrain-page-next-offset";
}

/// Who may read a dataset besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Only the owner.
    Private,
    /// Every caller may list, describe and query it; only its owner may change it (the built-in
    /// sample datasets are public and owned by the brain itself).
    Public,
}

/// Input file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    Csv,
    Parquet,
    /// Newline-delimited JSON: one object per line.
    Ndjson,
    /// One JSON array of objects.
    Json,
}

impl DataFormat {
    /// The format a file extension names: `csv`, `parquet`/`pq`, `ndjson`/`jsonl`, `json`, in
    /// any case.
    pub fn from_extension(extension: &str) -> Option<Self> {
        match extension.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "parquet" | "pq" => Some(Self::Parquet),
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// Column types a caller may force at ingestion instead of the inferred one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Bool,
    Int32,
    Int64,
    Float64,
    String,
    Date,
    /// Milliseconds, no time zone.
    Datetime,
}

/// One column of a dataset or a result: its name and polars dtype (as polars prints it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ColumnInfo {
    pub name: String,
    pub dtype: String,
}

/// A dataset as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetInfo {
    pub id: String,
    /// Unique per owner; the table name in SQL (`[A-Za-z_][A-Za-z0-9_]*`, at most 64 bytes).
    pub name: String,
    pub scope: Scope,
    /// Whether the caller owns it (and so may change it).
    pub owned: bool,
    pub columns: Vec<ColumnInfo>,
    pub row_count: u64,
    /// Size of its Parquet file on disk.
    pub bytes: u64,
    pub pinned: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Starts at 1; every replace, append or rename makes a new version. Answers name the
    /// versions they read ([`QueryResult::datasets`]).
    pub version: u64,
}

/// One dataset at one version: what an answer was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetRef {
    pub id: String,
    pub name: String,
    pub version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetList {
    pub datasets: Vec<DatasetInfo>,
}

/// Per-column statistics of a description. `min`/`max` are JSON values of the column's type
/// (absent for types without an order, or for an all-null column); `mean` only for numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ColumnStats {
    pub name: String,
    pub dtype: String,
    pub null_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
}

/// `GET /datasets/{id}`: the dataset, per-column statistics and its first rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetDescription {
    pub dataset: DatasetInfo,
    pub stats: Vec<ColumnStats>,
    pub sample_rows: Vec<Map<String, Value>>,
}

/// Query parameters of an upload (`POST /datasets`, `PUT /datasets/{id}`,
/// `POST /datasets/{id}/rows`). Multipart uploads may send the same as text fields named
/// `name`, `format`, `schema` and `scope` before the `file` field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct UploadParams {
    /// Required when creating.
    #[serde(default)]
    pub name: Option<String>,
    /// Default: from the `Content-Type` (`text/csv`, `application/vnd.apache.parquet`,
    /// `application/x-ndjson`, `application/json`).
    #[serde(default)]
    pub format: Option<DataFormat>,
    /// Type overrides as `column:type,column:type` (types as in [`ColumnType`]).
    #[serde(default)]
    pub schema: Option<String>,
    /// Sharing of a new dataset; default [`Scope::Private`]. Ignored by replace and append.
    #[serde(default)]
    pub scope: Option<Scope>,
}

/// `POST /datasets/import`: a file already on the brain's machine, inside its import directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct ImportDataset {
    pub name: String,
    /// Relative to the import directory (absolute paths are accepted if they lie inside it).
    pub path: String,
    /// Default: from the file extension.
    #[serde(default)]
    pub format: Option<DataFormat>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub schema: BTreeMap<String, ColumnType>,
    /// Default [`Scope::Private`].
    #[serde(default)]
    pub scope: Option<Scope>,
}

/// `PATCH /datasets/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenameDataset {
    pub name: String,
}

/// One loaded frame in [`MemoryStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadedFrame {
    pub id: String,
    pub bytes: u64,
    pub pinned: bool,
}

/// `GET /datasets/memory`: totals for the whole brain, details for the caller's own frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemoryStats {
    pub budget_bytes: u64,
    pub used_bytes: u64,
    pub loaded_frames: u64,
    pub loads: u64,
    pub evictions: u64,
    /// The caller's frames (and public ones) currently in memory.
    pub frames: Vec<LoadedFrame>,
}

/// Shape of a JSON result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResultShape {
    /// `rows`: one object per row.
    #[default]
    Rows,
    /// `data`: one array per column.
    Columns,
}

/// Which page of the result to return. `limit` defaults to, and may not exceed, the brain's
/// row limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct PageRequest {
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub offset: u64,
    #[serde(default)]
    pub limit: Option<u64>,
}

/// How a query's result comes back: which page of it, in which shape (the same fields in
/// every query, at its top level).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultRequest {
    #[serde(default, flatten)]
    pub page: PageRequest,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub shape: ResultShape,
}

/// `POST /queries/sql`: one read-only `SELECT` (CTEs, joins, window functions, aggregates) over
/// datasets visible to the caller, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SqlQuery {
    pub sql: String,
    #[serde(default, flatten)]
    pub result: ResultRequest,
}

/// `POST /queries/json`: a typed query for clients that must not write SQL. Applied in this
/// order: `filter`, then `group_by` + `aggregates` (or `select`), then `sort`, then the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct JsonQuery {
    /// Dataset name.
    pub dataset: String,
    /// Columns to return when not grouping; default all.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub select: Vec<String>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub group_by: Vec<String>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub aggregates: Vec<Aggregate>,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub sort: Vec<SortKey>,
    #[serde(default, flatten)]
    pub result: ResultRequest,
}

/// A boolean condition over columns: `{"op":"gt","column":"quantity","value":3}`,
/// `{"op":"and","args":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(no_recursion))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Filter {
    And { args: Vec<Filter> },
    Or { args: Vec<Filter> },
    Not { arg: Box<Filter> },
    Eq { column: String, value: Value },
    Ne { column: String, value: Value },
    Lt { column: String, value: Value },
    Le { column: String, value: Value },
    Gt { column: String, value: Value },
    Ge { column: String, value: Value },
    In { column: String, values: Vec<Value> },
    IsNull { column: String },
    IsNotNull { column: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AggregateFunction {
    Count,
    Sum,
    Mean,
    Min,
    Max,
    CountDistinct,
}

/// `{"function":"sum","column":"quantity","alias":"units"}`; the alias defaults to
/// `<function>_<column>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", ts(optional_fields = nullable))]
pub struct Aggregate {
    pub function: AggregateFunction,
    pub column: String,
    #[serde(default)]
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SortKey {
    pub column: String,
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub descending: bool,
}

/// Where this page sits in the whole result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
    pub returned: u64,
    /// The `offset` of the next page; `None` on the last page.
    pub next_offset: Option<u64>,
}

/// A query's answer as JSON. Exactly one of `rows` (shape `rows`) and `data` (shape `columns`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryResult {
    pub columns: Vec<ColumnInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Map<String, Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    pub page: Page,
    pub elapsed_ms: f64,
    /// The datasets the query read, at the versions it read, sorted by name.
    pub datasets: Vec<DatasetRef>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_in_their_documented_form() {
        let text = r#"{"op":"and","args":[{"op":"gt","column":"quantity","value":3},{"op":"in","column":"store_id","values":[1,2]},{"op":"not","arg":{"op":"is_null","column":"promo"}}]}"#;
        let filter: Filter = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&filter).unwrap(), text);
    }

    #[test]
    fn a_json_query_needs_only_a_dataset_and_flattens_its_page() {
        let query: JsonQuery =
            serde_json::from_str(r#"{"dataset":"sales","limit":10,"offset":20}"#).unwrap();
        assert_eq!(query.result.page.limit, Some(10));
        assert_eq!(query.result.page.offset, 20);
        assert!(query.group_by.is_empty() && query.filter.is_none());
        assert_eq!(query.result.shape, ResultShape::Rows);
    }

    #[test]
    fn unknown_filter_operators_are_rejected() {
        assert!(serde_json::from_str::<Filter>(r#"{"op":"like","column":"a","value":1}"#).is_err());
    }
}
