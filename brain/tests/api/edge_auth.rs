//! Edge trust: only requests the edge signed reach the API, with only the identity it signed.

use reqwest::StatusCode;
use shared_types::diag::WhoAmI;
use shared_types::error::ErrorCode;
use shared_types::headers::{EDGE_SIGNATURE, IDENTITY_SCOPES, IDENTITY_SESSION, IDENTITY_USER};
use shared_types::signature::body_digest;

use crate::helpers::{
    Backend, Caller, TEST_BRAIN_AUTHORITY, TEST_EDGE_SECRET, TestApp, TestDatabase, assert_error,
    edge_signature, edge_signature_for, spawn_app, spawn_app_with,
};

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn signed_identity_reaches_handlers() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice").with_scopes(&["data:read", "chat"]);

    let response = app
        .send_as(&alice, app.client.get(app.url("/api/v1/diag/whoami")))
        .await;

    assert_eq!(response.status(), StatusCode::OK);
    let who: WhoAmI = response.json().await.unwrap();
    assert_eq!(who.user_id.as_deref(), Some("alice"));
    assert_eq!(who.session_id.as_deref(), Some("sess-of-alice"));
    assert_eq!(who.scopes, ["data:read", "chat"]);
    assert_eq!(who.owner, "user:alice");

    let anonymous = app
        .send_as(
            &Caller::anonymous("s-123"),
            app.client.get(app.url("/api/v1/diag/whoami")),
        )
        .await;
    let who: WhoAmI = anonymous.json().await.unwrap();
    assert_eq!(who.owner, "session:s-123");
    app.stop().await;
}

#[tokio::test]
async fn a_signed_request_without_identity_is_401_on_identity_scoped_routes() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let response = app.get("/api/v1/diag/whoami").await;
    assert_error(response, ErrorCode::Unauthorized).await;
    app.stop().await;
}

#[tokio::test]
async fn unsigned_and_forged_requests_are_refused() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let url = app.url("/api/v1/diag/whoami");

    let unsigned = app
        .client
        .get(&url)
        .header(IDENTITY_USER, "alice")
        .send()
        .await
        .unwrap();
    let body = assert_error(unsigned, ErrorCode::Unauthorized).await;
    assert!(
        body.error.message.contains("signature"),
        "{}",
        body.error.message
    );

    // Signed with a secret the brain does not know.
    let forged_signature = edge_signature_for(
        TEST_BRAIN_AUTHORITY,
        "not-the-edge-secret-0123456789abcdef",
        now_secs(),
        "GET",
        "/api/v1/diag/whoami",
        &body_digest(b""),
        ["alice", "", "", ""],
    );
    let forged = app
        .client
        .get(&url)
        .header(IDENTITY_USER, "alice")
        .header(EDGE_SIGNATURE, forged_signature)
        .send()
        .await
        .unwrap();
    assert_error(forged, ErrorCode::Unauthorized).await;

    // Garbage in the header.
    let garbage = app
        .client
        .get(&url)
        .header(EDGE_SIGNATURE, "t=1,v1=zz")
        .send()
        .await
        .unwrap();
    assert_error(garbage, ErrorCode::Unauthorized).await;
    app.stop().await;
}

