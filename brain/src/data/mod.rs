//! The data plane: datasets kept as Parquet objects (a local folder or an S3-compatible
//! store), described in the database, and held in memory as polars DataFrames while in use.
//!
//! # Layout
//! - [`DataPlane`] (this module): the two halves the HTTP layer and the agent's tools call,
//!   over one shared `Frames` (this module: the database through [`crate::store::Store`], the
//!   object store, the [`registry::FrameRegistry`], the plan cache and the limits; it loads
//!   frames, or for a dataset larger than memory names the file a query scans):
//!   - [`Datasets`] (`datasets.rs`): the dataset lifecycle (create, import, list, describe,
//!     rename, replace, append, delete, pin, the memory overview) and the object writes
//!     behind it;
//!   - [`Queries`] (`queries.rs`): query execution (prepare, admission, plan cache, run one
//!     page).
//! - [`registry`]: the memory manager (byte budget, LRU eviction, pinning, `Arc` swaps).
//! - [`ingest`]: uploaded files to DataFrames (format checks with line numbers, schema
//!   inference and overrides) and DataFrames to and from Parquet bytes.
//! - [`parquet_guard`]: every Parquet file's footer and page headers checked before polars
//!   decodes it (uploads, imports, datasets' objects).
//! - [`objects`]: the object store the Parquet objects live in (`--object-store-url`).
//! - [`sql`]: the SQL allowlist (parse, then allow only a single read-only `SELECT`).
//! - [`sql_plan`]: approved SQL to the polars plan the brain runs.
//! - [`json_query`]: the typed JSON query as a polars plan.
//! - [`admission`]: how many queries run at once and how many may wait (503 beyond).
//! - [`plan_cache`]: allowlist verdicts and SQL plans by text and dataset versions (LRU).
//! - [`stages`]: per-stage timings and the query metrics.
//! - [`output`]: results as JSON rows/columns, CSV, Arrow IPC; column statistics.
//! - [`sample`]: the deterministic synthetic retail sample.
//!
//! # Objects and versions (a fleet of brains)
//! A dataset's contents are the object its database row names (`object_key`), written under a
//! fresh key `datasets/<id>/v<version>-<nonce>.parquet` by every create, replace and append
//! and published by the row's update, which is a compare-and-set on `version` (of two brains
//! writing one dataset at once, one wins and the other answers 409 and deletes its object).
//! The replaced object is deleted after the commit. Frames in the [`registry`] are tagged with
//! the contents they hold; every lookup resolves names from the database first, so a brain
//! sees another brain's write at its next use and reloads (see [`registry::Contents`]).
//! A reader that resolved the old version just before another brain's commit and fetches the
//! object after that brain deleted it finds it missing: the database then names a newer
//! version, and the request is answered 503 `unavailable` "changed while being read; retry"
//! (a window of one object fetch; readers that already hold the frame are unaffected).
//! `<data-dir>/uploads/` holds uploads while they stream in; it and the local store's staged
//! files (`*#<n>`, `*.tmp`) are cleaned at start, so a crash mid-write leaves nothing
//! half-written behind.
//!
//! Every polars call runs in `spawn_blocking`; no lock is held across an `.await`.
//!
//! # Queries
//! A query is first *prepared* (allowlist, the caller's view of dataset names → the exact
//! datasets and versions it reads: what its `ETag` is made of, so a conditional request is
//! answered without running anything), then *executed*: it waits for a turn at the
//! [`admission::QueryGate`], loads its frames, takes its plan from the [`plan_cache`] or plans
//! it, and runs one page of it on polars' thread pool.

pub mod admission;
mod datasets;
pub mod ingest;
pub mod json_query;
pub mod objects;
pub mod output;
pub mod parquet_guard;
pub mod plan_cache;
pub mod precheck;
mod queries;
pub mod registry;
pub mod sample;
pub mod sql;
pub mod sql_dates;
pub mod sql_order;
pub mod sql_plan;
pub mod stages;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use polars::prelude::{
    DataFrame, Engine, IdxSize, InProcessQuery, IntoLazy, LazyFrame, PlRefPath, ScanArgsParquet,
    SchemaRef,
};
use shared_types::data::{
    ColumnInfo, DataFormat, DatasetDescription, DatasetInfo, DatasetRef, ImportDataset, JsonQuery,
    LoadedFrame, MemoryStats, Page, PageRequest, Scope, SqlQuery,
};

