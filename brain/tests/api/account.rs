//! Sign-in state in the brain (issue 19): a visitor's session moving to the user who signs in
//! with it (`POST /api/v1/session/claim`: threads, runs and their usage, datasets and
//! documents, in one transaction, once per session and only ever to one user), and the
//! refresh-token families behind the edge's sign-ins (`/internal/v1/auth/*`: rotation, reuse
//! detection, expiry, sign-out).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use shared_types::account::{
    MAX_USER_FIELD_BYTES, MAX_USER_SCOPES, REVOKE_REFRESH_TOKEN_PATH, ROTATE_REFRESH_TOKEN_PATH,
    RefreshGrant, START_REFRESH_FAMILY_PATH, SessionClaim, SignedInUser,
};
use shared_types::chat::ThreadPage;
use shared_types::error::ErrorCode;

use crate::chat::{create_thread, send, usage, use_chat_llm};
use crate::datasets::{list, sales, sales_csv, sql_rows, upload_csv};
use crate::helpers::{
    Backend, Caller, TestApp, TestDatabase, assert_error, spawn_app, spawn_app_on, spawn_app_with,
};
use crate::knowledge::{search, upload_ok, use_fake_embeddings};
use crate::scripted_llm::fake_embeddings_server;

/// A user signing in from the visitor's session `session`.
fn signed_in(user: &str, session: &str) -> Caller {
    Caller {
        user_id: Some(user.to_owned()),
        ..Caller::anonymous(session)
    }
}

async fn claim(app: &TestApp, caller: &Caller) -> reqwest::Response {
    app.send_as(caller, app.client.post(app.url("/api/v1/session/claim")))
        .await
}

