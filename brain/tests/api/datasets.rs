//! The data plane over HTTP: uploads in every format, describe, lifecycle, malformed files,
//! limits, tenancy, restart, eviction, the sample. Queries are in `queries.rs`; the fixtures
//! and helpers shared by both live here.

use std::collections::BTreeMap;

use brain::Application;
use polars::prelude::*;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use shared_types::agent::OPERATOR_SCOPE;
use shared_types::data::{DatasetDescription, DatasetInfo, DatasetList, MemoryStats, Scope};
use shared_types::error::ErrorCode;

use crate::helpers::{BACKENDS, Backend, Caller, TestApp, assert_error, spawn_app, spawn_app_with};

/// One row of the test fixture.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sale {
    pub(crate) store: &'static str,
    pub(crate) qty: i64,
    pub(crate) price: f64,
}

pub(crate) const STORES: [&str; 3] = ["north", "south", "east"];

/// 20 deterministic rows; prices are multiples of 0.5, so sums are exact in f64.
pub(crate) fn sales() -> Vec<Sale> {
    (0..20)
        .map(|i| Sale {
            store: STORES[i % 3],
            qty: ((i * 7) % 5 + 1) as i64,
            price: i as f64 * 0.5 + 1.0,
        })
        .collect()
}

pub(crate) fn sales_csv(rows: &[Sale]) -> String {
    let mut csv = String::from("store,qty,price\n");
    for sale in rows {
        csv.push_str(&format!("{},{},{:.1}\n", sale.store, sale.qty, sale.price));
    }
    csv
}

fn sale_object(sale: &Sale) -> String {
    // Written by hand: serde_json's map would sort the keys, and column order matters here.
    format!(
        r#"{{"store":"{}","qty":{},"price":{:.1}}}"#,
        sale.store, sale.qty, sale.price
    )
}

fn sales_ndjson(rows: &[Sale]) -> String {
    rows.iter().map(|sale| sale_object(sale) + "\n").collect()
}

fn sales_json(rows: &[Sale]) -> String {
    format!(
        "[{}]",
        rows.iter().map(sale_object).collect::<Vec<_>>().join(",")
    )
}

fn sales_parquet(rows: &[Sale]) -> Vec<u8> {
    let mut frame = df!(
        "store" => rows.iter().map(|s| s.store).collect::<Vec<_>>(),
        "qty" => rows.iter().map(|s| s.qty).collect::<Vec<_>>(),
        "price" => rows.iter().map(|s| s.price).collect::<Vec<_>>()
    )
    .unwrap();
    let mut buffer = Vec::new();
    ParquetWriter::new(&mut buffer).finish(&mut frame).unwrap();
    buffer
}

/// A `multipart/form-data` body (reqwest is built without its multipart feature).
pub(crate) fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "edgebrain-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file_name, content) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file_name) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads `body` as a raw body and returns the response.
pub(crate) async fn upload_raw(
    app: &TestApp,
    caller: &Caller,
    query: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.send_as(
        caller,
        app.client
            .post(app.url(&format!("/api/v1/datasets?{query}")))
            .header(CONTENT_TYPE, content_type)
            .body(body),
    )
    .await
}