use crate::clock::Clock;
use crate::config::{Config, QueryEngine};
use crate::metrics::Metrics;
use crate::store::datasets::{
    ContentsUpdate, ContentsUpdated, DatasetRecord, SCOPE_PRIVATE, SCOPE_PUBLIC,
};
use crate::store::{Store, StoreError};
use admission::{QueryGate, QueryPermit};
use ingest::{IngestOptions, SchemaOverrides};
use objects::Objects;
use parquet_guard::ParquetLimits;
use plan_cache::PlanCache;
use registry::{Contents, FrameRegistry, Origin};
use stages::QueryMetrics;

pub use datasets::Datasets;
pub use queries::Queries;

/// 409 for a name the caller cannot take: its own dataset has it, or (for a public dataset)
/// another public one does — public names are unique so that none shadows another, and the
/// sample's are taken by the sample.
fn name_taken(name: &str, public: bool) -> DataError {
    DataError::Conflict(if public {
        format!(
            "the name `{name}` is taken: you have a dataset by that name, or a public dataset \
             is published under it (public names are unique); choose another name"
        )
    } else {
        format!("you already have a dataset named `{name}`")
    })
}

/// Owner of the built-in sample datasets (public, read-only for everyone else).
pub const SAMPLE_OWNER: &str = "system:sample";
/// Rows of a description's sample.
const DESCRIBE_SAMPLE_ROWS: usize = 10;
/// Longest dataset name (also the SQL table name).
const MAX_NAME_BYTES: usize = 64;