async fn claimed(app: &TestApp, caller: &Caller) -> SessionClaim {
    let response = claim(app, caller).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

async fn thread_titles(app: &TestApp, caller: &Caller) -> Vec<String> {
    let response = app
        .send_as(caller, app.client.get(app.url("/api/v1/threads")))
        .await;
    assert_eq!(response.status(), 200);
    let page: ThreadPage = response.json().await.unwrap();
    let mut titles: Vec<String> = page.threads.into_iter().map(|t| t.title).collect();
    titles.sort();
    titles
}

async fn app_with_chat_and_documents(backend: Backend) -> TestApp {
    let (url, _) = fake_embeddings_server().await;
    spawn_app_with(backend, |config| {
        use_chat_llm(config);
        use_fake_embeddings(config, url);
    })
    .await
}

async fn everything_moves_to_the_user(backend: Backend) {
    let app = app_with_chat_and_documents(backend).await;
    let visitor = Caller::anonymous("s-visit");
    let thread = create_thread(&app, &visitor, "before signing in").await;
    let reply = send(&app, &visitor, &thread.id, json!({"content": "hello"})).await;
    assert_eq!(reply.status(), StatusCode::OK);
    reply.bytes().await.unwrap(); // the whole stream: the run finished
    upload_csv(&app, &visitor, "visit_sales", &sales_csv(&sales())).await;
    upload_ok(
        &app,
        &visitor,
        "tents.txt",
        "text/plain",
        b"Pitch the tent on flat ground.".to_vec(),
    )
    .await;
    // The visitor's search index is cached before the move.
    assert_eq!(search(&app, &visitor, "tent ground", 5).await.len(), 1);

    let alice = signed_in("alice", "s-visit");
    let moved = claimed(&app, &alice).await;
    assert_eq!(
        moved,
        SessionClaim {
            first_claim: true,
            threads: 1,
            runs: 1,
            datasets: 1,
            documents: 1,
            escalations: 0,
            renamed_datasets: Vec::new(),
        }
    );

    // Alice finds all of it from any session of hers; the anonymous session holds nothing.
    let elsewhere = Caller::user("alice");
    assert_eq!(thread_titles(&app, &elsewhere).await, ["before signing in"]);
    assert_eq!(usage(&app, &elsewhere).await.runs, 1);
    let rows = sql_rows(&app, &elsewhere, "SELECT COUNT(*) AS n FROM visit_sales").await;
    assert_eq!(rows[0]["n"], json!(sales().len()));
    assert_eq!(search(&app, &elsewhere, "tent ground", 5).await.len(), 1);
    assert!(thread_titles(&app, &visitor).await.is_empty());
    assert!(
        list(&app, &visitor)
            .await
            .iter()
            .all(|d| d.name != "visit_sales")
    );
    assert!(search(&app, &visitor, "tent ground", 5).await.is_empty());

    // Idempotent: a second claim moves nothing and says the session was already bound.
    assert_eq!(claimed(&app, &alice).await, SessionClaim::default());
}

#[tokio::test]
async fn everything_a_visitor_made_moves_to_the_user_who_signs_in_sqlite() {
    everything_moves_to_the_user(Backend::Sqlite).await;
}

#[tokio::test]
async fn everything_a_visitor_made_moves_to_the_user_who_signs_in_postgres() {
    everything_moves_to_the_user(Backend::Postgres).await;
}

/// A dataset named like one the user already has moves as `<name>_2`; both stay queryable.
#[tokio::test]
async fn a_name_the_user_already_uses_moves_renamed() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let elsewhere = Caller::user("alice");
    upload_csv(&app, &elsewhere, "sales", "k\n1\n").await;
    let visitor = Caller::anonymous("s-visit");
    let visiting = upload_csv(&app, &visitor, "sales", &sales_csv(&sales())).await;

    let moved = claimed(&app, &signed_in("alice", "s-visit")).await;
    assert_eq!(moved.datasets, 1);
    assert_eq!(moved.renamed_datasets.len(), 1);
    let renamed = &moved.renamed_datasets[0];
    assert_eq!(
        (
            renamed.id.as_str(),
            renamed.from.as_str(),
            renamed.to.as_str()
        ),
        (visiting.id.as_str(), "sales", "sales_2")
    );
    let count = |table: &'static str| {
        let app = &app;
        let elsewhere = &elsewhere;
        async move {
            sql_rows(
                app,
                elsewhere,
                &format!("SELECT COUNT(*) AS n FROM {table}"),
            )
            .await[0]["n"]
                .clone()
        }
    };
    assert_eq!(count("sales").await, json!(1));
    assert_eq!(count("sales_2").await, json!(sales().len()));
}

/// Hostile and mistaken callers: nothing moves, each refused in the error shape.
#[tokio::test]
async fn a_session_moves_to_one_user_only_and_only_when_signed_in() {
    let database = TestDatabase::new(Backend::Postgres).await;
    let shared = database.sharing();
    let app = spawn_app_on(database, |_| {}).await;
    let visitor = Caller::anonymous("s-visit");
    create_thread(&app, &visitor, "mine").await;

    // Not signed in: 401.
    assert_error(claim(&app, &visitor).await, ErrorCode::Unauthorized).await;
    // Signed in without a session: 400.
    let sessionless = Caller {
        session_id: None,
        ..Caller::user("alice")
    };
    assert_error(claim(&app, &sessionless).await, ErrorCode::BadRequest).await;
    assert_eq!(thread_titles(&app, &visitor).await, ["mine"]);

    // Two users race for the session: one wins, the other gets 409, and what moved moved once.
    let (alice, mallory) = (
        signed_in("alice", "s-visit"),
        signed_in("mallory", "s-visit"),
    );
    let (a, m) = tokio::join!(claim(&app, &alice), claim(&app, &mallory));
    let (winner, loser, loser_response) = match a.status() {
        StatusCode::OK => ("alice", "mallory", m),
        _ => ("mallory", "alice", a),
    };
    let body = assert_error(loser_response, ErrorCode::Conflict).await;
    assert!(body.error.message.contains("another account"), "{body:?}");
    assert_eq!(thread_titles(&app, &Caller::user(winner)).await, ["mine"]);
    assert!(thread_titles(&app, &Caller::user(loser)).await.is_empty());

    // A second brain on the same database (or this one after a restart) knows the binding:
    // what the visitor makes anonymously later never goes to the loser.
    let other_brain = spawn_app_on(shared, |_| {}).await;
    create_thread(&other_brain, &visitor, "later").await;
    let loser_again = signed_in(loser, "s-visit");
    assert_error(claim(&other_brain, &loser_again).await, ErrorCode::Conflict).await;
    assert!(thread_titles(&app, &Caller::user(loser)).await.is_empty());
    // The winner signing in again from that session takes the later work too.
    let later = claimed(&other_brain, &signed_in(winner, "s-visit")).await;
    assert_eq!((later.first_claim, later.threads), (false, 1));
    assert_eq!(
        thread_titles(&app, &Caller::user(winner)).await,
        ["later", "mine"]
    );

    // User ids that look like owner keys of another kind stay their own users.
    let lookalike = signed_in("session:s-visit", "s-other");
    let moved = claimed(&app, &lookalike).await;
    assert_eq!(moved.threads, 0);
    assert!(
        thread_titles(&app, &Caller::user("session:s-visit"))
            .await
            .is_empty()
    );
}

