use std::time::{Duration, Instant};

use shared_types::diag::StreamTick;

use crate::helpers::{Backend, EventReader, TEST_TIMEOUT, spawn_app, spawn_app_with};

#[tokio::test]
async fn shutdown_stops_the_server_and_resolves() {
    let mut app = spawn_app(Backend::Sqlite).await;
    assert!(app.get("/health").await.status().is_success());

    app.request_shutdown();
    app.stopped(TEST_TIMEOUT).await.unwrap();

    let connect = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await;
    assert!(
        connect.is_err(),
        "the listener must be closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_stream_finish() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let response = app
        .get("/api/v1/diag/stream?events=3&interval_ms=200")
        .await;
    let mut stream = EventReader::new(response);
    let first = stream.next().await.expect("the first event");

    app.request_shutdown();
    let mut rest = Vec::new();
    while let Some(event) = stream.next().await {
        rest.push(serde_json::from_str::<StreamTick>(&event.data).unwrap().seq);
    }
    app.stopped(TEST_TIMEOUT).await.unwrap();

    assert_eq!(first.id.as_deref(), Some("1"));
    assert_eq!(rest, [2, 3], "in-flight requests are drained, not cut");
}

#[tokio::test]
async fn shutdown_does_not_wait_longer_than_the_grace_period() {
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.shutdown_grace_secs = 1;
    })
    .await;
    // Ten events a second apart: far longer than the grace period.
    let response = app
        .get("/api/v1/diag/stream?events=10&interval_ms=1000")
        .await;
    let mut stream = EventReader::new(response);
    stream.next().await.expect("the first event");

    let requested = Instant::now();
    app.request_shutdown();
    app.stopped(Duration::from_secs(5)).await.unwrap();

    let waited = requested.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "stopped before the grace period: {waited:?}"
    );
}
