// Calls to the edge (same origin). Anonymous visitors are identified by the edge session cookie
// (`__Host-eb_session`, HttpOnly: this code never sees it); visitors who signed in through the
// edge (`/auth/login`) by its sign-in cookies, equally out of reach; a bearer token from an
// identity provider, if one was handed over, is sent along and verified by the edge (JWT).
import type {
  AgentList,
  AuthMe,
  DatasetDescription,
  DatasetInfo,
  DatasetList,
  Document,
  DocumentDetail,
  DocumentList,
  ErrorBody,
  Escalation,
  EscalationList,
  EscalationStatus,
  MemoryStats,
  Message,
  MessagePage,
  QueryResult,
  RenameThread,
  ResolveEscalation,
  Run,
  SqlQuery,
  Thread,
  ThreadPage,
  CreateThread,
  UsageReport,
  WhoAmI,
} from "@edgebrain/types";

const TOKEN_KEY = "edgebrain.bearer";

/** The identity provider's access token, if the visitor signed in (kept for this tab only). */
export function bearerToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setBearerToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * An identity provider redirecting back with `#access_token=…` (implicit/hybrid flows, or a
 * login page of your own) signs the visitor in; the token is removed from the address bar.
 */
export function takeTokenFromLocation(): void {
  const hash = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const token = hash.get("access_token");
  if (token) {
    setBearerToken(token);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

export function authHeaders(): Record<string, string> {
  const token = bearerToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | null,
  ) {
    super(message);
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  return typeof value === "object" && value !== null && "error" in value;
}

/** A non-2xx answer as an ApiError: the shared error body, else the status text. */
export async function failure(response: Response): Promise<ApiError> {
  const text = await response.text();
  try {
    const body: unknown = JSON.parse(text);
    if (isErrorBody(body)) {
      return new ApiError(response.status, body.error.code, body.error.message, body.error.request_id);
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(response.status, "unknown", text || response.statusText, response.headers.get("x-request-id"));
}

/** A GET whose answer is plain text (a document's extracted text). */
async function requestText(path: string): Promise<string> {
  const response = await fetch(path, { headers: { accept: "text/plain", ...authHeaders() }, credentials: "same-origin" });
  if (!response.ok) throw await failure(response);
  return response.text();
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json", ...authHeaders() };
  const init: RequestInit = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  // 204, and 202 of a cancel: no body.
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const api = {
  whoami: () => request<WhoAmI>("GET", "/api/v1/session"),
  /** The edge's sign-in: offered at all? who is signed in (by the edge's cookies)? */
  me: () => request<AuthMe>("GET", "/auth/me"),
  listThreads: () => request<ThreadPage>("GET", "/api/v1/threads?limit=100"),
  createThread: (body: CreateThread) => request<Thread>("POST", "/api/v1/threads", body),
  renameThread: (id: string, body: RenameThread) => request<Thread>("PATCH", `/api/v1/threads/${encodeURIComponent(id)}`, body),
  deleteThread: (id: string) => request<void>("DELETE", `/api/v1/threads/${encodeURIComponent(id)}`),
  async allMessages(id: string): Promise<Array<Message>> {
    const messages: Array<Message> = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
      const page: MessagePage = await request<MessagePage>(
        "GET",
        `/api/v1/threads/${encodeURIComponent(id)}/messages?limit=100${query}`,
      );
      messages.push(...page.messages);
      cursor = page.next_cursor;
    } while (cursor);
    return messages;
  },
  getRun: (id: string) => request<Run>("GET", `/api/v1/runs/${encodeURIComponent(id)}`),
  /** Asks the brain to stop a run; 409 (`conflict`) when it already finished. */
  cancelRun: (id: string) => request<void>("POST", `/api/v1/runs/${encodeURIComponent(id)}/cancel`),
  usage: () => request<UsageReport>("GET", "/api/v1/usage"),
  listDatasets: () => request<DatasetList>("GET", "/api/v1/datasets"),
  describeDataset: (id: string) => request<DatasetDescription>("GET", `/api/v1/datasets/${encodeURIComponent(id)}`),
  deleteDataset: (id: string) => request<void>("DELETE", `/api/v1/datasets/${encodeURIComponent(id)}`),
  sql: (query: SqlQuery) => request<QueryResult>("POST", "/api/v1/queries/sql", query),
  /** Totals for the whole brain; the caller's and public frames in memory (an operator's: all). */
  memory: () => request<MemoryStats>("GET", "/api/v1/datasets/memory"),
  listDocuments: () => request<DocumentList>("GET", "/api/v1/documents"),
  getDocument: (id: string) => request<DocumentDetail>("GET", `/api/v1/documents/${encodeURIComponent(id)}`),
  /** The extracted text every chunk offset (in Unicode scalar values) refers to. */
  documentText: (id: string) => requestText(`/api/v1/documents/${encodeURIComponent(id)}/text`),
  deleteDocument: (id: string) => request<void>("DELETE", `/api/v1/documents/${encodeURIComponent(id)}`),
  listAgents: () => request<AgentList>("GET", "/api/v1/agents"),
  /** Operators only (403 otherwise): newest first, across owners. */
  listEscalations: (status: EscalationStatus | null) =>
    request<EscalationList>("GET", `/api/v1/escalations?limit=100${status ? `&status=${status}` : ""}`),
  resolveEscalation: (id: string, body: ResolveEscalation) =>
    request<Escalation>("POST", `/api/v1/escalations/${encodeURIComponent(id)}/resolve`, body),
  /** Operators only: the escalated conversation, whoever owns it (its first 100 messages). */
  escalationMessages: (id: string) =>
    request<MessagePage>("GET", `/api/v1/escalations/${encodeURIComponent(id)}/messages?limit=100`),
};

/** The scope that makes a signed-in user an operator (shared_types::agent::OPERATOR_SCOPE). */
export const OPERATOR_SCOPE = "edgebrain:operator";

/** Whether the brain will let this caller at the operators' endpoints (`Identity::require_operator`). */
export function isOperator(who: WhoAmI | null): boolean {
  return who !== null && who.user_id !== null && who.scopes.includes(OPERATOR_SCOPE);
}

const FORMATS: Record<string, string> = {
  csv: "text/csv",
  parquet: "application/vnd.apache.parquet",
  ndjson: "application/x-ndjson",
  jsonl: "application/x-ndjson",
  json: "application/json",
};

/** The media type the brain reads the upload's format from, by file extension. */
export function uploadContentType(file: File): string | null {
  const extension = file.name.toLowerCase().split(".").pop() ?? "";
  return FORMATS[extension] ?? null;
}

/** A running upload: its answer, and a way to cancel it. */
export type Upload<T> = { done: Promise<T>; abort: () => void };

/**
 * POSTs a file as the raw body (streamed by the edge to the brain). XMLHttpRequest rather than
 * fetch: only it reports upload progress. Errors are the shared error shape (`ApiError`).
 */
function uploadFile<T>(url: string, file: File, contentType: string, onProgress: (loaded: number, total: number) => void): Upload<T> {
  const xhr = new XMLHttpRequest();
  const done = new Promise<T>((resolve, reject) => {
    xhr.open("POST", url);
    xhr.withCredentials = true;
    xhr.setRequestHeader("content-type", contentType);
    xhr.setRequestHeader("accept", "application/json");
    for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => {
      if (xhr.status === 201) {
        onProgress(file.size, file.size);
        resolve(JSON.parse(xhr.responseText) as T);
        return;
      }
      const response = new Response(xhr.responseText, {
        status: xhr.status,
        headers: { "x-request-id": xhr.getResponseHeader("x-request-id") ?? "" },
      });
      void failure(response).then(reject);
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload failed (network error)", null));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "the upload was cancelled", null));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

function refused<T>(message: string): Upload<T> {
  return { done: Promise.reject(new ApiError(0, "unsupported_media_type", message, null)), abort: () => {} };
}

/** Uploads a file as a new dataset. */
export function uploadDataset(file: File, name: string, onProgress: (loaded: number, total: number) => void): Upload<DatasetInfo> {
  const contentType = uploadContentType(file);
  if (!contentType) return refused("choose a .csv, .parquet, .ndjson or .json file");
  return uploadFile<DatasetInfo>(`/api/v1/datasets?name=${encodeURIComponent(name)}`, file, contentType, onProgress);
}

/** Document media types by extension (shared_types::knowledge::media::of_file_name). */
const DOCUMENT_TYPES: Record<string, string> = {
  txt: "text/plain",
  text: "text/plain",
  md: "text/markdown",
  markdown: "text/markdown",
  html: "text/html",
  htm: "text/html",
  xhtml: "text/html",
  pdf: "application/pdf",
};

/** The extensions a document may have, for the file picker. */
export const DOCUMENT_EXTENSIONS = Object.keys(DOCUMENT_TYPES).map((extension) => `.${extension}`);

export function documentContentType(file: File): string | null {
  const extension = file.name.toLowerCase().split(".").pop() ?? "";
  return file.name.includes(".") ? (DOCUMENT_TYPES[extension] ?? null) : null;
}

/** Uploads a file to the knowledge base (the brain extracts, chunks and embeds it before answering 201). */
export function uploadDocument(file: File, onProgress: (loaded: number, total: number) => void): Upload<Document> {
  const contentType = documentContentType(file);
  if (!contentType) return refused(`"${file.name}": choose a .txt, .md, .html or .pdf file`);
  return uploadFile<Document>(`/api/v1/documents?name=${encodeURIComponent(file.name)}`, file, contentType, onProgress);
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    return error.requestId ? `${error.message} (${error.code}, request ${error.requestId})` : `${error.message} (${error.code})`;
  }
  return error instanceof Error ? error.message : String(error);
}
