//! Configuration: every setting is a command-line flag and an environment variable.
//!
//! Tests build a [`Config`] without touching the process arguments through
//! [`Config::from_args`] and then overwrite the public fields they care about.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

use crate::store::{DatabaseConfig, DatabaseUrl, DatabaseUrlError};
use crate::telemetry::LogFormat;

/// `--drain-announce-ms` of a brain with a `--brain-id`: long enough for edges under steady
/// traffic to see a "draining" answer before the port closes.
pub const DEFAULT_FLEET_DRAIN_ANNOUNCE_MS: u64 = 3_000;

/// Which polars engine executes queries (`--query-engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueryEngine {
    /// Streaming for plans whose work is bounded by their input (no join, no explode), the
    /// cancellable in-memory engine for the rest.
    Auto,
    InMemory,
    Streaming,
}

/// Name of the default SQLite database file inside the data directory.
pub const SQLITE_FILE_NAME: &str = "brain.db";

/// The brain's settings. `--help` lists every flag with its environment variable and default.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "brain",
    version,
    about = "edgebrain's native service (the brain behind the edge)"
)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerFlags,
    #[command(flatten)]
    pub database: DatabaseFlags,
    #[command(flatten)]
    pub edge: EdgeTrustFlags,
    #[command(flatten)]
    pub data: DataFlags,
    #[command(flatten)]
    pub chat: ChatFlags,
    #[command(flatten)]
    pub knowledge: KnowledgeFlags,
}

/// The HTTP server: where it listens, its data directory, request bodies, shutdown, diagnostics and logs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerFlags {
    /// Socket address to listen on. Port 0 picks a free port; the real address is logged on the
    /// `listening` line.
    #[arg(long, env = "BRAIN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for local state, created (recursively) on first start. Holds the default SQLite
    /// database file `brain.db`.
    #[arg(long, env = "BRAIN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Largest accepted request body in bytes; larger bodies are answered with 413.
    #[arg(long, env = "BRAIN_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,

    /// When a request is answered before its body was read to the end (a 413, say), the brain
    /// keeps reading and discarding up to this many bytes so the client receives the answer
    /// instead of a connection reset. Beyond it the connection is closed.
    #[arg(long, env = "BRAIN_DRAIN_MAX_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub drain_max_bytes: u64,

    /// Time limit of that background drain, in milliseconds.
    #[arg(long, env = "BRAIN_DRAIN_MAX_MS", default_value_t = 10_000)]
    pub drain_max_ms: u64,

    /// Who may call the deployment diagnostics (`/api/v1/diag/*`): `operators` (signed-in
    /// users with the `edgebrain:operator` scope; everyone else 403), `open` (any caller the
    /// edge signed for: for deployment checks and test rigs), or `off` (404).
    #[arg(long, env = "BRAIN_DIAG", value_enum, default_value_t = DiagAccess::Operators)]
    pub diag: DiagAccess,

    /// Upper bound of `events` accepted by `/api/v1/diag/stream`.
    #[arg(long, env = "BRAIN_DIAG_MAX_EVENTS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub diag_max_events: u32,

    /// Upper bound of `interval_ms` accepted by `/api/v1/diag/stream`.
    #[arg(long, env = "BRAIN_DIAG_MAX_INTERVAL_MS", default_value_t = 60_000)]
    pub diag_max_interval_ms: u64,

    /// After SIGTERM/SIGINT the brain stops accepting connections and lets in-flight requests
    /// (including SSE streams) finish for at most this many seconds, then exits.
    #[arg(long, env = "BRAIN_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// After SIGTERM/SIGINT, the least time in milliseconds the brain keeps its listener open,
    /// answering new work "draining" (503 with `x-edgebrain-draining: 1`), so that the edges
    /// sending it work learn that it is leaving and pass it over — rather than finding its port
    /// closed, where a write that fails to connect cannot safely be sent to another brain.
    /// Within the grace period. Default: 3000 with `--brain-id` (a member of a fleet), 0
    /// without (no other brain could take the work).
    #[arg(long, env = "BRAIN_DRAIN_ANNOUNCE_MS")]
    pub drain_announce_ms: Option<u64>,

    /// Log line format on stdout. The filter comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "BRAIN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The database the brain persists to.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Database")]
pub struct DatabaseFlags {
    /// Database URL. `postgres://…` or `postgresql://…` selects PostgreSQL, `sqlite:…` SQLite.
    /// Default: the SQLite file `<data-dir>/brain.db`, created if missing.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,

    /// Maximum number of pooled database connections.
    #[arg(long, env = "BRAIN_DB_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,

    /// Database connections kept open while idle. Default: `--db-max-connections` — a
    /// fixed-size pool, opened in the background at start, so a burst of queries (a run's
    /// followers all reading when its events are written) never waits for new connections
    /// (≈ 100 ms each to PostgreSQL over TLS here); `0` lets idle connections close.
    #[arg(long, env = "BRAIN_DB_MIN_CONNECTIONS")]
    pub db_min_connections: Option<u32>,