/// Uploads the CSV fixture as `name` and returns its info (asserting 201).
pub(crate) async fn upload_csv(
    app: &TestApp,
    caller: &Caller,
    name: &str,
    csv: &str,
) -> DatasetInfo {
    let response = upload_raw(
        app,
        caller,
        &format!("name={name}"),
        "text/csv",
        csv.to_owned(),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

pub(crate) async fn list(app: &TestApp, caller: &Caller) -> Vec<DatasetInfo> {
    let response = app
        .send_as(caller, app.client.get(app.url("/api/v1/datasets")))
        .await;
    assert_eq!(response.status(), 200);
    response.json::<DatasetList>().await.unwrap().datasets
}

pub(crate) async fn memory(app: &TestApp, caller: &Caller) -> MemoryStats {
    let response = app
        .send_as(caller, app.client.get(app.url("/api/v1/datasets/memory")))
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Runs SQL and returns the JSON rows (asserting 200).
pub(crate) async fn sql_rows(
    app: &TestApp,
    caller: &Caller,
    sql: &str,
) -> Vec<serde_json::Map<String, Value>> {
    let response = app
        .send_as(
            caller,
            app.client
                .post(app.url("/api/v1/queries/sql"))
                .json(&json!({ "sql": sql })),
        )
        .await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{sql}: {text}");
    let result: shared_types::data::QueryResult = serde_json::from_str(&text).unwrap();
    result.rows.unwrap()
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn every_format_uploads_and_describes_with_correct_statistics_on_both_backends() {
    let rows = sales();
    let total_qty: i64 = rows.iter().map(|s| s.qty).sum();
    let mean_price = rows.iter().map(|s| s.price).sum::<f64>() / rows.len() as f64;
    let alice = Caller::user("alice");
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |config| config.data.parquet_uploads = true).await;
        let csv = upload_raw(&app, &alice, "name=from_csv", "text/csv", sales_csv(&rows)).await;
        assert_eq!(csv.status(), 201, "{backend}");
        let ndjson = upload_raw(
            &app,
            &alice,
            "name=from_ndjson&format=ndjson",
            "application/octet-stream",
            sales_ndjson(&rows),
        )
        .await;
        assert_eq!(
            ndjson.status(),
            201,
            "{backend}: {}",
            ndjson.text().await.unwrap()
        );
        let json_array = upload_raw(
            &app,
            &alice,
            "name=from_json",
            "application/json",
            sales_json(&rows),
        )
        .await;
        assert_eq!(
            json_array.status(),
            201,
            "{backend}: {}",
            json_array.text().await.unwrap()
        );
        let parquet = sales_parquet(&rows);
        let (content_type, body) = multipart(&[
            ("name", None, b"from_parquet"),
            ("file", Some("sales.parquet"), &parquet),
        ]);
        let response = upload_raw(&app, &alice, "", &content_type, body).await;
        assert_eq!(
            response.status(),
            201,
            "{backend}: {}",
            response.text().await.unwrap()
        );

        let datasets = list(&app, &alice).await;
        let names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["from_csv", "from_json", "from_ndjson", "from_parquet"],
            "{backend}"
        );
        for dataset in &datasets {
            assert_eq!(dataset.row_count, 20, "{backend} {}", dataset.name);
            assert!(dataset.owned && dataset.scope == Scope::Private);
            assert!(dataset.bytes > 0);
            let columns: Vec<(&str, &str)> = dataset
                .columns
                .iter()
                .map(|c| (c.name.as_str(), c.dtype.as_str()))
                .collect();
            assert_eq!(
                columns,
                [("store", "str"), ("qty", "i64"), ("price", "f64")],
                "{backend} {}",
                dataset.name
            );

            let response = app
                .send_as(
                    &alice,
                    app.client
                        .get(app.url(&format!("/api/v1/datasets/{}", dataset.id))),
                )
                .await;
            assert_eq!(response.status(), 200);
            let description: DatasetDescription = response.json().await.unwrap();
            let stats: BTreeMap<&str, _> = description
                .stats
                .iter()
                .map(|s| (s.name.as_str(), s))
                .collect();
            assert_eq!(stats["qty"].min, Some(json!(1)));
            assert_eq!(stats["qty"].max, Some(json!(5)));
            assert_eq!(stats["qty"].mean, Some(total_qty as f64 / 20.0));
            assert_eq!(stats["price"].mean, Some(mean_price));
            assert_eq!(stats["store"].min, Some(json!("east")));
            assert_eq!(stats["store"].null_count, 0);
            assert_eq!(description.sample_rows.len(), 10);
            assert_eq!(description.sample_rows[1]["qty"], json!(rows[1].qty));
        }
    }
}

#[tokio::test]
async fn schema_overrides_and_null_counts_are_honoured() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice");
    let response = upload_raw(
        &app,
        &alice,
        "name=t&schema=qty:float64,code:string",
        "text/csv",
        "code,qty\n001,1\n002,\n".to_owned(),
    )
    .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let info: DatasetInfo = response.json().await.unwrap();
    let dtypes: Vec<&str> = info.columns.iter().map(|c| c.dtype.as_str()).collect();
    assert_eq!(dtypes, ["str", "f64"]);
    let description: DatasetDescription = app
        .send_as(
            &alice,
            app.client
                .get(app.url(&format!("/api/v1/datasets/{}", info.id))),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(description.stats[1].null_count, 1);
    // Leading zeros survive because the column was forced to text.
    assert_eq!(description.sample_rows[0]["code"], json!("001"));
    let bad = upload_raw(
        &app,
        &alice,
        "name=u&schema=qty:money",
        "text/csv",
        "qty\n1\n".to_owned(),
    )
    .await;
    assert_error(bad, ErrorCode::BadRequest).await;
}

#[tokio::test]
async fn rename_replace_append_pin_and_delete() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = Caller::user("alice").with_scopes(&[OPERATOR_SCOPE]);
    let rows = sales();
    let info = upload_csv(&app, &alice, "sales", &sales_csv(&rows[..5])).await;
    let item = |path: &str| app.url(&format!("/api/v1/datasets/{}{path}", info.id));

    let renamed = app
        .send_as(
            &alice,
            app.client
                .patch(item(""))
                .json(&json!({"name": "sales_2025"})),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    assert_eq!(
        renamed.json::<DatasetInfo>().await.unwrap().name,
        "sales_2025"
    );
    assert_eq!(
        sql_rows(&app, &alice, "SELECT COUNT(*) AS n FROM sales_2025").await[0]["n"],
        json!(5)
    );
    let bad_name = app
        .send_as(
            &alice,
            app.client
                .patch(item(""))
                .json(&json!({"name": "drop table"})),
        )
        .await;
    assert_error(bad_name, ErrorCode::BadRequest).await;
    upload_csv(&app, &alice, "other", "a\n1\n").await;
    let taken = app
        .send_as(
            &alice,
            app.client.patch(item("")).json(&json!({"name": "other"})),
        )
        .await;
    assert_error(taken, ErrorCode::Conflict).await;

    let appended = app
        .send_as(
            &alice,
            app.client
                .post(item("/rows"))
                .header(CONTENT_TYPE, "text/csv")
                .body(sales_csv(&rows[5..8])),
        )
        .await;
    assert_eq!(appended.status(), 200, "{}", appended.text().await.unwrap());
    assert_eq!(
        sql_rows(&app, &alice, "SELECT SUM(qty) AS q FROM sales_2025").await[0]["q"],
        json!(rows[..8].iter().map(|s| s.qty).sum::<i64>())
    );
    let wrong_columns = app
        .send_as(
            &alice,
            app.client
                .post(item("/rows"))
                .header(CONTENT_TYPE, "text/csv")
                .body("store,amount\nx,1\n"),
        )
        .await;
    let body = assert_error(wrong_columns, ErrorCode::Unprocessable).await;
    assert!(body.error.message.contains("qty"), "{}", body.error.message);

    let replaced = app
        .send_as(
            &alice,
            app.client
                .put(item(""))
                .header(CONTENT_TYPE, "text/csv")
                .body("k\n7\n8\n"),
        )
        .await;
    assert_eq!(replaced.status(), 200);
    let replaced: DatasetInfo = replaced.json().await.unwrap();
    assert_eq!((replaced.row_count, replaced.columns.len()), (2, 1));
    assert_eq!(
        sql_rows(&app, &alice, "SELECT SUM(k) AS s FROM sales_2025").await[0]["s"],
        json!(15)
    );

    let pinned = app.send_as(&alice, app.client.put(item("/pin"))).await;
    assert!(pinned.json::<DatasetInfo>().await.unwrap().pinned);
    let stats = memory(&app, &alice).await;
    assert!(stats.frames.iter().any(|f| f.id == info.id && f.pinned));
    let unpinned = app.send_as(&alice, app.client.delete(item("/pin"))).await;
    assert!(!unpinned.json::<DatasetInfo>().await.unwrap().pinned);

    let deleted = app.send_as(&alice, app.client.delete(item(""))).await;
    assert_eq!(deleted.status(), 204);
    assert_error(
        app.send_as(&alice, app.client.get(item(""))).await,
        ErrorCode::NotFound,
    )
    .await;
    assert!(
        !files_in(&app.database.data_dir.join("datasets"))
            .iter()
            .any(|f| f.starts_with(&info.id))
    );
    assert!(
        !memory(&app, &alice)
            .await
            .frames
            .iter()
            .any(|f| f.id == info.id)
    );
}

#[tokio::test]
async fn every_change_makes_a_new_version_and_answers_name_the_versions_they_read_on_both_backends()
{
    let alice = Caller::user("alice").with_scopes(&[OPERATOR_SCOPE]);
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let info = upload_csv(&app, &alice, "sales", "k\n1\n2\n").await;
        assert_eq!(info.version, 1, "{backend}");
        let item = app.url(&format!("/api/v1/datasets/{}", info.id));
        let versions_read = |sql: &'static str| {
            let app = &app;
            let alice = &alice;
            async move {
                let response = app
                    .send_as(
                        alice,
                        app.client
                            .post(app.url("/api/v1/queries/sql"))
                            .json(&json!({ "sql": sql })),
                    )
                    .await;
                assert_eq!(response.status(), 200);
                let result: shared_types::data::QueryResult = response.json().await.unwrap();
                result
                    .datasets
                    .into_iter()
                    .map(|read| (read.name, read.version))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            versions_read("SELECT SUM(k) FROM sales").await,
            [("sales".to_owned(), 1)]
        );

        let appended = app
            .send_as(
                &alice,
                app.client
                    .post(format!("{item}/rows"))
                    .header(CONTENT_TYPE, "text/csv")
                    .body("k\n3\n"),
            )
            .await;
        assert_eq!(appended.json::<DatasetInfo>().await.unwrap().version, 2);
        let replaced = app
            .send_as(
                &alice,
                app.client
                    .put(&item)
                    .header(CONTENT_TYPE, "text/csv")
                    .body("k\n9\n"),
            )
            .await;
        assert_eq!(replaced.json::<DatasetInfo>().await.unwrap().version, 3);
        let renamed = app
            .send_as(
                &alice,
                app.client.patch(&item).json(&json!({"name": "sold"})),
            )
            .await;
        assert_eq!(renamed.json::<DatasetInfo>().await.unwrap().version, 4);
        // Pinning changes no data: same version.
        let pinned = app
            .send_as(&alice, app.client.put(format!("{item}/pin")))
            .await;
        assert_eq!(pinned.json::<DatasetInfo>().await.unwrap().version, 4);

        upload_csv(&app, &alice, "other", "k\n5\n").await;
        assert_eq!(
            versions_read("SELECT k FROM sold UNION ALL SELECT k FROM other").await,
            [("other".to_owned(), 1), ("sold".to_owned(), 4)],
            "{backend}"
        );
        let json_query = app
            .send_as(
                &alice,
                app.client
                    .post(app.url("/api/v1/queries/json"))
                    .json(&json!({"dataset": "sold"})),
            )
            .await;
        let result: shared_types::data::QueryResult = json_query.json().await.unwrap();
        assert_eq!(result.datasets.len(), 1);
        assert_eq!(
            (result.datasets[0].id.as_str(), result.datasets[0].version),
            (info.id.as_str(), 4)
        );
    }
}