#[tokio::test]
async fn identity_headers_the_edge_did_not_sign_are_refused() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let url = app.url("/api/v1/diag/whoami");
    // The edge signed an anonymous caller with session s-1. Whatever is added or changed
    // afterwards must not become a user, gain scopes or take over another session.
    let tampered: [(&str, &str, &str); 3] = [
        (IDENTITY_USER, "mallory", "s-1"),
        (IDENTITY_SCOPES, "admin", "s-1"),
        (
            IDENTITY_SESSION,
            "someone-elses-session",
            "someone-elses-session",
        ),
    ];
    for (name, value, session_sent) in tampered {
        let signature = edge_signature(
            "GET",
            "/api/v1/diag/whoami",
            &body_digest(b""),
            ["", "s-1", "", ""],
        );
        let mut request = app
            .client
            .get(&url)
            .header(IDENTITY_SESSION, session_sent)
            .header(EDGE_SIGNATURE, signature);
        if name != IDENTITY_SESSION {
            request = request.header(name, value);
        }
        let response = request.send().await.unwrap();
        assert_error(response, ErrorCode::Unauthorized).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn tampered_path_or_body_is_refused() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let signed_for_other_path = edge_signature(
        "GET",
        "/api/v1/diag/stream",
        &body_digest(b""),
        ["", "", "", ""],
    );
    let response = app
        .client
        .get(app.url("/api/v1/diag/whoami"))
        .header(EDGE_SIGNATURE, signed_for_other_path)
        .send()
        .await
        .unwrap();
    assert_error(response, ErrorCode::Unauthorized).await;

    let signed_body = br#"{"amount":1}"#;
    let signature = edge_signature(
        "POST",
        "/api/v1/diag/echo",
        &body_digest(signed_body),
        ["", "", "", ""],
    );
    let response = app
        .client
        .post(app.url("/api/v1/diag/echo"))
        .header("content-type", "application/json")
        .header(EDGE_SIGNATURE, signature)
        .body(r#"{"amount":1000}"#)
        .send()
        .await
        .unwrap();
    let body = assert_error(response, ErrorCode::Unauthorized).await;
    assert!(
        body.error.message.contains("body"),
        "{}",
        body.error.message
    );
    app.stop().await;
}

#[tokio::test]
async fn replayed_and_stale_signatures_are_refused() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let url = app.url("/api/v1/diag/whoami");
    let signature = edge_signature(
        "GET",
        "/api/v1/diag/whoami",
        &body_digest(b""),
        ["", "s-1", "", ""],
    );
    let send = || {
        app.client
            .get(&url)
            .header(IDENTITY_SESSION, "s-1")
            .header(EDGE_SIGNATURE, signature.clone())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), StatusCode::OK);
    let replay = send().await.unwrap();
    let body = assert_error(replay, ErrorCode::Unauthorized).await;
    assert!(
        body.error.message.contains("already used"),
        "{}",
        body.error.message
    );

    let stale = edge_signature_for(
        TEST_BRAIN_AUTHORITY,
        TEST_EDGE_SECRET,
        now_secs() - 301,
        "GET",
        "/api/v1/diag/whoami",
        &body_digest(b""),
        ["", "s-1", "", ""],
    );
    let response = app
        .client
        .get(&url)
        .header(IDENTITY_SESSION, "s-1")
        .header(EDGE_SIGNATURE, stale)
        .send()
        .await
        .unwrap();
    let body = assert_error(response, ErrorCode::Unauthorized).await;
    assert!(
        body.error.message.contains("301 s"),
        "{}",
        body.error.message
    );
    app.stop().await;
}

#[tokio::test]
async fn a_signature_dated_before_the_brain_started_is_refused_as_a_replay_across_restarts() {
    // The nonce cache is in memory: a request captured before a restart must not verify in the
    // new process, however fresh its nonce looks there.
    let captured_at = now_secs() - 1;
    let mut app = spawn_app(Backend::Sqlite).await;
    let captured = echo_signature(TEST_BRAIN_AUTHORITY, TEST_EDGE_SECRET, captured_at);
    let response = echo_with_signature(&app, captured).await;
    let body = assert_error(response, ErrorCode::Unauthorized).await;
    assert!(
        body.error.message.contains("before this brain started"),
        "{}",
        body.error.message
    );
    // Signed now, the same request passes.
    assert_eq!(app.get("/api/v1/diag/echo").await.status(), StatusCode::OK);
    app.stop().await;
}

/// The edge's signature of `GET /api/v1/diag/echo` (no identity) bound to the brain
/// `authority` (`""`: to none), made with `secret` at `timestamp_secs`.
fn echo_signature(authority: &str, secret: &str, timestamp_secs: u64) -> String {
    edge_signature_for(
        authority,
        secret,
        timestamp_secs,
        "GET",
        "/api/v1/diag/echo",
        &body_digest(b""),
        ["", "", "", ""],
    )
}

/// `GET /api/v1/diag/echo` carrying `signature` as the edge's.
async fn echo_with_signature(app: &TestApp, signature: String) -> reqwest::Response {
    app.client
        .get(app.url("/api/v1/diag/echo"))
        .header(EDGE_SIGNATURE, signature)
        .send()
        .await
        .unwrap()
}

/// `GET /api/v1/diag/echo` signed now for the brain `authority` (`""`: for none).
async fn echo_signed_for(app: &TestApp, authority: &str) -> reqwest::Response {
    let signature = echo_signature(authority, TEST_EDGE_SECRET, now_secs());
    echo_with_signature(app, signature).await
}