    /// How long to wait for a database connection (at startup and per request), in milliseconds.
    #[arg(long, env = "BRAIN_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5000)]
    pub db_acquire_timeout_ms: u64,
}

/// How the brain trusts the edge: signing secrets, the authorities signatures are bound to, replay protection; and the sign-in tokens the edge renews here.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Edge trust")]
pub struct EdgeTrustFlags {
    /// Secrets the edge signs requests with (HMAC-SHA256), comma-separated, each at least 32
    /// bytes. Every `/api/*` request must carry an `x-edgebrain-signature` that verifies under
    /// one of them; list the old and the new secret together while rotating. Required unless
    /// `--insecure-local` is given.
    #[arg(long, env = "BRAIN_EDGE_SECRETS", hide_env_values = true)]
    pub edge_secrets: Option<EdgeSecrets>,

    /// This brain's authority as the edge addresses it: `host[:port]` of its URL in the edge's
    /// `BRAIN_URLS` (or `BRAIN_URL`), or that URL itself; several, comma- or space-separated,
    /// when the brain has several names. Edge signatures are bound to the brain they were made
    /// for, and one bound to any other authority is refused: a request captured on its way to
    /// another brain of the fleet cannot be replayed here (each brain only remembers its own
    /// nonces). Unset: signatures bound to any authority are accepted, and so are those of
    /// edges older than the binding — a fleet of one keeps working unchanged; the brain warns
    /// at start. Set it whenever more than one brain shares the signing secrets.
    #[arg(long, env = "BRAIN_EDGE_AUTHORITY")]
    pub edge_authority: Option<EdgeAuthorities>,

    /// How far (seconds, either way) an edge signature's timestamp may be from the brain's clock.
    /// Nonces are remembered this long to refuse replays.
    #[arg(
        long,
        env = "BRAIN_EDGE_SIGNATURE_TOLERANCE_SECS",
        default_value_t = 300
    )]
    pub edge_signature_tolerance_secs: u64,

    /// Most nonces remembered for replay protection. When it is full of unexpired nonces, new
    /// signed requests are answered 503 rather than let through unchecked.
    #[arg(long, env = "BRAIN_EDGE_REPLAY_CACHE_ENTRIES", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub edge_replay_cache_entries: u64,

    /// Largest request body the brain reads into memory to check the edge's body digest. The
    /// edge hashes bodies up to its `SIGN_BODY_MAX_BYTES` (same default) and streams larger ones
    /// unhashed; each route's own body limit still applies after the check.
    #[arg(
        long,
        env = "BRAIN_EDGE_SIGNED_BODY_MAX_BYTES",
        default_value_t = 1_048_576
    )]
    pub edge_signed_body_max_bytes: usize,

    /// Run WITHOUT verifying edge signatures: identity headers are trusted as sent. Only for a
    /// brain reachable from nothing but the local machine (development); never in production.
    #[arg(long, env = "BRAIN_INSECURE_LOCAL", default_value_t = false)]
    pub insecure_local: bool,

    /// How long after a refresh token was exchanged it may still be presented without revoking
    /// its sign-in (the other requests a browser sent with it meanwhile), in milliseconds.
    /// Longer widens the window a stolen token is useful in.
    #[arg(long, env = "BRAIN_REFRESH_REUSE_LEEWAY_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(0..=300_000))]
    pub refresh_reuse_leeway_ms: u64,
}

/// Datasets and queries: the object store, memory, ingest limits and the query engine.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Datasets and queries")]
pub struct DataFlags {
    /// Where datasets' Parquet objects live: `file:///path` (a local or shared folder) or
    /// `s3://bucket[/prefix]` (AWS S3, Cloudflare R2, MinIO, any S3-compatible service; set up
    /// by the usual `AWS_*` environment variables: `AWS_ENDPOINT_URL`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP`).
    /// Default: the data directory (`<data-dir>/datasets/…`). Every brain of a fleet needs the
    /// same store and database. At start the brain writes, reads back and deletes a small object
    /// and refuses to start if that fails.
    #[arg(long, env = "BRAIN_OBJECT_STORE_URL")]
    pub object_store_url: Option<String>,

    /// Extra settings of the S3 object store (`object_store` crate keys such as
    /// `aws_endpoint`, `aws_access_key_id`, `aws_allow_http`), applied over the environment.
    /// Not a flag: for programs that embed the brain as a library (the tests use it).
    #[arg(skip)]
    pub object_store_options: ObjectStoreOptions,

    /// Memory budget of the loaded datasets (DataFrames) in bytes. Past it, the least recently
    /// used unpinned frames are dropped from memory (they reload from their Parquet object on next
    /// use). A dataset larger than the whole budget is never loaded: its queries scan its
    /// Parquet file on polars' streaming engine.
    #[arg(long, env = "BRAIN_DATASETS_MEMORY_BUDGET_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    pub datasets_memory_budget_bytes: u64,

    /// Largest accepted dataset upload (create, replace, append) in bytes; larger uploads are
    /// answered with 413 and nothing of them is kept.
    #[arg(long, env = "BRAIN_UPLOAD_MAX_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub upload_max_bytes: u64,

