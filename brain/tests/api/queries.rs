//! SQL and typed JSON queries over HTTP, checked against values computed here independently;
//! pagination, content negotiation, the SQL allowlist, limits, metrics.

use std::collections::BTreeMap;

use polars::prelude::*;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};
use shared_types::data::{QueryResult, page_headers};
use shared_types::error::ErrorCode;

use crate::datasets::{sales, sales_csv, sql_rows, upload_csv};
use crate::helpers::{BACKENDS, Backend, Caller, TestApp, assert_error, spawn_app, spawn_app_with};

const REGIONS: &str = "store,region\nnorth,cold\nsouth,warm\neast,cold\n";

async fn post_query(app: &TestApp, caller: &Caller, kind: &str, body: Value) -> reqwest::Response {
    app.send_as(
        caller,
        app.client
            .post(app.url(&format!("/api/v1/queries/{kind}")))
            .json(&body),
    )
    .await
}

async fn result(response: reqwest::Response) -> QueryResult {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Units and revenue per store, computed without the brain.
fn expected_by_store() -> BTreeMap<&'static str, (i64, f64)> {
    let mut expected = BTreeMap::new();
    for sale in sales() {
        let entry = expected.entry(sale.store).or_insert((0, 0.0));
        entry.0 += sale.qty;
        entry.1 += sale.qty as f64 * sale.price;
    }
    expected
}

#[tokio::test]
async fn sql_and_json_queries_give_independently_computed_results_on_both_backends() {
    let alice = Caller::user("alice");
    let expected = expected_by_store();
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
        upload_csv(&app, &alice, "regions", REGIONS).await;

        // Group-by with aggregates.
        let rows = sql_rows(
            &app,
            &alice,
            "SELECT store, SUM(qty) AS units, SUM(qty * price) AS revenue FROM sales \
             GROUP BY store ORDER BY store",
        )
        .await;
        assert_eq!(rows.len(), 3, "{backend}");
        for row in &rows {
            let (units, revenue) = expected[row["store"].as_str().unwrap()];
            assert_eq!(row["units"], json!(units), "{backend}");
            assert_eq!(row["revenue"].as_f64().unwrap(), revenue, "{backend}");
        }

        // CTE + join + window function.
        let rows = sql_rows(
            &app,
            &alice,
            "WITH per_store AS (SELECT store, SUM(qty) AS units FROM sales GROUP BY store) \
             SELECT r.region, p.store, p.units, SUM(p.units) OVER (PARTITION BY r.region) AS region_units \
             FROM per_store p JOIN regions r ON r.store = p.store ORDER BY p.store",
        )
        .await;
        let cold = expected["north"].0 + expected["east"].0;
        let by_store: BTreeMap<&str, &serde_json::Map<String, Value>> = rows
            .iter()
            .map(|row| (row["store"].as_str().unwrap(), row))
            .collect();
        assert_eq!(by_store["north"]["region_units"], json!(cold), "{backend}");
        assert_eq!(by_store["east"]["region_units"], json!(cold), "{backend}");
        assert_eq!(
            by_store["south"]["region_units"],
            json!(expected["south"].0),
            "{backend}"
        );

        // The same group-by as a typed JSON query.
        let answer = result(
            post_query(
                &app,
                &alice,
                "json",
                json!({
                    "dataset": "sales",
                    "filter": {"op": "ge", "column": "qty", "value": 1},
                    "group_by": ["store"],
                    "aggregates": [{"function": "sum", "column": "qty", "alias": "units"},
                                   {"function": "count", "column": "qty", "alias": "n"}],
                    "sort": [{"column": "store"}]
                }),
            )
            .await,
        )
        .await;
        let rows = answer.rows.unwrap();
        let stores: Vec<&str> = rows.iter().map(|r| r["store"].as_str().unwrap()).collect();
        assert_eq!(stores, ["east", "north", "south"], "{backend}");
        for row in &rows {
            let store = row["store"].as_str().unwrap();
            assert_eq!(row["units"], json!(expected[store].0), "{backend}");
            let count = sales().iter().filter(|s| s.store == store).count();
            assert_eq!(row["n"], json!(count), "{backend}");
        }

        // Filter + select + sort, in columns shape.
        let answer = result(
            post_query(
                &app,
                &alice,
                "json",
                json!({
                    "dataset": "sales",
                    "select": ["qty", "price"],
                    "filter": {"op": "and", "args": [
                        {"op": "eq", "column": "store", "value": "north"},
                        {"op": "gt", "column": "price", "value": 3.0}]},
                    "sort": [{"column": "price", "descending": true}],
                    "shape": "columns"
                }),
            )
            .await,
        )
        .await;
        let mut prices: Vec<f64> = sales()
            .iter()
            .filter(|s| s.store == "north" && s.price > 3.0)
            .map(|s| s.price)
            .collect();
        prices.sort_by(|a, b| b.partial_cmp(a).unwrap());
        assert!(answer.rows.is_none());
        assert_eq!(answer.data.unwrap()["price"], json!(prices), "{backend}");
    }
}

