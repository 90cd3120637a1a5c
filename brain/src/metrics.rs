//! Prometheus metrics of the brain, exposed at `GET /metrics` (see `http::metrics`).
//!
//! One [`Metrics`] per application, shared through `AppState`. It owns a
//! [`prometheus::Registry`] (not the process-global one, so tests with several brains in one
//! process do not mix their numbers). Subsystems that want metrics of their own create them and
//! register them with [`Metrics::register`]; everything registered is rendered by `/metrics`.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntGauge, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds, from 1 ms to 60 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

/// The brain's own metrics plus the registry that renders them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `brain_http_request_duration_seconds{method, route, status}`: route is the matched
    /// pattern (`/api/v1/datasets/{id}`), never the raw path, so label values stay few.
    pub http_request_duration: HistogramVec,
    /// `brain_query_duration_seconds{kind, outcome}`: kind `sql` or `json`; outcome `ok`,
    /// `error` or `timeout`.
    pub query_duration: HistogramVec,
    /// `brain_frames_bytes`: estimated bytes of the DataFrames held in memory.
    pub frames_bytes: IntGauge,
    /// `brain_frames_loaded`: number of DataFrames held in memory.
    pub frames_loaded: IntGauge,
    /// `brain_frame_loads_total`: frames read from Parquet into memory.
    pub frame_loads: IntCounter,
    /// `brain_frame_evictions_total`: frames dropped from memory to stay within the budget.
    pub frame_evictions: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "brain_http_request_duration_seconds",
                "Time from request to response head, by matched route.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route", "status"],
        )?;
        let query_duration = HistogramVec::new(
            HistogramOpts::new(
                "brain_query_duration_seconds",
                "Time to run a dataset query (SQL or typed JSON), including loading its frames.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["kind", "outcome"],
        )?;
        let frames_bytes = IntGauge::with_opts(Opts::new(
            "brain_frames_bytes",
            "Estimated bytes of the DataFrames held in memory.",
        ))?;
        let frames_loaded = IntGauge::with_opts(Opts::new(
            "brain_frames_loaded",
            "DataFrames held in memory.",
        ))?;
        let frame_loads = IntCounter::with_opts(Opts::new(
            "brain_frame_loads_total",
            "DataFrames read from Parquet into memory.",
        ))?;
        let frame_evictions = IntCounter::with_opts(Opts::new(
            "brain_frame_evictions_total",
            "DataFrames dropped from memory to stay within the memory budget.",
        ))?;
        let metrics = Self {
            registry,
            http_request_duration,
            query_duration,
            frames_bytes,
            frames_loaded,
            frame_loads,
            frame_evictions,
        };
        metrics.register(metrics.http_request_duration.clone())?;
        metrics.register(metrics.query_duration.clone())?;
        metrics.register(metrics.frames_bytes.clone())?;
        metrics.register(metrics.frames_loaded.clone())?;
        metrics.register(metrics.frame_loads.clone())?;
        metrics.register(metrics.frame_evictions.clone())?;
        Ok(metrics)
    }

    /// Adds a collector (counter, gauge, histogram, or a vector of them) of another subsystem;
    /// fails if a metric of that name is already registered.
    pub fn register<C: Collector + 'static>(&self, collector: C) -> Result<(), prometheus::Error> {
        self.registry.register(Box::new(collector))
    }

    /// Everything registered, in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }
}

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn other_subsystems_can_register_and_are_rendered() {
        let metrics = Metrics::new().unwrap();
        let tokens = IntCounter::new("llm_tokens_total", "Tokens generated.").unwrap();
        metrics.register(tokens.clone()).unwrap();
        tokens.inc_by(7);
        metrics.frame_evictions.inc();
        let text = metrics.render().unwrap();
        assert!(text.contains("llm_tokens_total 7"), "{text}");
        assert!(text.contains("brain_frame_evictions_total 1"), "{text}");
        // Names are unique.
        let again = IntCounter::new("llm_tokens_total", "Tokens generated.").unwrap();
        assert!(metrics.register(again).is_err());
    }
}