    /// Most columns one dataset may have (CSV header fields, distinct JSON record keys); wider
    /// uploads are answered 422 before they are parsed.
    #[arg(long, env = "BRAIN_INGEST_MAX_COLUMNS", default_value_t = 4_096,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ingest_max_columns: u64,

    /// Deepest nesting of arrays and objects in a JSON or NDJSON upload (counting the enclosing
    /// array and the record); deeper uploads are answered 422 before they are parsed.
    #[arg(long, env = "BRAIN_INGEST_MAX_NESTING", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(2..=64))]
    pub ingest_max_nesting: u64,

    /// Largest single value of an upload (a CSV field, a JSON record's field) in bytes.
    #[arg(long, env = "BRAIN_INGEST_MAX_CELL_BYTES", default_value_t = 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ingest_max_cell_bytes: u64,

    /// Memory one ingestion may need, estimated from the file's shape before parsing (text
    /// size, rows × columns, a fixed cost per column; see `data::precheck`); beyond, 413. The
    /// estimate is an upper bound: at 4 GiB a 10-column CSV is refused from about 500 MB, a
    /// 1,000-column one from about 100 MB. Raise it with the machine's memory.
    #[arg(long, env = "BRAIN_INGEST_MEMORY_LIMIT_BYTES", default_value_t = 4 * 1024 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ingest_memory_limit_bytes: u64,

    /// Accept Parquet files as dataset uploads. Off by default: every Parquet file is checked
    /// before polars decodes it (`data::parquet_guard`: footer, page headers, sizes, memory;
    /// the fuzzer's file that made polars-parquet 0.55 allocate 2^61 bytes and abort is refused),
    /// but polars still trusts the values encoded inside a page, the least fuzzed path
    /// (BENCHMARKS.md, fuzzing). Turn on for uploaders trusted that far. Server-side imports
    /// read Parquet always.
    #[arg(long, env = "BRAIN_PARQUET_UPLOADS", default_value_t = false)]
    pub parquet_uploads: bool,

    /// Directory whose files `POST /api/v1/datasets/import` may read. Unset: server-side
    /// imports are refused (403).
    #[arg(long, env = "BRAIN_IMPORT_DIR")]
    pub import_dir: Option<PathBuf>,

    /// Rows that CSV/JSON schema inference looks at.
    #[arg(long, env = "BRAIN_INFER_SCHEMA_ROWS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub infer_schema_rows: u64,

    /// Most rows one query answer (page) may hold; also the default page size.
    #[arg(long, env = "BRAIN_QUERY_MAX_ROWS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub query_max_rows: u64,

    /// Time limit of one query in milliseconds; a query still running then is cancelled and
    /// answered with 422 `unprocessable`.
    #[arg(long, env = "BRAIN_QUERY_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub query_timeout_ms: u64,

    /// Queries that execute at once. polars runs each query on its thread pool, which has one
    /// thread per core, so more at once only interleave on the same cores. 0: one per core.
    #[arg(long, env = "BRAIN_QUERY_CONCURRENCY", default_value_t = 0)]
    pub query_concurrency: u64,

    /// Queries that may wait for a turn (first come, first served). Beyond, a query is answered
    /// at once with 503 `unavailable` and a `Retry-After` estimate.
    #[arg(long, env = "BRAIN_QUERY_QUEUE", default_value_t = 64)]
    pub query_queue: u64,

    /// Planned SQL queries (by text and dataset versions) kept for reuse, least recently used
    /// dropped first. 0 disables the cache.
    #[arg(long, env = "BRAIN_PLAN_CACHE_ENTRIES", default_value_t = 256)]
    pub plan_cache_entries: u64,

    /// polars engine for queries. `in-memory` can be cancelled at the time limit; `streaming`
    /// (polars' morsel-driven engine) is faster on wide group-bys and joins but runs to the end
    /// once started (a query past the limit is answered at once and keeps its turn until done).
    /// `auto` streams the plans whose work is bounded by their input (no join, no explode) and
    /// runs the rest in memory, so no query that can run away is beyond cancellation.
    #[arg(long, env = "BRAIN_QUERY_ENGINE", value_enum, default_value_t = QueryEngine::Auto)]
    pub query_engine: QueryEngine,

    /// Transaction rows of the synthetic retail sample (datasets `stores`, `products`,
    /// `transactions`) generated on first start with an empty data directory. 0: no sample.
    #[arg(long, env = "BRAIN_SAMPLE_TRANSACTIONS", default_value_t = 1_000_000)]
    pub sample_transactions: u64,
}

/// Conversations: models, prompts, runs and their leases, agents.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Chat, runs and agents")]
pub struct ChatFlags {
    /// LLM provider/model configuration file (TOML; see README "LLM providers"). Without it
    /// the brain uses one provider, `local`: the llama.cpp server at `--local-llm-url`.
    #[arg(long, env = "BRAIN_LLM_CONFIG")]
    pub llm_config: Option<PathBuf>,

