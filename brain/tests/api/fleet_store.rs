//! Several brains on one database and one object store (issue 18, item 5): datasets written
//! through one brain are read, replaced and deleted through another; a damaged object or an
//! unusable store is a clear error, never a crash or lost data. The object store is a real
//! S3-compatible server (moto, [`crate::s3_server`]); the database is PostgreSQL.

use brain::Config;
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use reqwest::header::CONTENT_TYPE;
use serde_json::json;
use shared_types::data::{DatasetDescription, DatasetInfo};
use shared_types::error::ErrorCode;

use crate::datasets::{memory, sales, sales_csv, sql_rows, upload_csv, upload_raw};
use crate::helpers::{
    Backend, Caller, TestApp, TestDatabase, assert_error, spawn_app_on, spawn_app_with,
};
use crate::s3_server::{S3Server, s3_server, s3_server_with_iam};

/// Points a brain at `url` on the test S3 server.
fn use_s3(config: &mut Config, s3: &S3Server, url: &str) {
    config.data.object_store_url = Some(url.to_owned());
    config.data.object_store_options = s3.options();
}

/// Two brains (A, B) on one fresh PostgreSQL database and one fresh bucket (prefix `fleet`).
async fn fleet_of_two() -> (TestApp, TestApp, String) {
    let s3 = s3_server();
    let bucket = s3.bucket().await;
    let url = format!("s3://{bucket}/fleet");
    let database = TestDatabase::new(Backend::Postgres).await;
    let shared = database.sharing();
    let a = spawn_app_on(database, |config| use_s3(config, s3, &url)).await;
    let b = spawn_app_on(shared, |config| use_s3(config, s3, &url)).await;
    (a, b, bucket)
}

