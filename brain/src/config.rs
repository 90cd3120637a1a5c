//! Configuration: every setting is a command-line flag and an environment variable.
//!
//! Tests build a [`Config`] without touching the process arguments through
//! [`Config::from_args`] and then overwrite the public fields they care about.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::store::Backend;

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
    /// Socket address to listen on. Port 0 picks a free port; the real address is logged on the
    /// `listening` line.
    #[arg(long, env = "BRAIN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Directory for local state, created (recursively) on first start. Holds the default SQLite
    /// database file `brain.db`.
    #[arg(long, env = "BRAIN_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL. `postgres://…` or `postgresql://…` selects PostgreSQL, `sqlite:…` SQLite.
    /// Default: the SQLite file `<data-dir>/brain.db`, created if missing.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,

    /// Maximum number of pooled database connections.
    #[arg(long, env = "BRAIN_DB_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,

    /// How long to wait for a database connection (at startup and per request), in milliseconds.
    #[arg(long, env = "BRAIN_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5000)]
    pub db_acquire_timeout_ms: u64,

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

    /// Context window assumed for the local model, in tokens (prompt + output).
    #[arg(long, env = "BRAIN_LOCAL_LLM_CONTEXT_TOKENS", default_value_t = 2048)]
    pub local_llm_context_tokens: u32,

    /// Upper bound of generated tokens per call to the local model.
    #[arg(long, env = "BRAIN_LOCAL_LLM_MAX_OUTPUT_TOKENS", default_value_t = 256)]
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

    /// Model calls per run when the model keeps calling tools.
    #[arg(long, env = "BRAIN_MAX_TOOL_STEPS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tool_steps: u32,

    /// Most recent messages of a thread considered for the context (then trimmed to the token
    /// budget).
    #[arg(long, env = "BRAIN_CONTEXT_MAX_MESSAGES", default_value_t = 100)]
    pub context_max_messages: u32,

    /// Tokens (input + output, all runs) each caller identity may spend; unset: unlimited.
    #[arg(long, env = "BRAIN_BUDGET_TOKENS_PER_OWNER")]
    pub budget_tokens_per_owner: Option<u64>,

    /// Log line format on stdout. The filter comes from `RUST_LOG` (default `info`).
    #[arg(long, env = "BRAIN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Format of the log lines written to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable `key=value` lines.
    Text,
    /// One JSON object per line.
    Json,
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
        let url = match &self.database_url {
            Some(url) => url.clone(),
            None => DatabaseUrl::sqlite_file(&self.data_dir.join(SQLITE_FILE_NAME))?,
        };
        Ok(DatabaseConfig {
            backend: url.backend()?,
            url,
            max_connections: self.db_max_connections,
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
        })
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

