//! `edgebrain`: the operators' command-line tool, on the Rust client (`edgebrain-client`).
//!
//! ```text
//! edgebrain health
//! edgebrain datasets upload sales.csv --name sales
//! edgebrain query sql "SELECT store, SUM(qty) AS units FROM sales GROUP BY store" --format table
//! edgebrain documents upload returns.md
//! edgebrain knowledge search "how long do refunds take"
//! edgebrain ask "Which store sold most?"
//! ```
//!
//! Where: `--url` or `EDGEBRAIN_URL` (default `http://127.0.0.1:8787`, what `scripts/run`
//! prints). Who: `EDGEBRAIN_TOKEN` (a bearer token for the edge), and the edge's session, kept
//! per URL in `--session-file` (default `<config dir>/edgebrain/session.json`). Results go to
//! stdout; progress, tool calls and errors to stderr (progress only on a terminal). Failures
//! print the error body's message and exit 1.
//!
//! # Layout
//! `main.rs` (arguments, commands), `session.rs` (the session file), `table.rs` (rendering).

mod session;
mod table;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use edgebrain_client::{Client, ClientError, UploadOptions, UploadProgress};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use shared_types::chat::{
    CreateThread, PageParams, RunMessageMetadata, SendMessage, UiMessageChunk,
};
use shared_types::data::{
    DataFormat, PageRequest, ResultRequest, ResultShape, Scope, SqlQuery, media,
};
use shared_types::diag::StreamParams;
use shared_types::knowledge::SearchRequest;

use session::SessionFile;

/// Longest thread title the brain accepts (characters).
const MAX_TITLE_CHARS: usize = 200;

#[derive(Debug, Parser)]
#[command(
    name = "edgebrain",
    version,
    about = "Operate an edgebrain deployment from the terminal"
)]
struct Args {
    /// The deployment (its edge), e.g. https://app.example or http://127.0.0.1:8787.
    #[arg(
        long,
        env = "EDGEBRAIN_URL",
        default_value = "http://127.0.0.1:8787",
        global = true
    )]
    url: String,
    /// Where the edge's session token is kept (per URL).
    #[arg(long, env = "EDGEBRAIN_SESSION_FILE", global = true)]
    session_file: Option<PathBuf>,
    /// Seconds allowed to connect.
    #[arg(long, default_value_t = 10, global = true, value_parser = clap::value_parser!(u64).range(1..=600))]
    connect_timeout: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Is the deployment up? (the edge's /health)
    Health,
    /// Who the brain thinks you are.
    Whoami,
    /// Datasets held by the brain.
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Query datasets.
    #[command(subcommand)]
    Query(QueryCommand),
    /// Documents in your knowledge base (text, Markdown, HTML, PDF).
    #[command(subcommand)]
    Documents(DocumentsCommand),
    /// Search your knowledge base.
    #[command(subcommand)]
    Knowledge(KnowledgeCommand),
    /// Deployment checks.
    #[command(subcommand)]
    Diag(DiagCommand),
    /// Ask a question; the answer streams to stdout.
    Ask {
        question: String,
        /// Continue this thread (default: a new one, titled after the question).
        #[arg(long)]
        thread: Option<String>,
        /// A model name from the brain's configuration.
        #[arg(long)]
        model: Option<String>,
        /// The agent of a new thread (`edgebrain agents`; default: the brain's default agent).
        #[arg(long)]
        agent: Option<String>,
        /// Cap on the reply's tokens.
        #[arg(long)]
        max_output_tokens: Option<u32>,
    },
    /// The agents a thread can use.
    Agents,
    /// Conversations.
    #[command(subcommand)]
    Threads(ThreadsCommand),
    /// Replies being generated.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Your runs, tokens, cost and budget.
    Usage,
}

