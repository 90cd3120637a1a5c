//! Building and running the service: [`Application::build`] does everything that can fail at
//! startup (configuration, data directory, database, listener), [`Application::run_until_stopped`]
//! serves (with the fleet's background work: the lease reaper, the run events listener) until a
//! shutdown future resolves, then drains for a bounded grace period: not ready, no new work,
//! in-flight runs and requests finish; what is left then is stopped.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use uuid::Uuid;

use crate::VERSION;
use crate::account::Accounts;
use crate::agent::Agents;
use crate::agent::escalations::EscalationQueue;
use crate::agent::knowledge::KnowledgeSearch;
use crate::agent::tools::ToolServices;
use crate::chat::{ChatService, ChatSettings, Fleet};
use crate::clock::{Clock, unix_millis};
use crate::config::{Config, EdgeTrustMode};
use crate::data::objects::Objects;
use crate::data::{DataLimits, DataPlane};
use crate::http::edge_auth::EdgeTrust;
use crate::http::lifecycle::Lifecycle;
use crate::http::{self, AppState, Limits};
use crate::knowledge::{KnowledgeBase, KnowledgeLimits};
use crate::metrics::Metrics;
use crate::prompts::PromptTemplates;
use crate::store::Store;

/// How long runs still in progress at shutdown may take to store their state.
const RUN_STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long closing the database pool may take once the server has stopped.
const STORE_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A built brain: database connected and migrated, this start recorded, listener bound.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    store: Store,
    chat: Arc<ChatService>,
    /// The redacted database URL, for the `listening` line.
    database: String,
    instance_id: String,
    shutdown_grace: Duration,
    /// Least time the listener stays open once draining (`--drain-announce-ms`).
    drain_announce: Duration,
    lifecycle: Lifecycle,
}

/// Services built outside the brain's configuration and handed to [`Application::build_with`].
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// The knowledge base agents search (`search_knowledge`); `None`: not configured.
    pub knowledge: Option<Arc<dyn KnowledgeSearch>>,
    /// The clock run leases are read on (default: the system clock; tests move theirs).
    pub clock: Clock,
}

