//! Attacks a hostile client made on a running brain (issue 15), each refused with the error
//! shape and the right status, after which the process still answers `/health`.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use shared_types::agent::OPERATOR_SCOPE;
use shared_types::chat::STREAM_DONE;
use shared_types::error::ErrorCode;

use crate::chat::{create_thread, send, use_chat_llm};
use crate::datasets::{list, multipart, upload_csv, upload_raw};
use crate::helpers::{
    BACKENDS, Backend, Caller, EventReader, TestApp, assert_error, spawn_app, spawn_app_with,
};

async fn assert_alive(app: &TestApp) {
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the brain must survive");
}

/// A JSON document `depth` arrays deep around one record.
fn nested_json(depth: usize) -> String {
    format!("{}{{\"a\":1}}{}", "[".repeat(depth), "]".repeat(depth))
}

#[tokio::test]
async fn deeply_nested_json_and_ndjson_uploads_are_refused_before_parsing() {
    let alice = Caller::user("alice");
    for backend in BACKENDS {
        let mut app = spawn_app(backend).await;
        // 100,000 levels aborted the process (stack overflow); 500 levels in 1 KB took 3.2 GB.
        for depth in [100_000, 500, 17] {
            for (content_type, body) in [
                ("application/json", nested_json(depth)),
                (
                    "application/x-ndjson",
                    format!("{{\"a\":{}1{}}}\n", "[".repeat(depth), "]".repeat(depth)),
                ),
            ] {
                let response =
                    upload_raw(&app, &alice, "name=deep", content_type, body.clone()).await;
                let error = assert_error(response, ErrorCode::Unprocessable).await;
                assert!(
                    error.error.message.contains("nests deeper than 16"),
                    "{backend} {content_type} {depth}: {}",
                    error.error.message
                );
            }
            assert_alive(&app).await;
        }
        // Nesting within the limit is data.
        let response = upload_raw(
            &app,
            &alice,
            "name=nested",
            "application/x-ndjson",
            "{\"a\":{\"b\":[1,2]}}\n{\"a\":{\"b\":[3]}}\n",
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{backend}");
        assert_eq!(
            list(&app, &alice).await.len(),
            1,
            "{backend}: nothing else stored"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn wide_files_and_huge_cells_are_refused_before_parsing() {
    let alice = Caller::user("alice");
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.edge.edge_signed_body_max_bytes = 16 * 1024 * 1024;
    })
    .await;
    // A million columns drove the brain to 6 GB and a 504.
    let wide = format!("{}c\n", "c,".repeat(1_000_000));
    let response = upload_raw(&app, &alice, "name=wide", "text/csv", wide).await;
    let error = assert_error(response, ErrorCode::Unprocessable).await;
    assert!(
        error.error.message.contains("more than 4096 columns"),
        "{}",
        error.error.message
    );

    let keys: Vec<String> = (0..5_000).map(|i| format!("\"k{i}\":1")).collect();
    let wide_json = format!("[{{{}}}]", keys.join(","));
    let response = upload_raw(&app, &alice, "name=wide", "application/json", wide_json).await;
    let error = assert_error(response, ErrorCode::Unprocessable).await;
    assert!(
        error.error.message.contains("distinct keys"),
        "{}",
        error.error.message
    );

    let cell = format!("a,b\n1,{}\n", "x".repeat(1024 * 1024 + 1));
    let response = upload_raw(&app, &alice, "name=cell", "text/csv", cell).await;
    let error = assert_error(response, ErrorCode::Unprocessable).await;
    assert!(
        error.error.message.contains("longer than"),
        "{}",
        error.error.message
    );
    assert_alive(&app).await;
    assert!(list(&app, &alice).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_upload_needing_more_than_the_ingest_memory_limit_is_413() {
    let alice = Caller::user("alice");
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.data.ingest_memory_limit_bytes = 256 * 1024;
        config.edge.edge_signed_body_max_bytes = 16 * 1024 * 1024;
    })
    .await;
    // 2,000 rows × 1,000 columns: 2 MB of values, far past 256 KiB in polars.
    let header: Vec<String> = (0..1_000).map(|i| format!("c{i}")).collect();
    let row = vec!["1"; 1_000].join(",");
    let mut csv = header.join(",");
    for _ in 0..2_000 {
        csv.push('\n');
        csv.push_str(&row);
    }
    let response = upload_raw(&app, &alice, "name=big", "text/csv", csv).await;
    let error = assert_error(response, ErrorCode::PayloadTooLarge).await;
    assert!(
        error.error.message.contains("ingest limit"),
        "{}",
        error.error.message
    );
    // A small file still fits.
    upload_csv(&app, &alice, "small", "a,b\n1,2\n").await;
    assert_alive(&app).await;
    app.stop().await;
}

async fn query_app() -> (TestApp, Caller) {
    let alice = Caller::user("alice");
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.server.max_body_bytes = 4 * 1024 * 1024;
        config.edge.edge_signed_body_max_bytes = 4 * 1024 * 1024;
    })
    .await;
    upload_csv(&app, &alice, "t", "a,b\n1,2\n3,4\n").await;
    (app, alice)
}