/// Everything [`crate::store::Store::connect`] needs.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    pub backend: Backend,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// A database URL. It may contain a password, so `Debug` and [`DatabaseUrl::redacted`] hide it;
/// only [`DatabaseUrl::expose`] returns the real text.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL of a SQLite file, created if missing (`mode=rwc`). Relative paths are made
    /// absolute against the working directory so the log shows exactly which file is used.
    pub fn sqlite_file(path: &Path) -> Result<Self, ConfigError> {
        let absolute =
            std::path::absolute(path).map_err(|_| ConfigError::NonUtf8Path(path.to_path_buf()))?;
        let text = absolute
            .to_str()
            .ok_or_else(|| ConfigError::NonUtf8Path(path.to_path_buf()))?;
        // sqlx percent-decodes the file name; escape the characters a URL would otherwise read
        // as escapes, query or fragment.
        let mut encoded = String::with_capacity(text.len());
        for ch in text.chars() {
            match ch {
                '%' => encoded.push_str("%25"),
                '?' => encoded.push_str("%3F"),
                '#' => encoded.push_str("%23"),
                _ => encoded.push(ch),
            }
        }
        Ok(Self(format!("sqlite://{encoded}?mode=rwc")))
    }

    /// The URL scheme (text before the first `:`), lower-cased.
    pub fn scheme(&self) -> Option<String> {
        self.0
            .split_once(':')
            .map(|(scheme, _)| scheme.to_ascii_lowercase())
    }

    /// Which backend the URL selects.
    pub fn backend(&self) -> Result<Backend, ConfigError> {
        match self.scheme().as_deref() {
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            Some("sqlite") => Ok(Backend::Sqlite),
            Some(scheme) => Err(ConfigError::UnsupportedScheme(scheme.to_owned())),
            None => Err(ConfigError::NotAUrl),
        }
    }

    /// The URL with any password (user-info or `password=` query parameter) replaced, for logs.
    pub fn redacted(&self) -> String {
        const MASK: &str = "redacted";
        let Ok(mut url) = url::Url::parse(&self.0) else {
            return "<unparseable database URL>".to_owned();
        };
        if url.password().is_some() && url.set_password(Some(MASK)).is_err() {
            return "<unparseable database URL>".to_owned();
        }
        if url.query_pairs().any(|(key, _)| key == "password") {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(key, value)| {
                    let value = if key == "password" {
                        MASK.into()
                    } else {
                        value
                    };
                    (key.into_owned(), value.into_owned())
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        url.into()
    }

    /// The real URL, password included. Only the store should need this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self(url)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "unsupported database URL scheme `{0}` (expected `postgres://`, `postgresql://` or `sqlite:`)"
    )]
    UnsupportedScheme(String),
    #[error(
        "the database URL has no scheme (expected `postgres://…`, `postgresql://…` or `sqlite:…`)"
    )]
    NotAUrl,
    #[error("path {0:?} is not valid UTF-8 and cannot be used in a SQLite URL")]
    NonUtf8Path(PathBuf),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let config = Config::try_parse_from(["brain"]).unwrap();
        // The environment of the test run may set BRAIN_* variables; only check what it cannot.
        if std::env::var_os("BRAIN_BIND").is_none() {
            assert_eq!(config.bind, "127.0.0.1:8080".parse().unwrap());
        }
        if std::env::var_os("BRAIN_MAX_BODY_BYTES").is_none() {
            assert_eq!(config.max_body_bytes, 1_048_576);
        }
        if std::env::var_os("BRAIN_SHUTDOWN_GRACE_SECS").is_none() {
            assert_eq!(config.shutdown_grace_secs, 30);
        }
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
        assert_eq!(config.bind.port(), 0);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.diag_max_events, 7);
        assert_eq!(config.database().unwrap().backend, Backend::Postgres);
        assert!(Config::try_parse_from(["brain", "--diag-max-events", "0"]).is_err());
    }

    #[test]
    fn default_database_is_a_sqlite_file_in_the_data_dir() {
        let mut config = Config::try_parse_from(["brain"]).unwrap();
        config.database_url = None;
        config.data_dir = PathBuf::from("/var/lib/brain 1/a?b#c%d");
        let database = config.database().unwrap();
        assert_eq!(database.backend, Backend::Sqlite);
        assert_eq!(
            database.url.expose(),
            "sqlite:///var/lib/brain 1/a%3Fb%23c%25d/brain.db?mode=rwc"
        );
    }

    #[test]
    fn backend_follows_the_scheme() {
        let backend = |url: &str| DatabaseUrl::from(url.to_owned()).backend();
        assert_eq!(backend("postgres://h/db").unwrap(), Backend::Postgres);
        assert_eq!(backend("PostgreSQL://h/db").unwrap(), Backend::Postgres);
        assert_eq!(backend("sqlite::memory:").unwrap(), Backend::Sqlite);
        let error = backend("mysql://root:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert!(error.contains("`mysql`"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        assert!(matches!(backend("no-scheme"), Err(ConfigError::NotAUrl)));
    }

    #[test]
    fn redaction_hides_passwords() {
        let url =
            DatabaseUrl::from("postgres://app:hunter2@db:5432/brain?sslmode=require".to_owned());
        assert_eq!(
            url.redacted(),
            "postgres://app:redacted@db:5432/brain?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
        let url = DatabaseUrl::from("postgres://db/brain?user=app&password=hunter2".to_owned());
        assert!(!url.redacted().contains("hunter2"), "{}", url.redacted());
        let url = DatabaseUrl::from("postgres://db/brain".to_owned());
        assert_eq!(url.redacted(), "postgres://db/brain");
    }
}
