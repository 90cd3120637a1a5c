//! SQL date idioms over HTTP (`brain::data::sql_dates`): what other dialects write about dates
//! answers like its polars form, or is refused in one line naming the construct.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shared_types::data::QueryResult;
use shared_types::error::ErrorCode;

use crate::datasets::upload_csv;
use crate::helpers::{Backend, Caller, TestApp, assert_error, spawn_app};

const TIMES_CSV: &str = "ts,amount\n2025-01-15 10:00:00,5\n2025-02-03 12:30:00,7\n2025-03-01 00:00:00,11\n2025-03-20 18:45:00,13\n";

async fn sql(app: &TestApp, caller: &Caller, text: &str) -> reqwest::Response {
    app.send_as(
        caller,
        app.client
            .post(app.url("/api/v1/queries/sql"))
            .json(&json!({"sql": text})),
    )
    .await
}

async fn total(app: &TestApp, caller: &Caller, text: &str) -> Value {
    let response = sql(app, caller, text).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}: {body}");
    let result: QueryResult = serde_json::from_str(&body).unwrap();
    result.rows.unwrap()[0]["total"].clone()
}

#[tokio::test]
async fn common_sql_date_idioms_work_or_are_refused_in_one_line() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice");
    let info = upload_csv(&app, &alice, "sales", TIMES_CSV).await;
    assert!(
        info.columns[0].dtype.starts_with("datetime"),
        "{:?}",
        info.columns
    );

    for (text, expected) in [
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts >= '2025-03-01'",
            24,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts >= '2025-03-01T00:00:00Z'",
            24,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts >= DATE '2025-03-01'",
            24,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts >= TIMESTAMP '2025-03-01 00:00:00'",
            24,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts >= CAST('2025-03-01' AS TIMESTAMP)",
            24,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE CAST(ts AS DATE) = DATE '2025-03-01'",
            11,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts IN ('2025-03-01')",
            11,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE EXTRACT(MONTH FROM ts) = 2",
            7,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE YEAR(ts) = 2025",
            36,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts = '2025-03'",
            24,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE DATE_TRUNC('month', ts) = '2025-01-01'",
            5,
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts BETWEEN '2025-02' AND '2025-03-01'",
            18,
        ),
    ] {
        assert_eq!(total(&app, &alice, text).await, json!(expected), "{text}");
    }
    let response = sql(
        &app,
        &alice,
        "SELECT DATE_TRUNC('month', ts) AS month, SUM(amount) AS total FROM sales GROUP BY 1 ORDER BY 1",
    )
    .await;
    let result: QueryResult = response.json().await.unwrap();
    assert_eq!(
        result.rows.unwrap(),
        [
            json!({"month": "2025-01-01", "total": 5}),
            json!({"month": "2025-02-01", "total": 7}),
            json!({"month": "2025-03-01", "total": 24}),
        ]
        .map(|row| row.as_object().unwrap().clone())
    );

    for (text, named) in [
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts < NOW()",
            "`NOW`",
        ),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts >= 'March 2025'",
            "'March 2025'",
        ),
        (
            "SELECT DATEADD(day, 1, ts) AS total FROM sales",
            "`DATEADD(…)`",
        ),
        (
            "SELECT DATE_TRUNC('decade', ts) AS total FROM sales",
            "'decade'",
        ),
        ("SELECT LAST_DAY(ts) AS total FROM sales", "`LAST_DAY()`"),
        (
            "SELECT SUM(amount) AS total FROM sales WHERE ts >= 'soon'",
            "'soon'",
        ),
        ("SELECT nope AS total FROM sales", "nope"),
    ] {
        let body = assert_error(sql(&app, &alice, text).await, ErrorCode::BadRequest).await;
        let message = body.error.message;
        assert!(message.contains(named), "{text}: {message}");
        assert!(message.starts_with("query error: "), "{text}: {message}");
        assert_eq!(message.matches("error:").count(), 1, "{text}: {message}");
        assert!(
            !message.contains('\n') && !message.contains("Resolved plan") && message.len() < 400,
            "{text}: {message}"
        );
    }
    app.stop().await;
}