    /// Base URL of the local OpenAI-compatible server (used when no `--llm-config` is given).
    #[arg(
        long,
        env = "BRAIN_LOCAL_LLM_URL",
        default_value = "http://127.0.0.1:8081/v1"
    )]
    pub local_llm_url: String,

    /// Context window assumed for the local model, in tokens (prompt + output); the context of
    /// one slot of `scripts/llm-server.py` (`--ctx`, 4096).
    #[arg(long, env = "BRAIN_LOCAL_LLM_CONTEXT_TOKENS", default_value_t = 4096)]
    pub local_llm_context_tokens: u32,

    /// Upper bound of generated tokens per call to the local model: room for a full answer (a
    /// table of results with a few sentences) without cutting it off.
    #[arg(
        long,
        env = "BRAIN_LOCAL_LLM_MAX_OUTPUT_TOKENS",
        default_value_t = 1024
    )]
    pub local_llm_max_output_tokens: u32,

    /// Offer the built-in tools to the local model (needs a tool-capable model and template).
    #[arg(long, env = "BRAIN_LOCAL_LLM_TOOLS", default_value_t = false)]
    pub local_llm_tools: bool,

    /// Directory of prompt templates (`<name>.v<N>.jinja`, highest N wins). Default: the
    /// templates built into the binary (`brain/prompts/`).
    #[arg(long, env = "BRAIN_PROMPTS_DIR")]
    pub prompts_dir: Option<PathBuf>,

    /// Runs generating at the same time; further runs wait in state `queued`.
    #[arg(long, env = "BRAIN_MAX_CONCURRENT_RUNS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_runs: u32,

    /// A run (all its model calls and tool steps) that takes longer fails.
    #[arg(long, env = "BRAIN_RUN_TIMEOUT_SECS", default_value_t = 600)]
    pub run_timeout_secs: u64,

    /// How long a finished run's events stay in memory for reconnects (later ones are replayed
    /// from the database).
    #[arg(long, env = "BRAIN_RUN_RETENTION_SECS", default_value_t = 300)]
    pub run_retention_secs: u64,

    /// This brain's id in a fleet of brains on one database: the owner written into the lease
    /// of every run it executes. Default: a random UUID per process start (logged on the
    /// `listening` line). Each brain of a fleet needs its own; a brain restarted with the id it
    /// had before marks its own unfinished runs failed at once instead of after their lease.
    #[arg(long, env = "BRAIN_ID")]
    pub brain_id: Option<String>,

    /// How long a run's lease lasts, in milliseconds: a run whose brain has not renewed it for
    /// this long (the brain died) is marked failed by whichever brain of the fleet notices first.
    #[arg(long, env = "BRAIN_RUN_LEASE_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub run_lease_ms: u64,

    /// How often a brain renews the leases of its runs and looks for runs whose lease expired,
    /// in milliseconds; at most half of `--run-lease-ms`.
    #[arg(long, env = "BRAIN_RUN_LEASE_RENEW_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub run_lease_renew_ms: u64,

    /// Longest time a run's new events wait before they are written to the database, where
    /// clients following the run through another brain read them (in milliseconds). An event
    /// after a quiet spell is written at once; within this long of the last write, events
    /// gather into the next batch (at most one write per interval). Clients of the brain
    /// running the run get every event at once.
    #[arg(long, env = "BRAIN_RUN_EVENT_FLUSH_MS", default_value_t = 25,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub run_event_flush_ms: u64,

    /// Model calls per run when the model keeps calling tools.
    #[arg(long, env = "BRAIN_MAX_TOOL_STEPS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tool_steps: u32,

    /// Agents file (TOML; see README "Agents, tools and guardrails"). Default: the built-in
    /// agents (`brain/agents/default.toml`: `retail-coach`).
    #[arg(long, env = "BRAIN_AGENTS_CONFIG")]
    pub agents_config: Option<PathBuf>,

    /// Time one agent tool call may take (agents may set their own per tool).
    #[arg(long, env = "BRAIN_AGENT_TOOL_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub agent_tool_timeout_ms: u64,

    /// Estimated tokens of rows one `sql` tool result may give the model (agents may set
    /// their own); the result states how many rows there were in all.
    #[arg(long, env = "BRAIN_AGENT_RESULT_TOKEN_BUDGET", default_value_t = 1_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub agent_result_token_budget: u32,

    /// Rows a `chart` tool spec may carry inline (agents may set their own).
    #[arg(long, env = "BRAIN_AGENT_CHART_MAX_ROWS", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub agent_chart_max_rows: u32,

    /// Most recent messages of a thread considered for the context (then trimmed to the token
    /// budget).
    #[arg(long, env = "BRAIN_CONTEXT_MAX_MESSAGES", default_value_t = 100)]
    pub context_max_messages: u32,

    /// Tokens (input + output, all runs) each caller identity may spend; unset: unlimited.
    #[arg(long, env = "BRAIN_BUDGET_TOKENS_PER_OWNER")]
    pub budget_tokens_per_owner: Option<u64>,
}

