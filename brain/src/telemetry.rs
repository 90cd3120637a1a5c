//! Logging: one `tracing` subscriber writing text or JSON lines to stdout.
//!
//! Deployment checks grep the brain's stdout for request ids, so the per-request completion line
//! (see [`crate::http`]) carries `request_id` as an event field, verbatim in both formats:
//!
//! ```text
//! 2025-01-01T00:00:00.000000Z  INFO brain::http: request completed request_id=4f1c… method=GET path=/health status=200 latency_ms=0.183
//! {"timestamp":"…","level":"INFO","fields":{"message":"request completed","request_id":"4f1c…","method":"GET","path":"/health","status":200,"latency_ms":0.183},"target":"brain::http"}
//! ```

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Format of the log lines written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable `key=value` lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber (stdout, filter from `RUST_LOG`, default `info`) and routes
/// `log` records of dependencies into it. Fails if `RUST_LOG` is invalid or a subscriber is
/// already installed.
pub fn init(format: LogFormat) -> anyhow::Result<()> {
    let filter = env_filter()?;
    // Colour codes would split `key=value` pairs and break log greps; only use them on a terminal.
    let ansi = std::io::stdout().is_terminal();
    subscriber(format, filter, std::io::stdout, ansi).try_init()?;
    Ok(())
}

/// The filter from `RUST_LOG`, `info` when unset.
pub fn env_filter() -> anyhow::Result<EnvFilter> {
    Ok(EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env()?)
}

/// The subscriber [`init`] installs, writing to `writer`. Public so tests can capture the exact
/// production log format.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

/// `error: cause: cause…`, for logging an error with its whole source chain on one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
