//! Query execution ([`Queries`]): prepare (allowlist, the caller's view of names, the
//! versions an `ETag` is made of), admission, planning from the plan cache, and running one
//! page on polars' pool.

use super::*;

/// The query execution half of the [`DataPlane`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Queries {
    pub(super) frames: Arc<Frames>,
    pub(super) gate: QueryGate,
    pub(super) query_metrics: QueryMetrics,
    pub(super) metrics: Arc<Metrics>,
}

impl Queries {
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
        let prepared = self.prepare_sql_inner(owner, query, started).await;
        self.counted_if_failed("sql", started, prepared)
    }

    async fn prepare_sql_inner(
        &self,
        owner: &str,
        query: &SqlQuery,
        started: Instant,
    ) -> Result<PreparedQuery> {
        let page = self.page(query.result.page)?;
        let metrics = &self.query_metrics;
        let approved = metrics.time("sql", "approve", || {
            self.frames.plans.approval(&query.sql, || {
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
        let prepared = self.prepare_json_inner(owner, query, started).await;
        self.counted_if_failed("json", started, prepared)
    }

    async fn prepare_json_inner(
        &self,
        owner: &str,
        query: &JsonQuery,
        started: Instant,
    ) -> Result<PreparedQuery> {
        let page = self.page(query.result.page)?;
        let lookup = Instant::now();
        let by_name = self.by_name(owner).await?;
        self.query_metrics.observe("json", "lookup", lookup);
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

    /// `prepared`, a failed preparation counted in the query metrics (one that succeeds is
    /// counted when it runs).
    fn counted_if_failed(
        &self,
        kind: &str,
        started: Instant,
        prepared: Result<PreparedQuery>,
    ) -> Result<PreparedQuery> {
        if let Err(error) = &prepared {
            self.observe(kind, started, Err(error));
        }
        prepared
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
        let metrics = self.query_metrics.clone();
        let permit = Arc::new(self.admit(kind).await?);
        let load = Instant::now();
        let mut sources = Vec::with_capacity(records.len());
        for record in &records {
            sources.push(self.frames.source(record).await?);
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
        let gate = &self.gate;
        let metrics = &self.query_metrics;
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
        let counter = &self.query_metrics.plan_cache;
        if let Some(frames) = &frames
            && let Some(plan) = self.frames.plans.plan(text, tables, frames)
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
            self.frames.plans.insert(text, tables, frames, plan.clone());
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
        self.metrics
            .query_duration
            .with_label_values(&[kind, outcome])
            .observe(started.elapsed().as_secs_f64());
    }

    /// The caller's view of dataset names: its own win over public ones of the same name.
    async fn by_name(&self, owner: &str) -> Result<BTreeMap<String, DatasetRecord>> {
        let mut by_name = BTreeMap::new();
        for record in self.frames.store.visible_datasets(owner).await? {
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
        let max = self.frames.limits.query_max_rows;
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
        let engine = self.frames.limits.query_engine;
        let slot: Arc<Mutex<Option<InProcessQuery>>> = Arc::default();
        let cancelled = Arc::new(AtomicBool::new(false));
        let metrics = self.query_metrics.clone();
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
        let timeout = self.frames.limits.query_timeout;
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
        &self.query_metrics
    }
}
