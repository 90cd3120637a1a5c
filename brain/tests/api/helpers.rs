//! `spawn_app` and friends: a running brain per test, with its own data directory and database.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use brain::store::DatabaseUrl;
use brain::store::admin::{create_postgres_database, drop_postgres_database};
use brain::{Application, Config};
use futures_util::StreamExt;
use reqwest::header::CONTENT_TYPE;
use shared_types::error::{ErrorBody, ErrorCode};
use shared_types::headers::REQUEST_ID;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub(crate) use brain::store::Backend;

/// Both backends, for tests that must hold on each.
pub(crate) const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

/// Upper bound for anything a test awaits, so a regression fails instead of hanging.
pub(crate) const TEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The secret test brains share with the (simulated) edge: requests sent through
/// [`TestApp::send`] and [`TestApp::send_as`] are signed with it, as the edge signs.
pub(crate) const TEST_EDGE_SECRET: &str = "test-edge-secret-0123456789abcdef0123456789";

/// The authority test brains are told is theirs (`--edge-authority`), as the edge would write
/// it for `http://brain-under-test.internal:8080` in its `BRAIN_URLS`; the simulated edge binds
/// its signatures to it. (The brain never compares it with the `Host` it is reached on.)
pub(crate) const TEST_BRAIN_AUTHORITY: &str = "brain-under-test.internal:8080";

/// Signs `request` the way the edge does: HMAC over method, the brain's authority, path and
/// query, time, a fresh nonce, the body digest (or `UNSIGNED-PAYLOAD` for a streamed body) and the identity headers
/// already on it.
pub(crate) fn sign_as_edge(request: &mut reqwest::Request) {
    use shared_types::headers::{EDGE_SIGNATURE, IDENTITY_HEADERS};
    use shared_types::signature::{UNSIGNED_PAYLOAD, body_digest};
    let digest = match request.body() {
        None => body_digest(b""),
        Some(body) => match body.as_bytes() {
            Some(bytes) => body_digest(bytes),
            None => UNSIGNED_PAYLOAD.to_owned(),
        },
    };
    let url = request.url();
    let path_and_query = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let identity = IDENTITY_HEADERS.map(|name| {
        request
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default()
    });
    let value = edge_signature(
        request.method().as_str(),
        &path_and_query,
        &digest,
        identity.each_ref().map(String::as_str),
    );
    request
        .headers_mut()
        .insert(EDGE_SIGNATURE, value.parse().unwrap());
}

/// The `x-edgebrain-signature` value the edge would send now for these parts, under
/// [`TEST_EDGE_SECRET`], with a fresh nonce.
pub(crate) fn edge_signature(
    method: &str,
    path_and_query: &str,
    body_digest: &str,
    identity: [&str; shared_types::signature::IDENTITY_VALUES],
) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    edge_signature_for(
        TEST_BRAIN_AUTHORITY,
        TEST_EDGE_SECRET,
        now,
        method,
        path_and_query,
        body_digest,
        identity,
    )
}

/// Like [`edge_signature`] with any secret and timestamp (forged and stale signatures), bound
/// to the brain `authority` ([`TEST_BRAIN_AUTHORITY`]: the test brain; `""`: bound to none, as
/// an edge older than the binding signed).
pub(crate) fn edge_signature_for(
    authority: &str,
    secret: &str,
    timestamp_secs: u64,
    method: &str,
    path_and_query: &str,
    body_digest: &str,
    identity: [&str; shared_types::signature::IDENTITY_VALUES],
) -> String {
    let nonce = Uuid::new_v4().simple().to_string();
    let parts = shared_types::signature::SignedParts {
        timestamp_secs,
        nonce: &nonce,
        method,
        authority,
        path_and_query,
        body_digest,
        identity,
    };
    shared_types::signature::header_value(&parts, [secret.as_bytes()])
}