// ---- refresh-token families (edge-only endpoints) -------------------------------------------

/// The brain's default `--refresh-reuse-leeway-ms`.
fn default_reuse_leeway() -> Duration {
    Duration::from_millis(
        brain::Config::from_args(["brain"])
            .unwrap()
            .edge
            .refresh_reuse_leeway_ms,
    )
}

/// A token hash (SHA-256 hex) standing for the `n`th token the edge minted.
fn hash(n: u64) -> String {
    format!("{n:064x}")
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

const HOUR_MS: i64 = 3_600_000;

fn alice() -> SignedInUser {
    SignedInUser {
        user_id: "alice".to_owned(),
        scopes: vec!["edgebrain:operator".to_owned()],
        name: Some("Alice Example".to_owned()),
    }
}

async fn post_internal(app: &TestApp, path: &str, body: serde_json::Value) -> reqwest::Response {
    app.send(app.client.post(app.url(path)).json(&body)).await
}

async fn start_family(app: &TestApp, token: u64) -> reqwest::Response {
    post_internal(
        app,
        START_REFRESH_FAMILY_PATH,
        json!({
            "user": alice(),
            "token_hash": hash(token),
            "token_expires_at_ms": now_ms() + HOUR_MS,
            "family_expires_at_ms": now_ms() + 24 * HOUR_MS,
        }),
    )
    .await
}

async fn rotate(app: &TestApp, token: u64, successor: u64) -> reqwest::Response {
    post_internal(
        app,
        ROTATE_REFRESH_TOKEN_PATH,
        json!({
            "token_hash": hash(token),
            "new_token_hash": hash(successor),
            "new_token_expires_at_ms": now_ms() + HOUR_MS,
        }),
    )
    .await
}

async fn granted(response: reqwest::Response, status: StatusCode) -> RefreshGrant {
    let actual = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// 400 in the error shape: `bad_request`, or `invalid_json` for text JSON cannot carry here
/// (a NUL).
async fn assert_bad_request(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: shared_types::error::ErrorBody = response.json().await.unwrap();
    assert!(
        matches!(
            body.error.code,
            ErrorCode::BadRequest | ErrorCode::InvalidJson
        ),
        "{body:?}"
    );
}

async fn refused(response: reqwest::Response, reason: &str) {
    let body = assert_error(response, ErrorCode::Unauthorized).await;
    assert!(
        body.error.message.contains(reason) && body.error.message.contains("sign in again"),
        "{body:?}"
    );
}

async fn rotation_and_reuse(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = granted(start_family(&app, 1).await, StatusCode::CREATED).await;
    assert_eq!((first.user.clone(), first.rotated), (alice(), true));

    let second = granted(rotate(&app, 1, 2).await, StatusCode::OK).await;
    assert_eq!(second.user, alice());
    assert_eq!(second.family_id, first.family_id);
    assert!(second.rotated);
    granted(rotate(&app, 2, 3).await, StatusCode::OK).await;

    // Token 2 again, moments later (a concurrent request of the same browser): valid, but
    // nothing new is stored — the edge keeps the refresh cookie the winner set.
    let racing = granted(rotate(&app, 2, 99).await, StatusCode::OK).await;
    assert!(!racing.rotated);
    refused(rotate(&app, 99, 100).await, "unknown").await;

    // Token 1 again past the leeway: a stolen token replayed. The family is revoked, so the
    // current token (3) stops working too.
    app.chat
        .fleet()
        .clock
        .advance(default_reuse_leeway() + Duration::from_secs(1));
    refused(rotate(&app, 1, 4).await, "already used").await;
    refused(rotate(&app, 3, 5).await, "revoked").await;
}

#[tokio::test]
async fn a_refresh_token_rotates_once_and_its_reuse_revokes_the_family_sqlite() {
    rotation_and_reuse(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_refresh_token_rotates_once_and_its_reuse_revokes_the_family_postgres() {
    rotation_and_reuse(Backend::Postgres).await;
}

/// Two brains of a fleet exchange the same token at once: one rotates, the other answers
/// within the leeway; the family stays valid.
#[tokio::test]
async fn concurrent_refreshes_through_two_brains_rotate_once() {
    let database = TestDatabase::new(Backend::Postgres).await;
    let shared = database.sharing();
    let a = spawn_app_on(database, |_| {}).await;
    let b = spawn_app_on(shared, |_| {}).await;
    granted(start_family(&a, 1).await, StatusCode::CREATED).await;
    let (one, two) = tokio::join!(rotate(&a, 1, 2), rotate(&b, 1, 3));
    let one = granted(one, StatusCode::OK).await;
    let two = granted(two, StatusCode::OK).await;
    assert!(one.rotated ^ two.rotated, "{one:?} {two:?}");
    let current = if one.rotated { 2 } else { 3 };
    let stale = if one.rotated { 3 } else { 2 };
    refused(rotate(&b, stale, 4).await, "unknown").await;
    granted(rotate(&b, current, 5).await, StatusCode::OK).await;
}

/// The same on SQLite (one brain, a browser's concurrent requests): no `SQLITE_BUSY`, one
/// rotation, the rest within the leeway.
#[tokio::test]
async fn concurrent_refreshes_on_sqlite_rotate_once_and_fail_none() {
    let app = spawn_app(Backend::Sqlite).await;
    granted(start_family(&app, 1).await, StatusCode::CREATED).await;
    let answers = futures_util::future::join_all((0..8).map(|n| rotate(&app, 1, 100 + n))).await;
    let mut rotated = 0;
    for answer in answers {
        if granted(answer, StatusCode::OK).await.rotated {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1);
}

#[tokio::test]
async fn refresh_tokens_expire_with_themselves_and_with_their_sign_in() {
    let app = spawn_app(Backend::Sqlite).await;
    let clock = &app.chat.fleet().clock;
    // The token may live an hour, the sign-in only ten minutes: the token ends with it.
    let response = post_internal(
        &app,
        START_REFRESH_FAMILY_PATH,
        json!({
            "user": alice(),
            "token_hash": hash(1),
            "token_expires_at_ms": now_ms() + HOUR_MS,
            "family_expires_at_ms": now_ms() + 600_000,
        }),
    )
    .await;
    granted(response, StatusCode::CREATED).await;
    granted(rotate(&app, 1, 2).await, StatusCode::OK).await;
    clock.advance(Duration::from_secs(601));
    refused(rotate(&app, 2, 3).await, "expired").await;

    granted(start_family(&app, 10).await, StatusCode::CREATED).await;
    clock.advance(Duration::from_secs(3601));
    refused(rotate(&app, 10, 11).await, "expired").await;
}

#[tokio::test]
async fn signing_out_revokes_the_family_and_is_idempotent() {
    let app = spawn_app(Backend::Sqlite).await;
    granted(start_family(&app, 1).await, StatusCode::CREATED).await;
    granted(rotate(&app, 1, 2).await, StatusCode::OK).await;
    let revoke = |token: u64| {
        post_internal(
            &app,
            REVOKE_REFRESH_TOKEN_PATH,
            json!({"token_hash": hash(token)}),
        )
    };
    // Signing out with an older token of the family ends the whole sign-in.
    assert_eq!(revoke(1).await.status(), StatusCode::NO_CONTENT);
    refused(rotate(&app, 2, 3).await, "revoked").await;
    assert_eq!(revoke(1).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(revoke(77).await.status(), StatusCode::NO_CONTENT);
}

/// Malformed requests are 400 in the error shape and change nothing; a request not signed by
/// the edge never reaches the endpoints.
#[tokio::test]
async fn malformed_or_unsigned_refresh_requests_are_refused() {
    // Room for a user id past the limit (the tests' default body limit is 1 KiB).
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.max_body_bytes = 16 * 1024
    })
    .await;
    granted(start_family(&app, 1).await, StatusCode::CREATED).await;

    let bad_hashes = [
        hash(0xabcdef).to_uppercase(),
        hash(1)[1..].to_owned(),
        format!("{}0", hash(1)),
        format!("{}\u{0}", &hash(1)[1..]),
        format!("{}é", &hash(1)[2..]),
        String::new(),
    ];
    for bad in &bad_hashes {
        let response = post_internal(
            &app,
            ROTATE_REFRESH_TOKEN_PATH,
            json!({"token_hash": bad, "new_token_hash": hash(2), "new_token_expires_at_ms": now_ms() + HOUR_MS}),
        )
        .await;
        assert_bad_request(response).await;
    }
    let start = |user: serde_json::Value, token: u64, token_expires: i64| {
        post_internal(
            &app,
            START_REFRESH_FAMILY_PATH,
            json!({"user": user, "token_hash": hash(token),
                   "token_expires_at_ms": token_expires,
                   "family_expires_at_ms": now_ms() + HOUR_MS}),
        )
    };
    let later = now_ms() + HOUR_MS;
    for user in [
        json!({"user_id": ""}),
        json!({"user_id": "a\u{0}b"}),
        json!({"user_id": "a\nb"}),
        json!({"user_id": "x".repeat(MAX_USER_FIELD_BYTES + 1)}),
        json!({"user_id": "bob", "scopes": vec!["s"; MAX_USER_SCOPES + 1]}),
        json!({"user_id": "bob", "scopes": ["two words"]}),
        json!({"user_id": "bob", "name": "\u{7}"}),
    ] {
        assert_bad_request(start(user, 50, later).await).await;
    }
    // An expiry in the past, or a hash already stored.
    assert_error(
        start(json!({"user_id": "bob"}), 51, now_ms() - 1).await,
        ErrorCode::BadRequest,
    )
    .await;
    assert_error(
        start(json!({"user_id": "bob"}), 1, later).await,
        ErrorCode::BadRequest,
    )
    .await;
    // Unicode ids are fine.
    granted(
        start(json!({"user_id": "东京 ✓"}), 52, later).await,
        StatusCode::CREATED,
    )
    .await;

    // A successor equal to the token, or to another stored token, is refused and leaves the
    // presented token current.
    assert_error(rotate(&app, 1, 1).await, ErrorCode::BadRequest).await;
    assert_error(rotate(&app, 1, 52).await, ErrorCode::BadRequest).await;
    granted(rotate(&app, 1, 2).await, StatusCode::OK).await;

    // Not signed by the edge: 401 before the handler, nothing rotated.
    let unsigned = app
        .client
        .post(app.url(ROTATE_REFRESH_TOKEN_PATH))
        .json(&json!({"token_hash": hash(2), "new_token_hash": hash(3), "new_token_expires_at_ms": later}))
        .send()
        .await
        .unwrap();
    assert_error(unsigned, ErrorCode::Unauthorized).await;
    granted(rotate(&app, 2, 3).await, StatusCode::OK).await;
}
