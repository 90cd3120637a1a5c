//! Where a query's time goes: each stage of the SQL and JSON paths is timed into
//! `brain_query_stage_seconds{kind, stage}` and traced as a `debug` span, so an operator (and
//! `scripts/bench-data`) can read the split from `/metrics` under real load, and the admission
//! gate and plan cache report their state.
//!
//! Stages, in order: `approve` (SQL parse + allowlist, or its cached verdict), `lookup` (the
//! caller's visible datasets from the database), `admit` (waiting for a turn), `load` (frames
//! from Parquet when not in memory), `plan` (polars-sql planning + the brain's rewrite, or the
//! cached plan; the JSON query's plan), `execute` (polars: optimise + run, one page),
//! `serialise` (the answer as JSON/CSV/Arrow, in the HTTP layer).

use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts};

use crate::metrics::Metrics;

/// Stage-time buckets: 50 µs to 10 s.
const STAGE_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// The data plane's own metrics (registered on the application's registry).
#[derive(Debug, Clone)]
pub struct QueryMetrics {
    stage_seconds: HistogramVec,
    pub running: IntGauge,
    pub waiting: IntGauge,
    pub refused: IntCounterVec,
    pub plan_cache: IntCounterVec,
}

impl QueryMetrics {
    pub fn register(metrics: &Metrics) -> anyhow::Result<Self> {
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new(
                "brain_query_stage_seconds",
                "Time a query spends in each stage (approve, lookup, admit, load, plan, \
                 execute, serialise).",
            )
            .buckets(STAGE_BUCKETS.to_vec()),
            &["kind", "stage"],
        )?;
        let running = IntGauge::with_opts(Opts::new(
            "brain_queries_running",
            "Queries executing now (at most the admission concurrency).",
        ))?;
        let waiting = IntGauge::with_opts(Opts::new(
            "brain_queries_waiting",
            "Queries waiting for a turn (at most the admission queue).",
        ))?;
        let refused = IntCounterVec::new(
            Opts::new(
                "brain_queries_refused_total",
                "Queries answered 503 because the admission queue was full.",
            ),
            &["kind"],
        )?;
        let plan_cache = IntCounterVec::new(
            Opts::new(
                "brain_query_plan_cache_total",
                "SQL plan cache lookups by result (hit, miss).",
            ),
            &["result"],
        )?;
        metrics.register(stage_seconds.clone())?;
        metrics.register(running.clone())?;
        metrics.register(waiting.clone())?;
        metrics.register(refused.clone())?;
        metrics.register(plan_cache.clone())?;
        Ok(Self {
            stage_seconds,
            running,
            waiting,
            refused,
            plan_cache,
        })
    }

    /// Times `work` as `stage` of a `kind` query (also a `debug` span of that name).
    pub fn time<T>(&self, kind: &str, stage: &str, work: impl FnOnce() -> T) -> T {
        let span = tracing::debug_span!("query_stage", kind, stage);
        let _entered = span.enter();
        let started = Instant::now();
        let result = work();
        self.observe(kind, stage, started);
        result
    }

    /// Records a stage that started at `started` and ends now.
    pub fn observe(&self, kind: &str, stage: &str, started: Instant) {
        self.stage_seconds
            .with_label_values(&[kind, stage])
            .observe(started.elapsed().as_secs_f64());
    }
}