#[tokio::test]
async fn malformed_files_are_refused_naming_the_problem() {
    let app = spawn_app_with(Backend::Sqlite, |config| config.data.parquet_uploads = true).await;
    let alice = Caller::user("alice");
    let ragged = upload_raw(
        &app,
        &alice,
        "name=r",
        "text/csv",
        "a,b\n1,2\n3,4,5\n".to_owned(),
    )
    .await;
    let body = assert_error(ragged, ErrorCode::Unprocessable).await;
    assert!(
        body.error.message.contains("row 2") && body.error.message.contains("line 3"),
        "{}",
        body.error.message
    );

    let latin1 = upload_raw(
        &app,
        &alice,
        "name=e",
        "text/csv",
        b"name\ncaf\xe9\n".to_vec(),
    )
    .await;
    let body = assert_error(latin1, ErrorCode::Unprocessable).await;
    assert!(
        body.error.message.contains("UTF-8") && body.error.message.contains("line 2"),
        "{}",
        body.error.message
    );

    let parquet = sales_parquet(&sales());
    let truncated = upload_raw(
        &app,
        &alice,
        "name=p",
        "application/vnd.apache.parquet",
        parquet[..parquet.len() / 2].to_vec(),
    )
    .await;
    let body = assert_error(truncated, ErrorCode::Unprocessable).await;
    assert!(
        body.error.message.contains("Parquet"),
        "{}",
        body.error.message
    );

    let ndjson = upload_raw(
        &app,
        &alice,
        "name=n",
        "application/x-ndjson",
        "{\"a\":1}\n{\"a\":\n".to_owned(),
    )
    .await;
    let body = assert_error(ndjson, ErrorCode::Unprocessable).await;
    assert!(
        body.error.message.contains("line 2"),
        "{}",
        body.error.message
    );

    let unknown = upload_raw(&app, &alice, "name=x", "application/pdf", b"%PDF".to_vec()).await;
    assert_error(unknown, ErrorCode::UnsupportedMediaType).await;
    let nameless = upload_raw(&app, &alice, "", "text/csv", "a\n1\n".to_owned()).await;
    assert_error(nameless, ErrorCode::BadRequest).await;

    // Nothing of the refused uploads remains.
    assert!(list(&app, &alice).await.is_empty());
    assert!(files_in(&app.database.data_dir.join("uploads")).is_empty());
    assert!(files_in(&app.database.data_dir.join("datasets")).is_empty());
}