/// The PostgreSQL server URL the tests create their databases on.
pub(crate) fn postgres_server_url() -> DatabaseUrl {
    let url = std::env::var("EDGEBRAIN_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    DatabaseUrl::from(url)
}

/// A fresh data directory (not yet created: the brain creates it) and a fresh database, both
/// removed on drop.
#[derive(Debug)]
pub(crate) struct TestDatabase {
    pub(crate) data_dir: PathBuf,
    /// The `--database-url`; `None` means the brain's default SQLite file in `data_dir`.
    pub(crate) url: Option<DatabaseUrl>,
    postgres_name: Option<String>,
}

impl TestDatabase {
    pub(crate) async fn new(backend: Backend) -> Self {
        // reqwest is built without its own TLS backend (see `brain::llm::install_tls_crypto`);
        // every test starts here, so clients a test builds before the brain work too.
        brain::llm::install_tls_crypto();
        let id = Uuid::new_v4().simple().to_string();
        let data_dir = std::env::temp_dir().join(format!("edgebrain-test-{id}"));
        let (url, postgres_name) = match backend {
            Backend::Sqlite => (None, None),
            Backend::Postgres => {
                let name = format!("edgebrain_test_{id}");
                let server = postgres_server_url();
                if let Err(error) = create_postgres_database(&server, &name).await {
                    panic!(
                        "PostgreSQL is required by this test but creating a database on {} failed: {}\n\
                         Start PostgreSQL or point EDGEBRAIN_TEST_PG_URL at a server (admin URL).",
                        server.redacted(),
                        brain::telemetry::error_chain(&error)
                    );
                }
                let mut url =
                    url::Url::parse(server.expose()).expect("EDGEBRAIN_TEST_PG_URL is a URL");
                url.set_path(&format!("/{name}"));
                (Some(DatabaseUrl::from(String::from(url))), Some(name))
            }
        };
        Self {
            data_dir,
            url,
            postgres_name,
        }
    }

    /// Another brain's view of the same database: a data directory of its own, the same
    /// database URL (a second brain of a fleet). Dropping it drops neither: `self` owns the
    /// database.
    pub(crate) fn sharing(&self) -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            data_dir: std::env::temp_dir().join(format!("edgebrain-test-{id}")),
            url: self.url.clone(),
            postgres_name: None,
        }
    }

    /// A configuration for this database: 127.0.0.1 port 0, small limits that tests can hit.
    pub(crate) fn config(&self) -> Config {
        let mut config = Config::from_args(["brain"]).expect("default configuration parses");
        config.server.bind = "127.0.0.1:0".parse().unwrap();
        config.server.data_dir = self.data_dir.clone();
        config.database.database_url = self.url.clone();
        config.database.db_max_connections = 5;
        config.database.db_acquire_timeout_ms = 2_000;
        config.server.max_body_bytes = 1024;
        // The diagnostics are these tests' probe of the middleware stack, for every caller;
        // `diag::access_*` tests the default (operators only) and `off`.
        config.server.diag = brain::config::DiagAccess::Open;
        config.server.diag_max_events = 10;
        config.server.diag_max_interval_ms = 1_000;
        config.server.shutdown_grace_secs = 5;
        config.edge.edge_secrets = Some(TEST_EDGE_SECRET.parse().expect("a valid test secret"));
        config.edge.edge_authority = Some(
            TEST_BRAIN_AUTHORITY
                .parse()
                .expect("a valid test authority"),
        );
        config.edge.insecure_local = false;
        // Debug-built polars is slow: no 1e6-row sample unless a test asks for one.
        config.data.sample_transactions = 0;
        config
    }

    /// The PostgreSQL database's name (a database this test created).
    pub(crate) fn postgres_name(&self) -> &str {
        self.postgres_name
            .as_deref()
            .expect("a PostgreSQL test database")
    }

    /// Drops the PostgreSQL database now, killing the connections of any app using it.
    pub(crate) async fn drop_postgres_now(&self) {
        let name = self
            .postgres_name
            .as_deref()
            .expect("a PostgreSQL test database");
        drop_postgres_database(&postgres_server_url(), name)
            .await
            .expect("DROP DATABASE … WITH (FORCE)");
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(name) = self.postgres_name.take() {
            // Drop cannot await, and may run inside a runtime: drop the database from a thread
            // with a runtime of its own. Never panic here (this may run during unwinding).
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|error| error.to_string())?;
                runtime
                    .block_on(drop_postgres_database(&postgres_server_url(), &name))
                    .map_err(|error| format!("{name}: {}", brain::telemetry::error_chain(&error)))
            })
            .join();
            if let Ok(Err(error)) = dropped {
                eprintln!("warning: could not drop test database {error}");
            }
        }
    }
}

/// A brain serving on 127.0.0.1 until [`TestApp::stop`] or the end of the test.
#[derive(Debug)]
pub(crate) struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) client: reqwest::Client,
    pub(crate) database: TestDatabase,
    /// The brain's chat service (runs, leases, the reaper's step).
    pub(crate) chat: std::sync::Arc<brain::chat::ChatService>,
    /// The brain's store (its run event signals, say).
    pub(crate) store: brain::store::Store,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// `routes` inside the production middleware stack (`http::with_middleware`: the default