/// A failed data-plane operation. `Display` is the message for the client, except for
/// `Store`/`Internal`, whose details stay in the log.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The request itself is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The uploaded data cannot be used as asked (422).
    #[error("{0}")]
    Invalid(String),
    /// No such dataset visible to the caller (404) — also for other tenants' datasets.
    #[error("{0}")]
    NotFound(String),
    /// The caller may read but not change it, or the operation is disabled (403).
    #[error("{0}")]
    Forbidden(String),
    /// A dataset of that name exists (409).
    #[error("{0}")]
    Conflict(String),
    /// Unknown or unsupported upload format (415).
    #[error("{0}")]
    UnsupportedFormat(String),
    #[error("the upload exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// Parsing the upload would need more memory than one ingestion may use (413).
    #[error(
        "parsing this file would need about {estimate} bytes of memory, more than the ingest \
         limit of {limit} bytes; split it"
    )]
    OverMemory { estimate: u64, limit: u64 },
    /// The query ran past its time limit and was cancelled (422).
    #[error("the query ran longer than the limit of {limit_ms} ms and was cancelled")]
    Timeout { limit_ms: u128 },
    /// The object store cannot be used right now, or a dataset's object cannot be read
    /// (unreachable, refused, missing, damaged, or replaced while being read): 503. The message
    /// names the dataset and the kind of failure; the details go to the log.
    #[error("{0}")]
    Unavailable(String),
    /// Every query turn is taken and the queue is full (503 with `Retry-After`).
    #[error(
        "the server is busy with other queries ({running} running, {waiting} waiting); retry \
         in {} s",
        retry_after.as_secs()
    )]
    Busy {
        running: usize,
        waiting: usize,
        retry_after: Duration,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl DataError {
    pub(crate) fn io(error: std::io::Error) -> Self {
        DataError::Internal(anyhow::Error::new(error))
    }

    pub(crate) fn polars(error: polars::error::PolarsError) -> Self {
        DataError::Internal(anyhow::anyhow!("polars: {error}"))
    }
}

type Result<T, E = DataError> = std::result::Result<T, E>;

/// Limits of the data plane, from the configuration.
#[derive(Debug, Clone)]
pub struct DataLimits {
    pub memory_budget_bytes: u64,
    pub upload_max_bytes: u64,
    /// Parquet files are accepted as uploads (see `Config::parquet_uploads`).
    pub parquet_uploads: bool,
    pub infer_schema_rows: usize,
    /// Shape and memory limits of one ingestion, checked before polars parses a file.
    pub ingest: precheck::IngestLimits,
    pub query_max_rows: u64,
    pub query_timeout: Duration,
    pub import_dir: Option<PathBuf>,
    /// Queries executing at once (the admission gate's turns).
    pub query_concurrency: usize,
    /// Queries that may wait for a turn; beyond, 503.
    pub query_queue: usize,
    /// Entries of the SQL plan cache (and of the allowlist verdict cache); 0 disables it.
    pub plan_cache_entries: usize,
    pub query_engine: QueryEngine,
}

impl DataLimits {
    /// The options of one ingestion of `format` under these limits.
    pub fn ingest_options(&self, format: DataFormat, overrides: SchemaOverrides) -> IngestOptions {
        IngestOptions {
            format,
            overrides,
            infer_schema_rows: self.infer_schema_rows,
            limits: self.ingest,
        }
    }

    pub fn from_config(config: &Config) -> Self {
        Self {
            memory_budget_bytes: config.data.datasets_memory_budget_bytes,
            upload_max_bytes: config.data.upload_max_bytes,
            parquet_uploads: config.data.parquet_uploads,
            infer_schema_rows: usize::try_from(config.data.infer_schema_rows).unwrap_or(usize::MAX),
            ingest: precheck::IngestLimits {
                max_columns: usize::try_from(config.data.ingest_max_columns).unwrap_or(usize::MAX),
                max_nesting: usize::try_from(config.data.ingest_max_nesting).unwrap_or(usize::MAX),
                max_cell_bytes: config.data.ingest_max_cell_bytes,
                memory_bytes: config.data.ingest_memory_limit_bytes,
            },
            query_max_rows: config.data.query_max_rows,
            query_timeout: Duration::from_millis(config.data.query_timeout_ms),
            import_dir: config.data.import_dir.clone(),
            query_concurrency: match config.data.query_concurrency {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                set => usize::try_from(set).unwrap_or(usize::MAX),
            },
            query_queue: usize::try_from(config.data.query_queue).unwrap_or(usize::MAX),
            plan_cache_entries: usize::try_from(config.data.plan_cache_entries)
                .unwrap_or(usize::MAX),
            query_engine: config.data.query_engine,
        }
    }
}

/// What an upload sent to an existing dataset does with its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadMode {
    /// They replace the dataset's rows (and possibly its columns).
    Replace,
    /// They are appended; they must have the dataset's columns.
    Append,
}

/// An upload being received: a file in the uploads directory, removed when dropped (whether
/// the upload was used or refused), so nothing half-received outlives its request.
#[derive(Debug)]
pub struct StagedUpload {
    path: PathBuf,
}

impl StagedUpload {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StagedUpload {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove a staged upload");
        }
    }
}

/// A query's result page.
#[derive(Debug)]
pub struct QueryOutput {
    pub frame: DataFrame,
    pub page: Page,
    pub elapsed: Duration,
    /// The datasets the query read.
    pub datasets: Vec<DatasetRef>,
    /// The query's turn, held until its answer is serialised (that is CPU work too); the HTTP
    /// layer drops it then. Shared with the execution itself, so a query that outlives its
    /// time limit keeps its turn until polars has really stopped.
    pub permit: Arc<QueryPermit>,
}

/// A query checked and resolved for its caller, not yet run: [`Queries::prepare_sql`] or
/// [`Queries::prepare_json`], then [`Queries::execute`].
#[derive(Debug)]
pub struct PreparedQuery {
    kind: PreparedKind,
    records: Vec<DatasetRecord>,
    datasets: Vec<DatasetRef>,
    page: (u64, u64),
    started: Instant,
}

#[derive(Debug)]
enum PreparedKind {
    Sql(String),
    Json(Box<JsonQuery>),
}