/// The keys under `prefix` in `bucket`.
async fn objects_under(bucket: &str, prefix: &str) -> Vec<String> {
    let client = s3_server().client(bucket);
    let prefix = ObjectPath::from(prefix);
    let mut keys: Vec<String> = client
        .list(Some(&prefix))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

async fn sql(app: &TestApp, caller: &Caller, sql: &str) -> reqwest::Response {
    app.send_as(
        caller,
        app.client
            .post(app.url("/api/v1/queries/sql"))
            .json(&json!({ "sql": sql })),
    )
    .await
}

async fn total_qty(app: &TestApp, caller: &Caller) -> serde_json::Value {
    sql_rows(
        app,
        caller,
        "SELECT SUM(qty) AS q, COUNT(*) AS n FROM sales",
    )
    .await[0]["q"]
        .clone()
}

fn qty(rows: &[crate::datasets::Sale]) -> serde_json::Value {
    json!(rows.iter().map(|sale| sale.qty).sum::<i64>())
}

#[tokio::test]
async fn brains_on_one_database_and_bucket_serve_each_others_writes() {
    let (a, b, bucket) = fleet_of_two().await;
    let alice = Caller::user("alice");
    let rows = sales();

    // Uploaded through A, queried through B (loaded from the bucket).
    let info = upload_csv(&a, &alice, "sales", &sales_csv(&rows[..10])).await;
    assert_eq!(total_qty(&b, &alice).await, qty(&rows[..10]));
    assert!(
        memory(&b, &alice)
            .await
            .frames
            .iter()
            .any(|frame| frame.id == info.id)
    );
    let prefix = format!("fleet/datasets/{}", info.id);
    let first = objects_under(&bucket, &prefix).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(first[0].contains("/v1-"), "{first:?}");

    // Replaced through B: A, which holds the old frame, answers with the new version.
    let item = |app: &TestApp| app.url(&format!("/api/v1/datasets/{}", info.id));
    let replaced = b
        .send_as(
            &alice,
            b.client
                .put(item(&b))
                .header(CONTENT_TYPE, "text/csv")
                .body(sales_csv(&rows[10..])),
        )
        .await;
    assert_eq!(replaced.status(), 200, "{}", replaced.text().await.unwrap());
    assert_eq!(total_qty(&a, &alice).await, qty(&rows[10..]));
    let second = objects_under(&bucket, &prefix).await;
    assert_eq!(
        second.len(),
        1,
        "the replaced object is deleted: {second:?}"
    );
    assert!(second[0].contains("/v2-"), "{second:?}");

    // Appended through A: B sees the rows.
    let appended = a
        .send_as(
            &alice,
            a.client
                .post(format!("{}/rows", item(&a)))
                .header(CONTENT_TYPE, "text/csv")
                .body(sales_csv(&rows[..5])),
        )
        .await;
    assert_eq!(appended.status(), 200, "{}", appended.text().await.unwrap());
    let both: Vec<_> = rows[10..].iter().chain(&rows[..5]).cloned().collect();
    assert_eq!(total_qty(&b, &alice).await, qty(&both));
    let described: DatasetInfo = b
        .send_as(&alice, b.client.get(item(&b)))
        .await
        .json::<DatasetDescription>()
        .await
        .unwrap()
        .dataset;
    assert_eq!((described.version, described.row_count), (3, 15));

    // Deleted through A: B answers 404, and the object is gone.
    let deleted = a.send_as(&alice, a.client.delete(item(&a))).await;
    assert_eq!(deleted.status(), 204);
    assert_error(
        sql(&b, &alice, "SELECT SUM(qty) FROM sales").await,
        ErrorCode::NotFound,
    )
    .await;
    assert_error(
        b.send_as(&alice, b.client.get(item(&b))).await,
        ErrorCode::NotFound,
    )
    .await;
    assert!(objects_under(&bucket, &prefix).await.is_empty());
}

#[tokio::test]
async fn a_damaged_object_is_a_503_naming_the_dataset_and_the_brain_keeps_serving() {
    let (a, b, bucket) = fleet_of_two().await;
    let alice = Caller::user("alice");
    let info = upload_csv(&a, &alice, "sales", &sales_csv(&sales())).await;
    upload_csv(&a, &alice, "other", "k\n1\n2\n").await;
    let keys = objects_under(&bucket, &format!("fleet/datasets/{}", info.id)).await;
    let client = s3_server().client(&bucket);
    let key = ObjectPath::from(keys[0].as_str());

    // Same size, not Parquet: B (which never loaded it) cannot parse it.
    let size = client.head(&key).await.unwrap().size;
    let garbage = vec![b'x'; usize::try_from(size).unwrap()];
    client.put(&key, PutPayload::from(garbage)).await.unwrap();
    let body = assert_error(
        sql(&b, &alice, "SELECT SUM(qty) FROM sales").await,
        ErrorCode::Unavailable,
    )
    .await;
    assert!(
        body.error.message.contains("`sales`") && body.error.message.contains("damaged"),
        "{body:?}"
    );
    // Not the size that was written: refused before its body is read.
    client
        .put(&key, PutPayload::from(b"PAR1 tiny PAR1".to_vec()))
        .await
        .unwrap();
    let body = assert_error(
        sql(&b, &alice, "SELECT COUNT(*) FROM sales").await,
        ErrorCode::Unavailable,
    )
    .await;
    assert!(body.error.message.contains("size"), "{body:?}");
    // Gone altogether while its row still names it.
    client.delete(&key).await.unwrap();
    let body = assert_error(
        sql(&b, &alice, "SELECT COUNT(*) FROM sales").await,
        ErrorCode::Unavailable,
    )
    .await;
    assert!(body.error.message.contains("missing"), "{body:?}");

    // B keeps serving: health, and the other dataset.
    assert_eq!(b.get("/health").await.status(), 200);
    assert_eq!(
        sql_rows(&b, &alice, "SELECT SUM(k) AS s FROM other").await[0]["s"],
        json!(3)
    );
}

#[tokio::test]
async fn an_upload_whose_object_cannot_be_written_is_a_503_and_stores_nothing() {
    let s3 = s3_server();
    let bucket = s3.bucket().await;
    let url = format!("s3://{bucket}");
    let app = spawn_app_with(Backend::Postgres, |config| use_s3(config, s3, &url)).await;
    let alice = Caller::user("alice");
    // The bucket disappears after the start (the probe left it empty).
    let deleted = reqwest::Client::new()
        .delete(format!("{}/{bucket}", s3.endpoint))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{deleted:?}");

    let response = upload_raw(&app, &alice, "name=sales", "text/csv", sales_csv(&sales())).await;
    let body = assert_error(response, ErrorCode::Unavailable).await;
    assert!(
        body.error.message.contains("nothing was changed"),
        "{body:?}"
    );
    assert!(crate::datasets::list(&app, &alice).await.is_empty());
}

#[tokio::test]
async fn an_unusable_object_store_stops_the_start_naming_its_url_and_the_cause() {
    let s3 = s3_server();
    let build = |url: String, adjust: fn(&mut Config)| async move {
        let database = TestDatabase::new(Backend::Sqlite).await;
        let mut config = database.config();
        use_s3(&mut config, s3, &url);
        adjust(&mut config);
        let error = brain::Application::build(config)
            .await
            .expect_err("the start must fail");
        (url, format!("{error:#}"))
    };

    // Nothing listens at the endpoint.
    let (url, error) = build("s3://unreachable/x".to_owned(), |config| {
        let port = crate::llm_server::free_port();
        config.data.object_store_options.0.push((
            "aws_endpoint".to_owned(),
            format!("http://127.0.0.1:{port}"),
        ));
    })
    .await;
    assert!(
        error.contains(&url) && error.contains("not usable"),
        "{error}"
    );

    // A bucket that does not exist.
    let missing = format!("edgebrain-missing-{}", uuid::Uuid::new_v4().simple());
    let (url, error) = build(format!("s3://{missing}/prefix"), |_| {}).await;
    assert!(error.contains(&url), "{error}");
    assert!(error.contains("NoSuchBucket"), "{error}");

    // A scheme the brain does not know.
    let (url, error) = build("gs://bucket".to_owned(), |_| {}).await;
    assert!(error.contains(&url) && error.contains("scheme"), "{error}");
}

/// A store that checks credentials and IAM policies (moto's IAM simulation): a bucket the
/// brain's key may not write, or not use at all, or a key the store does not know, stops the
/// start naming the store and the store's own reason; the same key on a bucket it may use
/// starts, stores and answers.
#[tokio::test]
async fn a_bucket_without_permission_stops_the_start_naming_the_cause() {
    let iam = s3_server_with_iam();
    let prefix = uuid::Uuid::new_v4().simple().to_string();
    let start = |bucket: &str, secret: &str| {
        let url = format!("s3://{bucket}/{prefix}");
        let options = iam.server.options_with_key(&iam.access_key_id, secret);
        async move {
            let database = TestDatabase::new(Backend::Sqlite).await;
            let mut config = database.config();
            config.data.object_store_url = Some(url.clone());
            config.data.object_store_options = options;
            let built = brain::Application::build(config).await;
            (url, built.err().map(|error| format!("{error:#}")))
        }
    };

    let (url, error) = start(&iam.buckets.locked, &iam.secret_access_key).await;
    let error = error.expect("a bucket without any permission must stop the start");
    assert!(
        error.contains(&url) && error.contains("not usable"),
        "{error}"
    );
    assert!(error.contains("AccessDenied"), "{error}");

    let (url, error) = start(&iam.buckets.read_only, &iam.secret_access_key).await;
    let error = error.expect("a bucket the brain may not write must stop the start");
    assert!(error.contains(&url), "{error}");
    assert!(
        error.contains("writing a probe object failed") && error.contains("AccessDenied"),
        "{error}"
    );

    // Another caller: the right key id with a wrong secret.
    let (url, error) = start(&iam.buckets.open, "not-the-secret").await;
    let error = error.expect("a wrong secret must stop the start");
    assert!(error.contains(&url), "{error}");
    assert!(error.contains("SignatureDoesNotMatch"), "{error}");

    // The normal path: the same key on the bucket it may use.
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.data.object_store_url = Some(format!("s3://{}/{prefix}", iam.buckets.open));
        config.data.object_store_options = iam
            .server
            .options_with_key(&iam.access_key_id, &iam.secret_access_key);
    })
    .await;
    let alice = Caller::user("alice");
    upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
    let rows = sql_rows(&app, &alice, "SELECT COUNT(*) AS n FROM sales").await;
    assert_eq!(rows[0]["n"], json!(sales().len()));
}