#[derive(Debug, Subcommand)]
enum DatasetsCommand {
    /// Upload a file (CSV, Parquet, NDJSON, JSON) as a new dataset.
    Upload {
        file: PathBuf,
        /// Dataset name (default: the file name without extension).
        #[arg(long)]
        name: Option<String>,
        /// Default: from the file's extension.
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Type overrides, `col:type,…` (bool, int32, int64, float64, string, date, datetime).
        #[arg(long)]
        schema: Option<String>,
        /// Readable by every caller.
        #[arg(long)]
        public: bool,
    },
    /// Your datasets and the public ones.
    List {
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// Columns, statistics and first rows of a dataset (by id or name).
    Describe { dataset: String },
    /// Rename a dataset (by id or name).
    Rename { dataset: String, name: String },
    /// Delete a dataset (by id or name).
    Delete { dataset: String },
}

#[derive(Debug, Subcommand)]
enum QueryCommand {
    /// One read-only SELECT over datasets by name.
    Sql {
        sql: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Rows to return (bounded by the brain's maximum).
        #[arg(long)]
        limit: Option<u64>,
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
}

#[derive(Debug, Subcommand)]
enum DocumentsCommand {
    /// Upload a file; the brain extracts, chunks and embeds it.
    Upload {
        file: PathBuf,
        /// Document name (default: the file name).
        #[arg(long)]
        name: Option<String>,
        /// text/plain, text/markdown, text/html or application/pdf (default: from the file's
        /// extension: .txt, .md, .html, .pdf).
        #[arg(long)]
        media_type: Option<String>,
    },
    /// Your documents, newest first.
    List {
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// A document's metadata and chunks with their char offsets (JSON; by id or name).
    Get { document: String },
    /// The text the brain extracted, which every chunk offset refers to (by id or name).
    Text { document: String },
    /// Delete a document and its chunks (by id or name).
    Delete { document: String },
}

#[derive(Debug, Subcommand)]
enum KnowledgeCommand {
    /// Hybrid search (keywords and meaning) over your documents, best hit first.
    Search {
        query: String,
        /// Hits wanted (capped by the brain).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// `table` or `json` (`csv` is the table as CSV).
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
}

#[derive(Debug, Subcommand)]
enum DiagCommand {
    /// Does a streamed answer reach you unbuffered? Reads the brain's probe stream and compares
    /// when its events arrived with when they were sent; exits 1 if a hop buffered them.
    Stream {
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..))]
        events: u32,
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
        interval_ms: u64,
    },
}

#[derive(Debug, Subcommand)]
enum ThreadsCommand {
    /// Your threads, newest activity first.
    List {
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
    },
    /// A thread's messages, oldest first.
    Messages {
        thread: String,
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
        limit: u32,
    },
    /// Delete a thread (and its messages and runs).
    Delete { thread: String },
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// A run's state and usage (JSON).
    Get { run: String },
    /// Follow a run's reply until it ends (text to stdout).
    Follow {
        run: String,
        /// Resume after this event id.
        #[arg(long)]
        after: Option<u64>,
    },
    /// Stop a live run.
    Cancel { run: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Csv,
    Parquet,
    Ndjson,
    Json,
}

impl From<FormatArg> for DataFormat {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Csv => DataFormat::Csv,
            FormatArg::Parquet => DataFormat::Parquet,
            FormatArg::Ndjson => DataFormat::Ndjson,
            FormatArg::Json => DataFormat::Json,
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            ExitCode::FAILURE
        }
    }
}

/// Prints the error body's message (and code) for API errors, the chain otherwise.
fn report(error: &anyhow::Error) {
    if let Some(ClientError::Api { status, body }) = error.downcast_ref::<ClientError>() {
        eprintln!(
            "error: {} ({} {status}, request {})",
            body.error.message, body.error.code, body.error.request_id
        );
    } else {
        eprintln!("error: {error:#}");
    }
}

/// The client plus where its session is persisted.
struct Session {
    client: Client,
    url: String,
    file: Option<SessionFile>,
}

impl Session {
    fn open(args: &Args) -> Result<Self> {
        let url = args.url.trim_end_matches('/').to_owned();
        let path = args.session_file.clone().or_else(SessionFile::default_path);
        let file = path.as_deref().map(SessionFile::load).transpose()?;
        let mut builder =
            Client::builder(&url).connect_timeout(Duration::from_secs(args.connect_timeout));
        if let Ok(token) = std::env::var("EDGEBRAIN_TOKEN")
            && !token.is_empty()
        {
            builder = builder.token(token);
        }
        if let Some(session) = file.as_ref().and_then(|file| file.get(&url)) {
            builder = builder.session(session);
        }
        Ok(Self {
            client: builder.build()?,
            url,
            file,
        })
    }