impl Application {
    /// Validates the configuration, creates the data directory, connects and migrates the
    /// database, binds the listener (port 0 picks a free port) and records this start.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Extras::default()).await
    }

    /// Like [`Application::build`], with services from outside (e.g. a knowledge base).
    pub async fn build_with(config: Config, extras: Extras) -> anyhow::Result<Self> {
        // Before any I/O: a bad URL scheme is a configuration error, not a connection failure.
        let database = config
            .database()
            .context("invalid database configuration")?;
        let edge_trust = config
            .edge_trust()
            .context("invalid edge trust configuration")?;
        let leases = config
            .run_leases()
            .context("invalid run lease configuration")?;
        let router = crate::llm::config::load(&config).context("invalid LLM configuration")?;
        let templates = PromptTemplates::load(config.chat.prompts_dir.as_deref())
            .context("invalid prompt templates")?;
        let agents = Agents::load(&config, &router).context("invalid agents configuration")?;
        tokio::fs::create_dir_all(&config.server.data_dir)
            .await
            .with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    config.server.data_dir.display()
                )
            })?;
        let store = Store::connect(&database).await.with_context(|| {
            format!(
                "cannot open the {} database {}",
                database.backend,
                database.url.redacted()
            )
        })?;
        let listener = TcpListener::bind(config.server.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.server.bind))?;
        let local_addr = listener
            .local_addr()
            .context("cannot read the bound address")?;

        let instance_id = Uuid::new_v4().to_string();
        // Misconfigured object storage stops the start here, naming the URL and the cause.
        let objects = Objects::open(
            config.data.object_store_url.as_deref(),
            &config.data.object_store_options.0,
            &config.server.data_dir,
        )
        .context("invalid object store configuration")?;
        objects.probe(&instance_id).await?;

        // Unless configured, this start is a brain of its own.
        let brain_id = config
            .chat
            .brain_id
            .clone()
            .unwrap_or_else(|| instance_id.clone());
        // Recorded only once everything else succeeded, so the table counts real starts.
        let started_at_ms = i64::try_from(unix_millis()).unwrap_or(i64::MAX);
        store
            .record_start(&instance_id, VERSION, started_at_ms)
            .await
            .context("cannot record this start in the database")?;

        if matches!(edge_trust, EdgeTrustMode::InsecureLocal) {
            tracing::warn!(
                "--insecure-local: edge signatures are NOT verified and identity headers are \
                 trusted as sent; never expose this brain beyond the local machine"
            );
        } else {
            match &config.edge.edge_authority {
                Some(authorities) => tracing::info!(
                    edge_authority = %authorities,
                    "edge signatures must be bound to this brain"
                ),
                None => tracing::warn!(
                    "BRAIN_EDGE_AUTHORITY (--edge-authority) is not set: edge signatures bound to \
                     any brain are accepted, so a request signed for another brain sharing the \
                     edge secrets could be replayed here; set it to this brain's host[:port] as \
                     in the edge's BRAIN_URLS (required for a fleet, harmless for one brain)"
                ),
            }
        }
        let metrics = Arc::new(Metrics::new().context("cannot create the metrics registry")?);
        let data = DataPlane::open(
            &config.server.data_dir,
            objects,
            store.clone(),
            Arc::clone(&metrics),
            DataLimits::from_config(&config),
            config.data.sample_transactions,
            extras.clock.clone(),
        )
        .await
        .context("cannot prepare the datasets")?;
        let knowledge_limits = KnowledgeLimits::from_config(&config)
            .map_err(|message| anyhow::anyhow!(message))
            .context("invalid knowledge base configuration")?;
        let embedder = crate::knowledge::embedder_from_config(&config)
            .context("cannot set up the knowledge base's embedder")?;
        // Agents search this knowledge base unless the caller brought its own.
        let knowledge = Arc::new(KnowledgeBase::new(
            store.clone(),
            embedder,
            knowledge_limits,
        ));
        let chat = Arc::new(ChatService::new(
            store.clone(),
            router,
            templates,
            ChatSettings {
                max_concurrent_runs: config.chat.max_concurrent_runs,
                run_timeout: Duration::from_secs(config.chat.run_timeout_secs),
                run_retention: Duration::from_secs(config.chat.run_retention_secs),
                max_tool_steps: config.chat.max_tool_steps,
                context_max_messages: config.chat.context_max_messages,
                budget_tokens_per_owner: config.chat.budget_tokens_per_owner,
            },
            Fleet {
                instance_id: instance_id.clone(),
                brain_id,
                clock: extras.clock.clone(),
                leases,
            },
            agents,
            ToolServices {
                data: data.clone(),
                store: store.clone(),
                knowledge: extras
                    .knowledge
                    .or_else(|| Some(Arc::clone(&knowledge) as Arc<dyn KnowledgeSearch>)),
            },
        ));
        chat.register_metrics(&metrics)
            .context("cannot register the chat metrics")?;
        // Runs an earlier process left unfinished cannot be resumed: say so.
        let interrupted = chat
            .recover()
            .await
            .context("cannot mark interrupted runs")?;
        if interrupted > 0 {
            tracing::warn!(
                runs = interrupted,
                "marked runs interrupted by the previous stop as failed"
            );
        }
        tracing::info!(
            models = %chat.router().model_names().collect::<Vec<_>>().join(","),
            templates = ?chat.templates().versions(),
            agents = %chat.agents().list().agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(","),
            default_agent = %chat.agents().default_name(),
            "LLM models and agents ready"
        );
        let limits = Limits::from_config(&config);
        let lifecycle = Lifecycle::default();
        let state = AppState {
            store: store.clone(),
            limits,
            edge_trust: Arc::new(
                EdgeTrust::new(
                    edge_trust,
                    Duration::from_secs(config.edge.edge_signature_tolerance_secs),
                    usize::try_from(config.edge.edge_replay_cache_entries).unwrap_or(usize::MAX),
                    config.edge.edge_signed_body_max_bytes,
                )
                .bound_to(config.edge.edge_authority.clone()),
            ),
            data,
            metrics,
            chat: Arc::clone(&chat),
            knowledge,
            escalations: EscalationQueue::new(store.clone(), extras.clock.clone()),
            lifecycle: lifecycle.clone(),
            accounts: Accounts::new(
                store.clone(),
                extras.clock.clone(),
                Duration::from_millis(config.edge.refresh_reuse_leeway_ms),
            ),
        };
        Ok(Self {
            listener,
            local_addr,
            router: http::app(state),
            store,
            chat,
            database: database.url.redacted(),
            instance_id,
            shutdown_grace: config.shutdown_grace(),
            drain_announce: config.drain_announce(),
            lifecycle,
        })
    }

    /// The bound port (the real one when the configuration asked for port 0).
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The id of this start, as recorded in `brain_starts`.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The chat service (runs, leases, the reaper's step [`ChatService::reap_expired_runs`]).
    pub fn chat(&self) -> &Arc<ChatService> {
        &self.chat
    }

    /// Serves until `shutdown` resolves, then drains: `/ready` answers 503 and new work is
    /// refused (503 `unavailable`, `x-edgebrain-draining: 1`) while runs in progress finish;
    /// once none is left the listener closes and in-flight requests finish. All of it within
    /// the configured grace period (long SSE streams and runs must not hold the process
    /// forever): past it, requests still running are abandoned and runs still going are
    /// stopped (`failed`, interrupted) and stored.
    pub async fn run_until_stopped<F>(self, shutdown: F) -> anyhow::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let grace = self.shutdown_grace;
        let announce = self.drain_announce;
        let (draining_tx, draining_rx) = oneshot::channel::<()>();
        let lifecycle = self.lifecycle.clone();
        let chat = Arc::clone(&self.chat);
        let signal = async move {
            shutdown.await;
            lifecycle.start_draining();
            tracing::info!(
                grace_secs = grace.as_secs(),
                runs = chat.runs_in_progress(),
                "draining: not ready, refusing new work, letting runs and requests finish"
            );
            // The receiver is gone only if the server already stopped; nothing to tell then.
            let _ = draining_tx.send(());
            // The listener stays open for at least `announce`, answering new work "draining",
            // so the edges learn to pass this brain over before its port closes.
            tokio::join!(chat.wait_until_idle(), tokio::time::sleep(announce));
            tracing::info!("no run in progress; no longer accepting connections");
        };
        let grace_over = async move {
            match draining_rx.await {
                Ok(()) => tokio::time::sleep(grace).await,
                // The server stopped without a shutdown request: nothing to bound.
                Err(_) => std::future::pending().await,
            }
        };

        // The fleet's background work, until the runs are stopped below.
        let (stop_background, background_stop) = watch::channel(false);
        let stopped = |mut receiver: watch::Receiver<bool>| async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        };
        let reaper = tokio::spawn(
            Arc::clone(&self.chat).reap_periodically(stopped(background_stop.clone())),
        );
        let store = self.store.clone();
        let listener_stop = stopped(background_stop);
        let listener =
            tokio::spawn(async move { store.listen_for_run_events(listener_stop).await });

        tracing::info!(
            address = %self.local_addr,
            backend = %self.store.backend(),
            database = %self.database,
            version = %VERSION,
            instance_id = %self.instance_id,
            brain_id = %self.chat.fleet().brain_id,
            "listening"
        );
        // Small SSE frames must leave at once, not wait for Nagle's algorithm.
        let listener_io = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        let server = axum::serve(listener_io, self.router)
            .with_graceful_shutdown(signal)
            .into_future();

        let result = tokio::select! {
            served = server => served.context("the HTTP server failed"),
            () = grace_over => {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "grace period over; abandoning requests still in flight"
                );
                Ok(())
            }
        };
        // Runs outlive requests: stop those still going and store their state honestly
        // (`failed`, interrupted) while the database is still open.
        self.chat.shutdown(RUN_STOP_TIMEOUT).await;
        let _ = stop_background.send(true);
        for task in [reaper, listener] {
            let _ = task.await;
        }
        if tokio::time::timeout(STORE_CLOSE_TIMEOUT, self.store.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections still busy; not waiting for them");
        }
        tracing::info!("stopped");
        result
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => tracing::info!(signal = "SIGINT", "shutdown signal received"),
        () = terminate => tracing::info!(signal = "SIGTERM", "shutdown signal received"),
    }
}
