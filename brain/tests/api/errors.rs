use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use shared_types::error::ErrorCode;
use shared_types::headers::REQUEST_ID;
use uuid::Uuid;

use crate::helpers::{Backend, assert_error, edge_signature, serve_with_middleware, spawn_app};

#[tokio::test]
async fn unknown_routes_are_404_in_the_error_shape() {
    let mut app = spawn_app(Backend::Sqlite).await;
    for path in ["/nope", "/api/v1/unknown", "/api/v1/diag"] {
        assert_error(app.get(path).await, ErrorCode::NotFound).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn wrong_methods_are_405_in_the_error_shape() {
    let mut app = spawn_app(Backend::Sqlite).await;

    let post_health = app.send(app.client.post(app.url("/health"))).await;
    let options_echo = app
        .send(
            app.client
                .request(reqwest::Method::OPTIONS, app.url("/api/v1/diag/echo")),
        )
        .await;

    assert_eq!(post_health.headers()["allow"], "GET,HEAD");
    assert_error(post_health, ErrorCode::MethodNotAllowed).await;
    assert_error(options_echo, ErrorCode::MethodNotAllowed).await;
    app.stop().await;
}

#[tokio::test]
async fn paths_with_invalid_utf8_are_a_4xx_in_the_error_shape() {
    let mut app = spawn_app(Backend::Sqlite).await;
    for path in ["/api/v1/%FF%FE", "/api/v1/diag/%C3%28", "/%80"] {
        let response = app.get(path).await;
        assert!(
            response.status().is_client_error(),
            "{path}: {}",
            response.status()
        );
        let code = match response.status() {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            _ => ErrorCode::BadRequest,
        };
        assert_error(response, code).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn an_incoming_request_id_is_honoured_everywhere() {
    let mut app = spawn_app(Backend::Sqlite).await;

    let ok = app
        .send(
            app.client
                .get(app.url("/health"))
                .header(REQUEST_ID, "edge-given-id-42"),
        )
        .await;
    let failed = app
        .send(
            app.client
                .get(app.url("/missing"))
                .header(REQUEST_ID, "edge-given-id-43"),
        )
        .await;

    assert_eq!(ok.headers()[REQUEST_ID], "edge-given-id-42");
    let body = assert_error(failed, ErrorCode::NotFound).await;
    assert_eq!(body.error.request_id, "edge-given-id-43");
    app.stop().await;
}

#[tokio::test]
async fn a_missing_request_id_is_generated_as_a_uuid() {
    let mut app = spawn_app(Backend::Sqlite).await;

    let ok = app.get("/health").await;
    let failed = app.get("/missing").await;

    let generated = ok.headers()[REQUEST_ID].to_str().unwrap();
    assert_eq!(Uuid::parse_str(generated).unwrap().get_version_num(), 4);
    let failed_id = failed.headers()[REQUEST_ID].to_str().unwrap().to_owned();
    assert_ne!(failed_id, generated, "one id per request");
    let body = assert_error(failed, ErrorCode::NotFound).await;
    assert!(Uuid::parse_str(&body.error.request_id).is_ok());
    app.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_answers_500_internal_and_the_server_lives_on() {
    async fn boom() -> &'static str {
        panic!("secret panic detail")
    }
    // The production middleware stack around a route that panics.
    let (address, server) = serve_with_middleware(
        Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" })),
    )
    .await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("http://{address}/boom"))
        .header(REQUEST_ID, "panic-id")
        .send()
        .await
        .unwrap();

    let body = assert_error(response, ErrorCode::Internal).await;
    assert_eq!(body.error.request_id, "panic-id");
    assert!(
        !body.error.message.contains("secret"),
        "{}",
        body.error.message
    );
    let after = client
        .get(format!("http://{address}/fine"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::OK);
    server.abort();
}

/// Reads one HTTP/1.1 response (head plus a content-length body) from `stream`.
async fn read_response(stream: &mut tokio::net::TcpStream) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buffer).into_owned();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buffer.len() >= head_end + 4 + length {
                let status = text[9..12].parse().unwrap();
                return (status, text[head_end + 4..head_end + 4 + length].to_owned());
            }
        }
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut chunk))
                .await
                .expect("response within 10 s")
                .expect("read");
        assert!(
            read > 0,
            "connection closed before a full response: {:?}",
            String::from_utf8_lossy(&buffer)
        );
        buffer.extend_from_slice(&chunk[..read]);
    }
}

#[tokio::test]
async fn an_early_413_on_a_chunked_upload_still_reaches_the_client_and_keeps_the_connection() {
    use tokio::io::AsyncWriteExt;
    let mut app = spawn_app(Backend::Sqlite).await; // max_body_bytes = 1024 in tests
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let chunk = |size: usize| format!("{size:x}\r\n{}\r\n", "x".repeat(size));

    let signature = edge_signature(
        "POST",
        "/api/v1/diag/echo",
        shared_types::signature::UNSIGNED_PAYLOAD,
        ["", "", "", ""],
    );
    let head = format!(
        "POST /api/v1/diag/echo HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\nx-edgebrain-signature: {signature}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(chunk(2048).as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut stream).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");

    // The client is still sending, as a real uploader would be when the 413 arrives.
    for _ in 0..16 {
        stream.write_all(chunk(8192).as_bytes()).await.unwrap();
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();

    // The brain read the rest, so the connection is still usable.
    let next = format!("GET /health HTTP/1.1\r\nhost: {address}\r\n\r\n");
    stream.write_all(next.as_bytes()).await.unwrap();
    let (status, body) = read_response(&mut stream).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}