    /// Writes the session the edge (re)issued, if it changed.
    fn persist(&mut self) -> Result<()> {
        if let (Some(file), Some(token)) = (self.file.as_mut(), self.client.session()) {
            file.save(&self.url, &token)?;
        }
        Ok(())
    }
}

async fn run(args: Args) -> Result<()> {
    let mut session = Session::open(&args)?;
    let outcome = dispatch(&session.client, args.command).await;
    // Keep the session even when the command failed after the edge issued it.
    let persisted = session.persist();
    outcome?;
    persisted
}

async fn dispatch(client: &Client, command: Command) -> Result<()> {
    match command {
        Command::Health => {
            let report = client.health().await?;
            println!(
                "{} {:?} (version {})",
                serde_json::to_value(report.service)?
                    .as_str()
                    .unwrap_or("?"),
                report.status,
                report.version
            );
            Ok(())
        }
        Command::Whoami => print_json(&client.session_identity().await?),
        Command::Datasets(command) => datasets(client, command).await,
        Command::Query(QueryCommand::Sql {
            sql,
            format,
            limit,
            offset,
        }) => query_sql(client, sql, format, limit, offset).await,
        Command::Documents(command) => documents(client, command).await,
        Command::Knowledge(KnowledgeCommand::Search {
            query,
            limit,
            format,
        }) => knowledge_search(client, query, limit, format).await,
        Command::Diag(DiagCommand::Stream {
            events,
            interval_ms,
        }) => diag_stream(client, events, interval_ms).await,
        Command::Ask {
            question,
            thread,
            model,
            agent,
            max_output_tokens,
        } => ask(client, question, thread, model, agent, max_output_tokens).await,
        Command::Agents => print_json(&client.agents().await?),
        Command::Threads(command) => threads(client, command).await,
        Command::Runs(command) => runs(client, command).await,
        Command::Usage => print_json(&client.usage().await?),
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn datasets(client: &Client, command: DatasetsCommand) -> Result<()> {
    match command {
        DatasetsCommand::Upload {
            file,
            name,
            format,
            schema,
            public,
        } => {
            let name = match name {
                Some(name) => name,
                None => file
                    .file_stem()
                    .and_then(|stem| stem.to_str())
                    .map(str::to_owned)
                    .context("give --name: the file name is not usable as one")?,
            };
            let options = UploadOptions {
                format: format.map(DataFormat::from),
                schema,
                scope: public.then_some(Scope::Public),
            };
            let (bar, progress) = upload_progress(&name)?;
            let info = client.upload_file(&name, &file, &options, progress).await;
            bar.finish_and_clear();
            let info = info?;
            eprintln!(
                "created {} ({} rows, {} columns)",
                info.name,
                info.row_count,
                info.columns.len()
            );
            print_json(&info)
        }
        DatasetsCommand::List { format } => {
            let list = client.list_datasets().await?;
            match format {
                OutputFormat::Json => print_json(&list),
                OutputFormat::Table | OutputFormat::Csv => {
                    let rows = list
                        .datasets
                        .iter()
                        .map(|d| {
                            vec![
                                d.id.clone(),
                                d.name.clone(),
                                serde_json::to_value(d.scope)
                                    .ok()
                                    .and_then(|v| v.as_str().map(str::to_owned))
                                    .unwrap_or_default(),
                                d.row_count.to_string(),
                                d.columns.len().to_string(),
                                d.bytes.to_string(),
                            ]
                        })
                        .collect::<Vec<_>>();
                    let header = ["id", "name", "scope", "rows", "columns", "bytes"];
                    print_rows(format, &header, &rows)
                }
            }
        }
        DatasetsCommand::Describe { dataset } => {
            let id = resolve_dataset(client, &dataset).await?;
            print_json(&client.describe_dataset(&id).await?)
        }
        DatasetsCommand::Rename { dataset, name } => {
            let id = resolve_dataset(client, &dataset).await?;
            print_json(&client.rename_dataset(&id, &name).await?)
        }
        DatasetsCommand::Delete { dataset } => {
            let id = resolve_dataset(client, &dataset).await?;
            client.delete_dataset(&id).await?;
            eprintln!("deleted {id}");
            Ok(())
        }
    }
}

/// A progress bar for an upload (drawn on a terminal only) and the callback that moves it.
fn upload_progress(
    name: &str,
) -> Result<(ProgressBar, impl FnMut(UploadProgress) + Send + 'static)> {
    let bar = ProgressBar::new(0).with_style(ProgressStyle::with_template(
        "{spinner} uploading {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )?);
    bar.set_message(name.to_owned());
    let progress = {
        let (bar, label) = (bar.clone(), name.to_owned());
        move |progress: UploadProgress| {
            bar.set_length(progress.total);
            bar.set_position(progress.sent);
            if progress.sent == progress.total {
                bar.set_message(format!("{label} (the brain is reading it)"));
            }
        }
    };
    Ok((bar, progress))
}

/// A dataset id from an id or a name (own datasets shadow public ones of the same name).
async fn resolve_dataset(client: &Client, key: &str) -> Result<String> {
    let list = client.list_datasets().await?;
    if let Some(found) = list.datasets.iter().find(|d| d.id == key) {
        return Ok(found.id.clone());
    }
    let mut named: Vec<_> = list.datasets.iter().filter(|d| d.name == key).collect();
    named.sort_by_key(|d| !d.owned);
    named
        .first()
        .map(|d| d.id.clone())
        .with_context(|| format!("no dataset with id or name `{key}`"))
}

fn print_rows(format: OutputFormat, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match format {
        OutputFormat::Csv => table::write_csv(&mut stdout, header, rows)?,
        _ => table::write_table(&mut stdout, header, rows)?,
    }
    Ok(())
}

async fn query_sql(
    client: &Client,
    sql: String,
    format: OutputFormat,
    limit: Option<u64>,
    offset: u64,
) -> Result<()> {
    let query = SqlQuery {
        sql,
        result: ResultRequest {
            page: PageRequest { offset, limit },
            shape: ResultShape::Rows,
        },
    };
    match format {
        OutputFormat::Csv => {
            let result = client.sql_raw(&query, media::CSV).await?;
            std::io::stdout().lock().write_all(&result.body)?;
            if let Some(next) = result.next_offset {
                eprintln!("more rows: --offset {next}");
            }
        }
        OutputFormat::Json => print_json(&client.sql(&query).await?)?,
        OutputFormat::Table => {
            let result = client.sql(&query).await?;
            let header: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
            let rows: Vec<Vec<String>> = result
                .rows
                .iter()
                .flatten()
                .map(|row| {
                    header
                        .iter()
                        .map(|name| table::cell(row.get(*name)))
                        .collect()
                })
                .collect();
            table::write_table(&mut std::io::stdout().lock(), &header, &rows)?;
            eprintln!(
                "{} row(s) in {:.1} ms{}",
                result.page.returned,
                result.elapsed_ms,
                result
                    .page
                    .next_offset
                    .map(|next| format!("; more rows: --offset {next}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

async fn documents(client: &Client, command: DocumentsCommand) -> Result<()> {
    match command {
        DocumentsCommand::Upload {
            file,
            name,
            media_type,
        } => {
            let name = match name {
                Some(name) => name,
                None => file_name_of(&file)?,
            };
            let (bar, progress) = upload_progress(&name)?;
            let document = client
                .upload_document_file(&name, &file, media_type.as_deref(), progress)
                .await;
            bar.finish_and_clear();
            let document = document?;
            eprintln!(
                "stored {} ({} chunks, {} chars)",
                document.name, document.chunk_count, document.chars
            );
            print_json(&document)
        }
        DocumentsCommand::List { format } => {
            let list = client.list_documents().await?;
            if format == OutputFormat::Json {
                return print_json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .documents
                .iter()
                .map(|d| {
                    vec![
                        d.id.clone(),
                        d.name.clone(),
                        d.media_type.clone(),
                        d.chunk_count.to_string(),
                        d.chars.to_string(),
                        d.bytes.to_string(),
                    ]
                })
                .collect();
            let header = ["id", "name", "type", "chunks", "chars", "bytes"];
            print_rows(format, &header, &rows)
        }
        DocumentsCommand::Get { document } => {
            let id = resolve_document(client, &document).await?;
            print_json(&client.get_document(&id).await?)
        }
        DocumentsCommand::Text { document } => {
            let id = resolve_document(client, &document).await?;
            let text = client.document_text(&id).await?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                writeln!(stdout)?;
            }
            Ok(())
        }
        DocumentsCommand::Delete { document } => {
            let id = resolve_document(client, &document).await?;
            client.delete_document(&id).await?;
            eprintln!("deleted {id}");
            Ok(())
        }
    }
}

fn file_name_of(file: &Path) -> Result<String> {
    file.file_name()
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .context("give --name: the file name is not usable as one")
}

/// A document id from an id or a name; a name several documents share needs the id.
async fn resolve_document(client: &Client, key: &str) -> Result<String> {
    let list = client.list_documents().await?;
    if let Some(found) = list.documents.iter().find(|d| d.id == key) {
        return Ok(found.id.clone());
    }
    let named: Vec<&str> = list
        .documents
        .iter()
        .filter(|d| d.name == key)
        .map(|d| d.id.as_str())
        .collect();
    match named.as_slice() {
        [] => bail!("no document with id or name `{key}`"),
        [id] => Ok((*id).to_owned()),
        ids => bail!(
            "{} documents are named `{key}`: give one of their ids ({})",
            ids.len(),
            ids.join(", ")
        ),
    }
}

async fn knowledge_search(
    client: &Client,
    query: String,
    limit: u32,
    format: OutputFormat,
) -> Result<()> {
    if query.trim().is_empty() {
        bail!("the query is empty");
    }
    let request = SearchRequest {
        query,
        limit: Some(limit),
    };
    let found = client.search_knowledge(&request).await?;
    if format == OutputFormat::Json {
        return print_json(&found);
    }
    let rows: Vec<Vec<String>> = found
        .hits
        .iter()
        .map(|hit| {
            vec![
                format!("{:.4}", hit.score),
                hit.chunk.document_name.clone(),
                hit.chunk.chunk_index.to_string(),
                format!("{}..{}", hit.chunk.start, hit.chunk.end),
                hit.chunk.text.clone(),
            ]
        })
        .collect();
    print_rows(
        format,
        &["score", "document", "chunk", "chars", "text"],
        &rows,
    )?;
    if format == OutputFormat::Table {
        eprintln!("{} hit(s)", found.hits.len());
    }
    Ok(())
}

/// Reads the probe stream and judges it: through a hop that buffers, every event arrives at
/// once; streamed, they arrive spread out about as they were sent. Spreads on each side's own
/// clock, so the client's and the brain's clocks need not agree.
async fn diag_stream(client: &Client, events: u32, interval_ms: u64) -> Result<()> {
    let params = StreamParams {
        events,
        interval_ms,
        break_after: None,
    };
    let mut stream = client.diag_stream(&params).await?;
    let mut first: Option<(Instant, u64)> = None;
    let mut spreads = (0u64, 0u64);
    while let Some(tick) = stream.next().await {
        let tick = tick?;
        let now = Instant::now();
        let (arrived, sent) = first.get_or_insert((now, tick.sent_at_ms));
        let arrival_ms =
            u64::try_from(now.duration_since(*arrived).as_millis()).unwrap_or(u64::MAX);
        let sent_ms = tick.sent_at_ms.saturating_sub(*sent);
        println!(
            "tick {}/{}  arrived +{arrival_ms} ms  sent +{sent_ms} ms",
            tick.seq, tick.of
        );
        spreads = (arrival_ms, sent_ms);
    }
    let (arrival_spread, sent_spread) = spreads;
    if streamed(arrival_spread, sent_spread) {
        eprintln!(
            "streamed: the events arrived over {arrival_spread} ms as they were sent over {sent_spread} ms (no hop buffers)"
        );
        Ok(())
    } else {
        bail!(
            "buffered: the events arrived within {arrival_spread} ms although they were sent over {sent_spread} ms: a hop between here and the brain buffers streamed answers"
        )
    }
}

/// Arrivals spread over at least half the time the sends took: nothing held them back to
/// release them together.
fn streamed(arrival_spread_ms: u64, sent_spread_ms: u64) -> bool {
    arrival_spread_ms.saturating_mul(2) >= sent_spread_ms
}

fn title_of(question: &str) -> String {
    let line = question.lines().next().unwrap_or_default().trim();
    let title: String = line.chars().take(MAX_TITLE_CHARS).collect();
    if title.is_empty() {
        "New conversation".to_owned()
    } else {
        title
    }
}

async fn ask(
    client: &Client,
    question: String,
    thread: Option<String>,
    model: Option<String>,
    agent: Option<String>,
    max_output_tokens: Option<u32>,
) -> Result<()> {
    if question.trim().is_empty() {
        bail!("the question is empty");
    }
    let thread_id = match thread {
        Some(id) => id,
        None => {
            let body = CreateThread {
                title: Some(title_of(&question)),
                agent,
            };
            client.create_thread(&body).await?.id
        }
    };
    let message = SendMessage {
        content: Some(question),
        model,
        max_output_tokens,
        ..SendMessage::default()
    };
    let spinner = ProgressBar::new_spinner().with_message("waiting for the first token");
    spinner.enable_steady_tick(Duration::from_millis(100));
    let stream = client.send_message(&thread_id, &message).await;
    let stream = match stream {
        Ok(stream) => stream,
        Err(error) => {
            spinner.finish_and_clear();
            return Err(error.into());
        }
    };
    let run_id = stream.run_id().map(str::to_owned);
    let outcome = print_reply(stream, Some(spinner)).await?;
    eprintln!(
        "thread {thread_id} · run {}",
        run_id.as_deref().unwrap_or("?")
    );
    outcome.into_result()
}

/// How a streamed reply ended.
#[derive(Debug)]
enum ReplyEnd {
    Finished,
    Failed(String),
    Aborted,
}

impl ReplyEnd {
    fn into_result(self) -> Result<()> {
        match self {
            ReplyEnd::Finished => Ok(()),
            ReplyEnd::Failed(message) => bail!("the run failed: {message}"),
            ReplyEnd::Aborted => bail!("the run was cancelled"),
        }
    }
}

/// Writes text deltas to stdout as they arrive and tool calls compactly to stderr.
async fn print_reply(
    mut stream: edgebrain_client::ChunkStream,
    mut spinner: Option<ProgressBar>,
) -> Result<ReplyEnd> {
    let mut stdout = std::io::stdout();
    let mut end = None;
    let mut wrote_text = false;
    let stop_spinner = |spinner: &mut Option<ProgressBar>| {
        if let Some(spinner) = spinner.take() {
            spinner.finish_and_clear();
        }
    };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                stop_spinner(&mut spinner);
                return Err(error.into());
            }
        };
        match chunk {
            UiMessageChunk::TextDelta { delta, .. } => {
                stop_spinner(&mut spinner);
                write!(stdout, "{delta}")?;
                stdout.flush()?;
                wrote_text = true;
            }
            UiMessageChunk::ToolInputAvailable {
                tool_name, input, ..
            } => {
                stop_spinner(&mut spinner);
                eprintln!("[tool {tool_name} {input}]");
            }
            UiMessageChunk::ToolOutputAvailable { output, .. } => {
                eprintln!("[tool → {output}]");
            }
            UiMessageChunk::ToolOutputError { error_text, .. } => {
                eprintln!("[tool error: {error_text}]");
            }
            UiMessageChunk::Error { error_text } => {
                stop_spinner(&mut spinner);
                end = Some(ReplyEnd::Failed(error_text));
            }
            UiMessageChunk::Abort => end = Some(ReplyEnd::Aborted),
            UiMessageChunk::DataGrounding { data, .. }
                if data.status == shared_types::agent::GroundingStatus::Unverified =>
            {
                eprintln!("[not verified against your data]");
            }
            UiMessageChunk::DataNotice { data, .. } => {
                stop_spinner(&mut spinner);
                eprintln!("[{}]", data.message);
            }
            UiMessageChunk::Finish {
                finish_reason,
                message_metadata,
            } => {
                if finish_reason == Some(shared_types::chat::FinishReason::Length) {
                    if wrote_text {
                        writeln!(stdout)?;
                        wrote_text = false;
                    }
                    eprintln!("[cut off at the output limit; ask it to continue]");
                }
                if let Some(usage) = message_metadata
                    .and_then(|m| serde_json::from_value::<RunMessageMetadata>(m).ok())
                    .and_then(|m| m.usage)
                {
                    if wrote_text {
                        writeln!(stdout)?;
                        wrote_text = false;
                    }
                    eprintln!(
                        "[{} tokens in, {} out]",
                        usage.input_tokens, usage.output_tokens
                    );
                }
                end.get_or_insert(ReplyEnd::Finished);
            }
            _ => {}
        }
    }
    stop_spinner(&mut spinner);
    if wrote_text {
        writeln!(stdout)?;
    }
    Ok(end.unwrap_or(ReplyEnd::Finished))
}

async fn threads(client: &Client, command: ThreadsCommand) -> Result<()> {
    match command {
        ThreadsCommand::List { limit, format } => {
            let page = client
                .list_threads(&PageParams {
                    limit: Some(limit),
                    cursor: None,
                })
                .await?;
            if format == OutputFormat::Json {
                return print_json(&page);
            }
            let rows: Vec<Vec<String>> = page
                .threads
                .iter()
                .map(|t| {
                    vec![
                        t.id.clone(),
                        t.title.clone(),
                        (t.usage.input_tokens + t.usage.output_tokens).to_string(),
                    ]
                })
                .collect();
            print_rows(format, &["id", "title", "tokens"], &rows)
        }
        ThreadsCommand::Messages { thread, limit } => print_json(
            &client
                .list_messages(
                    &thread,
                    &PageParams {
                        limit: Some(limit),
                        cursor: None,
                    },
                )
                .await?,
        ),
        ThreadsCommand::Delete { thread } => {
            client.delete_thread(&thread).await?;
            eprintln!("deleted {thread}");
            Ok(())
        }
    }
}

async fn runs(client: &Client, command: RunsCommand) -> Result<()> {
    match command {
        RunsCommand::Get { run } => print_json(&client.get_run(&run).await?),
        RunsCommand::Follow { run, after } => {
            let spinner = ProgressBar::new_spinner().with_message(format!("following run {run}"));
            spinner.enable_steady_tick(Duration::from_millis(100));
            let stream = client.follow_run(&run, after).await;
            let stream = match stream {
                Ok(stream) => stream,
                Err(error) => {
                    spinner.finish_and_clear();
                    return Err(error.into());
                }
            };
            print_reply(stream, Some(spinner)).await?.into_result()
        }
        RunsCommand::Cancel { run } => {
            client.cancel_run(&run).await?;
            eprintln!("cancellation requested for run {run}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_the_first_line_bounded() {
        assert_eq!(title_of("Which store?\nmore"), "Which store?");
        assert_eq!(title_of("  \n"), "New conversation");
        assert_eq!(title_of(&"é".repeat(300)).chars().count(), MAX_TITLE_CHARS);
    }

    #[test]
    fn streams_are_judged_by_their_spreads() {
        assert!(streamed(780, 800));
        assert!(streamed(400, 800));
        assert!(!streamed(3, 800));
        assert!(streamed(0, 0));
    }

    #[test]
    fn arguments_parse() {
        let args = Args::try_parse_from([
            "edgebrain",
            "--url",
            "http://127.0.0.1:1",
            "query",
            "sql",
            "SELECT 1",
            "--format",
            "csv",
        ]);
        assert!(args.is_ok(), "{args:?}");
        assert!(Args::try_parse_from(["edgebrain", "threads", "list", "--limit", "0"]).is_err());
        let search = Args::try_parse_from([
            "edgebrain",
            "knowledge",
            "search",
            "refunds",
            "--limit",
            "3",
        ]);
        assert!(matches!(
            search.map(|args| args.command),
            Ok(Command::Knowledge(KnowledgeCommand::Search {
                limit: 3,
                ..
            }))
        ));
        assert!(
            Args::try_parse_from(["edgebrain", "knowledge", "search", "x", "--limit", "0"])
                .is_err()
        );
        assert!(Args::try_parse_from(["edgebrain", "diag", "stream", "--events", "1"]).is_err());
        let upload = Args::try_parse_from([
            "edgebrain",
            "documents",
            "upload",
            "returns.md",
            "--media-type",
            "text/plain",
        ]);
        assert!(matches!(
            upload.map(|args| args.command),
            Ok(Command::Documents(DocumentsCommand::Upload {
                media_type: Some(_),
                name: None,
                ..
            }))
        ));
    }
}