#[tokio::test]
async fn oversized_uploads_are_refused_and_leave_nothing_behind_on_both_backends() {
    let alice = Caller::user("alice");
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |config| config.data.upload_max_bytes = 2_000).await;
        let big = sales_csv(&sales()).repeat(10);
        assert!(big.len() > 2_000);
        // With a Content-Length: refused before reading.
        let declared = upload_raw(&app, &alice, "name=big", "text/csv", big.clone()).await;
        assert_error(declared, ErrorCode::PayloadTooLarge).await;
        // Chunked, no length: refused once the limit is crossed mid-stream.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big
            .as_bytes()
            .chunks(500)
            .map(|chunk| Ok(chunk.to_vec()))
            .collect();
        let streamed = upload_raw(
            &app,
            &alice,
            "name=big",
            "text/csv",
            reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)),
        )
        .await;
        assert_error(streamed, ErrorCode::PayloadTooLarge).await;
        // Multipart too.
        let (content_type, body) = multipart(&[
            ("name", None, b"big"),
            ("file", Some("big.csv"), big.as_bytes()),
        ]);
        let form = upload_raw(&app, &alice, "", &content_type, body).await;
        assert_error(form, ErrorCode::PayloadTooLarge).await;

        assert!(list(&app, &alice).await.is_empty(), "{backend}");
        assert!(
            files_in(&app.database.data_dir.join("uploads")).is_empty(),
            "{backend}"
        );
        assert!(
            files_in(&app.database.data_dir.join("datasets")).is_empty(),
            "{backend}"
        );
        // A small one still works.
        upload_csv(&app, &alice, "small", "a\n1\n").await;
    }
}