/// limits, edge trust off), served on a free loopback port: its address and the server task.
pub(crate) async fn serve_with_middleware(
    routes: axum::Router,
) -> (std::net::SocketAddr, JoinHandle<Result<(), std::io::Error>>) {
    let config = Config::from_args(["brain"]).unwrap();
    let router = brain::http::with_middleware(
        routes,
        &brain::http::Limits::from_config(&config),
        std::sync::Arc::new(brain::http::edge_auth::EdgeTrust::new(
            brain::config::EdgeTrustMode::InsecureLocal,
            Duration::from_secs(300),
            16,
            1024,
        )),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    (address, server)
}

/// A brain on `backend` with the defaults of [`TestDatabase::config`].
pub(crate) async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], letting the test adjust the configuration first.
pub(crate) async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::new(backend).await;
    let mut config = database.config();
    adjust(&mut config);
    let application = Application::build(config)
        .await
        .unwrap_or_else(|error| panic!("the {backend} brain failed to build: {error:#}"));
    TestApp::run(application, database)
}

/// A brain on `database` (e.g. [`TestDatabase::sharing`] another app's), letting the test
/// adjust the configuration first.
pub(crate) async fn spawn_app_on(
    database: TestDatabase,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    let mut config = database.config();
    adjust(&mut config);
    let application = Application::build(config)
        .await
        .unwrap_or_else(|error| panic!("the brain failed to build: {error:#}"));
    TestApp::run(application, database)
}

impl TestApp {
    /// Serves `application` on a task until [`TestApp::stop`].
    pub(crate) fn run(application: Application, database: TestDatabase) -> Self {
        let port = application.port();
        let chat = std::sync::Arc::clone(application.chat());
        let store = application.store().clone();
        let (shutdown, shutdown_requested) = oneshot::channel::<()>();
        let server = tokio::spawn(application.run_until_stopped(async move {
            // A dropped sender (the test ended) also means "stop".
            let _ = shutdown_requested.await;
        }));
        Self {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            database,
            chat,
            store,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// `GET path`, signed as the edge signs (no identity).
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.send(self.client.get(self.url(path))).await
    }

    /// Sends `request` signed as the edge signs it, with no caller identity.
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let mut request = request.build().expect("a well-formed request");
        sign_as_edge(&mut request);
        tokio::time::timeout(TEST_TIMEOUT, self.client.execute(request))
            .await
            .expect("the response in time")
            .expect("request sent")
    }

    /// Sends `request` as `caller`: with the identity headers the edge would set, signed the way
    /// the edge signs. Every test of an identity-scoped endpoint goes through here.
    pub(crate) async fn send_as(
        &self,
        caller: &Caller,
        request: reqwest::RequestBuilder,
    ) -> reqwest::Response {
        send_as_with(&self.client, caller, request).await
    }

    /// `GET path` as `caller`, which must answer 200.
    pub(crate) async fn get_ok_as(&self, caller: &Caller, path: &str) -> reqwest::Response {
        let response = self.send_as(caller, self.client.get(self.url(path))).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK, "GET {path}");
        response
    }

    /// `GET path` as `caller` (200): the JSON body.
    pub(crate) async fn get_json_as<T: serde::de::DeserializeOwned>(
        &self,
        caller: &Caller,
        path: &str,
    ) -> T {
        self.get_ok_as(caller, path).await.json().await.unwrap()
    }

    /// Triggers the shutdown future given to `run_until_stopped`.
    pub(crate) fn request_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits (bounded) for `run_until_stopped` to return and hands back its result.
    pub(crate) async fn stopped(&mut self, within: Duration) -> anyhow::Result<()> {
        let server = self.server.take().expect("the server was started");
        tokio::time::timeout(within, server)
            .await
            .expect("run_until_stopped did not return in time")
            .expect("the server task did not panic")
    }

    /// Requests shutdown and waits for the server to stop.
    pub(crate) async fn stop(&mut self) {
        self.request_shutdown();
        self.stopped(TEST_TIMEOUT)
            .await
            .expect("the server stopped cleanly");
    }
}

/// Like [`TestApp::send_as`], for a brain the test runs some other way (e.g. as a process).
pub(crate) async fn send_as_with(
    client: &reqwest::Client,
    caller: &Caller,
    request: reqwest::RequestBuilder,
) -> reqwest::Response {
    let mut request = request.build().expect("a well-formed request");
    caller.apply(request.headers_mut());
    sign_as_edge(&mut request);
    tokio::time::timeout(TEST_TIMEOUT, client.execute(request))
        .await
        .expect("the response in time")
        .expect("request sent")
}

