//! The identity the edge signs, as the brain reads it: any JWT `sub` is exactly that user (the
//! edge percent-encodes it), a malformed identity header is refused rather than skipped, users
//! sharing one browser session stay apart, and anonymous token budgets count by network.

use reqwest::StatusCode;
use serde_json::json;
use shared_types::diag::WhoAmI;
use shared_types::error::ErrorCode;
use shared_types::headers::{IDENTITY_SESSION, IDENTITY_USER};

use crate::chat::{chunks, create_thread, send, use_chat_llm};
use crate::datasets::{list, sql_rows, upload_csv};
use crate::helpers::{
    BACKENDS, Backend, Caller, EventReader, assert_error, spawn_app, spawn_app_with,
};

async fn whoami(app: &crate::helpers::TestApp, caller: &Caller) -> WhoAmI {
    let response = app
        .send_as(caller, app.client.get(app.url("/api/v1/diag/whoami")))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn any_subject_the_edge_signs_is_exactly_that_user() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let long = "x".repeat(300);
    for sub in [
        "a b",
        "José",
        "東京 太郎",
        "a:b",
        "50%",
        "user:x",
        long.as_str(),
    ] {
        let who = whoami(&app, &Caller::user(sub)).await;
        assert_eq!(who.user_id.as_deref(), Some(sub));
        assert_eq!(who.owner, format!("user:{sub}"));
        assert_eq!(who.budget_key.as_deref(), Some(who.owner.as_str()));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_identity_header_is_refused_even_when_signed() {
    let mut app = spawn_app(Backend::Sqlite).await;
    // Signed (the helper signs whatever identity headers are on the request), but not in the
    // edge's encoding: refused, never read as the session's anonymous caller.
    for user in ["a b", "caf%c3%a9", "%00", "a%41"] {
        let response = app
            .send(
                app.client
                    .get(app.url("/api/v1/diag/whoami"))
                    .header(IDENTITY_USER, user)
                    .header(IDENTITY_SESSION, "s-1"),
            )
            .await;
        assert_error(response, ErrorCode::Unauthorized).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn users_sharing_one_browser_session_never_see_each_others_datasets_on_both_backends() {
    let session = "0123456789abcdef0123456789abcdef";
    let with_session = |sub: &str| Caller {
        session_id: Some(session.to_owned()),
        ..Caller::user(sub)
    };
    let (first, second) = (with_session("José Smith"), with_session("José  Smith"));
    let anonymous = Caller::anonymous(session);
    for backend in BACKENDS {
        let mut app = spawn_app(backend).await;
        let secret = upload_csv(&app, &first, "private_notes", "n\n1\n2\n").await;
        for other in [&second, &anonymous] {
            assert!(
                list(&app, other).await.iter().all(|d| d.id != secret.id),
                "{backend}: {other:?} sees the dataset"
            );
            let query = app
                .send_as(
                    other,
                    app.client
                        .post(app.url("/api/v1/queries/sql"))
                        .json(&json!({"sql": "SELECT * FROM private_notes"})),
                )
                .await;
            assert_error(query, ErrorCode::NotFound).await;
        }
        assert_eq!(
            sql_rows(&app, &first, "SELECT SUM(n) AS s FROM private_notes").await[0]["s"],
            json!(3)
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn anonymous_token_budgets_count_by_network_not_by_session() {
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        use_chat_llm(config);
        config.chat.budget_tokens_per_owner = Some(1);
    })
    .await;
    let network = "2001:db8:1:2::/64";
    let first = Caller::anonymous("session-one").with_network(network);
    let thread = create_thread(&app, &first, "first").await;
    let reply = send(&app, &first, &thread.id, json!({"content": "Hi"})).await;
    assert_eq!(reply.status(), StatusCode::OK);
    chunks(&EventReader::new(reply).collect().await);

    // A fresh session from the same network brings no fresh budget.
    let fresh = Caller::anonymous("session-two").with_network(network);
    assert_eq!(
        whoami(&app, &fresh).await.budget_key.as_deref(),
        Some("network:2001:db8:1:2::/64")
    );
    let thread = create_thread(&app, &fresh, "fresh").await;
    assert_error(
        send(&app, &fresh, &thread.id, json!({"content": "Hi"})).await,
        ErrorCode::RateLimited,
    )
    .await;

    // Another network, and a signed-in user on the same network, have budgets of their own.
    for other in [
        Caller::anonymous("session-three").with_network("198.51.100.7"),
        Caller::user("alice"),
    ] {
        let thread = create_thread(&app, &other, "other").await;
        let reply = send(&app, &other, &thread.id, json!({"content": "Hi"})).await;
        assert_eq!(reply.status(), StatusCode::OK, "{other:?}");
        chunks(&EventReader::new(reply).collect().await);
    }
    app.stop().await;
}