#[tokio::test]
async fn tenants_cannot_list_read_query_change_or_infer_each_others_datasets() {
    let app = spawn_app(Backend::Postgres).await;
    let alice = Caller::user("alice");
    let bob = Caller::user("bob");
    let anonymous = Caller::anonymous("s-123");
    let secret = upload_csv(&app, &alice, "secret", &sales_csv(&sales())).await;

    for intruder in [&bob, &anonymous] {
        assert!(list(&app, intruder).await.is_empty());
        let item = app.url(&format!("/api/v1/datasets/{}", secret.id));
        // Exactly the answer for an id that does not exist.
        let theirs = assert_error(
            app.send_as(intruder, app.client.get(&item)).await,
            ErrorCode::NotFound,
        )
        .await;
        let missing = assert_error(
            app.send_as(
                intruder,
                app.client
                    .get(app.url("/api/v1/datasets/00000000-0000-0000-0000-000000000000")),
            )
            .await,
            ErrorCode::NotFound,
        )
        .await;
        assert_eq!(
            theirs.error.message.replace(&secret.id, "ID"),
            missing
                .error
                .message
                .replace("00000000-0000-0000-0000-000000000000", "ID")
        );
        assert_error(
            app.send_as(intruder, app.client.delete(&item)).await,
            ErrorCode::NotFound,
        )
        .await;
        assert_error(
            app.send_as(
                intruder,
                app.client.patch(&item).json(&json!({"name": "mine"})),
            )
            .await,
            ErrorCode::NotFound,
        )
        .await;
        // Unpinning (open to everyone, unlike pinning) another tenant's dataset.
        assert_error(
            app.send_as(intruder, app.client.delete(format!("{item}/pin")))
                .await,
            ErrorCode::NotFound,
        )
        .await;
        assert_error(
            app.send_as(
                intruder,
                app.client
                    .post(format!("{item}/rows"))
                    .header(CONTENT_TYPE, "text/csv")
                    .body("store,qty,price\nx,1,1.0\n"),
            )
            .await,
            ErrorCode::NotFound,
        )
        .await;
        // Queries by name: the same answer as for a name nobody uses.
        let sql = |name: &str| {
            app.client
                .post(app.url("/api/v1/queries/sql"))
                .json(&json!({"sql": format!("SELECT * FROM {name}")}))
        };
        let by_name = assert_error(
            app.send_as(intruder, sql("secret")).await,
            ErrorCode::NotFound,
        )
        .await;
        let nobody = assert_error(
            app.send_as(intruder, sql("nothing_here")).await,
            ErrorCode::NotFound,
        )
        .await;
        assert_eq!(
            by_name.error.message.replace("secret", "X"),
            nobody.error.message.replace("nothing_here", "X")
        );
        let json_query = app
            .client
            .post(app.url("/api/v1/queries/json"))
            .json(&json!({"dataset": "secret"}));
        assert_error(app.send_as(intruder, json_query).await, ErrorCode::NotFound).await;
        // Memory statistics do not show it either.
        assert!(
            memory(&app, intruder)
                .await
                .frames
                .iter()
                .all(|f| f.id != secret.id)
        );
    }

    // An operator's memory overview lists every tenant's frames (to see who fills the
    // budget); a scope claimed without a signed-in user is no operator.
    sql_rows(&app, &alice, "SELECT COUNT(*) AS n FROM secret").await;
    let in_memory = |stats: MemoryStats| stats.frames.iter().any(|f| f.id == secret.id);
    assert!(in_memory(memory(&app, &alice).await));
    let operator = Caller::user("olga").with_scopes(&["edgebrain:operator"]);
    assert!(in_memory(memory(&app, &operator).await));
    let pretender = Caller::anonymous("s-456").with_scopes(&["edgebrain:operator"]);
    assert!(!in_memory(memory(&app, &pretender).await));
    assert!(!in_memory(memory(&app, &bob).await));

    // Bob may use the same name for his own data; each sees their own.
    upload_csv(&app, &bob, "secret", "store,qty,price\nbob,100,1.0\n").await;
    assert_eq!(
        sql_rows(&app, &bob, "SELECT SUM(qty) AS q FROM secret").await[0]["q"],
        json!(100)
    );
    assert_eq!(
        sql_rows(&app, &alice, "SELECT SUM(qty) AS q FROM secret").await[0]["q"],
        json!(sales().iter().map(|s| s.qty).sum::<i64>())
    );
    // A signed-in user is keyed by user id, not by session: another session of alice sees it.
    let alice_elsewhere = Caller {
        session_id: Some("another-session".to_owned()),
        ..Caller::user("alice")
    };
    assert_eq!(list(&app, &alice_elsewhere).await.len(), 1);
    // Scopes grant nothing across tenants: bob with every scope still sees only his own.
    let bob_admin = Caller::user("bob").with_scopes(&["admin", "datasets:read"]);
    let seen: Vec<String> = list(&app, &bob_admin)
        .await
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert!(!seen.contains(&secret.id));
    assert_eq!(seen.len(), 1);

    // No identity at all: 401.
    let response = app
        .client
        .get(app.url("/api/v1/datasets"))
        .send()
        .await
        .unwrap();
    assert_error(response, ErrorCode::Unauthorized).await;
}

