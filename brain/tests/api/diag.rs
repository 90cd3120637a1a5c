use std::time::Duration;

use reqwest::StatusCode;
use shared_types::diag::{EchoReport, STREAM_TICK_EVENT, StreamTick};
use shared_types::error::ErrorCode;

use crate::helpers::{Backend, EventReader, assert_error, spawn_app};

#[tokio::test]
async fn stream_sends_events_one_by_one() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let (events, interval_ms) = (4_u32, 250_u64);

    let response = app
        .get(&format!(
            "/api/v1/diag/stream?events={events}&interval_ms={interval_ms}"
        ))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let received = EventReader::new(response).collect().await;
    assert_eq!(received.len(), events as usize);
    for (index, event) in received.iter().enumerate() {
        let seq = u32::try_from(index).unwrap() + 1;
        assert_eq!(event.event.as_deref(), Some(STREAM_TICK_EVENT));
        assert_eq!(event.id.as_deref(), Some(seq.to_string().as_str()));
        let tick: StreamTick = serde_json::from_str(&event.data).unwrap();
        assert_eq!((tick.seq, tick.of), (seq, events));
        assert!(
            tick.sent_at_ms > 1_600_000_000_000,
            "unix ms: {}",
            tick.sent_at_ms
        );
    }
    // A buffering hop would hand all events over together at the end.
    let spread = received[received.len() - 1].received_at - received[0].received_at;
    let expected = Duration::from_millis(u64::from(events - 1) * interval_ms);
    assert!(
        spread >= expected.mul_f64(0.6),
        "events arrived within {spread:?}; expected them spread over ~{expected:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn stream_with_zero_interval_sends_everything_at_once() {
    let mut app = spawn_app(Backend::Sqlite).await;

    let response = app.get("/api/v1/diag/stream?events=10&interval_ms=0").await;

    assert_eq!(response.status(), StatusCode::OK);
    let received = EventReader::new(response).collect().await;
    let seqs: Vec<u32> = received
        .iter()
        .map(|event| serde_json::from_str::<StreamTick>(&event.data).unwrap().seq)
        .collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    app.stop().await;
}

#[tokio::test]
async fn stream_rejects_out_of_range_or_malformed_parameters() {
    // The test configuration allows at most 10 events and 1000 ms.
    let mut app = spawn_app(Backend::Sqlite).await;
    for query in [
        "events=0",
        "events=11",
        "events=3&interval_ms=1001",
        "events=abc",
        "events=-1",
        "interval_ms=1.5",
    ] {
        let response = app.get(&format!("/api/v1/diag/stream?{query}")).await;
        let body = assert_error(response, ErrorCode::InvalidQuery).await;
        assert!(!body.error.message.is_empty(), "{query}");
    }
    app.stop().await;
}

#[tokio::test]
async fn echo_round_trips_method_path_query_headers_and_json_body() {
    let mut app = spawn_app(Backend::Sqlite).await;
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let body = serde_json::json!({"method": method, "nested": {"list": [1, 2.5, null, "ü"]}});
        let response = app
            .send(
                app.client
                    .request(
                        method.parse().unwrap(),
                        app.url("/api/v1/diag/echo?a=1&b=two%20words&a=3"),
                    )
                    .header("X-Custom", "first")
                    .header("x-custom", "second")
                    .header(
                        "x-binary",
                        reqwest::header::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
                    )
                    .header("x-request-id", format!("echo-{method}"))
                    .json(&body),
            )
            .await;

        assert_eq!(response.status(), StatusCode::OK, "{method}");
        let report: EchoReport = response.json().await.unwrap();
        assert_eq!(report.method, method);
        assert_eq!(report.path, "/api/v1/diag/echo");
        assert_eq!(report.query.as_deref(), Some("a=1&b=two%20words&a=3"));
        let values = |name: &str| -> Vec<&str> {
            report
                .headers
                .iter()
                .filter(|(header, _)| header == name)
                .map(|(_, value)| value.as_str())
                .collect()
        };
        assert_eq!(values("x-custom"), ["first", "second"]);
        assert_eq!(values("x-binary"), ["caf\u{fffd}"]);
        assert_eq!(values("content-type"), ["application/json"]);
        assert_eq!(
            report.body_bytes,
            serde_json::to_vec(&body).unwrap().len() as u64
        );
        assert_eq!(report.body, Some(body));
        assert_eq!(report.request_id, format!("echo-{method}"));
    }
    app.stop().await;
}

