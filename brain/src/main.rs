//! The `brain` binary: configuration → logging → build → serve until SIGINT/SIGTERM.

use std::process::ExitCode;

use brain::startup::shutdown_signal;
use brain::{Application, Config, telemetry};
use clap::Parser;

/// jemalloc, not the system allocator: it gives freed temporaries back to the OS after its
/// decay time, which keeps RSS near the loaded frames' size (BENCHMARKS.md, data plane). Not on
/// MSVC, where jemalloc does not build.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(error) = telemetry::init(config.server.log_format) {
        eprintln!("brain: cannot initialise logging: {error:#}");
        return ExitCode::FAILURE;
    }
    let application = match Application::build(config).await {
        Ok(application) => application,
        Err(error) => return fail("startup failed", &error),
    };
    match application.run_until_stopped(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail("server failed", &error),
    }
}

/// Logs the failure (stdout, with the other logs) and repeats it on stderr for whoever started
/// the process.
fn fail(what: &str, error: &anyhow::Error) -> ExitCode {
    tracing::error!(error = format!("{error:#}"), "{what}");
    eprintln!("brain: {what}: {error:#}");
    ExitCode::FAILURE
}