#[tokio::test]
async fn datasets_survive_a_restart_and_reload_lazily_on_both_backends() {
    let alice = Caller::user("alice");
    for backend in BACKENDS {
        let mut app = spawn_app(backend).await;
        let info = upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
        let before = sql_rows(
            &app,
            &alice,
            "SELECT store, SUM(qty) AS q FROM sales GROUP BY store ORDER BY store",
        )
        .await;
        app.stop().await;
        let TestApp { database, .. } = app;

        let application = Application::build(database.config()).await.unwrap();
        let app = TestApp::run(application, database);
        // Listed at once, but not loaded until used.
        let listed = list(&app, &alice).await;
        assert_eq!(listed, vec![info.clone()], "{backend}");
        assert!(memory(&app, &alice).await.frames.is_empty(), "{backend}");
        let after = sql_rows(
            &app,
            &alice,
            "SELECT store, SUM(qty) AS q FROM sales GROUP BY store ORDER BY store",
        )
        .await;
        assert_eq!(before, after, "{backend}");
        let stats = memory(&app, &alice).await;
        assert_eq!(stats.loads, 1, "{backend}");
        assert_eq!(stats.frames.len(), 1, "{backend}");
    }
}

#[tokio::test]
async fn a_small_budget_evicts_least_recently_used_frames_and_reloads_them_transparently() {
    let alice = Caller::user("alice").with_scopes(&[OPERATOR_SCOPE]);
    let rows = sales();
    // First measure the two frames, then restart with a budget that holds either, not both.
    let mut app = spawn_app(Backend::Sqlite).await;
    let first = upload_csv(&app, &alice, "first", &sales_csv(&rows)).await;
    let second = upload_csv(&app, &alice, "second", &sales_csv(&rows[..10])).await;
    let sizes: BTreeMap<String, u64> = memory(&app, &alice)
        .await
        .frames
        .into_iter()
        .map(|frame| (frame.id, frame.bytes))
        .collect();
    let budget = sizes[&first.id] + sizes[&second.id] - 1;
    app.stop().await;
    let TestApp { database, .. } = app;
    let mut config = database.config();
    config.data.datasets_memory_budget_bytes = budget;
    let app = TestApp::run(Application::build(config).await.unwrap(), database);

    let total: i64 = rows.iter().map(|s| s.qty).sum();
    let half: i64 = rows[..10].iter().map(|s| s.qty).sum();
    for _ in 0..2 {
        assert_eq!(
            sql_rows(&app, &alice, "SELECT SUM(qty) AS q FROM first").await[0]["q"],
            json!(total)
        );
        assert_eq!(
            sql_rows(&app, &alice, "SELECT SUM(qty) AS q FROM second").await[0]["q"],
            json!(half)
        );
    }
    // first, second (evicts first), first (evicts second), second (evicts first).
    let stats = memory(&app, &alice).await;
    assert_eq!((stats.loads, stats.evictions), (4, 3), "{stats:?}");
    assert_eq!(stats.frames.len(), 1, "{stats:?}");
    assert_eq!(stats.frames[0].id, second.id);
    assert!(stats.used_bytes <= stats.budget_bytes, "{stats:?}");

    // A pinned frame stays, whatever the pressure: the unpinned one goes instead.
    let pin = app
        .send_as(
            &alice,
            app.client
                .put(app.url(&format!("/api/v1/datasets/{}/pin", first.id))),
        )
        .await;
    assert_eq!(pin.status(), 200);
    assert_eq!(
        sql_rows(&app, &alice, "SELECT SUM(qty) AS q FROM second").await[0]["q"],
        json!(half)
    );
    let pinned = memory(&app, &alice).await;
    assert_eq!(pinned.frames.len(), 1, "{pinned:?}");
    assert!(
        pinned.frames[0].id == first.id && pinned.frames[0].pinned,
        "{pinned:?}"
    );

    let metrics = app.get("/metrics").await.text().await.unwrap();
    let evictions = metrics
        .lines()
        .find_map(|line| line.strip_prefix("brain_frame_evictions_total "))
        .unwrap();
    assert_eq!(
        evictions.parse::<u64>().unwrap(),
        pinned.evictions,
        "{metrics}"
    );
    let bytes = metrics
        .lines()
        .find_map(|line| line.strip_prefix("brain_frames_bytes "))
        .unwrap();
    assert_eq!(
        bytes.parse::<u64>().unwrap(),
        pinned.used_bytes,
        "{metrics}"
    );
}