#[tokio::test]
async fn echo_get_without_body_has_no_body_and_accepts_any_content_type() {
    let mut app = spawn_app(Backend::Sqlite).await;

    let response = app
        .send(
            app.client
                .get(app.url("/api/v1/diag/echo"))
                .header("content-type", "text/plain"),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let report: EchoReport = response.json().await.unwrap();
    assert_eq!(report.method, "GET");
    assert_eq!(report.query, None);
    assert_eq!(report.body_bytes, 0);
    assert_eq!(report.body, None);
    app.stop().await;
}

#[tokio::test]
async fn echo_accepts_json_with_parameters() {
    let mut app = spawn_app(Backend::Sqlite).await;

    let response = app
        .send(
            app.client
                .post(app.url("/api/v1/diag/echo"))
                .header("content-type", "Application/JSON; charset=utf-8")
                .body("[1,2]"),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let report: EchoReport = response.json().await.unwrap();
    assert_eq!(report.body, Some(serde_json::json!([1, 2])));
    app.stop().await;
}

#[tokio::test]
async fn echo_rejects_malformed_json_with_its_position() {
    let mut app = spawn_app(Backend::Sqlite).await;

    let response = app
        .send(
            app.client
                .post(app.url("/api/v1/diag/echo"))
                .header("content-type", "application/json")
                .body("{\"a\": 1,\n \"b\": }"),
        )
        .await;

    let body = assert_error(response, ErrorCode::InvalidJson).await;
    assert!(
        body.error.message.contains("line 2 column"),
        "{}",
        body.error.message
    );
    app.stop().await;
}

#[tokio::test]
async fn echo_rejects_bodies_that_are_not_json() {
    let mut app = spawn_app(Backend::Sqlite).await;
    for content_type in [Some("text/plain"), Some("application/jsonx"), None] {
        let mut request = app.client.post(app.url("/api/v1/diag/echo")).body("{}");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }

        let response = app.send(request).await;

        assert_error(response, ErrorCode::UnsupportedMediaType).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn echo_rejects_oversize_bodies_with_content_length() {
    // The test configuration limits bodies to 1024 bytes.
    let mut app = spawn_app(Backend::Sqlite).await;
    let at_limit = format!("\"{}\"", "x".repeat(1022));
    let over_limit = format!("\"{}\"", "x".repeat(1023));

    let accepted = app
        .send(
            app.client
                .post(app.url("/api/v1/diag/echo"))
                .header("content-type", "application/json")
                .body(at_limit),
        )
        .await;
    let rejected = app
        .send(
            app.client
                .post(app.url("/api/v1/diag/echo"))
                .header("content-type", "application/json")
                .body(over_limit),
        )
        .await;

    assert_eq!(accepted.status(), StatusCode::OK);
    assert_error(rejected, ErrorCode::PayloadTooLarge).await;
    app.stop().await;
}

#[tokio::test]
async fn echo_rejects_oversize_chunked_bodies() {
    let mut app = spawn_app(Backend::Sqlite).await;
    // No content-length: the limit must be enforced while reading.
    let chunks = (0..4).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512]));

    let response = app
        .send(
            app.client
                .post(app.url("/api/v1/diag/echo"))
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    chunks,
                ))),
        )
        .await;

    assert_error(response, ErrorCode::PayloadTooLarge).await;
    app.stop().await;
}

#[tokio::test]
async fn echo_never_reflects_credentials() {
    let mut app = spawn_app(Backend::Sqlite).await;

    let response = app
        .send(
            app.client
                .get(app.url("/api/v1/diag/echo"))
                .header("authorization", "Bearer secret-token")
                .header("cookie", "__Host-session=secret-cookie")
                .header("x-api-key", "secret-key")
                .header("x-visible", "shown"),
        )
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.contains("secret"), "credentials reflected: {text}");
    let report: EchoReport = serde_json::from_str(&text).unwrap();
    let value_of = |name: &str| {
        report
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    for name in ["authorization", "cookie", "x-api-key"] {
        assert_eq!(value_of(name), Some("[redacted]"), "{name}");
    }
    assert_eq!(value_of("x-visible"), Some("shown"));
    app.stop().await;
}

/// The default `--diag operators`: the diagnostics answer signed-in operators only; everyone
/// else gets 403 (401 without any identity), while `GET /api/v1/session` answers every caller.
#[tokio::test]
async fn access_by_default_is_for_signed_in_operators_only() {
    use crate::helpers::{Caller, spawn_app_with};
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.diag = brain::config::Config::from_args(["brain"])
            .unwrap()
            .server
            .diag;
    })
    .await;
    let paths = [
        "/api/v1/diag/whoami",
        "/api/v1/diag/echo",
        "/api/v1/diag/stream?events=1&interval_ms=1",
    ];
    let operator = Caller::user("olga").with_scopes(&[shared_types::agent::OPERATOR_SCOPE]);
    // An anonymous session can never be an operator, whatever scopes it claims.
    let scoped_visitor =
        Caller::anonymous("s1").with_scopes(&[shared_types::agent::OPERATOR_SCOPE]);
    for path in paths {
        let get = || app.client.get(app.url(path));
        for caller in [
            Caller::anonymous("s1"),
            Caller::user("alice"),
            scoped_visitor.clone(),
        ] {
            let body = assert_error(app.send_as(&caller, get()).await, ErrorCode::Forbidden).await;
            assert!(body.error.message.contains("operators"), "{path}: {body:?}");
        }
        assert_error(app.send(get()).await, ErrorCode::Unauthorized).await;
        let allowed = app.send_as(&operator, get()).await;
        assert_eq!(allowed.status(), StatusCode::OK, "{path}");
    }
    // Who am I, for everyone.
    for caller in [Caller::anonymous("s1"), Caller::user("alice")] {
        let response = app
            .send_as(&caller, app.client.get(app.url("/api/v1/session")))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let me: shared_types::diag::WhoAmI = response.json().await.unwrap();
        assert_eq!(me.user_id, caller.user_id);
        assert_eq!(me.session_id, caller.session_id);
    }
}

/// `--diag off`: the diagnostics do not exist, for operators too.
#[tokio::test]
async fn access_off_answers_404_to_everyone() {
    use crate::helpers::{Caller, spawn_app_with};
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.diag = brain::config::DiagAccess::Off;
    })
    .await;
    let operator = Caller::user("olga").with_scopes(&[shared_types::agent::OPERATOR_SCOPE]);
    for path in ["/api/v1/diag/whoami", "/api/v1/diag/echo"] {
        let response = app.send_as(&operator, app.client.get(app.url(path))).await;
        assert_error(response, ErrorCode::NotFound).await;
    }
}