#[tokio::test]
async fn pages_walk_the_whole_result_in_every_format() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice");
    let rows = sales();
    upload_csv(&app, &alice, "sales", &sales_csv(&rows)).await;
    let sql = "SELECT qty, price FROM sales ORDER BY price";

    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let answer = result(
            post_query(
                &app,
                &alice,
                "sql",
                json!({"sql": sql, "limit": 7, "offset": offset}),
            )
            .await,
        )
        .await;
        assert_eq!(answer.page.offset, offset);
        assert_eq!(answer.page.limit, 7);
        let page = answer.rows.unwrap();
        assert_eq!(answer.page.returned, page.len() as u64);
        seen.extend(page.into_iter().map(|row| row["price"].as_f64().unwrap()));
        match answer.page.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    let expected: Vec<f64> = rows.iter().map(|s| s.price).collect();
    assert_eq!(seen, expected);

    // CSV: the same page, with the page in headers.
    let response = app
        .send_as(
            &alice,
            app.client
                .post(app.url("/api/v1/queries/sql"))
                .header(ACCEPT, "text/csv")
                .json(&json!({"sql": sql, "limit": 7, "offset": 14})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/csv");
    assert_eq!(response.headers()[page_headers::RETURNED], "6");
    assert!(response.headers().get(page_headers::NEXT_OFFSET).is_none());
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "qty,price");
    assert_eq!(lines.len(), 7);
    assert_eq!(lines[1], format!("{},{:.1}", rows[14].qty, rows[14].price));

    // Arrow IPC (file format): decodes to the same frame.
    let response = app
        .send_as(
            &alice,
            app.client
                .post(app.url("/api/v1/queries/sql"))
                .header(ACCEPT, "application/vnd.apache.arrow.file")
                .json(&json!({"sql": sql, "limit": 7})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[page_headers::NEXT_OFFSET], "7");
    let bytes = response.bytes().await.unwrap();
    let frame = IpcReader::new(std::io::Cursor::new(bytes.to_vec()))
        .finish()
        .unwrap();
    let qty: Vec<i64> = frame
        .column("qty")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(qty, rows[..7].iter().map(|s| s.qty).collect::<Vec<_>>());

    // A type the brain cannot produce, and limits beyond the row limit.
    let response = app
        .send_as(
            &alice,
            app.client
                .post(app.url("/api/v1/queries/sql"))
                .header(ACCEPT, "image/png")
                .json(&json!({"sql": sql})),
        )
        .await;
    assert_error(response, ErrorCode::BadRequest).await;
    let too_many = post_query(&app, &alice, "sql", json!({"sql": sql, "limit": 1_000_000})).await;
    assert_error(too_many, ErrorCode::BadRequest).await;
}

#[tokio::test]
async fn the_row_limit_caps_an_answer_and_says_where_to_continue() {
    let app = spawn_app_with(Backend::Sqlite, |config| config.query_max_rows = 5).await;
    let alice = Caller::user("alice");
    upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
    let answer = result(post_query(&app, &alice, "json", json!({"dataset": "sales"})).await).await;
    assert_eq!(answer.page.returned, 5);
    assert_eq!(answer.page.next_offset, Some(5));
}

#[tokio::test]
async fn every_forbidden_sql_form_is_refused_and_changes_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice");
    upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
    let secret = std::env::temp_dir().join("edgebrain-never-read.csv");
    let refused = [
        ("CREATE TABLE copy AS SELECT * FROM sales", "CREATE TABLE"),
        ("DROP TABLE sales", "DROP"),
        ("INSERT INTO sales VALUES ('x', 1, 1.0)", "INSERT"),
        ("UPDATE sales SET qty = 0", "UPDATE"),
        ("DELETE FROM sales", "DELETE"),
        ("TRUNCATE TABLE sales", "TRUNCATE"),
        ("SELECT 1; SELECT 2", "exactly one"),
        ("SELECT * FROM sales; DROP TABLE sales", "exactly one"),
        (
            &format!("SELECT * FROM read_csv('{}')", secret.display()),
            "table functions",
        ),
        (
            "SELECT * FROM read_parquet('/etc/passwd')",
            "table functions",
        ),
        (
            "SELECT * FROM sales WHERE store IN (SELECT store FROM read_json('x'))",
            "table functions",
        ),
        ("SELECT * INTO copy FROM sales", "INTO"),
        ("SHOW TABLES", "SHOW"),
        ("EXPLAIN SELECT * FROM sales", "EXPLAIN"),
        ("SELEC * FROM sales", "syntax"),
    ];
    for (sql, reason) in refused {
        let response = post_query(&app, &alice, "sql", json!({ "sql": sql })).await;
        let body = assert_error(response, ErrorCode::BadRequest).await;
        assert!(
            body.error.message.contains(reason),
            "{sql}: {}",
            body.error.message
        );
    }
    // Still all there.
    assert_eq!(
        sql_rows(&app, &alice, "SELECT COUNT(*) AS n FROM sales").await[0]["n"],
        json!(20)
    );
}