#[tokio::test]
async fn the_sample_is_generated_on_first_start_and_readable_by_everyone() {
    let mut app = spawn_app_with(Backend::Sqlite, |config| {
        config.data.sample_transactions = 3_000
    })
    .await;
    let visitor = Caller::anonymous("first-visit");
    let datasets = list(&app, &visitor).await;
    let names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["products", "stores", "transactions"]);
    assert!(
        datasets
            .iter()
            .all(|d| d.scope == Scope::Public && !d.owned)
    );
    assert_eq!(datasets[2].row_count, 3_000);
    let joined = sql_rows(
        &app,
        &visitor,
        "SELECT COUNT(*) AS n, COUNT(DISTINCT s.region) AS regions FROM transactions t \
         JOIN stores s ON s.store_id = t.store_id JOIN products p ON p.product_id = t.product_id",
    )
    .await;
    assert_eq!(joined[0]["n"], json!(3_000));
    // Read-only for everyone but the brain.
    let item = app.url(&format!("/api/v1/datasets/{}", datasets[2].id));
    assert_error(
        app.send_as(&visitor, app.client.delete(&item)).await,
        ErrorCode::Forbidden,
    )
    .await;
    // A visitor's own dataset of the same name shadows the sample for that visitor only.
    upload_csv(&app, &visitor, "stores", "store_id\n1\n").await;
    assert_eq!(
        sql_rows(&app, &visitor, "SELECT COUNT(*) AS n FROM stores").await[0]["n"],
        json!(1)
    );
    assert_eq!(
        sql_rows(&app, &Caller::user("x"), "SELECT COUNT(*) AS n FROM stores").await[0]["n"],
        json!(50)
    );

    // Not regenerated on the next start (the data directory is no longer empty).
    app.stop().await;
    let TestApp { database, .. } = app;
    let mut config = database.config();
    config.data.sample_transactions = 3_000;
    let app = TestApp::run(Application::build(config).await.unwrap(), database);
    assert_eq!(list(&app, &Caller::user("y")).await.len(), 3);
}