/// Where a query reads one dataset from.
#[derive(Debug, Clone)]
enum TableSource {
    /// Its frame, in memory.
    Frame(Arc<DataFrame>),
    /// Its Parquet file, scanned on polars' streaming engine: the dataset is larger than the
    /// whole memory budget, so it is never loaded. `name` is the dataset's, for errors.
    Scan { path: PathBuf, name: String },
}

impl TableSource {
    /// The lazy frame a plan starts from, and its schema (for a scan: read from the file's
    /// footer, once).
    fn plan_input(&self) -> Result<(LazyFrame, SchemaRef)> {
        match self {
            Self::Frame(frame) => Ok((frame.as_ref().clone().lazy(), frame.schema().clone())),
            Self::Scan { path, name } => {
                let damaged = |error: polars::error::PolarsError| {
                    tracing::error!(dataset = %name, %error, "a dataset's object is not readable Parquet");
                    unreadable(name, &NOT_PARQUET)
                };
                let path = PlRefPath::try_from_path(path).map_err(DataError::polars)?;
                let args = ScanArgsParquet {
                    glob: false,
                    ..ScanArgsParquet::default()
                };
                let mut scan = LazyFrame::scan_parquet(path, args).map_err(damaged)?;
                let schema = scan.collect_schema().map_err(damaged)?;
                Ok((scan, schema))
            }
        }
    }
}

/// Why a dataset's object that polars cannot read (or the Parquet guard refused) is unreadable.
const NOT_PARQUET: &str = "its stored object is damaged (not readable Parquet)";

/// A dataset whose stored object cannot be read (missing, damaged, the store failing): a 503
/// naming the dataset and the cause; the brain keeps serving.
fn unreadable(name: &str, cause: &dyn std::fmt::Display) -> DataError {
    DataError::Unavailable(format!(
        "dataset `{name}` cannot be read from the object store: {cause}"
    ))
}

/// `record`'s object refused by the Parquet guard or by polars (to load or to scan): logged
/// for the operator, a 503 naming the dataset and the cause for the caller.
fn not_parquet(record: &DatasetRecord, refusal: &parquet_guard::ParquetRefusal) -> DataError {
    tracing::error!(dataset = %record.id, key = %record.object_key, error = %refusal,
        "a dataset's object is not readable Parquet");
    unreadable(&record.name, &format_args!("{NOT_PARQUET}: {refusal}"))
}

impl PreparedQuery {
    /// The datasets (id, version) the query reads, in name order: with the query itself, what
    /// its answer depends on.
    pub fn datasets(&self) -> &[DatasetRef] {
        &self.datasets
    }

    fn kind(&self) -> &'static str {
        match self.kind {
            PreparedKind::Sql(_) => "sql",
            PreparedKind::Json(_) => "json",
        }
    }
}

/// Whose frames [`Datasets::memory`] lists (the totals are always the brain's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramesShown {
    /// Every tenant's (operators).
    All,
    /// Those of the datasets this owner may read: its own and public ones.
    VisibleTo(String),
}

/// The data plane: its two halves over one [`Frames`]; cheap to clone (one shared instance
/// per application).
#[derive(Debug, Clone)]
pub struct DataPlane {
    /// Create, import, list, describe, rename, replace, append, delete, pin; memory.
    pub datasets: Datasets,
    /// Prepare, admit, plan and run queries.
    pub queries: Queries,
}

/// What both halves read datasets through: the database, the object store, the memory
/// manager and its frames, the plans over those frames (dropped with them), and the local
/// copies of datasets too large to load.
#[derive(Debug)]
struct Frames {
    store: Store,
    registry: FrameRegistry,
    limits: DataLimits,
    plans: PlanCache,
    objects: Objects,
    /// Local copies of remote objects of datasets larger than the memory budget, which queries
    /// scan (a cache: emptied at start).
    spill_dir: PathBuf,
    /// Per dataset id, the file of a dataset larger than the memory budget whose Parquet the
    /// guard accepted last (checked before its first scan: the streaming engine decodes with the
    /// same decoder). One entry per dataset: a new version's file replaces the old one's.
    scannable: Mutex<HashMap<String, ScannedFile>>,
}

