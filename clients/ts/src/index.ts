// HAND-WRITTEN STAND-IN for the generated `@edgebrain/types` package (webapp branch only).
// It holds only the wire types the web app uses, written the way ts-rs (feature serde-compat,
// serde-json-impl) renders them from shared-types: type names equal the Rust names, fields follow
// the serde renames, `Option<T>` is `T | null`, `Option<T>` with `skip_serializing_if` is
// `field?: T`, `serde_json::Value` is `JsonValue`. One deliberate choice: 64-bit integers
// (`u64`/`i64`) are `number` here (JSON numbers, what `JSON.parse` yields), where plain ts-rs says
// `bigint`; the generated package must do the same (`#[ts(type = "number")]` or
// TS_RS_LARGE_INT=number). At merge this file is replaced by the generated one.

export type JsonValue =
  | number
  | string
  | boolean
  | Array<JsonValue>
  | { [key in string]?: JsonValue }
  | null;

// shared_types::error
export type ErrorBody = { error: ErrorDetail };
export type ErrorDetail = { code: ErrorCode; message: string; request_id: string };
export type ErrorCode =
  | "bad_request" | "invalid_json" | "invalid_query" | "unauthorized" | "forbidden" | "not_found"
  | "method_not_allowed" | "conflict" | "payload_too_large" | "uri_too_long"
  | "unsupported_media_type" | "unprocessable" | "rate_limited" | "headers_too_large"
  | "internal" | "bad_gateway" | "unavailable" | "gateway_timeout" | "unknown";

// shared_types::chat
export type Usage = { input_tokens: number; output_tokens: number; cost_micro_usd: number };

export type Thread = {
  id: string;
  title: string;
  created_at_ms: number;
  updated_at_ms: number;
  /** Tokens spent on this thread's runs so far. */
  usage: Usage;
};

export type CreateThread = { title: string | null };

export type RenameThread = { title: string };

export type ThreadPage = { threads: Array<Thread>; next_cursor: string | null };

export type Role = "system" | "user" | "assistant";

export type Message = {
  id: string;
  role: Role;
  parts: Array<JsonValue>;
  created_at_ms: number;
  run_id: string | null;
};

export type MessagePage = { messages: Array<Message>; next_cursor: string | null };

// shared_types::data
export type Scope = "private" | "public";

export type DataFormat = "csv" | "parquet" | "ndjson" | "json";

export type ColumnInfo = { name: string; dtype: string };

export type DatasetInfo = {
  id: string;
  name: string;
  scope: Scope;
  owned: boolean;
  columns: Array<ColumnInfo>;
  row_count: number;
  bytes: number;
  pinned: boolean;
  created_at_ms: number;
  updated_at_ms: number;
};

export type DatasetList = { datasets: Array<DatasetInfo> };

export type ColumnStats = {
  name: string;
  dtype: string;
  null_count: number;
  min?: JsonValue;
  max?: JsonValue;
  mean?: number;
};

export type DatasetDescription = {
  dataset: DatasetInfo;
  stats: Array<ColumnStats>;
  sample_rows: Array<{ [key in string]?: JsonValue }>;
};

export type ResultShape = "rows" | "columns";

/** `SqlQuery` flattens `PageRequest` (`#[serde(flatten)]`), as ts-rs renders it. */
export type PageRequest = { offset: number; limit: number | null };
export type SqlQuery = { sql: string; shape: ResultShape } & PageRequest;

export type Page = { offset: number; limit: number; returned: number; next_offset: number | null };

export type QueryResult = {
  columns: Array<ColumnInfo>;
  rows?: Array<{ [key in string]?: JsonValue }>;
  data?: { [key in string]?: JsonValue };
  page: Page;
  elapsed_ms: number;
};

// shared_types::diag
export type WhoAmI = {
  user_id: string | null;
  session_id: string | null;
  scopes: Array<string>;
  owner: string;
};
