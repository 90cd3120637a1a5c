use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use shared_types::error::ErrorCode;
use shared_types::headers::REQUEST_ID;
use uuid::Uuid;

use crate::helpers::{Backend, assert_error, spawn_app};

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

    let post_health = app.client.post(app.url("/health")).send().await.unwrap();
    let options_echo = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/diag/echo"))
        .send()
        .await
        .unwrap();

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
        .client
        .get(app.url("/health"))
        .header(REQUEST_ID, "edge-given-id-42")
        .send()
        .await
        .unwrap();
    let failed = app
        .client
        .get(app.url("/missing"))
        .header(REQUEST_ID, "edge-given-id-43")
        .send()
        .await
        .unwrap();

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
    let router = brain::http::with_middleware(
        Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" })),
        1024,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
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
