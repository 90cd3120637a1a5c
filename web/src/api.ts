// Calls to the edge (same origin). Anonymous visitors are identified by the edge session cookie
// (`__Host-eb_session`, HttpOnly: this code never sees it); visitors who signed in through the
// edge (`/auth/login`) by its sign-in cookies, equally out of reach; a bearer token from an
// identity provider, if one was handed over, is sent along and verified by the edge (JWT).
import type {
  AuthMe,
  DatasetDescription,
  DatasetInfo,
  DatasetList,
  ErrorBody,
  Message,
  MessagePage,
  QueryResult,
  RenameThread,
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
};

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

/**
 * Uploads a file as a new dataset (raw body, streamed by the edge to the brain). XMLHttpRequest
 * rather than fetch: only it reports upload progress.
 */
export function uploadDataset(
  file: File,
  name: string,
  onProgress: (loaded: number, total: number) => void,
): { done: Promise<DatasetInfo>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const done = new Promise<DatasetInfo>((resolve, reject) => {
    const contentType = uploadContentType(file);
    if (!contentType) {
      reject(new ApiError(0, "unsupported_media_type", "choose a .csv, .parquet, .ndjson or .json file", null));
      return;
    }
    xhr.open("POST", `/api/v1/datasets?name=${encodeURIComponent(name)}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader("content-type", contentType);
    xhr.setRequestHeader("accept", "application/json");
    for (const [key, value] of Object.entries(authHeaders())) xhr.setRequestHeader(key, value);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => {
      const response = new Response(xhr.responseText, {
        status: xhr.status,
        headers: { "x-request-id": xhr.getResponseHeader("x-request-id") ?? "" },
      });
      if (xhr.status === 201) {
        onProgress(file.size, file.size);
        resolve(JSON.parse(xhr.responseText) as DatasetInfo);
      } else {
        void failure(response).then(reject);
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload failed (network error)", null));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "the upload was cancelled", null));
    xhr.send(file);
  });
  return { done, abort: () => xhr.abort() };
}

export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    return error.requestId ? `${error.message} (${error.code}, request ${error.requestId})` : `${error.message} (${error.code})`;
  }
  return error instanceof Error ? error.message : String(error);
}