/// The default store is the data directory: one file per dataset version, the replaced one
/// removed, the dataset's folder gone with it.
#[tokio::test]
async fn the_default_store_is_the_data_directory() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let alice = Caller::user("alice");
    let info = upload_csv(&app, &alice, "sales", &sales_csv(&sales())).await;
    let folder = app.database.data_dir.join("datasets").join(&info.id);
    let files = |folder: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(folder)
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(files(&folder)[0].starts_with("v1-"), "{:?}", files(&folder));
    let replaced = app
        .send_as(
            &alice,
            app.client
                .put(app.url(&format!("/api/v1/datasets/{}", info.id)))
                .header(CONTENT_TYPE, "text/csv")
                .body("k\n1\n"),
        )
        .await;
    assert_eq!(replaced.status(), 200);
    let now = files(&folder);
    assert!(now.len() == 1 && now[0].starts_with("v2-"), "{now:?}");
    let deleted = app
        .send_as(
            &alice,
            app.client
                .delete(app.url(&format!("/api/v1/datasets/{}", info.id))),
        )
        .await;
    assert_eq!(deleted.status(), 204);
    assert!(!folder.exists());
    assert!(app.database.data_dir.join("datasets").is_dir());
}

/// The knowledge index a brain caches is rebuilt when another brain changes that owner's
/// documents (the stored per-owner generation).
#[tokio::test]
async fn a_cached_knowledge_index_follows_other_brains_uploads_and_deletes() {
    use crate::knowledge::{search, upload_ok, use_fake_embeddings};
    use crate::scripted_llm::fake_embeddings_server;
    let (url, _) = fake_embeddings_server().await;
    let database = TestDatabase::new(Backend::Postgres).await;
    let shared = database.sharing();
    let a = spawn_app_on(database, |config| use_fake_embeddings(config, url.clone())).await;
    let b = spawn_app_on(shared, |config| use_fake_embeddings(config, url.clone())).await;
    let carol = Caller::user("carol");

    upload_ok(
        &a,
        &carol,
        "tents.txt",
        "text/plain",
        b"Pitch the tent on flat ground.".to_vec(),
    )
    .await;
    // B builds and caches carol's index.
    let hits = search(&b, &carol, "tent ground", 5).await;
    assert_eq!(hits.len(), 1);
    // A second document through A: B's next search sees it.
    let boats = upload_ok(
        &a,
        &carol,
        "boats.txt",
        "text/plain",
        b"Bail the boat before rowing.".to_vec(),
    )
    .await;
    let hits = search(&b, &carol, "boat rowing", 5).await;
    assert!(
        hits.iter().any(|hit| hit.chunk.document_id == boats.id),
        "{hits:?}"
    );
    // Deleted through A: gone from B's next search.
    let deleted = a
        .send_as(
            &carol,
            a.client
                .delete(a.url(&format!("/api/v1/documents/{}", boats.id))),
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let hits = search(&b, &carol, "boat rowing", 5).await;
    assert!(
        hits.iter().all(|hit| hit.chunk.document_id != boats.id),
        "{hits:?}"
    );
}

#[tokio::test]
async fn a_dataset_larger_than_the_memory_budget_is_scanned_from_its_store_never_loaded() {
    use shared_types::agent::OPERATOR_SCOPE;
    let alice = Caller::user("alice").with_scopes(&[OPERATOR_SCOPE]);
    let s3 = s3_server();
    let bucket = s3.bucket().await;
    let url = format!("s3://{bucket}/big");
    // 600 rows: a frame of several KiB, against a budget of 4 KiB.
    let rows: Vec<crate::datasets::Sale> = (0..30).flat_map(|_| sales()).collect();
    let expected = |rows: &[crate::datasets::Sale]| {
        let mut by_store = std::collections::BTreeMap::<&str, (i64, i64)>::new();
        for sale in rows {
            let entry = by_store.entry(sale.store).or_default();
            entry.0 += sale.qty;
            entry.1 += 1;
        }
        by_store
            .into_iter()
            .map(|(store, (q, n))| json!({"store": store, "q": q, "n": n}))
            .collect::<Vec<_>>()
    };
    const BY_STORE: &str =
        "SELECT store, SUM(qty) AS q, COUNT(*) AS n FROM sales GROUP BY store ORDER BY store";
    for remote in [false, true] {
        let app = spawn_app_with(Backend::Sqlite, |config| {
            config.data.datasets_memory_budget_bytes = 4_096;
            if remote {
                use_s3(config, s3, &url);
            }
        })
        .await;
        let big = upload_csv(&app, &alice, "sales", &sales_csv(&rows)).await;
        let small = upload_csv(&app, &alice, "few", &sales_csv(&sales()[..2])).await;

        let answered: Vec<serde_json::Value> = sql_rows(&app, &alice, BY_STORE)
            .await
            .into_iter()
            .map(serde_json::Value::Object)
            .collect();
        assert_eq!(answered, expected(&rows), "remote: {remote}");
        // A join with a dataset that is in memory, and the typed JSON path.
        let joined = sql_rows(
            &app,
            &alice,
            "SELECT COUNT(*) AS n FROM sales JOIN few ON sales.store = few.store",
        )
        .await;
        let few_stores: Vec<&str> = sales()[..2].iter().map(|sale| sale.store).collect();
        let matches = rows
            .iter()
            .map(|sale| {
                few_stores
                    .iter()
                    .filter(|store| **store == sale.store)
                    .count()
            })
            .sum::<usize>();
        assert_eq!(joined[0]["n"], json!(matches), "remote: {remote}");
        let typed = app
            .send_as(
                &alice,
                app.client
                    .post(app.url("/api/v1/queries/json"))
                    .json(&json!({
                        "dataset": "sales",
                        "aggregates": [{"function": "sum", "column": "qty", "alias": "q"}],
                    })),
            )
            .await;
        assert_eq!(typed.status(), 200, "remote: {remote}");
        let typed: serde_json::Value = typed.json().await.unwrap();
        assert_eq!(
            typed["rows"][0]["q"],
            json!(rows.iter().map(|sale| sale.qty).sum::<i64>())
        );

        // Described by a scan too.
        let described = app
            .send_as(
                &alice,
                app.client
                    .get(app.url(&format!("/api/v1/datasets/{}", big.id))),
            )
            .await;
        assert_eq!(described.status(), 200, "remote: {remote}");
        let described: DatasetDescription = described.json().await.unwrap();
        let qty_stats = described
            .stats
            .iter()
            .find(|stats| stats.name == "qty")
            .unwrap();
        assert_eq!(
            (
                qty_stats.min.clone(),
                qty_stats.max.clone(),
                qty_stats.null_count
            ),
            (Some(json!(1)), Some(json!(5)), 0),
            "remote: {remote}"
        );
        assert!(!described.sample_rows.is_empty());

        // Never loaded: only the small dataset's frame is in memory.
        let stats = memory(&app, &alice).await;
        let loaded: Vec<&str> = stats.frames.iter().map(|frame| frame.id.as_str()).collect();
        assert_eq!(loaded, [small.id.as_str()], "remote: {remote}: {stats:?}");

        // Replaced, the scan reads the new contents (and a remote store's old copy goes).
        let fewer: Vec<crate::datasets::Sale> = rows.iter().skip(3).cloned().collect();
        let replaced = app
            .send_as(
                &alice,
                app.client
                    .put(app.url(&format!("/api/v1/datasets/{}", big.id)))
                    .header(CONTENT_TYPE, "text/csv")
                    .body(sales_csv(&fewer)),
            )
            .await;
        assert_eq!(replaced.status(), 200, "remote: {remote}");
        let answered: Vec<serde_json::Value> = sql_rows(&app, &alice, BY_STORE)
            .await
            .into_iter()
            .map(serde_json::Value::Object)
            .collect();
        assert_eq!(answered, expected(&fewer), "remote: {remote}");
        let copies = std::fs::read_dir(app.database.data_dir.join("spill"))
            .unwrap()
            .count();
        assert_eq!(copies, usize::from(remote), "remote: {remote}");
        let stats = memory(&app, &alice).await;
        assert_eq!(stats.frames.len(), 1, "remote: {remote}: {stats:?}");

        if !remote {
            // Its object damaged (here: cut short) is a 503 naming the dataset, not a 500.
            let objects = app.database.data_dir.join("datasets").join(&big.id);
            for entry in std::fs::read_dir(&objects).unwrap() {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            }
            let error =
                assert_error(sql(&app, &alice, BY_STORE).await, ErrorCode::Unavailable).await;
            assert!(error.error.message.contains("`sales`"), "{error:?}");
            assert_eq!(
                sql_rows(&app, &alice, "SELECT COUNT(*) AS n FROM few")
                    .await
                    .len(),
                1
            );
        }
    }
}
