use std::time::Duration;

use brain::Application;
use brain::store::DatabaseUrl;
use brain::store::Store;

use crate::helpers::{BACKENDS, Backend, TestDatabase};

#[tokio::test]
async fn every_start_is_recorded_and_survives_a_restart_on_both_backends() {
    for backend in BACKENDS {
        let database = TestDatabase::new(backend).await;

        let first = Application::build(database.config()).await.unwrap();
        assert_eq!(first.store().backend(), backend);
        assert_eq!(first.store().count_starts().await.unwrap(), 1, "{backend}");
        first.store().close().await;
        drop(first);

        // Same data directory, same database: migrations are already applied, a second row lands.
        let second = Application::build(database.config()).await.unwrap();
        assert_eq!(second.store().count_starts().await.unwrap(), 2, "{backend}");
        assert!(second.store().ping().await.is_ok());
        second.store().close().await;
    }
}

/// A store connected to a new database on `backend` (whose data directory exists); the store
/// lives as long as the database handle is kept.
async fn fresh_store(backend: Backend) -> (TestDatabase, Store) {
    let database = TestDatabase::new(backend).await;
    tokio::fs::create_dir_all(&database.data_dir).await.unwrap();
    let store = Store::connect(&database.config().database().unwrap())
        .await
        .unwrap();
    (database, store)
}

#[tokio::test]
async fn store_queries_run_on_both_backends() {
    // The same `$1`-placeholder statements must work through the Any driver on each engine.
    for backend in BACKENDS {
        let (_database, store) = fresh_store(backend).await;
        assert_eq!(store.count_starts().await.unwrap(), 0, "{backend}");

        store.record_start("a", "1.2.3", i64::MAX).await.unwrap();
        store.record_start("b", "1.2.3", 0).await.unwrap();

        assert_eq!(store.count_starts().await.unwrap(), 2, "{backend}");
        // The id is the primary key.
        assert!(
            store.record_start("a", "1.2.3", 1).await.is_err(),
            "{backend}"
        );
        store.close().await;
    }
}

#[tokio::test]
async fn the_sqlite_file_is_created_in_a_nested_data_dir_that_did_not_exist() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let mut config = database.config();
    config.server.data_dir = database.data_dir.join("nested").join("deeper");
    assert!(!database.data_dir.exists());

    let app = Application::build(config).await.unwrap();

    assert!(database.data_dir.join("nested/deeper/brain.db").is_file());
    assert_eq!(app.store().backend(), Backend::Sqlite);
    app.store().close().await;
}

#[tokio::test]
async fn unsupported_database_schemes_are_rejected_at_build() {
    for url in [
        "mysql://root:hunter2@127.0.0.1/brain",
        "postgress://u:hunter2@127.0.0.1/brain",
    ] {
        let database = TestDatabase::new(Backend::Sqlite).await;
        let mut config = database.config();
        config.database.database_url = Some(DatabaseUrl::from(url.to_owned()));

        let error = Application::build(config).await.unwrap_err();

        let message = format!("{error:#}");
        let scheme = url.split_once(':').unwrap().0;
        assert!(message.contains(&format!("`{scheme}`")), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        // Rejected before any I/O.
        assert!(!database.data_dir.exists());
    }
}

#[tokio::test]
async fn an_unreachable_postgres_fails_the_build_without_leaking_the_password() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let mut config = database.config();
    config.database.database_url = Some(DatabaseUrl::from(
        "postgres://brain:hunter2@127.0.0.1:1/brain".to_owned(),
    ));
    config.database.db_acquire_timeout_ms = 300;

    let error = tokio::time::timeout(Duration::from_secs(10), Application::build(config))
        .await
        .expect("the connection attempt is bounded by the acquire timeout")
        .unwrap_err();

    let message = format!("{error:#}");
    assert!(message.contains("postgres"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn concurrent_knowledge_uploads_never_exceed_the_chunk_quota_together() {
    use brain::store::knowledge::{DocumentRecord, KnowledgeInsert, NewChunk};

    const LIMIT: u64 = 5;
    let document = |n: usize| {
        let record = DocumentRecord {
            id: format!("doc-{n}"),
            owner: "user:quota".to_owned(),
            name: format!("doc-{n}.txt"),
            media_type: "text/plain".to_owned(),
            bytes: 4,
            chars: 4,
            chunk_count: 2,
            embedder: "test".to_owned(),
            created_at_ms: 0,
        };
        let chunks: Vec<NewChunk> = (0..2)
            .map(|index| NewChunk {
                chunk_index: index,
                start_char: 2 * index,
                end_char: 2 * index + 2,
                text: "ab".to_owned(),
                embedding: vec![1.0, 0.0],
            })
            .collect();
        (record, chunks)
    };
    for backend in BACKENDS {
        let (_database, store) = fresh_store(backend).await;
        // Eight uploads of two chunks each race for a quota of five: two fit, whatever the
        // interleaving, and the counter agrees with what was stored.
        let uploads = (0..8).map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let (record, chunks) = document(n);
                store
                    .insert_knowledge_document(&record, "user:quota", "abcd", &chunks, LIMIT)
                    .await
            })
        });
        let mut stored = 0;
        for upload in futures_util::future::join_all(uploads).await {
            match upload.unwrap() {
                Ok(KnowledgeInsert::Stored) => stored += 1,
                Ok(KnowledgeInsert::OverQuota { existing }) => {
                    assert!(existing + 2 > LIMIT, "{backend}: refused at {existing}")
                }
                Err(error) => panic!("{backend}: {error}"),
            }
        }
        assert_eq!(stored, 2, "{backend}");
        assert_eq!(
            store.count_knowledge_chunks("user:quota").await.unwrap(),
            4,
            "{backend}"
        );
        assert_eq!(
            store.knowledge_documents("user:quota").await.unwrap().len(),
            2,
            "{backend}"
        );

        // Deleting a document gives its chunks back to the quota.
        assert!(
            store
                .delete_knowledge_document(
                    "user:quota",
                    &store.knowledge_documents("user:quota").await.unwrap()[0].id
                )
                .await
                .unwrap()
        );
        assert_eq!(
            store.count_knowledge_chunks("user:quota").await.unwrap(),
            2,
            "{backend}"
        );
        let (record, chunks) = document(100);
        assert_eq!(
            store
                .insert_knowledge_document(&record, "user:quota", "abcd", &chunks, LIMIT)
                .await
                .unwrap(),
            KnowledgeInsert::Stored,
            "{backend}"
        );
        store.close().await;
    }
}