/// The knowledge base: the embedder, chunking and limits.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Knowledge base")]
pub struct KnowledgeFlags {
    /// Which embedder the knowledge base uses: `local` (all-MiniLM-L6-v2 on the CPU, from
    /// `--knowledge-model-dir`) or `openai-compatible` (`--embeddings-url`).
    #[arg(long, env = "BRAIN_KNOWLEDGE_EMBEDDER", value_enum, default_value_t = EmbedderKind::Local)]
    pub knowledge_embedder: EmbedderKind,

    /// Directory with the local model's `model.safetensors`, `tokenizer.json` and
    /// `config.json`. Default: `$EDGEBRAIN_CACHE/llm/models/all-MiniLM-L6-v2` (where
    /// `scripts/setup-llm` installs it; `EDGEBRAIN_CACHE` defaults to `~/.cache/edgebrain`).
    /// Missing files make the knowledge endpoints answer 503 `unavailable` (logged at start).
    #[arg(long, env = "BRAIN_KNOWLEDGE_MODEL_DIR")]
    pub knowledge_model_dir: Option<PathBuf>,

    /// Base URL of the OpenAI-compatible embeddings API (`…/v1`; `/embeddings` is appended).
    #[arg(
        long,
        env = "BRAIN_EMBEDDINGS_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub embeddings_url: String,

    /// Embedding model asked of that API.
    #[arg(
        long,
        env = "BRAIN_EMBEDDINGS_MODEL",
        default_value = "text-embedding-3-small"
    )]
    pub embeddings_model: String,

    /// Name of the environment variable holding that API's key (the key itself is never a
    /// flag). Unset variable: requests go without a key (local servers).
    #[arg(
        long,
        env = "BRAIN_EMBEDDINGS_API_KEY_ENV",
        default_value = "OPENAI_API_KEY"
    )]
    pub embeddings_api_key_env: String,

    /// Time limit of one embeddings API call, in milliseconds.
    #[arg(long, env = "BRAIN_EMBEDDINGS_TIMEOUT_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub embeddings_timeout_ms: u64,

    /// Texts embedded per batch (one model forward pass, or one API request).
    #[arg(long, env = "BRAIN_KNOWLEDGE_EMBED_BATCH", default_value_t = 32,
          value_parser = clap::value_parser!(u32).range(1..=2048))]
    pub knowledge_embed_batch: u32,

    /// Time limit for embedding one uploaded document (all its batches), in milliseconds. A
    /// document that takes longer is refused (422) and nothing of it is stored.
    #[arg(long, env = "BRAIN_KNOWLEDGE_EMBED_TIMEOUT_MS", default_value_t = 120_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub knowledge_embed_timeout_ms: u64,

    /// Target chunk size in chars (chunks end at a paragraph, sentence or word boundary).
    #[arg(long, env = "BRAIN_KNOWLEDGE_CHUNK_CHARS", default_value_t = 1000)]
    pub knowledge_chunk_chars: usize,

    /// Chars each chunk repeats from the end of the previous one (less than half the size).
    #[arg(
        long,
        env = "BRAIN_KNOWLEDGE_CHUNK_OVERLAP_CHARS",
        default_value_t = 200
    )]
    pub knowledge_chunk_overlap_chars: usize,

    /// Largest document upload in bytes; larger ones are answered 413 and nothing is stored.
    #[arg(long, env = "BRAIN_KNOWLEDGE_MAX_DOCUMENT_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub knowledge_max_document_bytes: u64,

    /// Most chunks one caller may store over all documents; an upload past it is refused
    /// (422) and nothing is stored. A signed-in user counts alone; anonymous callers count
    /// together per network (IPv4 address or IPv6 /64), like the token budget, so fresh
    /// sessions bring no fresh quota.
    #[arg(
        long,
        env = "BRAIN_KNOWLEDGE_MAX_CHUNKS_PER_OWNER",
        default_value_t = 50_000
    )]
    pub knowledge_max_chunks_per_owner: u64,

    /// Most hits one search returns (a larger `limit` is capped).
    #[arg(long, env = "BRAIN_KNOWLEDGE_MAX_SEARCH_LIMIT", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub knowledge_max_search_limit: u32,

    /// Longest search query in chars (400 beyond).
    #[arg(long, env = "BRAIN_KNOWLEDGE_MAX_QUERY_CHARS", default_value_t = 2000)]
    pub knowledge_max_query_chars: usize,

    /// Callers whose search index (chunks, BM25 postings, vectors) stays in memory between
    /// searches; the least recently used is dropped past it. 0: rebuild on every search.
    #[arg(long, env = "BRAIN_KNOWLEDGE_INDEX_CACHE_OWNERS", default_value_t = 64)]
    pub knowledge_index_cache_owners: usize,
}

/// Extra object store settings (key, value). `Debug` shows the keys only: values may be
/// credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ObjectStoreOptions(pub Vec<(String, String)>);

impl fmt::Debug for ObjectStoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(key, _)| format!("{key}=<redacted>")))
            .finish()
    }
}

/// The knowledge base's embedder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EmbedderKind {
    /// all-MiniLM-L6-v2 on the CPU (candle), offline.
    Local,
    /// An OpenAI-compatible `/v1/embeddings` API.
    OpenaiCompatible,
}

