//! The data plane: datasets kept as Parquet objects (a local folder or an S3-compatible
//! store), described in the database, and held in memory as polars DataFrames while in use.
//!
//! # Layout
//! - [`DataPlane`] (this module): the operations the HTTP layer calls (create, list, describe,
//!   rename, replace, append, delete, pin, query). It owns the directories, the
//!   [`registry::FrameRegistry`] and the limits, and talks to the database only through
//!   [`crate::store::Store`].
//! - [`registry`]: the memory manager (byte budget, LRU eviction, pinning, `Arc` swaps).
//! - [`ingest`]: uploaded files to DataFrames (format checks with line numbers, schema
//!   inference and overrides) and DataFrames to and from Parquet bytes.
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
pub mod ingest;
pub mod json_query;
pub mod objects;
pub mod output;
pub mod plan_cache;
pub mod precheck;
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
use plan_cache::PlanCache;
use registry::{Contents, FrameRegistry};
use stages::QueryMetrics;

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

/// A query checked and resolved for its caller, not yet run: [`DataPlane::prepare_sql`] or
/// [`DataPlane::prepare_json`], then [`DataPlane::execute`].
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

/// Why a dataset's object that polars cannot read is unreadable.
const NOT_PARQUET: &str = "its stored object is damaged (not readable Parquet)";

/// A dataset whose stored object cannot be read (missing, damaged, the store failing): a 503
/// naming the dataset and the cause; the brain keeps serving.
fn unreadable(name: &str, cause: &dyn std::fmt::Display) -> DataError {
    DataError::Unavailable(format!(
        "dataset `{name}` cannot be read from the object store: {cause}"
    ))
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

/// Whose frames [`DataPlane::memory`] lists (the totals are always the brain's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramesShown {
    /// Every tenant's (operators).
    All,
    /// Those of the datasets this owner may read: its own and public ones.
    VisibleTo(String),
}