/// Of two writers of one dataset version, one commits and the other learns it lost (no lost
/// update across brains); delete hands back the object key; the knowledge generation counts
/// every committed change. On both backends.
#[tokio::test]
async fn dataset_contents_are_compare_and_set_on_both_backends() {
    use brain::store::datasets::{ContentsUpdate, ContentsUpdated, DatasetRecord};
    for backend in BACKENDS {
        let (_database, store) = fresh_store(backend).await;
        let record = DatasetRecord {
            id: "d1".to_owned(),
            owner: "user:a".to_owned(),
            name: "sales".to_owned(),
            scope: "private".to_owned(),
            columns_json: "[]".to_owned(),
            row_count: 1,
            bytes: 10,
            frame_bytes: None,
            pinned: false,
            created_at_ms: 0,
            updated_at_ms: 0,
            version: 1,
            object_key: "datasets/d1/v1-a.parquet".to_owned(),
        };
        store.insert_dataset(&record).await.unwrap();
        let update = |key: &str, expected_version| ContentsUpdate {
            columns_json: "[]".to_owned(),
            row_count: 2,
            bytes: 20,
            frame_bytes: 40,
            updated_at_ms: 1,
            object_key: key.to_owned(),
            expected_version,
        };
        let first = update("datasets/d1/v2-b.parquet", 1);
        let second = update("datasets/d1/v2-c.parquet", 1);
        assert_eq!(
            store
                .update_dataset_contents("user:a", "d1", &first)
                .await
                .unwrap(),
            ContentsUpdated::Done,
            "{backend}"
        );
        assert_eq!(
            store
                .update_dataset_contents("user:a", "d1", &second)
                .await
                .unwrap(),
            ContentsUpdated::Conflict,
            "{backend}"
        );
        assert_eq!(
            store
                .update_dataset_contents("user:b", "d1", &update("x", 2))
                .await
                .unwrap(),
            ContentsUpdated::Missing,
            "{backend}"
        );
        assert_eq!(
            store.dataset_object("d1").await.unwrap(),
            Some((2, "datasets/d1/v2-b.parquet".to_owned())),
            "{backend}"
        );
        let stored = store
            .visible_dataset("user:a", "d1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.frame_bytes, Some(40), "{backend}");
        assert_eq!(
            store
                .delete_dataset("user:a", "d1")
                .await
                .unwrap()
                .as_deref(),
            Some("datasets/d1/v2-b.parquet"),
            "{backend}"
        );
        assert_eq!(store.delete_dataset("user:a", "d1").await.unwrap(), None);
        assert_eq!(store.knowledge_generation("user:a").await.unwrap(), 0);
        store.close().await;
    }
}