/// A Parquet file as it was when the guard accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ScannedFile {
    path: PathBuf,
    bytes: u64,
    modified: Option<std::time::SystemTime>,
}

impl DataPlane {
    /// Prepares the directories (removing leftovers of interrupted writes) and, on the first
    /// start with an empty data directory, generates the sample datasets (unless another brain
    /// of the fleet already did) into `objects`.
    pub async fn open(
        data_dir: &Path,
        objects: Objects,
        store: Store,
        metrics: Arc<Metrics>,
        limits: DataLimits,
        sample_transactions: u64,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let datasets_dir = data_dir.join("datasets");
        let uploads_dir = data_dir.join("uploads");
        let spill_dir = data_dir.join("spill");
        let first_start = !tokio::fs::try_exists(&datasets_dir).await.unwrap_or(false);
        for dir in [&datasets_dir, &uploads_dir, &spill_dir] {
            tokio::fs::create_dir_all(dir)
                .await
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        // Only this brain writes under its own data directory; a shared `file://` folder is
        // left alone (another brain may be writing there right now).
        remove_leftovers(&datasets_dir, &uploads_dir).await?;
        remove_matching(&spill_dir, |_| true).await?;
        let query_metrics =
            QueryMetrics::register(&metrics).context("cannot register the query metrics")?;
        let gate = QueryGate::new(limits.query_concurrency, limits.query_queue);
        let frames = Arc::new(Frames {
            store,
            registry: FrameRegistry::new(limits.memory_budget_bytes, Arc::clone(&metrics)),
            plans: PlanCache::new(limits.plan_cache_entries),
            limits,
            objects,
            spill_dir,
            scannable: Mutex::default(),
        });
        let plane = Self {
            datasets: Datasets {
                frames: Arc::clone(&frames),
                uploads_dir,
                writers: Arc::default(),
                clock,
            },
            queries: Queries {
                frames,
                gate,
                query_metrics,
                metrics,
            },
        };
        if first_start && sample_transactions > 0 {
            plane.datasets.create_sample(sample_transactions).await?;
        }
        Ok(plane)
    }

    pub fn limits(&self) -> &DataLimits {
        &self.datasets.frames.limits
    }

    /// The object store of the datasets.
    pub fn objects(&self) -> &Objects {
        &self.datasets.frames.objects
    }
}

impl Frames {
    /// Whether `record`'s contents are larger than the whole memory budget (their in-memory
    /// size as recorded when written; for contents written before that was recorded, their
    /// Parquet object's size, which compression makes a lower bound): such a dataset is never
    /// loaded, queries scan it.
    fn larger_than_memory(&self, record: &DatasetRecord) -> bool {
        let frame_bytes = record.frame_bytes.unwrap_or(record.bytes);
        self.exceeds_budget(u64::try_from(frame_bytes).unwrap_or(0))
    }

    /// Whether a frame of `frame_bytes` is larger than the whole memory budget.
    fn exceeds_budget(&self, frame_bytes: u64) -> bool {
        frame_bytes > self.limits.memory_budget_bytes
    }

    /// Where a query reads `record` from: its frame (in memory, or loaded), or — for a dataset
    /// larger than the memory budget — its Parquet file (the local store's own file, or a
    /// local copy of a remote object, downloaded once per version).
    async fn source(&self, record: &DatasetRecord) -> Result<TableSource> {
        if self.larger_than_memory(record)
            && self.registry.get(&record.id, &contents(record)).is_none()
        {
            let path = self.scan_path(record).await?;
            self.check_scannable(record, &path).await?;
            return Ok(TableSource::Scan {
                path,
                name: record.name.clone(),
            });
        }
        Ok(TableSource::Frame(self.frame(record).await?))
    }