/// The data plane; cheap to clone (one shared instance per application).
#[derive(Debug, Clone)]
pub struct DataPlane {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    registry: FrameRegistry,
    metrics: Arc<Metrics>,
    limits: DataLimits,
    gate: QueryGate,
    plans: PlanCache,
    query_metrics: QueryMetrics,
    objects: Objects,
    uploads_dir: PathBuf,
    /// Local copies of remote objects of datasets larger than the memory budget, which queries
    /// scan (a cache: emptied at start).
    spill_dir: PathBuf,
    /// One writer at a time per dataset (replace, append, delete); readers never wait on it.
    writers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The application's clock (creation and update times).
    clock: Clock,
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
        let plane = Self {
            inner: Arc::new(Inner {
                store,
                registry: FrameRegistry::new(limits.memory_budget_bytes, Arc::clone(&metrics)),
                metrics,
                gate: QueryGate::new(limits.query_concurrency, limits.query_queue),
                plans: PlanCache::new(limits.plan_cache_entries),
                query_metrics,
                limits,
                objects,
                uploads_dir,
                spill_dir,
                writers: Mutex::new(HashMap::new()),
                clock,
            }),
        };
        if first_start && sample_transactions > 0 {
            plane.create_sample(sample_transactions).await?;
        }
        Ok(plane)
    }

    pub fn limits(&self) -> &DataLimits {
        &self.inner.limits
    }

    /// A fresh, not yet created file in the uploads directory.
    pub fn stage_upload(&self) -> StagedUpload {
        StagedUpload {
            path: self
                .inner
                .uploads_dir
                .join(format!("{}.part", uuid::Uuid::new_v4().simple())),
        }
    }

    /// The object store of the datasets.
    pub fn objects(&self) -> &Objects {
        &self.inner.objects
    }

    /// Writes `frame` as a Parquet object under `key`; returns the frame, the object's size and
    /// the frame's in-memory size. A store that fails is a 503 naming the cause (nothing is
    /// recorded then).
    async fn write_object(&self, key: &str, frame: DataFrame) -> Result<(DataFrame, u64, u64)> {
        let (frame, parquet, frame_bytes) = blocking(move || {
            let mut frame = frame;
            let parquet = ingest::parquet_bytes(&mut frame)?;
            let frame_bytes = frame.estimated_size() as u64;
            Ok((frame, parquet, frame_bytes))
        })
        .await?;
        let objects = &self.inner.objects;
        let bytes = objects.put(key, parquet).await.map_err(|error| {
            tracing::error!(key, store = %objects.url(), error = %error, "cannot write a dataset object");
            DataError::Unavailable(format!(
                "the dataset could not be stored: {}; nothing was changed, retry later",
                objects::describe(&error)
            ))
        })?;
        Ok((frame, bytes, frame_bytes))
    }

    /// Deletes an object nothing names (a write that did not commit).
    async fn discard_object(&self, key: &str) {
        if let Err(error) = self.inner.objects.delete(key).await {
            tracing::warn!(key, %error, "cannot delete an uncommitted dataset object (orphaned)");
        }
    }

    fn writer_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut writers = self
            .inner
            .writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Forget locks nobody holds any more, so the map does not grow with every dataset ever
        // written.
        writers.retain(|_, lock| Arc::strong_count(lock) > 1);
        Arc::clone(writers.entry(id.to_owned()).or_default())
    }

    // ----- datasets -------------------------------------------------------------------------

    pub async fn list(&self, owner: &str) -> Result<Vec<DatasetInfo>> {
        let records = self.inner.store.visible_datasets(owner).await?;
        records.iter().map(|record| info(record, owner)).collect()
    }

    /// Creates a dataset from a received upload.
    pub async fn create(
        &self,
        owner: &str,
        name: &str,
        scope: Scope,
        upload: StagedUpload,
        options: IngestOptions,
    ) -> Result<DatasetInfo> {
        check_name(name)?;
        let frame = blocking(move || {
            let frame = ingest::read_file(upload.path(), &options);
            drop(upload);
            frame
        })
        .await?;
        self.insert(owner, name, stored_scope(scope), frame).await
    }

    /// Creates a dataset from a file in the import directory.
    pub async fn import(&self, owner: &str, request: ImportDataset) -> Result<DatasetInfo> {
        check_name(&request.name)?;
        let Some(import_dir) = self.inner.limits.import_dir.clone() else {
            return Err(DataError::Forbidden(
                "server-side imports are disabled (no import directory is configured)".to_owned(),
            ));
        };
        let format = match request.format {
            Some(format) => format,
            None => ingest::format_from_file_name(&request.path).ok_or_else(|| {
                DataError::UnsupportedFormat(format!(
                    "cannot tell the format of `{}` from its extension; give `format`",
                    request.path
                ))
            })?,
        };
        let options = self
            .inner
            .limits
            .ingest_options(format, request.schema.clone());
        let relative = request.path.clone();
        let frame = blocking(move || {
            let path = resolve_import(&import_dir, &relative)?;
            ingest::read_file(&path, &options)
        })
        .await?;
        let scope = stored_scope(request.scope.unwrap_or(Scope::Private));
        self.insert(owner, &request.name, scope, frame).await
    }

    /// Writes the Parquet file, then records the dataset; a failed insert removes the file.
    async fn insert(
        &self,
        owner: &str,
        name: &str,
        scope: &str,
        frame: DataFrame,
    ) -> Result<DatasetInfo> {
        let id = uuid::Uuid::new_v4().to_string();
        let key = objects::dataset_key(&id, 1);
        let (frame, bytes, frame_bytes) = self.write_object(&key, frame).await?;
        let now = self.inner.clock.now_ms();
        let record = DatasetRecord {
            id: id.clone(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            scope: scope.to_owned(),
            columns_json: columns_json(&ingest::column_infos(&frame))?,
            row_count: i64::try_from(frame.height()).unwrap_or(i64::MAX),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            frame_bytes: Some(i64::try_from(frame_bytes).unwrap_or(i64::MAX)),
            pinned: false,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
            object_key: key.clone(),
        };
        if let Err(error) = self.inner.store.insert_dataset(&record).await {
            // Remove the object unless the row may have been committed after all (a connection
            // lost after the commit): an orphan is harmless, a row without its object is not.
            if matches!(error, StoreError::Conflict(_))
                || matches!(self.inner.store.dataset_object(&id).await, Ok(None))
            {
                self.discard_object(&key).await;
            }
            return Err(match error {
                StoreError::Conflict(_) => name_taken(name, scope == SCOPE_PUBLIC),
                other => other.into(),
            });
        }
        // Fresh data is likely to be queried next: keep it (subject to the budget), unless it is
        // larger than the whole budget (queries scan it; keeping it would evict everything).
        if !self.larger_than_memory(&record) {
            self.inner
                .registry
                .swap(&id, &contents(&record), Arc::new(frame), false);
            self.inner.plans.sweep();
        }
        info(&record, owner)
    }

    /// The dataset `id` if the caller may read it; 404 otherwise (never 403: that would tell
    /// that another tenant's dataset exists).
    async fn visible(&self, owner: &str, id: &str) -> Result<DatasetRecord> {
        self.inner
            .store
            .visible_dataset(owner, id)
            .await?
            .ok_or_else(|| DataError::NotFound(format!("no dataset with id `{id}`")))
    }

    /// Whether the caller may change dataset `id` (404 if not visible, 403 if only shared):
    /// checked before an upload is received, so nobody streams data into a dataset they cannot
    /// change.
    pub async fn check_writable(&self, owner: &str, id: &str) -> Result<()> {
        self.owned(owner, id).await.map(|_| ())
    }

    /// Like [`DataPlane::visible`], but the caller must own it.
    async fn owned(&self, owner: &str, id: &str) -> Result<DatasetRecord> {
        let record = self.visible(owner, id).await?;
        if record.owner != owner {
            return Err(DataError::Forbidden(format!(
                "dataset `{}` is shared with you read-only",
                record.name
            )));
        }
        Ok(record)
    }

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
        frame_bytes > self.inner.limits.memory_budget_bytes
    }

    /// Where a query reads `record` from: its frame (in memory, or loaded), or — for a dataset
    /// larger than the memory budget — its Parquet file (the local store's own file, or a
    /// local copy of a remote object, downloaded once per version).
    async fn source(&self, record: &DatasetRecord) -> Result<TableSource> {
        if self.larger_than_memory(record)
            && self
                .inner
                .registry
                .get(&record.id, &contents(record))
                .is_none()
        {
            return Ok(TableSource::Scan {
                path: self.scan_path(record).await?,
                name: record.name.clone(),
            });
        }
        Ok(TableSource::Frame(self.frame(record).await?))
    }

    /// A local file with `record`'s object (of the size its row recorded: else a 503 naming
    /// the dataset, as for a load).
    async fn scan_path(&self, record: &DatasetRecord) -> Result<PathBuf> {
        let objects = &self.inner.objects;
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
        let path = self.inner.spill_dir.join(&name);
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
        let spill_dir = self.inner.spill_dir.clone();
        let _ = remove_matching(&spill_dir, |file| file.starts_with(&prefix) && file != name).await;
        Ok(path)
    }

    /// The frame of `record` (the contents its row names), from memory or loaded from its
    /// object. A frame of older contents is dropped on the way (another brain changed the
    /// dataset).
    async fn frame(&self, record: &DatasetRecord) -> Result<Arc<DataFrame>> {
        let contents = contents(record);
        if let Some(frame) = self.inner.registry.get(&record.id, &contents) {
            return Ok(frame);
        }
        let frame = self.load(record).await?;
        let frame = self.inner.registry.insert_loaded(
            &record.id,
            &contents,
            Arc::new(frame),
            record.pinned,
        );
        // Loading may have evicted other frames: plans over them go too.
        self.inner.plans.sweep();
        Ok(frame)
    }

    /// Reads `record`'s object and parses it (polars off the executor). Every failure is a 503
    /// naming the dataset and the cause, and the brain keeps serving: a missing object whose
    /// dataset now names another one was replaced while being read (retry); a missing,
    /// mis-sized or unparsable object that the row still names is damaged.
    async fn load(&self, record: &DatasetRecord) -> Result<DataFrame> {
        let objects = &self.inner.objects;
        let name = &record.name;
        let expected = u64::try_from(record.bytes).unwrap_or_default();
        let unreadable = |cause: &dyn std::fmt::Display| unreadable(name, cause);
        let bytes = match objects.get(&record.object_key, expected).await {
            Ok(bytes) => bytes,
            Err(objects::ReadError::Missing(key)) => {
                let now = self.inner.store.dataset_object(&record.id).await?;
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
        let key = record.object_key.clone();
        let id = record.id.clone();
        blocking(move || {
            ingest::read_parquet_bytes(bytes).map_err(|error| {
                tracing::error!(dataset = %id, key = %key, %error, "a dataset's object is not readable Parquet");
                error
            })
        })
        .await
        .map_err(|_| unreadable(&NOT_PARQUET))
    }

    pub async fn describe(&self, owner: &str, id: &str) -> Result<DatasetDescription> {
        let record = self.visible(owner, id).await?;
        let source = self.source(&record).await?;
        let (stats, sample_rows) = blocking(move || match source {
            TableSource::Frame(frame) => {
                let stats = output::stats(&frame)?;
                let sample = output::rows(&frame.head(Some(DESCRIBE_SAMPLE_ROWS)))?;
                Ok((stats, sample))
            }
            TableSource::Scan { .. } => {
                let (scan, schema) = source.plan_input()?;
                let stats = output::scanned_stats(scan.clone(), &schema)?;
                let head = scan
                    .limit(IdxSize::try_from(DESCRIBE_SAMPLE_ROWS).unwrap_or(IdxSize::MAX))
                    .collect_with_engine(Engine::Streaming)
                    .map(|result| result.unwrap_single())
                    .map_err(DataError::polars)?;
                Ok((stats, output::rows(&head)?))
            }
        })
        .await?;
        Ok(DatasetDescription {
            dataset: info(&record, owner)?,
            stats,
            sample_rows,
        })
    }

    pub async fn rename(&self, owner: &str, id: &str, name: &str) -> Result<DatasetInfo> {
        check_name(name)?;
        let public = self.owned(owner, id).await?.scope == SCOPE_PUBLIC;
        match self
            .inner
            .store
            .rename_dataset(owner, id, name, self.inner.clock.now_ms())
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(DataError::NotFound(format!("no dataset with id `{id}`"))),
            Err(StoreError::Conflict(_)) => return Err(name_taken(name, public)),
            Err(other) => return Err(other.into()),
        }
        info(&self.visible(owner, id).await?, owner)
    }

    /// Replaces the rows (and possibly the columns) of a dataset with an upload.
    pub async fn replace(
        &self,
        owner: &str,
        id: &str,
        upload: StagedUpload,
        options: IngestOptions,
    ) -> Result<DatasetInfo> {
        self.owned(owner, id).await?;
        let writer = self.writer_lock(id);
        let _writing = writer.lock().await;
        // Read again under the lock: the version this write replaces.
        let record = self.owned(owner, id).await?;
        let frame = blocking(move || {
            let frame = ingest::read_file(upload.path(), &options);
            drop(upload);
            frame
        })
        .await?;
        self.store_contents(owner, &record, frame).await
    }

    /// Appends the rows of an upload; they must have the dataset's columns.
    pub async fn append(
        &self,
        owner: &str,
        id: &str,
        upload: StagedUpload,
        options: IngestOptions,
    ) -> Result<DatasetInfo> {
        self.owned(owner, id).await?;
        let writer = self.writer_lock(id);
        let _writing = writer.lock().await;
        // Read again under the lock: the version these rows are appended to.
        let record = self.owned(owner, id).await?;
        // A dataset larger than memory is read whole once, for the new contents, not kept.
        let existing = if self.larger_than_memory(&record) {
            Arc::new(self.load(&record).await?)
        } else {
            self.frame(&record).await?
        };
        let frame = blocking(move || {
            let rows = ingest::read_file(upload.path(), &options);
            drop(upload);
            let rows = ingest::conform_for_append(&existing, rows?)?;
            existing
                .vstack(&rows)
                .map_err(DataError::polars)
                .map(|mut frame| {
                    frame.rechunk_mut();
                    frame
                })
        })
        .await?;
        self.store_contents(owner, &record, frame).await
    }

    /// Writes the new contents as a new object, commits it as the next version if `previous`
    /// is still the current one, swaps the frame in, then deletes the replaced object.
    async fn store_contents(
        &self,
        owner: &str,
        previous: &DatasetRecord,
        frame: DataFrame,
    ) -> Result<DatasetInfo> {
        let id = previous.id.as_str();
        let key = objects::dataset_key(id, previous.version + 1);
        let (frame, bytes, frame_bytes) = self.write_object(&key, frame).await?;
        let update = ContentsUpdate {
            columns_json: columns_json(&ingest::column_infos(&frame))?,
            row_count: i64::try_from(frame.height()).unwrap_or(i64::MAX),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            frame_bytes: i64::try_from(frame_bytes).unwrap_or(i64::MAX),
            updated_at_ms: self.inner.clock.now_ms(),
            object_key: key.clone(),
            expected_version: previous.version,
        };
        match self
            .inner
            .store
            .update_dataset_contents(owner, id, &update)
            .await
        {
            Ok(ContentsUpdated::Done) => {}
            Ok(ContentsUpdated::Missing) => {
                self.discard_object(&key).await;
                return Err(DataError::NotFound(format!("no dataset with id `{id}`")));
            }
            Ok(ContentsUpdated::Conflict) => {
                self.discard_object(&key).await;
                return Err(DataError::Conflict(format!(
                    "dataset `{}` was changed by another request while this one was being \
                     stored; nothing was changed by this one, retry it",
                    previous.name
                )));
            }
            Err(error) => {
                // Unknown outcome (e.g. the connection broke after the commit): keep the object
                // unless the row surely does not name it.
                match self.inner.store.dataset_object(id).await {
                    Ok(Some((_, current))) if current == key => {}
                    Err(_) => {}
                    Ok(_) => self.discard_object(&key).await,
                }
                return Err(error.into());
            }
        }
        let current = Contents {
            version: previous.version + 1,
            key,
        };
        if self.exceeds_budget(frame_bytes) {
            // Larger than the budget: queries scan it; the old frame (if any) is stale.
            self.inner.registry.remove(id);
        } else {
            self.inner
                .registry
                .swap(id, &current, Arc::new(frame), false);
        }
        self.inner.plans.sweep();
        if previous.object_key != current.key {
            self.inner
                .objects
                .delete_replaced(&previous.object_key)
                .await;
        }
        info(&self.visible(owner, id).await?, owner)
    }

    pub async fn delete(&self, owner: &str, id: &str) -> Result<()> {
        self.owned(owner, id).await?;
        let writer = self.writer_lock(id);
        let _writing = writer.lock().await;
        let Some(key) = self.inner.store.delete_dataset(owner, id).await? else {
            return Err(DataError::NotFound(format!("no dataset with id `{id}`")));
        };
        self.inner.registry.remove(id);
        self.inner.plans.sweep();
        self.inner.objects.delete_replaced(&key).await;
        Ok(())
    }

    /// Pins (loads and keeps in memory regardless of the budget) or unpins a dataset.
    pub async fn set_pinned(&self, owner: &str, id: &str, pinned: bool) -> Result<DatasetInfo> {
        let mut record = self.owned(owner, id).await?;
        self.inner
            .store
            .set_dataset_pinned(owner, id, pinned)
            .await?;
        record.pinned = pinned;
        // (A dataset larger than the whole budget is never loaded, pinned or not.)
        if pinned && !self.larger_than_memory(&record) {
            self.frame(&record).await?;
        }
        self.inner.registry.set_pinned(id, pinned);
        self.inner.plans.sweep();
        info(&record, owner)
    }

    /// Memory totals, and the caller's (and public) frames in memory.
    pub async fn memory(&self, shown: FramesShown) -> Result<MemoryStats> {
        let visible: Option<HashSet<String>> = match shown {
            FramesShown::All => None,
            FramesShown::VisibleTo(owner) => Some(
                self.inner
                    .store
                    .visible_datasets(&owner)
                    .await?
                    .into_iter()
                    .map(|record| record.id)
                    .collect(),
            ),
        };
        let snapshot = self.inner.registry.snapshot();
        Ok(MemoryStats {
            budget_bytes: snapshot.budget_bytes,
            used_bytes: snapshot.used_bytes,
            loaded_frames: snapshot.frames.len() as u64,
            loads: snapshot.loads,
            evictions: snapshot.evictions,
            frames: snapshot
                .frames
                .into_iter()
                .filter(|frame| visible.as_ref().is_none_or(|ids| ids.contains(&frame.id)))
                .map(|frame| LoadedFrame {
                    id: frame.id,
                    bytes: frame.bytes,
                    pinned: frame.pinned,
                })
                .collect(),
        })
    }

    // ----- queries --------------------------------------------------------------------------

    /// Runs an allowlisted SQL query over the datasets the caller may read.
    pub async fn sql(&self, owner: &str, query: &SqlQuery) -> Result<QueryOutput> {
        let prepared = self.prepare_sql(owner, query).await;
        self.execute_prepared(prepared).await
    }

    /// Runs a typed JSON query over one dataset the caller may read.
    pub async fn json(&self, owner: &str, query: &JsonQuery) -> Result<QueryOutput> {
        let prepared = self.prepare_json(owner, query).await;
        self.execute_prepared(prepared).await
    }

    async fn execute_prepared(&self, prepared: Result<PreparedQuery>) -> Result<QueryOutput> {
        match prepared {
            Ok(prepared) => self.execute(prepared).await,
            Err(error) => Err(error),
        }
    }

    /// Checks `query` against the allowlist and resolves its table names for the caller,
    /// without running it.
    pub async fn prepare_sql(&self, owner: &str, query: &SqlQuery) -> Result<PreparedQuery> {
        let started = Instant::now();
        let result = self.prepare_sql_inner(owner, query, started).await;
        if let Err(error) = &result {
            self.observe("sql", started, Err(error));
        }
        result
    }

    async fn prepare_sql_inner(
        &self,
        owner: &str,
        query: &SqlQuery,
        started: Instant,
    ) -> Result<PreparedQuery> {
        let page = self.page(query.page)?;
        let metrics = &self.inner.query_metrics;
        let approved = metrics.time("sql", "approve", || {
            self.inner.plans.approval(&query.sql, || {
                sql::approve(&query.sql)
                    .map_err(|refusal| DataError::BadRequest(refusal.to_string()))
            })
        })?;
        let lookup = Instant::now();
        let by_name = self.by_name(owner).await?;
        metrics.observe("sql", "lookup", lookup);
        let mut records = Vec::with_capacity(approved.tables.len());
        for name in &approved.tables {
            let record = by_name
                .get(name)
                .ok_or_else(|| DataError::NotFound(format!("no dataset named `{name}`")))?;
            records.push(record.clone());
        }
        Ok(PreparedQuery {
            kind: PreparedKind::Sql(query.sql.clone()),
            datasets: resolved(&records),
            records,
            page,
            started,
        })
    }

    /// Resolves the JSON query's dataset for the caller, without running it.
    pub async fn prepare_json(&self, owner: &str, query: &JsonQuery) -> Result<PreparedQuery> {
        let started = Instant::now();
        let result = self.prepare_json_inner(owner, query, started).await;
        if let Err(error) = &result {
            self.observe("json", started, Err(error));
        }
        result
    }

    async fn prepare_json_inner(
        &self,
        owner: &str,
        query: &JsonQuery,
        started: Instant,
    ) -> Result<PreparedQuery> {
        let page = self.page(query.page)?;
        let lookup = Instant::now();
        let by_name = self.by_name(owner).await?;
        self.inner.query_metrics.observe("json", "lookup", lookup);
        let record = by_name
            .get(&query.dataset)
            .ok_or_else(|| DataError::NotFound(format!("no dataset named `{}`", query.dataset)))?
            .clone();
        let records = vec![record];
        Ok(PreparedQuery {
            kind: PreparedKind::Json(Box::new(query.clone())),
            datasets: resolved(&records),
            records,
            page,
            started,
        })
    }

    /// Runs a prepared query: waits for a turn (or is refused when the queue is full), loads
    /// its frames, plans it (or takes the cached plan) and collects one page.
    pub async fn execute(&self, prepared: PreparedQuery) -> Result<QueryOutput> {
        let kind = prepared.kind();
        let started = prepared.started;
        let result = self.execute_inner(prepared).await;
        self.observe(kind, started, result.as_ref().map(|_| ()));
        result
    }

    async fn execute_inner(&self, prepared: PreparedQuery) -> Result<QueryOutput> {
        let kind = prepared.kind();
        let PreparedQuery {
            kind: what,
            records,
            datasets,
            page,
            started,
        } = prepared;
        let metrics = self.inner.query_metrics.clone();
        let permit = Arc::new(self.admit(kind).await?);
        let load = Instant::now();
        let mut sources = Vec::with_capacity(records.len());
        for record in &records {
            sources.push(self.source(record).await?);
        }
        metrics.observe(kind, "load", load);
        // A dataset larger than memory is only ever read by the streaming engine.
        let scans = sources
            .iter()
            .any(|source| matches!(source, TableSource::Scan { .. }));
        let frame = match what {
            PreparedKind::Sql(text) => {
                let plans = self.clone();
                let tables = datasets.clone();
                self.run(page, kind, Arc::clone(&permit), scans, move || {
                    plans
                        .inner
                        .query_metrics
                        .time("sql", "plan", || plans.sql_plan(&text, &tables, &sources))
                })
                .await?
            }
            PreparedKind::Json(query) => {
                let source = sources.into_iter().next().ok_or_else(|| {
                    DataError::Internal(anyhow::anyhow!("a JSON query without its dataset"))
                })?;
                self.run(page, kind, Arc::clone(&permit), scans, move || {
                    metrics.time("json", "plan", || {
                        let (lazy, schema) = source.plan_input()?;
                        json_query::plan(&query, lazy, &schema)
                    })
                })
                .await?
            }
        };
        let (offset, limit) = page;
        let returned = (frame.height() as u64).min(limit);
        let next_offset = (frame.height() as u64 > limit).then(|| offset + limit);
        let frame = frame.head(Some(usize::try_from(returned).unwrap_or(usize::MAX)));
        Ok(QueryOutput {
            frame,
            page: Page {
                offset,
                limit,
                returned,
                next_offset,
            },
            elapsed: started.elapsed(),
            datasets,
            permit,
        })
    }

    /// A turn at the gate; the gauges follow the gate's state.
    async fn admit(&self, kind: &str) -> Result<QueryPermit> {
        let gate = &self.inner.gate;
        let metrics = &self.inner.query_metrics;
        let waited = Instant::now();
        metrics.waiting.set(gate.waiting() as i64 + 1);
        let admitted = gate.admit().await;
        metrics.waiting.set(gate.waiting() as i64);
        metrics.running.set(gate.running() as i64);
        metrics.observe(kind, "admit", waited);
        admitted.map_err(|overloaded| {
            metrics.refused.with_label_values(&[kind]).inc();
            DataError::Busy {
                running: gate.running(),
                waiting: gate.waiting(),
                retry_after: overloaded.retry_after,
            }
        })
    }

    /// The plan of approved SQL over these frames: cached, or planned and cached.
    /// (Plans over scanned datasets are not cached: the cache holds frames' plans.)
    fn sql_plan(
        &self,
        text: &str,
        tables: &[DatasetRef],
        sources: &[TableSource],
    ) -> Result<LazyFrame> {
        let frames: Option<Vec<Arc<DataFrame>>> = sources
            .iter()
            .map(|source| match source {
                TableSource::Frame(frame) => Some(Arc::clone(frame)),
                TableSource::Scan { .. } => None,
            })
            .collect();
        let counter = &self.inner.query_metrics.plan_cache;
        if let Some(frames) = &frames
            && let Some(plan) = self.inner.plans.plan(text, tables, frames)
        {
            counter.with_label_values(&["hit"]).inc();
            return Ok(plan);
        }
        counter.with_label_values(&["miss"]).inc();
        let inputs = sources
            .iter()
            .map(TableSource::plan_input)
            .collect::<Result<Vec<_>>>()?;
        let temporal = sql_dates::TemporalColumns::of(inputs.iter().map(|(_, schema)| &**schema));
        let rewritten = sql_dates::rewrite(text, &temporal)
            .map_err(|refusal| DataError::BadRequest(format!("query error: {refusal}")))?;
        let rewritten = sql_order::rewrite(&rewritten)
            .map_err(|refusal| DataError::BadRequest(format!("query error: {refusal}")))?;
        let named = tables
            .iter()
            .zip(inputs)
            .map(|(table, (lazy, _))| (table.name.clone(), lazy));
        let plan = sql_plan::plan(&rewritten, named)
            .map_err(|error| DataError::BadRequest(sql::query_error_message(&error)))?;
        if let Some(frames) = &frames {
            self.inner.plans.insert(text, tables, frames, plan.clone());
        }
        Ok(plan)
    }

    fn observe(&self, kind: &str, started: Instant, result: Result<(), &DataError>) {
        let outcome = match result {
            Ok(()) => "ok",
            Err(DataError::Timeout { .. }) => "timeout",
            Err(DataError::Busy { .. }) => "busy",
            Err(_) => "error",
        };
        self.inner
            .metrics
            .query_duration
            .with_label_values(&[kind, outcome])
            .observe(started.elapsed().as_secs_f64());
    }

    /// The caller's view of dataset names: its own win over public ones of the same name.
    async fn by_name(&self, owner: &str) -> Result<BTreeMap<String, DatasetRecord>> {
        let mut by_name = BTreeMap::new();
        for record in self.inner.store.visible_datasets(owner).await? {
            let own = record.owner == owner;
            match by_name.get(&record.name) {
                Some(DatasetRecord {
                    owner: existing, ..
                }) if existing == owner && !own => {}
                _ => {
                    by_name.insert(record.name.clone(), record);
                }
            }
        }
        Ok(by_name)
    }

    fn page(&self, request: PageRequest) -> Result<(u64, u64)> {
        let max = self.inner.limits.query_max_rows;
        let limit = request.limit.unwrap_or(max);
        if limit == 0 || limit > max {
            return Err(DataError::BadRequest(format!(
                "`limit` must be between 1 and {max} (the row limit of one answer)"
            )));
        }
        Ok((request.offset, limit))
    }

    /// Collects one page (plus one row, telling whether another page follows) of the plan
    /// `build` makes, within the time limit. The blocking thread only plans and waits: polars
    /// executes the plan on its own threads (the in-memory engine as one job on its thread
    /// pool, `collect_concurrently`; the streaming engine on its executor), which the admission
    /// gate keeps from being oversubscribed. Past the limit the query is cancelled (the
    /// in-memory engine stops at its next check; the streaming engine cannot be stopped and
    /// keeps `turn` until it ends — with `auto` only plans bounded by their input stream) and
    /// the caller answered at once.
    async fn run(
        &self,
        (offset, limit): (u64, u64),
        kind: &'static str,
        turn: Arc<QueryPermit>,
        must_stream: bool,
        build: impl FnOnce() -> Result<LazyFrame> + Send + 'static,
    ) -> Result<DataFrame> {
        let engine = self.inner.limits.query_engine;
        let slot: Arc<Mutex<Option<InProcessQuery>>> = Arc::default();
        let cancelled = Arc::new(AtomicBool::new(false));
        let metrics = self.inner.query_metrics.clone();
        let task = {
            let slot = Arc::clone(&slot);
            let cancelled = Arc::clone(&cancelled);
            tokio::task::spawn_blocking(move || -> Result<DataFrame> {
                let length = IdxSize::try_from(limit.saturating_add(1)).unwrap_or(IdxSize::MAX);
                let offset = i64::try_from(offset).unwrap_or(i64::MAX);
                let _turn = turn;
                // On a stack of its own: polars-sql and the planner walk the query's expression
                // tree recursively, and a blocking-pool thread's 2 MiB end a few hundred
                // operators deep in a debug build (the allowlist bounds the count).
                stacker::grow(QUERY_STACK_BYTES, || {
                    let plan = build()?.slice(offset, length);
                    let failed = |error| DataError::BadRequest(sql::query_error_message(&error));
                    let streaming = must_stream
                        || match engine {
                            QueryEngine::Streaming => true,
                            QueryEngine::InMemory => false,
                            QueryEngine::Auto => sql_plan::bounded_by_input(&plan.logical_plan),
                        };
                    metrics.time(kind, "execute", || {
                        if streaming {
                            return plan
                                .collect_with_engine(Engine::Streaming)
                                .map(|result| result.unwrap_single())
                                .map_err(failed);
                        }
                        let running = plan.collect_concurrently().map_err(|error| {
                            DataError::BadRequest(sql::query_error_message(&error))
                        })?;
                        *slot.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(running.clone());
                        if cancelled.load(Ordering::SeqCst) {
                            running.cancel();
                        }
                        running.fetch_blocking().map_err(|error| {
                            DataError::BadRequest(sql::query_error_message(&error))
                        })
                    })
                })
            })
        };
        let timeout = self.inner.limits.query_timeout;
        match tokio::time::timeout(timeout, task).await {
            Ok(joined) => joined.map_err(|error| DataError::Internal(error.into()))?,
            Err(_) => {
                cancelled.store(true, Ordering::SeqCst);
                if let Some(running) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    running.cancel();
                }
                Err(DataError::Timeout {
                    limit_ms: timeout.as_millis(),
                })
            }
        }
    }

    /// Per-stage timings and gauges of the query path.
    pub fn query_metrics(&self) -> &QueryMetrics {
        &self.inner.query_metrics
    }

    // ----- sample ---------------------------------------------------------------------------

    async fn create_sample(&self, transactions: u64) -> anyhow::Result<()> {
        if !self.inner.store.datasets_of(SAMPLE_OWNER).await?.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let rows = usize::try_from(transactions).context("sample size")?;
        let tables = blocking(move || sample::generate(rows)).await?;
        for (name, frame) in [
            ("stores", tables.stores),
            ("products", tables.products),
            ("transactions", tables.transactions),
        ] {
            match self.insert(SAMPLE_OWNER, name, SCOPE_PUBLIC, frame).await {
                Ok(_) => {}
                // Another brain of the fleet, starting at the same time, stored it first.
                Err(DataError::Conflict(_)) => {
                    tracing::info!(dataset = name, "the sample dataset exists already");
                }
                Err(error) => {
                    return Err(anyhow::Error::new(error))
                        .with_context(|| format!("cannot store the sample dataset `{name}`"));
                }
            }
        }
        tracing::info!(
            transactions,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "generated the sample datasets stores, products, transactions"
        );
        Ok(())
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
