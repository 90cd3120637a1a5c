//! SQL and typed JSON queries over HTTP, checked against values computed here independently;
//! pagination, content negotiation, the SQL allowlist, limits, metrics.

use std::collections::BTreeMap;

use polars::prelude::*;
use reqwest::header::ACCEPT;
use serde_json::{Value, json};
use shared_types::data::{QueryResult, page_headers};
use shared_types::error::ErrorCode;

use crate::datasets::{sales, sales_csv, sql_rows, upload_csv};
use crate::helpers::{
    BACKENDS, Backend, Caller, TestApp, assert_error, send_as_with, spawn_app, spawn_app_with,
};

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

/// Posts a query that must succeed: its result.
async fn query_ok(app: &TestApp, caller: &Caller, kind: &str, body: Value) -> QueryResult {
    result(post_query(app, caller, kind, body).await).await
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
        let group_by = json!({
            "dataset": "sales",
            "filter": {"op": "ge", "column": "qty", "value": 1},
            "group_by": ["store"],
            "aggregates": [{"function": "sum", "column": "qty", "alias": "units"},
                           {"function": "count", "column": "qty", "alias": "n"}],
            "sort": [{"column": "store"}]
        });
        let answer = query_ok(&app, &alice, "json", group_by).await;
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
        let answer = query_ok(
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
        let answer = query_ok(
            &app,
            &alice,
            "sql",
            json!({"sql": sql, "limit": 7, "offset": offset}),
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
    let app = spawn_app_with(Backend::Sqlite, |config| config.data.query_max_rows = 5).await;
    let alice = Caller::user("alice");
    upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
    let answer = query_ok(&app, &alice, "json", json!({"dataset": "sales"})).await;
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

/// The format is settled before the query is looked at: an `Accept` the brain cannot answer
/// in is refused the same way for a good query and for one naming no dataset, and runs nothing.
#[tokio::test]
async fn an_accept_no_format_satisfies_is_refused_before_the_query_is_prepared() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice");
    upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
    for (kind, body) in [
        ("sql", r#"{"sql": "SELECT store FROM sales"}"#),
        ("sql", r#"{"sql": "SELECT x FROM no_such_table"}"#),
        ("json", r#"{"dataset": "no_such_dataset"}"#),
    ] {
        let response = app
            .send_as(
                &alice,
                app.client
                    .post(app.url(&format!("/api/v1/queries/{kind}")))
                    .header("content-type", "application/json")
                    .header("accept", "image/png, text/html;q=0.5")
                    .body(body),
            )
            .await;
        let error = assert_error(response, ErrorCode::BadRequest).await;
        assert!(
            error.error.message.contains("image/png"),
            "{body}: {}",
            error.error.message
        );
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        !metrics.contains("brain_query_duration_seconds_count{"),
        "no query was prepared or run"
    );
}

#[tokio::test]
async fn a_runaway_query_is_cancelled_at_the_time_limit() {
    let app = spawn_app_with(Backend::Sqlite, |config| config.data.query_timeout_ms = 1).await;
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
    query_ok(&app, &alice, "json", json!({"dataset": "sales"})).await;
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

/// The (ETag, status, body) of a SQL query sent with these extra headers.
async fn conditional_sql(
    app: &TestApp,
    caller: &Caller,
    body: &str,
    headers: &[(&str, &str)],
) -> (Option<String>, u16, String) {
    let mut request = app
        .client
        .post(app.url("/api/v1/queries/sql"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app.send_as(caller, request).await;
    let etag = response
        .headers()
        .get("etag")
        .map(|value| value.to_str().unwrap().to_owned());
    let status = response.status().as_u16();
    (etag, status, response.text().await.unwrap())
}

fn metric_value(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn answers_carry_a_strong_etag_and_if_none_match_is_answered_304_until_the_data_changes() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let alice = Caller::user("alice");
        let info = upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
        let query = r#"{"sql":"SELECT SUM(qty) AS units FROM sales"}"#;

        let response = app
            .send_as(
                &alice,
                app.client
                    .post(app.url("/api/v1/queries/sql"))
                    .header("content-type", "application/json")
                    .body(query),
            )
            .await;
        assert_eq!(response.status(), 200, "{backend}");
        let headers = response.headers().clone();
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert!(
            etag.len() == 34 && etag.starts_with('"') && !etag.starts_with("W/"),
            "{etag}"
        );
        let cache_control = headers["cache-control"].to_str().unwrap();
        assert!(cache_control.contains("s-maxage=") && !cache_control.contains("private"));
        assert_eq!(headers["vary"], "accept");
        let units = result(response).await.rows.unwrap()[0]["units"].clone();

        // The same query (other JSON spacing), conditionally: 304 without running it.
        let spaced = r#"{ "sql" : "SELECT SUM(qty) AS units FROM sales" }"#;
        for validator in [
            etag.as_str(),
            &format!("W/{etag}"),
            &format!("\"x\", {etag}"),
            "*",
        ] {
            let (again, status, body) =
                conditional_sql(&app, &alice, spaced, &[("if-none-match", validator)]).await;
            assert_eq!(
                (status, again.as_deref()),
                (304, Some(etag.as_str())),
                "{validator}"
            );
            assert!(body.is_empty());
        }
        let metrics = app.get("/metrics").await.text().await.unwrap();
        assert_eq!(
            metric_value(
                &metrics,
                r#"brain_query_duration_seconds_count{kind="sql",outcome="ok"}"#
            ),
            1,
            "a 304 must not run the query"
        );
        // Other validators, another format or another query: answered in full.
        for (headers, same_tag) in [
            (vec![("if-none-match", "\"nope\"")], true),
            (vec![("if-none-match", "\u{1F600}")], true),
            (
                vec![("if-none-match", etag.as_str()), ("accept", "text/csv")],
                false,
            ),
        ] {
            let (tag, status, _) = conditional_sql(&app, &alice, query, &headers).await;
            assert_eq!(status, 200, "{headers:?}");
            assert_eq!(
                tag.as_deref() == Some(etag.as_str()),
                same_tag,
                "{headers:?}"
            );
        }

        // A write changes the dataset's version: the old tag no longer matches, the answer is
        // the new data's (not a cached plan over the old frame).
        let replaced = app
            .send_as(
                &alice,
                app.client
                    .put(app.url(&format!("/api/v1/datasets/{}", info.id)))
                    .header("content-type", "text/csv")
                    .body("store,qty,price\nnorth,1000,1.0\n"),
            )
            .await;
        assert_eq!(replaced.status(), 200, "{backend}");
        let (new_tag, status, body) =
            conditional_sql(&app, &alice, query, &[("if-none-match", etag.as_str())]).await;
        assert_eq!(status, 200, "{backend}: {body}");
        assert_ne!(new_tag.as_deref(), Some(etag.as_str()));
        let answer: QueryResult = serde_json::from_str(&body).unwrap();
        assert_eq!(answer.rows.unwrap()[0]["units"], json!(1000));
        assert_ne!(units, json!(1000));
    }
}

#[tokio::test]
async fn repeated_sql_reuses_its_plan_until_a_write_and_never_answers_from_old_data() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice");
    let info = upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
    let text = "SELECT store, SUM(qty) AS units FROM sales GROUP BY store ORDER BY store";
    let first = sql_rows(&app, &alice, text).await;
    assert_eq!(sql_rows(&app, &alice, text).await, first);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        metric_value(&metrics, r#"brain_query_plan_cache_total{result="hit"}"#),
        1
    );
    // Append changes the data (and the version): a fresh plan, the new rows counted.
    let appended = app
        .send_as(
            &alice,
            app.client
                .post(app.url(&format!("/api/v1/datasets/{}/rows", info.id)))
                .header("content-type", "text/csv")
                .body("store,qty,price\nnorth,500,1.0\n"),
        )
        .await;
    assert_eq!(appended.status(), 200, "{}", appended.text().await.unwrap());
    let after = sql_rows(&app, &alice, text).await;
    let north = |rows: &[serde_json::Map<String, Value>]| {
        rows.iter().find(|row| row["store"] == "north").unwrap()["units"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(north(&after), north(&first) + 500);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        metric_value(&metrics, r#"brain_query_plan_cache_total{result="miss"}"#),
        2
    );
    // Another caller with a dataset of the same name gets its own plan and data.
    let bob = Caller::user("bob");
    upload_csv(&app, &bob, "sales", "store,qty,price\nwest,7,1.0\n").await;
    let theirs = sql_rows(&app, &bob, text).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["units"], json!(7));
}

#[tokio::test]
async fn past_the_running_queries_and_the_queue_a_query_is_refused_503_with_retry_after() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.data.query_concurrency = 1;
        config.data.query_queue = 0;
    })
    .await;
    let alice = Caller::user("alice");
    let numbers: String = std::iter::once("n\n".to_owned())
        .chain((0..2_000).map(|n| format!("{n}\n")))
        .collect();
    upload_csv(&app, &alice, "numbers", &numbers).await;
    // 4e6 joined rows keep the only turn busy while the second query arrives (it is sent as
    // soon as the gauge shows the first one running).
    let slow = {
        let client = app.client.clone();
        let caller = alice.clone();
        let request = app.client.post(app.url("/api/v1/queries/sql")).json(&json!({
            "sql": "SELECT COUNT(*) AS c, SUM(a.n * b.n) AS s FROM numbers a CROSS JOIN numbers b"
        }));
        tokio::spawn(async move { send_as_with(&client, &caller, request).await.status() })
    };
    loop {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        if metric_value(&metrics, "brain_queries_running") == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    let refused = post_query(&app, &alice, "json", json!({"dataset": "numbers"})).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body = assert_error(refused, ErrorCode::Unavailable).await;
    assert!(
        body.error.message.contains("busy"),
        "{}",
        body.error.message
    );
    assert_eq!(slow.await.unwrap(), 200);
    // The turn is free again.
    query_ok(&app, &alice, "json", json!({"dataset": "numbers"})).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        metric_value(&metrics, r#"brain_queries_refused_total{kind="json"}"#),
        1
    );
}

/// polars-sql orders by an aggregate over the whole input, not per group; the streaming engine
/// (which the default `auto` engine picks for such plans) then returned an arbitrary group as
/// "the top one" (`brain::data::sql_order`). Asked twelve times, the answer must always be the
/// group with the most rows; an aggregate the SELECT list does not hold is refused in one line.
#[tokio::test]
async fn ordering_by_an_aggregate_orders_the_groups() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice");
    let mut csv = String::from("store_id,region,floor_m2\n");
    for (id, region) in ["north"; 12]
        .into_iter()
        .chain(["south"; 14])
        .chain(["west"; 18])
        .chain(["east"; 6])
        .enumerate()
    {
        csv.push_str(&format!("{id},{region},{}\n", 100 + id));
    }
    upload_csv(&app, &alice, "shops", &csv).await;
    for text in [
        "SELECT region, COUNT(*) FROM shops GROUP BY region ORDER BY COUNT(*) DESC LIMIT 1",
        "SELECT region, COUNT(*) AS n FROM shops GROUP BY region ORDER BY count(*) DESC LIMIT 1",
        "SELECT region, SUM(floor_m2) FROM shops GROUP BY region ORDER BY SUM(floor_m2) DESC LIMIT 1",
    ] {
        for _ in 0..12 {
            let answer = query_ok(&app, &alice, "sql", json!({"sql": text})).await;
            let rows = answer.rows.unwrap();
            assert_eq!(rows.len(), 1, "{text}");
            assert_eq!(rows[0]["region"], "west", "{text}: {rows:?}");
        }
    }
    let refused = post_query(
        &app,
        &alice,
        "sql",
        json!({"sql": "SELECT region FROM shops GROUP BY region ORDER BY COUNT(*) DESC"}),
    )
    .await;
    let body = assert_error(refused, ErrorCode::BadRequest).await;
    assert_eq!(
        body.error.message,
        "query error: ORDER BY COUNT(*): order by an aggregate that the SELECT list holds — \
         write `COUNT(*) AS n` in the SELECT list and `ORDER BY n`"
    );
    app.stop().await;
}