    /// Checks the Parquet file a query is about to scan with the guard, once per file as it is
    /// on disk (a file rewritten since, e.g. a fresh copy of a remote object, is checked
    /// again): a damaged or hostile object is a 503 naming the dataset and the cause, as for a
    /// load.
    async fn check_scannable(&self, record: &DatasetRecord, path: &Path) -> Result<()> {
        let meta = tokio::fs::metadata(path).await.map_err(DataError::io)?;
        let file = ScannedFile {
            path: path.to_path_buf(),
            bytes: meta.len(),
            modified: meta.modified().ok(),
        };
        let scannable = || {
            self.scannable
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if scannable().get(&record.id) == Some(&file) {
            return Ok(());
        }
        // Streamed row group by row group: the rows and columns are bounded by the dataset's
        // row, the memory of the whole file does not apply.
        let limits = ParquetLimits {
            memory_bytes: u64::MAX,
            ..self.stored_object_limits(record)
        };
        let opened = file.path.clone();
        let checked = blocking(move || {
            let opened = std::fs::File::open(opened).map_err(DataError::io)?;
            Ok(parquet_guard::check_file(&opened, &limits))
        })
        .await?;
        if let Err(refusal) = checked {
            return Err(not_parquet(record, &refusal));
        }
        scannable().insert(record.id.clone(), file);
        Ok(())
    }

    /// A local file with `record`'s object (of the size its row recorded: else a 503 naming
    /// the dataset, as for a load).
    async fn scan_path(&self, record: &DatasetRecord) -> Result<PathBuf> {
        let objects = &self.objects;
        let expected = u64::try_from(record.bytes).unwrap_or_default();
        if let Some(path) = objects.local_path(&record.object_key) {
            return match tokio::fs::metadata(&path).await {
                Ok(meta) if meta.len() == expected => Ok(path),
                found => {
                    tracing::error!(dataset = %record.id, key = %record.object_key, store = %objects.url(), size = ?found.map(|meta| meta.len()).ok(), "a scanned dataset's object is missing or damaged");
                    Err(unreadable(
                        &record.name,
                        &"its stored object is missing or damaged",
                    ))
                }
            };
        }
        // `datasets/<id>/v<n>-<nonce>.parquet` → `<id>_v<n>-<nonce>.parquet`.
        let name = format!(
            "{}_{}",
            record.id,
            record.object_key.rsplit('/').next().unwrap_or_default()
        );
        let path = self.spill_dir.join(&name);
        if tokio::fs::metadata(&path)
            .await
            .is_ok_and(|meta| meta.len() == expected)
        {
            return Ok(path);
        }
        objects
            .download(&record.object_key, expected, &path)
            .await
            .map_err(|error| {
                tracing::error!(dataset = %record.id, key = %record.object_key, store = %objects.url(), %error, "cannot copy a dataset object for a scan");
                unreadable(&record.name, &error)
            })?;
        // Copies of the dataset's earlier contents are stale now.
        let prefix = format!("{}_", record.id);
        let spill_dir = self.spill_dir.clone();
        let _ = remove_matching(&spill_dir, |file| file.starts_with(&prefix) && file != name).await;
        Ok(path)
    }

    /// The frame of `record` (the contents its row names), from memory or loaded from its
    /// object. A frame of older contents is dropped on the way (another brain changed the
    /// dataset).
    async fn frame(&self, record: &DatasetRecord) -> Result<Arc<DataFrame>> {
        let contents = contents(record);
        if let Some(frame) = self.registry.get(&record.id, &contents) {
            return Ok(frame);
        }
        let frame = self.load(record).await?;
        let frame = self.registry.install(
            &record.id,
            &contents,
            Arc::new(frame),
            Origin::Loaded {
                pinned: record.pinned,
            },
        );
        // Loading may have evicted other frames: plans over them go too.
        self.plans.sweep();
        Ok(frame)
    }

    /// Reads `record`'s object and parses it (polars off the executor). Every failure is a 503
    /// naming the dataset and the cause, and the brain keeps serving: a missing object whose
    /// dataset now names another one was replaced while being read (retry); a missing,
    /// mis-sized or unparsable object that the row still names is damaged.
    async fn load(&self, record: &DatasetRecord) -> Result<DataFrame> {
        let objects = &self.objects;
        let name = &record.name;
        let expected = u64::try_from(record.bytes).unwrap_or_default();
        let unreadable = |cause: &dyn std::fmt::Display| unreadable(name, cause);
        let bytes = match objects.get(&record.object_key, expected).await {
            Ok(bytes) => bytes,
            Err(objects::ReadError::Missing(key)) => {
                let now = self.store.dataset_object(&record.id).await?;
                return Err(match now {
                    Some((_, current)) if current != record.object_key => {
                        DataError::Unavailable(format!(
                            "dataset `{name}` changed while it was being read (another server \
                             replaced it); retry"
                        ))
                    }
                    None => DataError::NotFound(format!("no dataset named `{name}`")),
                    Some(_) => {
                        tracing::error!(dataset = %record.id, key = %key, store = %objects.url(), "a dataset's object is missing");
                        unreadable(&"its stored object is missing")
                    }
                });
            }
            Err(objects::ReadError::Store(error)) => {
                tracing::error!(dataset = %record.id, key = %record.object_key, store = %objects.url(), %error, "cannot read a dataset object");
                return Err(unreadable(&objects::describe(&error)));
            }
            Err(objects::ReadError::Local(error)) => return Err(unreadable(&error)),
            Err(wrong @ objects::ReadError::WrongSize { .. }) => {
                tracing::error!(dataset = %record.id, store = %objects.url(), error = %wrong, "a dataset's object is damaged");
                return Err(unreadable(
                    &"its stored object is damaged (not the size that was written)",
                ));
            }
        };
        let limits = self.stored_object_limits(record);
        let read = blocking(move || Ok(ingest::read_parquet_bytes(bytes, &limits))).await?;
        read.map_err(|refusal| not_parquet(record, &refusal))
    }

    /// What `record`'s object may claim before polars decodes it: the rows and columns its row
    /// records, and the memory an ingestion may need or (for contents grown by appends past
    /// that) twice the memory budget, which bounds any frame that is loaded rather than scanned
    /// (decoding needs about its values and its decompressed pages).
    fn stored_object_limits(&self, record: &DatasetRecord) -> ParquetLimits {
        let columns = serde_json::from_str::<Vec<ColumnInfo>>(&record.columns_json)
            .map_or(self.limits.ingest.max_columns, |columns| columns.len());
        ParquetLimits {
            max_rows: u64::try_from(record.row_count).unwrap_or(0),
            max_columns: columns,
            memory_bytes: self
                .limits
                .ingest
                .memory_bytes
                .max(self.limits.memory_budget_bytes.saturating_mul(2)),
        }
    }
}

/// Stack of one query's planning and execution wait (reserved address space; only the pages
/// a deep plan touches are ever backed by memory).
const QUERY_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Runs blocking work (polars, file I/O) on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| DataError::Internal(error.into()))?
}

