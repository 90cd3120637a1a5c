// Compile-only checks (tsc --strict --noEmit -p clients/ts): the generated types accept the
// documented wire examples, reject what the protocol forbids, and narrow by their tags.
import type {
  DatasetInfo,
  ErrorBody,
  ErrorCode,
  Filter,
  JsonQuery,
  QueryResult,
  SendMessage,
  SqlQuery,
  UiMessageChunk,
} from "../src/index";

export const error: ErrorBody = {
  error: { code: "not_found", message: "no such thread", request_id: "req-1" },
};

// @ts-expect-error: codes are a closed list of wire strings
export const badCode: ErrorCode = "teapot";

// Requests need only their required fields.
export const sql: SqlQuery = { sql: "SELECT 1" };
export const paged: SqlQuery = { sql: "SELECT 1", limit: 10, offset: 20, shape: "columns" };
export const send: SendMessage = { content: "Hello?" };

const filter: Filter = {
  op: "and",
  args: [
    { op: "gt", column: "quantity", value: 3 },
    { op: "not", arg: { op: "is_null", column: "promo" } },
  ],
};
export const query: JsonQuery = {
  dataset: "transactions",
  filter,
  group_by: ["store_id"],
  aggregates: [{ function: "sum", column: "quantity", alias: "units" }],
  sort: [{ column: "units", descending: true }],
  limit: 5,
};

export const result: QueryResult = {
  columns: [{ name: "store", dtype: "str" }],
  rows: [{ store: "a", units: 7, nested: { ok: [1, null, "x"] } }],
  page: { offset: 0, limit: 100, returned: 1, next_offset: null },
  elapsed_ms: 1.5,
  datasets: [{ id: "d1", name: "sales", version: 2 }],
};

export const dataset: DatasetInfo = {
  id: "d1", name: "sales", scope: "private", owned: true,
  columns: [{ name: "qty", dtype: "i64" }], row_count: 3, bytes: 812, pinned: false,
  created_at_ms: 1764000000000, updated_at_ms: 1764000000000, version: 1,
};

// Chunks narrow by `type`; camelCase fields as the AI SDK sends them.
export function text(chunk: UiMessageChunk): string {
  switch (chunk.type) {
    case "text-delta":
      return chunk.delta;
    case "tool-input-available":
      return `${chunk.toolName}(${JSON.stringify(chunk.input)})`;
    case "error":
      return chunk.errorText;
    default:
      return "";
  }
}

// @ts-expect-error: a text delta needs its delta
export const incomplete: UiMessageChunk = { type: "text-delta", id: "t" };

// The data parts of grounded answers narrow by `type` too; the finish chunk says why it ended.
export function grounded(chunk: UiMessageChunk): string {
  switch (chunk.type) {
    case "data-provenance":
      return `${chunk.data.tool}: ${chunk.data.sql ?? ""} over ${chunk.data.datasets.map((d) => `${d.name}@${d.version}`).join(",")}`;
    case "data-grounding":
      return chunk.data.status === "unverified" ? chunk.data.claims.filter((claim) => !claim.basis).map((claim) => claim.text).join(", ") : "";
    case "data-notice":
      return chunk.data.kind === "tools-unavailable" ? chunk.data.message : "";
    case "finish":
      return chunk.finishReason === "length" ? "cut off" : "";
    default:
      return "";
  }
}

// @ts-expect-error: finish reasons are the AI SDK's names
export const badFinish: UiMessageChunk = { type: "finish", finishReason: "max_tokens" };