/// The edge signing secrets. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct EdgeSecrets(Vec<Vec<u8>>);

impl EdgeSecrets {
    /// Shortest accepted secret: 256 bits of key material.
    pub const MIN_BYTES: usize = 32;

    pub fn as_slices(&self) -> impl Iterator<Item = &[u8]> {
        self.0.iter().map(Vec::as_slice)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::str::FromStr for EdgeSecrets {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let secrets: Vec<Vec<u8>> = text
            .split(',')
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .map(|secret| secret.as_bytes().to_vec())
            .collect();
        if secrets.is_empty() {
            return Err("no secret given".to_owned());
        }
        if let Some(position) = secrets.iter().position(|s| s.len() < Self::MIN_BYTES) {
            return Err(format!(
                "secret #{} is shorter than {} bytes",
                position + 1,
                Self::MIN_BYTES
            ));
        }
        Ok(Self(secrets))
    }
}

impl fmt::Debug for EdgeSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EdgeSecrets({} redacted)", self.0.len())
    }
}

/// The authorities edge signatures may be bound to (`--edge-authority`), each normalised as
/// the edge normalises its brain URLs (`shared_types::signature::brain_authority`: lowercase,
/// default port of a URL's scheme dropped). A bare `host:80` or `host:443` also accepts `host`,
/// since without a scheme there is no telling which default it meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeAuthorities(Vec<String>);

impl EdgeAuthorities {
    pub fn contains(&self, authority: &str) -> bool {
        self.0.iter().any(|accepted| accepted == authority)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for EdgeAuthorities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl std::str::FromStr for EdgeAuthorities {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut authorities: Vec<String> = Vec::new();
        for item in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|item| !item.is_empty())
        {
            let authority = shared_types::signature::brain_authority(item).ok_or_else(|| {
                format!(
                    "{item:?} is not a brain authority: expected host[:port] or \
                     http(s)://host[:port] as in the edge's BRAIN_URLS"
                )
            })?;
            let bare_default = (!item.contains("://"))
                .then(|| {
                    authority
                        .strip_suffix(":80")
                        .or_else(|| authority.strip_suffix(":443"))
                })
                .flatten()
                .map(str::to_owned);
            for accepted in std::iter::once(authority).chain(bare_default) {
                if !authorities.contains(&accepted) {
                    authorities.push(accepted);
                }
            }
        }
        if authorities.is_empty() {
            return Err("no authority given".to_owned());
        }
        Ok(Self(authorities))
    }
}

/// Who may call `/api/v1/diag/*` (see [`Config::diag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagAccess {
    Off,
    Operators,
    Open,
}

impl Config {
    /// Parses `args` (the first item is the program name) plus the environment, like the real
    /// binary but returning clap's error instead of exiting. Tests start from
    /// `Config::from_args(["brain"])` and overwrite the fields they care about.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(args)
    }

    /// The database settings, resolving the default SQLite file inside [`Config::data_dir`].
    ///
    /// Fails on a URL scheme the brain does not support (the error names the scheme, never the
    /// URL, which may carry a password).
    pub fn database(&self) -> Result<DatabaseConfig, ConfigError> {
        let url = match &self.database.database_url {
            Some(url) => url.clone(),
            None => DatabaseUrl::sqlite_file(&self.server.data_dir.join(SQLITE_FILE_NAME))?,
        };
        let max_connections = self.database.db_max_connections;
        let min_connections = self.database.db_min_connections.unwrap_or(max_connections);
        if min_connections > max_connections {
            return Err(ConfigError::PoolSize {
                min: min_connections,
                max: max_connections,
            });
        }
        Ok(DatabaseConfig {
            backend: url.backend()?,
            url,
            max_connections,
            min_connections,
            acquire_timeout: Duration::from_millis(self.database.db_acquire_timeout_ms),
        })
    }

    /// How the brain trusts the edge: by signature, or (explicitly) not at all.
    pub fn edge_trust(&self) -> Result<EdgeTrustMode, ConfigError> {
        match (&self.edge.edge_secrets, self.edge.insecure_local) {
            (Some(secrets), false) => Ok(EdgeTrustMode::Signed(secrets.clone())),
            (None, true) => Ok(EdgeTrustMode::InsecureLocal),
            (Some(_), true) => Err(ConfigError::EdgeTrustConflict),
            (None, false) => Err(ConfigError::NoEdgeSecret),
        }
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.server.shutdown_grace_secs)
    }

    /// How long a draining brain announces it before closing its listener (see
    /// `--drain-announce-ms`).
    pub fn drain_announce(&self) -> Duration {
        let default_ms = if self.chat.brain_id.is_some() {
            DEFAULT_FLEET_DRAIN_ANNOUNCE_MS
        } else {
            0
        };
        Duration::from_millis(self.server.drain_announce_ms.unwrap_or(default_ms))
    }

    /// The run lease timings, checked: renewals at most half a lease apart, so one late or
    /// failed renewal never loses a live run its lease.
    pub fn run_leases(&self) -> Result<RunLeaseTimings, ConfigError> {
        if self.chat.run_lease_renew_ms.saturating_mul(2) > self.chat.run_lease_ms {
            return Err(ConfigError::LeaseRenewal {
                renew_ms: self.chat.run_lease_renew_ms,
                lease_ms: self.chat.run_lease_ms,
            });
        }
        if let Some(id) = &self.chat.brain_id {
            let valid = !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
            if !valid {
                return Err(ConfigError::BrainId(id.clone()));
            }
        }
        Ok(RunLeaseTimings {
            lease: Duration::from_millis(self.chat.run_lease_ms),
            renew_every: Duration::from_millis(self.chat.run_lease_renew_ms),
            event_flush: Duration::from_millis(self.chat.run_event_flush_ms),
        })
    }

    /// The local embedding model's directory: `--knowledge-model-dir`, else
    /// `$EDGEBRAIN_CACHE/llm/models/all-MiniLM-L6-v2`, else
    /// `$HOME/.cache/edgebrain/llm/models/all-MiniLM-L6-v2`.
    pub fn knowledge_model_dir(&self) -> PathBuf {
        if let Some(dir) = &self.knowledge.knowledge_model_dir {
            return dir.clone();
        }
        let cache = std::env::var_os("EDGEBRAIN_CACHE")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .unwrap_or_default()
                    .join(".cache/edgebrain")
            });
        cache.join("llm/models/all-MiniLM-L6-v2")
    }
}