/// The datasets behind `records`, as a query's answer depends on them.
fn resolved(records: &[DatasetRecord]) -> Vec<DatasetRef> {
    records.iter().map(dataset_ref).collect()
}

/// Dataset names are SQL table names: `[A-Za-z_][A-Za-z0-9_]*`, at most 64 bytes.
fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_NAME_BYTES;
    if valid {
        Ok(())
    } else {
        Err(DataError::BadRequest(format!(
            "invalid dataset name `{name}`: use letters, digits and `_`, not starting with a \
             digit, at most {MAX_NAME_BYTES} bytes (it is the table name in SQL)"
        )))
    }
}

fn stored_scope(scope: Scope) -> &'static str {
    match scope {
        Scope::Private => SCOPE_PRIVATE,
        Scope::Public => SCOPE_PUBLIC,
    }
}

fn columns_json(columns: &[ColumnInfo]) -> Result<String> {
    serde_json::to_string(columns).map_err(|error| DataError::Internal(error.into()))
}

fn info(record: &DatasetRecord, caller: &str) -> Result<DatasetInfo> {
    let columns: Vec<ColumnInfo> = serde_json::from_str(&record.columns_json)
        .with_context(|| format!("columns_json of dataset {}", record.id))?;
    Ok(DatasetInfo {
        id: record.id.clone(),
        name: record.name.clone(),
        scope: if record.scope == SCOPE_PUBLIC {
            Scope::Public
        } else {
            Scope::Private
        },
        owned: record.owner == caller,
        columns,
        row_count: u64::try_from(record.row_count).unwrap_or_default(),
        bytes: u64::try_from(record.bytes).unwrap_or_default(),
        pinned: record.pinned,
        created_at_ms: record.created_at_ms,
        updated_at_ms: record.updated_at_ms,
        version: u64::try_from(record.version).unwrap_or_default(),
    })
}