#[tokio::test]
async fn a_request_signed_for_another_brain_is_refused() {
    // Brains of one fleet share the edge secrets, and each remembers only its own nonces: the
    // binding is what keeps a request captured on its way to brain A from passing brain B.
    let mut app = spawn_app(Backend::Sqlite).await;
    // The normal path: signed for this brain.
    let response = echo_signed_for(&app, TEST_BRAIN_AUTHORITY).await;
    assert_eq!(response.status(), StatusCode::OK);

    let response = echo_signed_for(&app, "brain-a.internal:8080").await;
    let body = assert_error(response, ErrorCode::Unauthorized).await;
    assert!(
        body.error
            .message
            .contains("bound to the brain brain-a.internal:8080"),
        "{}",
        body.error.message
    );
    // The same brain on another port is another brain.
    let other_port = TEST_BRAIN_AUTHORITY.replace(":8080", ":8081");
    let response = echo_signed_for(&app, &other_port).await;
    assert_error(response, ErrorCode::Unauthorized).await;
    // A signature of an edge older than the binding names no brain: refused here too.
    let response = echo_signed_for(&app, "").await;
    let body = assert_error(response, ErrorCode::Unauthorized).await;
    assert!(
        body.error.message.contains("bound to no brain"),
        "{}",
        body.error.message
    );
    // A signature claimed for this brain but made for another does not verify at all.
    let for_a = echo_signature("brain-a.internal:8080", TEST_EDGE_SECRET, now_secs());
    let relabelled = for_a.replace(
        "a=brain-a.internal:8080",
        &format!("a={TEST_BRAIN_AUTHORITY}"),
    );
    assert_ne!(relabelled, for_a);
    let response = echo_with_signature(&app, relabelled).await;
    let body = assert_error(response, ErrorCode::Unauthorized).await;
    assert!(
        body.error.message.contains("does not verify"),
        "{}",
        body.error.message
    );
    app.stop().await;
}

#[tokio::test]
async fn a_brain_with_several_names_accepts_each() {
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.edge.edge_authority = Some(
            format!("http://10.0.0.7:8080 https://{TEST_BRAIN_AUTHORITY}")
                .parse()
                .unwrap(),
        );
    })
    .await;
    for authority in ["10.0.0.7:8080", TEST_BRAIN_AUTHORITY] {
        let response = echo_signed_for(&app, authority).await;
        assert_eq!(response.status(), StatusCode::OK, "{authority}");
    }
    let response = echo_signed_for(&app, "10.0.0.8:8080").await;
    assert_error(response, ErrorCode::Unauthorized).await;
    app.stop().await;
}

#[tokio::test]
async fn without_an_authority_a_brain_accepts_any_binding_and_older_edges() {
    // The fleet-of-one default: nothing to configure, and an edge deployed before or after the
    // brain keeps working.
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.edge.edge_authority = None;
    })
    .await;
    for authority in [TEST_BRAIN_AUTHORITY, "127.0.0.1:8080", ""] {
        let response = echo_signed_for(&app, authority).await;
        assert_eq!(response.status(), StatusCode::OK, "{authority:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn rotation_accepts_any_configured_secret() {
    let new_secret = "rotated-edge-secret-abcdefghijklmnopqrstuvwxyz";
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.edge.edge_secrets =
            Some(format!("{new_secret},{TEST_EDGE_SECRET}").parse().unwrap());
    })
    .await;
    // The old secret (still listed) verifies…
    assert_eq!(app.get("/api/v1/diag/echo").await.status(), StatusCode::OK);
    // …and so does the new one.
    let signature = echo_signature(TEST_BRAIN_AUTHORITY, new_secret, now_secs());
    let response = echo_with_signature(&app, signature).await;
    assert_eq!(response.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn health_probes_need_no_signature_and_drop_identity_headers() {
    let mut app = spawn_app(Backend::Sqlite).await;
    for path in ["/health", "/ready"] {
        let response = app
            .client
            .get(app.url(path))
            .header(IDENTITY_USER, "mallory")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_brain_without_a_secret_refuses_to_start_unless_explicitly_insecure() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let mut config = database.config();
    config.edge.edge_secrets = None;
    config.edge.insecure_local = false;
    let error = brain::Application::build(config.clone()).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("BRAIN_EDGE_SECRETS"), "{message}");
    assert!(message.contains("--insecure-local"), "{message}");

    config.edge.insecure_local = true;
    let application = brain::Application::build(config).await.unwrap();
    let mut app = crate::helpers::TestApp::run(application, database);
    // Insecure: identity headers are taken as sent, no signature needed.
    let response = app
        .client
        .get(app.url("/api/v1/diag/whoami"))
        .header(IDENTITY_USER, "dev")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let who: WhoAmI = response.json().await.unwrap();
    assert_eq!(who.owner, "user:dev");
    app.stop().await;
}