#[tokio::test]
async fn server_side_imports_read_only_inside_the_import_directory() {
    let import_dir = std::env::temp_dir().join(format!(
        "edgebrain-import-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(import_dir.join("drop")).unwrap();
    std::fs::write(import_dir.join("drop/sales.csv"), sales_csv(&sales())).unwrap();
    std::fs::write(import_dir.join("outside.csv"), "a\n1\n").unwrap();
    let inside = import_dir.join("drop");
    let app = spawn_app_with(Backend::Sqlite, move |config| {
        config.data.import_dir = Some(inside)
    })
    .await;
    let alice = Caller::user("alice");
    let import = |body: Value| {
        app.client
            .post(app.url("/api/v1/datasets/import"))
            .json(&body)
    };

    let response = app
        .send_as(
            &alice,
            import(json!({"name": "imported", "path": "sales.csv"})),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    assert_eq!(
        sql_rows(&app, &alice, "SELECT COUNT(*) AS n FROM imported").await[0]["n"],
        json!(20)
    );
    let escape = app
        .send_as(
            &alice,
            import(json!({"name": "x", "path": "../outside.csv"})),
        )
        .await;
    assert_error(escape, ErrorCode::Forbidden).await;
    let absolute = app
        .send_as(
            &alice,
            import(json!({"name": "x", "path": "/etc/passwd", "format": "csv"})),
        )
        .await;
    assert_error(absolute, ErrorCode::Forbidden).await;
    let missing = app
        .send_as(&alice, import(json!({"name": "x", "path": "nope.csv"})))
        .await;
    assert_error(missing, ErrorCode::NotFound).await;

    let disabled = spawn_app(Backend::Sqlite).await;
    let response = disabled
        .send_as(
            &alice,
            disabled
                .client
                .post(disabled.url("/api/v1/datasets/import"))
                .json(&json!({"name": "x", "path": "sales.csv"})),
        )
        .await;
    assert_error(response, ErrorCode::Forbidden).await;
    std::fs::remove_dir_all(&import_dir).unwrap();
}

#[tokio::test]
async fn a_public_dataset_is_readable_by_everyone_and_changeable_only_by_its_owner() {
    let app = spawn_app(Backend::Postgres).await;
    let alice = Caller::user("alice").with_scopes(&[OPERATOR_SCOPE]);
    let bob = Caller::user("bob");
    let response = upload_raw(
        &app,
        &alice,
        "name=shared&scope=public",
        "text/csv",
        sales_csv(&sales()),
    )
    .await;
    assert_eq!(response.status(), 201);
    let shared: DatasetInfo = response.json().await.unwrap();
    assert_eq!(shared.scope, Scope::Public);
    let private = upload_csv(&app, &alice, "private_one", "a\n1\n").await;
    assert_eq!(private.scope, Scope::Private);

    let seen = list(&app, &bob).await;
    assert_eq!(seen.len(), 1);
    assert!(seen[0].id == shared.id && !seen[0].owned);
    assert_eq!(
        sql_rows(&app, &bob, "SELECT COUNT(*) AS n FROM shared").await[0]["n"],
        json!(20)
    );
    let item = app.url(&format!("/api/v1/datasets/{}", shared.id));
    assert_eq!(app.send_as(&bob, app.client.get(&item)).await.status(), 200);
    assert_error(
        app.send_as(&bob, app.client.delete(&item)).await,
        ErrorCode::Forbidden,
    )
    .await;
    assert_error(
        app.send_as(&bob, app.client.patch(&item).json(&json!({"name": "x"})))
            .await,
        ErrorCode::Forbidden,
    )
    .await;
    assert_error(
        app.send_as(
            &bob,
            app.client
                .put(&item)
                .header(CONTENT_TYPE, "text/csv")
                .body("a\n1\n"),
        )
        .await,
        ErrorCode::Forbidden,
    )
    .await;
    assert_eq!(
        app.send_as(&alice, app.client.delete(&item)).await.status(),
        204
    );
    assert!(list(&app, &bob).await.is_empty());

    let bad = upload_raw(
        &app,
        &alice,
        "name=y&scope=everyone",
        "text/csv",
        "a\n1\n".to_owned(),
    )
    .await;
    assert_error(bad, ErrorCode::InvalidQuery).await;
}