/// The contents `record` names, as the registry tags frames.
fn contents(record: &DatasetRecord) -> Contents {
    Contents {
        version: record.version,
        key: record.object_key.clone(),
    }
}

fn dataset_ref(record: &DatasetRecord) -> DatasetRef {
    DatasetRef {
        id: record.id.clone(),
        name: record.name.clone(),
        version: u64::try_from(record.version).unwrap_or_default(),
    }
}

/// `relative` inside `import_dir`, symlinks resolved; anything outside is refused.
fn resolve_import(import_dir: &Path, relative: &str) -> Result<PathBuf> {
    let root = import_dir
        .canonicalize()
        .with_context(|| format!("the import directory {}", import_dir.display()))?;
    let candidate = root.join(relative);
    let resolved = candidate.canonicalize().map_err(|_| {
        DataError::NotFound(format!("no file `{relative}` in the import directory"))
    })?;
    if !resolved.starts_with(&root) {
        return Err(DataError::Forbidden(format!(
            "`{relative}` is outside the import directory"
        )));
    }
    if !resolved.is_file() {
        return Err(DataError::NotFound(format!(
            "`{relative}` is not a file in the import directory"
        )));
    }
    Ok(resolved)
}

/// Removes partial uploads and the staged files of interrupted object writes (the local
/// store's `<key>#<n>`, and the `*.tmp` files of earlier versions), one folder level down too
/// (`datasets/<id>/…`).
async fn remove_leftovers(datasets_dir: &Path, uploads_dir: &Path) -> anyhow::Result<()> {
    remove_matching(uploads_dir, |_| true).await?;
    let staged = |name: &str| name.ends_with(".tmp") || name.contains('#');
    remove_matching(datasets_dir, staged).await?;
    let mut entries = tokio::fs::read_dir(datasets_dir)
        .await
        .with_context(|| format!("cannot read {}", datasets_dir.display()))?;
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_type().await.is_ok_and(|kind| kind.is_dir()) {
            remove_matching(&entry.path(), staged).await?;
        }
    }
    Ok(())
}

async fn remove_matching(dir: &Path, leftover: impl Fn(&str) -> bool) -> anyhow::Result<()> {
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .with_context(|| format!("cannot read {}", dir.display()))?;
    while let Some(entry) = entries.next_entry().await? {
        let is_file = entry.file_type().await.is_ok_and(|kind| kind.is_file());
        if is_file && leftover(&entry.file_name().to_string_lossy()) {
            tracing::info!(path = %entry.path().display(), "removing a stale file (a leftover of an interrupted write, or a replaced copy)");
            tokio::fs::remove_file(entry.path()).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_are_sql_identifiers() {
        for good in ["sales", "_x", "Sales_2025", "a"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "1st", "my-data", "a b", "x;drop", &"n".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn imports_cannot_escape_their_directory() {
        let root = std::env::temp_dir().join(format!("edgebrain-import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("inner")).ok();
        std::fs::write(root.join("inner/a.csv"), "x\n1\n").ok();
        assert!(resolve_import(&root.join("inner"), "a.csv").is_ok());
        assert!(matches!(
            resolve_import(&root.join("inner"), "../inner/../../etc/passwd"),
            Err(DataError::Forbidden(_) | DataError::NotFound(_))
        ));
        std::fs::write(root.join("secret.csv"), "x\n1\n").ok();
        assert!(matches!(
            resolve_import(&root.join("inner"), "../secret.csv"),
            Err(DataError::Forbidden(_))
        ));
        std::fs::remove_dir_all(&root).ok();
    }
}