/// The session id a test user signs in from: `sess-of-<id>`, or of a hash of an id that is not
/// itself a plain token (edge session ids are always plain).
fn session_of(id: &str) -> String {
    if id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        format!("sess-of-{id}")
    } else {
        format!(
            "sess-of-{}",
            &shared_types::signature::body_digest(id.as_bytes())[..32]
        )
    }
}

/// Who a test request claims to be (see [`TestApp::send_as`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    pub(crate) user_id: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) scopes: Vec<String>,
    /// The network the edge saw (it sends one for anonymous callers).
    pub(crate) network: Option<String>,
}

impl Caller {
    /// A signed-in user with a session of its own.
    pub(crate) fn user(id: &str) -> Self {
        Self {
            user_id: Some(id.to_owned()),
            session_id: Some(session_of(id)),
            scopes: Vec::new(),
            network: None,
        }
    }

    /// An anonymous visitor known only by its edge session.
    pub(crate) fn anonymous(session_id: &str) -> Self {
        Self {
            user_id: None,
            session_id: Some(session_id.to_owned()),
            scopes: Vec::new(),
            network: None,
        }
    }

    pub(crate) fn with_network(mut self, network: &str) -> Self {
        self.network = Some(network.to_owned());
        self
    }

    pub(crate) fn with_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    fn apply(&self, headers: &mut reqwest::header::HeaderMap) {
        use shared_types::headers::{
            IDENTITY_NETWORK, IDENTITY_SCOPES, IDENTITY_SESSION, IDENTITY_USER,
        };
        let mut set = |name: &'static str, value: &str| {
            headers.insert(name, value.parse().expect("a valid header value"));
        };
        if let Some(user) = &self.user_id {
            set(IDENTITY_USER, &shared_types::headers::encode_user_id(user));
        }
        if let Some(session) = &self.session_id {
            set(IDENTITY_SESSION, session);
        }
        if !self.scopes.is_empty() {
            set(IDENTITY_SCOPES, &self.scopes.join(" "));
        }
        if let Some(network) = &self.network {
            set(IDENTITY_NETWORK, network);
        }
    }
}

/// Asserts that `response` is an error in the shared shape with `code`, its status and a
/// `request_id` equal to the `x-request-id` header, and returns the body.
pub(crate) async fn assert_error(response: reqwest::Response, code: ErrorCode) -> ErrorBody {
    let status = response.status().as_u16();
    let header_id = response
        .headers()
        .get(REQUEST_ID)
        .expect("x-request-id on the response")
        .to_str()
        .unwrap()
        .to_owned();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    assert_eq!(
        status,
        code.http_status(),
        "status for {code}; body: {text}"
    );
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "body: {text}"
    );
    let body: ErrorBody = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("not an ErrorBody ({error}): {text}"));
    assert_eq!(body.error.code, code, "body: {text}");
    assert_eq!(body.error.request_id, header_id);
    assert!(!body.error.message.is_empty());
    body
}

/// One Server-Sent Event as the client saw it.
#[derive(Debug)]
pub(crate) struct ReceivedEvent {
    pub(crate) event: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) data: String,
    pub(crate) received_at: Instant,
}

/// Reads a `text/event-stream` body event by event, noting when each one arrived.
pub(crate) struct EventReader {
    // `axum::body::Bytes` is the `bytes::Bytes` reqwest yields (no direct `bytes` dependency).
    body: futures_util::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buffer: String,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader")
            .field("buffer", &self.buffer)
            .finish()
    }
}

impl EventReader {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event, or `None` at the end of the stream (bounded by [`TEST_TIMEOUT`]).
    pub(crate) async fn next(&mut self) -> Option<ReceivedEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse_event(&block));
            }
            let chunk = tokio::time::timeout(TEST_TIMEOUT, self.body.next())
                .await
                .expect("the next SSE chunk in time")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk.expect("SSE chunk")).expect("UTF-8 SSE"));
        }
    }

    pub(crate) async fn collect(mut self) -> Vec<ReceivedEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

fn parse_event(block: &str) -> ReceivedEvent {
    let received_at = Instant::now();
    let (mut event, mut id, mut data) = (None, None, Vec::new());
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
        match field {
            "event" => event = Some(value),
            "id" => id = Some(value),
            "data" => data.push(value),
            _ => {}
        }
    }
    ReceivedEvent {
        event,
        id,
        data: data.join("\n"),
        received_at,
    }
}