/// Run lease timings (see [`Config::run_leases`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLeaseTimings {
    /// How long a lease lasts without renewal.
    pub lease: Duration,
    /// How often leases are renewed and expired ones looked for.
    pub renew_every: Duration,
    /// Longest wait of a run's new events before they are stored.
    pub event_flush: Duration,
}

/// How requests from the edge are trusted (see [`Config::edge_trust`]).
#[derive(Debug, Clone)]
pub enum EdgeTrustMode {
    /// Verify `x-edgebrain-signature` under these secrets.
    Signed(EdgeSecrets),
    /// Trust identity headers unverified (`--insecure-local`).
    InsecureLocal,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    DatabaseUrl(#[from] DatabaseUrlError),
    #[error(
        "no edge secret: set BRAIN_EDGE_SECRETS (--edge-secrets) to the secret(s) the edge signs with, \
         or pass --insecure-local to run without verifying the edge (local development only)"
    )]
    NoEdgeSecret,
    #[error("--edge-secrets and --insecure-local contradict each other; give one")]
    EdgeTrustConflict,
    #[error(
        "--run-lease-renew-ms ({renew_ms}) must be at most half of --run-lease-ms ({lease_ms}), \
         so that one late renewal does not lose a live run its lease"
    )]
    LeaseRenewal { renew_ms: u64, lease_ms: u64 },
    #[error(
        "invalid --brain-id `{0}` (expected 1 to 128 characters of letters, digits, `-`, `_`, `.`, `:`)"
    )]
    BrainId(String),
    #[error("--db-min-connections ({min}) must be at most --db-max-connections ({max})")]
    PoolSize { min: u32, max: u32 },
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::store::Backend;

    #[test]
    fn defaults_match_the_documentation() {
        let config = Config::try_parse_from(["brain"]).unwrap();
        // The environment of the test run may set BRAIN_* variables; only check what it cannot.
        if std::env::var_os("BRAIN_BIND").is_none() {
            assert_eq!(config.server.bind, "127.0.0.1:8080".parse().unwrap());
        }
        if std::env::var_os("BRAIN_MAX_BODY_BYTES").is_none() {
            assert_eq!(config.server.max_body_bytes, 1_048_576);
        }
        if std::env::var_os("BRAIN_SHUTDOWN_GRACE_SECS").is_none() {
            assert_eq!(config.server.shutdown_grace_secs, 30);
        }
    }

    #[test]
    fn only_members_of_a_fleet_announce_their_drain_by_default() {
        let mut config = Config::try_parse_from(["brain"]).unwrap();
        assert_eq!(config.drain_announce(), Duration::ZERO);
        config.chat.brain_id = Some("brain-1".to_owned());
        assert_eq!(
            config.drain_announce(),
            Duration::from_millis(DEFAULT_FLEET_DRAIN_ANNOUNCE_MS)
        );
        let config =
            Config::try_parse_from(["brain", "--brain-id", "b", "--drain-announce-ms", "0"])
                .unwrap();
        assert_eq!(config.drain_announce(), Duration::ZERO);
    }

    #[test]
    fn the_pool_is_fixed_size_unless_a_smaller_minimum_is_given() {
        let mut config = Config::try_parse_from(["brain", "--db-max-connections", "7"]).unwrap();
        config.database.db_min_connections = None;
        let database = config.database().unwrap();
        assert_eq!((database.min_connections, database.max_connections), (7, 7));
        config.database.db_min_connections = Some(0);
        assert_eq!(config.database().unwrap().min_connections, 0);
        config.database.db_min_connections = Some(8);
        assert!(matches!(
            config.database(),
            Err(ConfigError::PoolSize { min: 8, max: 7 })
        ));
    }

    #[test]
    fn run_lease_timings_are_checked() {
        let mut config = Config::try_parse_from(["brain"]).unwrap();
        config.chat.brain_id = Some("brain-1.eu:a".to_owned());
        config.chat.run_lease_ms = 15_000;
        config.chat.run_lease_renew_ms = 5_000;
        let timings = config.run_leases().unwrap();
        assert_eq!(timings.lease, Duration::from_secs(15));
        assert_eq!(timings.renew_every, Duration::from_secs(5));
        config.chat.run_lease_renew_ms = 7_501;
        assert!(matches!(
            config.run_leases(),
            Err(ConfigError::LeaseRenewal { .. })
        ));
        config.chat.run_lease_renew_ms = 5_000;
        config.chat.brain_id = Some("a b".to_owned());
        assert!(matches!(config.run_leases(), Err(ConfigError::BrainId(_))));
    }

    #[test]
    fn flags_parse() {
        let config = Config::try_parse_from([
            "brain",
            "--bind",
            "0.0.0.0:0",
            "--data-dir",
            "/tmp/x",
            "--database-url",
            "postgres://u:p@h/db",
            "--log-format",
            "json",
            "--diag-max-events",
            "7",
        ])
        .unwrap();
        assert_eq!(config.server.bind.port(), 0);
        assert_eq!(config.server.log_format, LogFormat::Json);
        assert_eq!(config.server.diag_max_events, 7);
        // A browser's concurrent refreshes have 30 s before a reused token ends the sign-in.
        assert_eq!(
            Config::from_args(["brain"])
                .unwrap()
                .edge
                .refresh_reuse_leeway_ms,
            30_000
        );
        // The diagnostics are for operators unless a deployment opens or closes them.
        assert_eq!(
            Config::from_args(["brain"]).unwrap().server.diag,
            DiagAccess::Operators
        );
        assert_eq!(config.database().unwrap().backend, Backend::Postgres);
        assert!(Config::try_parse_from(["brain", "--diag-max-events", "0"]).is_err());
    }

    #[test]
    fn default_database_is_a_sqlite_file_in_the_data_dir() {
        let mut config = Config::try_parse_from(["brain"]).unwrap();
        config.database.database_url = None;
        config.server.data_dir = PathBuf::from("/var/lib/brain 1/a?b#c%d");
        let database = config.database().unwrap();
        assert_eq!(database.backend, Backend::Sqlite);
        assert_eq!(
            database.url.expose(),
            "sqlite:///var/lib/brain 1/a%3Fb%23c%25d/brain.db?mode=rwc"
        );
    }

    #[test]
    fn edge_trust_needs_a_secret_or_the_explicit_insecure_flag() {
        let parse = |args: &[&str]| {
            let mut all = vec!["brain"];
            all.extend_from_slice(args);
            Config::try_parse_from(all)
        };
        let secret = "s".repeat(32);
        let mut config = parse(&[]).unwrap();
        config.edge.edge_secrets = None;
        config.edge.insecure_local = false;
        assert!(matches!(
            config.edge_trust(),
            Err(ConfigError::NoEdgeSecret)
        ));
        config.edge.insecure_local = true;
        assert!(matches!(
            config.edge_trust(),
            Ok(EdgeTrustMode::InsecureLocal)
        ));
        let config = parse(&["--edge-secrets", &format!("{secret}, {secret}x")]).unwrap();
        let Ok(EdgeTrustMode::Signed(secrets)) = config.edge_trust() else {
            panic!("signed mode expected");
        };
        assert_eq!(secrets.len(), 2);
        assert!(!format!("{secrets:?}").contains(&secret));
        assert!(parse(&["--edge-secrets", "short"]).is_err());
        assert!(parse(&["--edge-secrets", " , "]).is_err());
        let config = parse(&["--edge-secrets", &secret, "--insecure-local"]).unwrap();
        assert!(matches!(
            config.edge_trust(),
            Err(ConfigError::EdgeTrustConflict)
        ));
    }

    #[test]
    fn edge_authorities_are_normalised_like_the_edges_brain_urls() {
        let parse = |text: &str| text.parse::<EdgeAuthorities>();
        let list = parse("http://Brain-1.internal:80/, 10.0.0.2:8080 https://[::1]:443").unwrap();
        assert_eq!(
            list.as_slice(),
            ["brain-1.internal", "10.0.0.2:8080", "[::1]"]
        );
        // Bare default ports: either form may be what the edge's URL normalised to.
        let list = parse("brain:443").unwrap();
        assert_eq!(list.as_slice(), ["brain:443", "brain"]);
        assert!(list.contains("brain") && list.contains("brain:443"));
        assert!(!list.contains("brain:8080"));
        for bad in [
            "",
            " , ",
            "http://brain/path",
            "brain:99999",
            "ftp://x",
            "bü.example",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let config =
            Config::try_parse_from(["brain", "--edge-authority", "b1:8080,b2:8080"]).unwrap();
        assert_eq!(
            config.edge.edge_authority.map(|a| a.to_string()).as_deref(),
            Some("b1:8080,b2:8080")
        );
    }
}
