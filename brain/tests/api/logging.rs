//! The log lines deployment checks rely on, in the exact production format.

use std::io::Write;
use std::sync::{Arc, Mutex};

use brain::telemetry;
use brain::telemetry::LogFormat;
use shared_types::headers::REQUEST_ID;
use tracing_subscriber::EnvFilter;

use crate::helpers::{Backend, serve_with_middleware, spawn_app};

/// An in-memory log sink.
#[derive(Debug, Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Runs a brain (on this test's single thread, so the thread-local subscriber sees every line),
/// sends one request with `request_id`, and returns the captured log lines and the port.
async fn logs_of_one_request(format: LogFormat, request_id: &str) -> (Vec<String>, u16) {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = telemetry::subscriber(
        format,
        EnvFilter::new("info"),
        move || writer.clone(),
        false,
    );
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut app = spawn_app(Backend::Sqlite).await;
    // Other tests run in parallel threads without a subscriber. A callsite they register while
    // this thread's subscriber is being set can cache "never interested" (a tracing-core race
    // under load); recompute every callsite's interest now that our subscriber is in place.
    tracing::callsite::rebuild_interest_cache();
    let response = app
        .send(
            app.client
                .get(app.url("/health"))
                .header(REQUEST_ID, request_id),
        )
        .await;
    assert!(response.status().is_success());
    app.stop().await;
    (capture.lines(), app.port)
}

/// The one line of `lines` that mentions `request_id`: a request is logged exactly once.
fn the_line_of<'a>(lines: &'a [String], request_id: &str) -> &'a str {
    let mentions: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains(request_id))
        .collect();
    assert_eq!(
        mentions.len(),
        1,
        "exactly one line per request: {lines:#?}"
    );
    mentions[0]
}

#[tokio::test]
async fn text_logs_have_one_completion_line_with_the_request_id() {
    let request_id = "log-test-id-text-1";

    let (lines, port) = logs_of_one_request(LogFormat::Text, request_id).await;

    let listening: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains(" listening "))
        .collect();
    assert_eq!(listening.len(), 1, "{lines:#?}");
    assert!(
        listening[0].contains(&format!("address=127.0.0.1:{port}")),
        "{}",
        listening[0]
    );
    assert!(listening[0].contains("backend=sqlite"), "{}", listening[0]);
    let line = the_line_of(&lines, request_id);
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("request completed"), "{line}");
    for field in [
        format!("request_id={request_id}"),
        "method=GET".to_owned(),
        "path=/health".to_owned(),
        "status=200".to_owned(),
        "latency_ms=".to_owned(),
    ] {
        assert!(line.contains(&field), "{field} missing in {line}");
    }
}

#[tokio::test]
async fn json_logs_have_one_completion_line_with_the_request_id() {
    let request_id = "log-test-id-json-1";

    let (lines, port) = logs_of_one_request(LogFormat::Json, request_id).await;

    let entries: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let listening = entries
        .iter()
        .find(|entry| entry["fields"]["message"] == "listening")
        .expect("a listening line");
    assert_eq!(listening["fields"]["address"], format!("127.0.0.1:{port}"));
    assert_eq!(listening["fields"]["backend"], "sqlite");
    let entry: serde_json::Value = serde_json::from_str(the_line_of(&lines, request_id)).unwrap();
    assert_eq!(entry["level"], "INFO");
    let fields = &entry["fields"];
    assert_eq!(fields["message"], "request completed");
    assert_eq!(fields["request_id"], request_id);
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["path"], "/health");
    assert_eq!(fields["status"], 200);
    assert!(fields["latency_ms"].is_number(), "{entry}");
}

/// Every 5xx answer gets one log line from the error layer, with the request id and, for a
/// handler that failed on the server's side, the cause the client never sees.
#[tokio::test]
async fn a_server_error_is_logged_once_with_its_cause_and_request_id() {
    use axum::Router;
    use axum::routing::get;

    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = telemetry::subscriber(
        LogFormat::Text,
        EnvFilter::new("info"),
        move || writer.clone(),
        false,
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    async fn boom() -> &'static str {
        panic!("the cause only the log may tell")
    }
    let (address, server) = serve_with_middleware(Router::new().route("/boom", get(boom))).await;
    brain::llm::install_tls_crypto();
    // As above: callsites other threads registered meanwhile may have cached "not interested".
    tracing::callsite::rebuild_interest_cache();
    let response = reqwest::Client::new()
        .get(format!("http://{address}/boom"))
        .header(REQUEST_ID, "log-test-500")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body = response.text().await.unwrap();
    assert!(!body.contains("only the log"), "{body}");
    server.abort();

    let failed: Vec<String> = capture
        .lines()
        .into_iter()
        .filter(|line| line.contains("request failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(failed[0].contains(" ERROR "), "{}", failed[0]);
    assert!(failed[0].contains("log-test-500"), "{}", failed[0]);
    assert!(
        failed[0].contains("the cause only the log may tell"),
        "{}",
        failed[0]
    );
}