#[tokio::test]
async fn bad_json_queries_name_the_problem() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice");
    upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
    let unknown = post_query(
        &app,
        &alice,
        "json",
        json!({"dataset": "sales", "select": ["nope"]}),
    )
    .await;
    let body = assert_error(unknown, ErrorCode::BadRequest).await;
    assert!(
        body.error.message.contains("`nope`"),
        "{}",
        body.error.message
    );
    let bad_op = post_query(
        &app,
        &alice,
        "json",
        json!({"dataset": "sales", "filter": {"op": "like", "column": "store", "value": "n%"}}),
    )
    .await;
    assert_error(bad_op, ErrorCode::InvalidJson).await;
    let not_json = app
        .send_as(
            &alice,
            app.client
                .post(app.url("/api/v1/queries/json"))
                .header("content-type", "text/plain")
                .body("{}"),
        )
        .await;
    assert_error(not_json, ErrorCode::UnsupportedMediaType).await;
}

#[tokio::test]
async fn a_runaway_query_is_cancelled_at_the_time_limit() {
    let app = spawn_app_with(Backend::Sqlite, |config| config.query_timeout_ms = 1).await;
    let alice = Caller::user("alice");
    let numbers: String = std::iter::once("n\n".to_owned())
        .chain((0..2_000).map(|n| format!("{n}\n")))
        .collect();
    upload_csv(&app, &alice, "numbers", &numbers).await;
    // 4e6 joined rows: far longer than 1 ms in any build.
    let response = post_query(
        &app,
        &alice,
        "sql",
        json!({"sql": "SELECT COUNT(*) AS c, SUM(a.n * b.n) AS s FROM numbers a CROSS JOIN numbers b"}),
    )
    .await;
    let body = assert_error(response, ErrorCode::Unprocessable).await;
    assert!(
        body.error.message.contains("cancelled") && body.error.message.contains("1 ms"),
        "{}",
        body.error.message
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"brain_query_duration_seconds_count{kind="sql",outcome="timeout"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn metrics_expose_request_latencies_query_durations_and_memory() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice");
    let info = upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
    sql_rows(&app, &alice, "SELECT COUNT(*) AS n FROM sales").await;
    result(post_query(&app, &alice, "json", json!({"dataset": "sales"})).await).await;
    app.send_as(
        &alice,
        app.client
            .get(app.url(&format!("/api/v1/datasets/{}", info.id))),
    )
    .await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"brain_query_duration_seconds_count{kind="sql",outcome="ok"} 1"#,
        r#"brain_query_duration_seconds_count{kind="json",outcome="ok"} 1"#,
        // The matched route, not the raw path with the id.
        r#"brain_http_request_duration_seconds_count{method="GET",route="/api/v1/datasets/{id}",status="200"} 1"#,
        r#"brain_http_request_duration_seconds_count{method="POST",route="/api/v1/queries/sql",status="200"} 1"#,
        "brain_frames_loaded 1",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
    let bytes: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("brain_frames_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(bytes > 0);
    assert!(!text.contains(&info.id));
}