#[tokio::test]
async fn a_deeply_nested_request_body_is_400() {
    let (mut app, alice) = query_app().await;
    let deep = app
        .send_as(
            &alice,
            app.client
                .post(app.url("/api/v1/queries/json"))
                .header(CONTENT_TYPE, "application/json")
                .body(nested_json(100_000)),
        )
        .await;
    assert_error(deep, ErrorCode::InvalidJson).await;
    assert_alive(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_filter_of_ten_thousand_conditions_is_400() {
    let (mut app, alice) = query_app().await;
    // An AND of 10,000 conditions: a 10,000-deep expression tree for polars' optimizer.
    let conditions: Vec<Value> = (0..10_000)
        .map(|i| json!({"op": "ne", "column": "a", "value": i}))
        .collect();
    let wide_filter = app
        .send_as(
            &alice,
            app.client
                .post(app.url("/api/v1/queries/json"))
                .json(&json!({
                    "dataset": "t",
                    "filter": {"op": "and", "args": conditions},
                })),
        )
        .await;
    let error = assert_error(wide_filter, ErrorCode::BadRequest).await;
    assert!(
        error.error.message.contains("filter is too large"),
        "{}",
        error.error.message
    );
    assert_alive(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn an_sql_operator_chain_beyond_the_limit_is_refused_and_one_within_answers() {
    let (mut app, alice) = query_app().await;
    let sql = |n: usize| {
        let chain = vec!["a = 1"; n].join(" OR ");
        app.client
            .post(app.url("/api/v1/queries/sql"))
            .json(&json!({ "sql": format!("SELECT * FROM t WHERE {chain}") }))
    };
    let refused = app.send_as(&alice, sql(100_000)).await;
    let status = refused.status();
    let text = refused.text().await.unwrap();
    assert!(
        status.is_client_error() && text.contains("too complex"),
        "{status}: {text}"
    );
    // 250 conditions: 499 operators, just under the limit.
    let answered = app.send_as(&alice, sql(250)).await;
    assert_eq!(answered.status(), StatusCode::OK);
    assert_alive(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn nul_in_titles_messages_documents_names_ids_and_cursors_is_400_on_both_databases() {
    let alice = Caller::user("alice");
    for backend in BACKENDS {
        let mut app = spawn_app(backend).await;
        let thread = create_thread(&app, &alice, "fine").await;
        let title = app
            .send_as(
                &alice,
                app.client
                    .post(app.url("/api/v1/threads"))
                    .json(&json!({"title": "a\u{0}b"})),
            )
            .await;
        assert_error(title, ErrorCode::InvalidJson).await;
        let message = send(&app, &alice, &thread.id, json!({"content": "hi\u{0}"})).await;
        assert_error(message, ErrorCode::InvalidJson).await;
        for path in [
            "/api/v1/threads/x%00y".to_owned(),
            format!("/api/v1/threads/{}/messages?before=%00", thread.id),
            "/api/v1/runs/r%00/events?after=1".to_owned(),
            "/api/v1/datasets/d%00".to_owned(),
        ] {
            let response = app.send_as(&alice, app.client.get(app.url(&path))).await;
            assert_error(response, ErrorCode::BadRequest).await;
        }
        let upload = upload_raw(&app, &alice, "name=a%00b", "text/csv", "a\n1\n").await;
        assert_error(upload, ErrorCode::BadRequest).await;
        let document = app
            .send_as(
                &alice,
                app.client
                    .post(app.url("/api/v1/documents?name=doc"))
                    .header(CONTENT_TYPE, "text/plain")
                    .body("text with a \0 in it"),
            )
            .await;
        let error = assert_error(document, ErrorCode::BadRequest).await;
        assert!(
            error.error.message.contains("NUL"),
            "{}",
            error.error.message
        );
        // An escaped backslash before "u0000" is text, not NUL.
        let fine = app
            .send_as(
                &alice,
                app.client
                    .post(app.url("/api/v1/threads"))
                    .header(CONTENT_TYPE, "application/json")
                    .body(r#"{"title":"C:\\u0000"}"#),
            )
            .await;
        assert_eq!(fine.status(), StatusCode::CREATED, "{backend}");
        assert_alive(&app).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn event_cursors_beyond_any_event_are_refused_and_huge_ones_allocate_nothing() {
    let alice = Caller::user("alice");
    // Live (in memory) and replayed from each database.
    for (backend, retention_secs) in [
        (Backend::Sqlite, 300),
        (Backend::Sqlite, 0),
        (Backend::Postgres, 0),
    ] {
        let mut app = spawn_app_with(backend, |config| {
            use_chat_llm(config);
            config.chat.run_retention_secs = retention_secs;
        })
        .await;
        let thread = create_thread(&app, &alice, "cursors").await;
        let response = send(&app, &alice, &thread.id, json!({"content": "Hi"})).await;
        let run_id = response.headers()[shared_types::chat::RUN_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        EventReader::new(response).collect().await;
        let events = |query: &str| {
            app.client
                .get(app.url(&format!("/api/v1/runs/{run_id}/events{query}")))
        };

        // 10^13 aborted the brain (an allocation sized by the cursor): now an empty replay.
        let far = app.send_as(&alice, events("?after=10000000000000")).await;
        assert_eq!(far.status(), StatusCode::OK);
        let data: Vec<String> = EventReader::new(far)
            .collect()
            .await
            .into_iter()
            .map(|e| e.data)
            .collect();
        assert_eq!(data, [STREAM_DONE], "{backend} retention {retention_secs}");
        let far = app
            .send_as(
                &alice,
                events("").header("last-event-id", "9007199254740991"),
            )
            .await;
        assert_eq!(far.status(), StatusCode::OK);

        for cursor in [
            "1000000000000000000",
            "9007199254740992",
            "18446744073709551616",
            "-1",
        ] {
            let response = app
                .send_as(&alice, events(&format!("?after={cursor}")))
                .await;
            assert!(
                response.status() == StatusCode::BAD_REQUEST,
                "{cursor}: {}",
                response.status()
            );
            let response = app
                .send_as(&alice, events("").header("last-event-id", cursor))
                .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{cursor}");
        }
        assert_alive(&app).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn only_signed_in_operators_publish_or_pin_in_every_encoding() {
    for backend in BACKENDS {
        let mut app = spawn_app(backend).await;
        let mallory = Caller::anonymous("mallory-session");
        // Scopes on an anonymous caller do not make it an operator (the edge never sends
        // them, but the brain does not rely on that); nor does a user without the scope.
        let anonymous_with_scope =
            Caller::anonymous("scoped-session").with_scopes(&[OPERATOR_SCOPE]);
        let user = Caller::user("alice").with_scopes(&["datasets:write"]);
        for caller in [&mallory, &anonymous_with_scope, &user] {
            // The scope as a query parameter: refused before the body is read. The query's
            // values are exact (the form's are trimmed and case-folded): `PUBLIC` is no scope.
            let response = upload_raw(
                &app,
                caller,
                "name=squat&scope=public",
                "text/csv",
                "a\n1\n",
            )
            .await;
            let error = assert_error(response, ErrorCode::Forbidden).await;
            assert!(error.error.message.contains("operators"), "{error:?}");
            let response = upload_raw(
                &app,
                caller,
                "name=squat&scope=PUBLIC",
                "text/csv",
                "a\n1\n",
            )
            .await;
            assert_error(response, ErrorCode::InvalidQuery).await;
            // The scope as a multipart field, before and after the file.
            for fields in [
                vec![
                    ("name", None, &b"squat"[..]),
                    ("scope", None, b" public "),
                    ("file", Some("a.csv"), b"a\n1\n"),
                ],
                vec![
                    ("name", None, &b"squat"[..]),
                    ("file", Some("a.csv"), b"a\n1\n"),
                    ("scope", None, b"public"),
                ],
            ] {
                let (content_type, body) = multipart(&fields);
                let response = app
                    .send_as(
                        caller,
                        app.client
                            .post(app.url("/api/v1/datasets"))
                            .header(CONTENT_TYPE, content_type)
                            .body(body),
                    )
                    .await;
                assert_error(response, ErrorCode::Forbidden).await;
            }
            // A server-side import published: refused before the file is looked for.
            let response = app
                .send_as(
                    caller,
                    app.client
                        .post(app.url("/api/v1/datasets/import"))
                        .json(&json!({"name": "squat", "path": "nowhere.csv", "scope": "public"})),
                )
                .await;
            assert_error(response, ErrorCode::Forbidden).await;
            // Pinning its own dataset: refused (a pinned frame takes every tenant's memory);
            // unpinning stays allowed.
            let own = upload_csv(&app, caller, "own", "a\n1\n").await;
            let pin = app.url(&format!("/api/v1/datasets/{}/pin", own.id));
            assert_error(
                app.send_as(caller, app.client.put(&pin)).await,
                ErrorCode::Forbidden,
            )
            .await;
            assert_eq!(
                app.send_as(caller, app.client.delete(&pin)).await.status(),
                StatusCode::OK
            );
        }
        // Nothing was published: another caller sees only the sample's public datasets.
        let seen = list(&app, &Caller::anonymous("bystander")).await;
        assert!(
            seen.iter().all(|d| d.name != "squat"),
            "{backend}: {seen:?}"
        );
        assert_alive(&app).await;
        app.stop().await;
    }
}

#[tokio::test]
async fn public_names_are_unique_and_the_samples_are_taken() {
    for backend in BACKENDS {
        let mut app = spawn_app_with(backend, |config| config.data.sample_transactions = 100).await;
        let oscar = Caller::user("oscar").with_scopes(&[OPERATOR_SCOPE]);
        let olga = Caller::user("olga").with_scopes(&[OPERATOR_SCOPE]);
        let mallory = Caller::anonymous("mallory-session");
        // Even an operator cannot take the sample's name.
        let squat = upload_raw(
            &app,
            &oscar,
            "name=transactions&scope=public",
            "text/csv",
            "store_id,amount\n1,999999\n",
        )
        .await;
        let error = assert_error(squat, ErrorCode::Conflict).await;
        assert!(
            error.error.message.contains("public names are unique"),
            "{}",
            error.error.message
        );

        // First come keeps a free public name; a second publisher gets 409.
        let first = upload_raw(
            &app,
            &olga,
            "name=shared&scope=public",
            "text/csv",
            "a\n1\n",
        )
        .await;
        assert_eq!(first.status(), StatusCode::CREATED, "{backend}");
        let second = upload_raw(
            &app,
            &oscar,
            "name=shared&scope=public",
            "text/csv",
            "a\n2\n",
        )
        .await;
        assert_error(second, ErrorCode::Conflict).await;
        // Renaming a public dataset onto a taken public name: 409 too.
        let other: shared_types::data::DatasetInfo = upload_raw(
            &app,
            &oscar,
            "name=other&scope=public",
            "text/csv",
            "a\n3\n",
        )
        .await
        .json()
        .await
        .unwrap();
        let rename = app
            .send_as(
                &oscar,
                app.client
                    .patch(app.url(&format!("/api/v1/datasets/{}", other.id)))
                    .json(&json!({"name": "products"})),
            )
            .await;
        assert_error(rename, ErrorCode::Conflict).await;
        // A private dataset may share a public name: it only shadows it for its owner.
        let private = upload_raw(&app, &mallory, "name=transactions", "text/csv", "a\n1\n").await;
        assert_eq!(private.status(), StatusCode::CREATED, "{backend}");
        let rows =
            crate::datasets::sql_rows(&app, &olga, "SELECT COUNT(*) AS n FROM transactions").await;
        assert_eq!(
            rows[0]["n"], 100,
            "{backend}: olga reads the sample, not mallory's rows"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn parquet_uploads_are_refused_unless_the_operator_turned_them_on() {
    // The Parquet guard bounds what polars decodes from a file's headers, but polars still
    // trusts the values encoded in its pages: untrusted uploaders cannot send one by default.
    let alice = Caller::user("alice");
    let mut app = spawn_app(Backend::Sqlite).await;
    let response = upload_raw(
        &app,
        &alice,
        "name=p",
        "application/vnd.apache.parquet",
        b"PAR1 not really PAR1".to_vec(),
    )
    .await;
    let error = assert_error(response, ErrorCode::UnsupportedMediaType).await;
    assert!(
        error.error.message.contains("--parquet-uploads"),
        "{}",
        error.error.message
    );
    assert!(list(&app, &alice).await.is_empty());
    assert_alive(&app).await;
    app.stop().await;
}

/// The fuzzer's malformed Parquet files (issue 15; the first byte of an input picks the format,
/// the rest is the file): one made polars-parquet reserve 2^61 bytes, aborting the brain; the
/// other made its footer parser panic.
const PARQUET_ALLOC: &[u8] = include_bytes!("../../../fuzz/open-crashes/ingest-parquet-alloc-2e61")
    .split_at(1)
    .1;
const PARQUET_PANIC: &[u8] =
    include_bytes!("../../../fuzz/open-crashes/ingest-parquet-crash-3429e0cd")
        .split_at(1)
        .1;

/// `file` grown to `size` bytes by zeros between its column chunks and its footer, where no
/// reader looks (the footer's offsets stay right).
fn parquet_padded_to(file: &[u8], size: usize) -> Vec<u8> {
    let footer = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
    let data_end = file.len() - 8 - footer as usize;
    let mut padded = file[..data_end].to_vec();
    padded.resize(size - (file.len() - data_end), 0);
    padded.extend_from_slice(&file[data_end..]);
    padded
}

#[tokio::test]
async fn malformed_parquet_is_refused_naming_the_cause_and_never_takes_the_brain_down() {
    let alice = Caller::user("alice");
    let parquet_uploads = |config: &mut brain::Config| config.data.parquet_uploads = true;
    let mut app = spawn_app_with(Backend::Sqlite, parquet_uploads).await;
    for (name, file) in [("alloc", PARQUET_ALLOC), ("panics", PARQUET_PANIC)] {
        let response = upload_raw(
            &app,
            &alice,
            &format!("name={name}"),
            "application/vnd.apache.parquet",
            file.to_vec(),
        )
        .await;
        let error = assert_error(response, ErrorCode::Unprocessable).await;
        assert!(
            error
                .error
                .message
                .starts_with("not a readable Parquet file: "),
            "{name}: {}",
            error.error.message
        );
        assert_alive(&app).await;
    }
    assert!(list(&app, &alice).await.is_empty());

    // A dataset's stored object replaced by the aborting file (at the size its row recorded,
    // so it is read and parsed; the dataset as wide as the file, so the guard gets to its
    // pages). After a restart, loaded (the default budget) and scanned (a budget smaller than
    // the dataset): a 503 naming the dataset and the cause; the brain serves the other dataset.
    let csv: String = std::iter::once("store,qty,a,b,c,d,e,f\n".to_owned())
        .chain((0..1_000).map(|i| format!("store number {i},{i},1,2,3,4,5,6\n")))
        .collect();
    let sales = upload_csv(&app, &alice, "sales", &csv).await;
    upload_csv(&app, &alice, "other", "k\n1\n2\n").await;
    let objects = app.database.data_dir.join("datasets").join(&sales.id);
    let object = std::fs::read_dir(&objects)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let size = std::fs::metadata(&object).unwrap().len() as usize;
    assert!(
        size > PARQUET_ALLOC.len(),
        "the dataset's object is {size} bytes"
    );
    std::fs::write(&object, parquet_padded_to(PARQUET_ALLOC, size)).unwrap();
    for budget in [None, Some(4_096)] {
        app = restarted(app, |config| {
            if let Some(budget) = budget {
                config.data.datasets_memory_budget_bytes = budget;
            }
        })
        .await;
        let response = app
            .send_as(
                &alice,
                app.client
                    .post(app.url("/api/v1/queries/sql"))
                    .json(&json!({"sql": "SELECT SUM(qty) AS q FROM sales"})),
            )
            .await;
        let error = assert_error(response, ErrorCode::Unavailable).await;
        let message = &error.error.message;
        assert!(
            message.contains("`sales`")
                && message.contains("damaged (not readable Parquet)")
                && message.contains("negative count"),
            "budget {budget:?}: {message}"
        );
        assert_alive(&app).await;
        let other =
            crate::datasets::sql_rows(&app, &alice, "SELECT COUNT(*) AS n FROM other").await;
        assert_eq!(other[0]["n"], 2, "budget {budget:?}");
    }
    app.stop().await;
}

/// `app` stopped and started again on its data directory and database, with `adjust` applied
/// to its configuration.
async fn restarted(mut app: TestApp, adjust: impl FnOnce(&mut brain::Config)) -> TestApp {
    app.stop().await;
    let TestApp { database, .. } = app;
    let mut config = database.config();
    adjust(&mut config);
    TestApp::run(brain::Application::build(config).await.unwrap(), database)
}

/// The document chunk quota counts anonymous callers by network, as the token budget does:
/// sessions are free to mint, so a per-session quota would let one client store without end.
#[tokio::test]
async fn fresh_sessions_bring_no_fresh_knowledge_quota_even_across_a_restart() {
    const LIMIT: u64 = 2;
    let text = b"Plain words about returns and refunds.".to_vec();
    let harvested =
        |i: usize| Caller::anonymous(&format!("harvest-{i}")).with_network("198.51.100.7");
    for backend in BACKENDS {
        let mut app = spawn_app_with(backend, |config| {
            config.knowledge.knowledge_max_chunks_per_owner = LIMIT;
        })
        .await;
        let first =
            crate::knowledge::upload_ok(&app, &harvested(0), "a.txt", "text/plain", text.clone())
                .await;
        crate::knowledge::upload_ok(&app, &harvested(1), "b.txt", "text/plain", text.clone()).await;
        for i in 2..5 {
            let response =
                crate::knowledge::upload(&app, &harvested(i), "c.txt", "text/plain", text.clone())
                    .await;
            let error = assert_error(response, ErrorCode::Unprocessable).await;
            assert!(
                error.error.message.contains("limit per caller is 2"),
                "{backend}: {error:?}"
            );
        }
        // Another network, and a signed-in user on the same network, count on their own.
        let elsewhere = Caller::anonymous("elsewhere").with_network("2001:db8:1:2::/64");
        crate::knowledge::upload_ok(&app, &elsewhere, "d.txt", "text/plain", text.clone()).await;
        let user = Caller::user("ursula");
        crate::knowledge::upload_ok(&app, &user, "e.txt", "text/plain", text.clone()).await;

        // The counter is in the database: a restart gives the network nothing back.
        app.stop().await;
        let TestApp { database, .. } = app;
        let mut config = database.config();
        config.knowledge.knowledge_max_chunks_per_owner = LIMIT;
        let application = brain::Application::build(config).await.unwrap();
        let app = TestApp::run(application, database);
        let response =
            crate::knowledge::upload(&app, &harvested(9), "f.txt", "text/plain", text.clone())
                .await;
        assert_error(response, ErrorCode::Unprocessable).await;

        // Deleting a document gives its chunk back to the network's counter, whichever
        // session uploads next.
        let deleted = app
            .send_as(
                &harvested(0),
                app.client
                    .delete(app.url(&format!("/api/v1/documents/{}", first.id))),
            )
            .await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT, "{backend}");
        crate::knowledge::upload_ok(&app, &harvested(10), "g.txt", "text/plain", text.clone())
            .await;
        assert_alive(&app).await;
    }
}
