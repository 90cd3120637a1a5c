//! The knowledge base over HTTP: uploads in every format, retrieval quality on the labelled
//! corpus in `tests/data/knowledge/` with the real local embedder (all-MiniLM-L6-v2, installed
//! by `scripts/setup-llm`), citations, tenant isolation, limits and errors, on both backends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared_types::error::ErrorCode;
use shared_types::knowledge::{Document, DocumentDetail, DocumentList, SearchHit, SearchResponse};

use crate::datasets::multipart;
use crate::helpers::{BACKENDS, Backend, Caller, TestApp, assert_error, spawn_app_with};
use crate::scripted_llm::fake_embeddings_server;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/knowledge")
}

/// The corpus documents: (file name, media type).
fn corpus_files() -> Vec<(String, &'static str)> {
    let mut files: Vec<(String, &'static str)> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .filter_map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let media_type = match name.rsplit_once('.')?.1 {
                "txt" => "text/plain",
                "md" => "text/markdown",
                "html" => "text/html",
                "pdf" => "application/pdf",
                _ => return None,
            };
            Some((name, media_type))
        })
        .collect();
    files.sort();
    files
}

#[derive(Debug, Deserialize)]
struct LabelledQueries {
    queries: Vec<LabelledQuery>,
}

#[derive(Debug, Deserialize)]
struct LabelledQuery {
    query: String,
    document: String,
    answer: String,
}

fn labelled_queries() -> Vec<LabelledQuery> {
    let text = std::fs::read_to_string(corpus_dir().join("queries.json")).unwrap();
    serde_json::from_str::<LabelledQueries>(&text)
        .unwrap()
        .queries
}

/// A brain whose knowledge base uses the installed local model.
async fn spawn(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub(crate) async fn upload(
    app: &TestApp,
    caller: &Caller,
    name: &str,
    media_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.send_as(
        caller,
        app.client
            .post(app.url(&format!(
                "/api/v1/documents?name={}",
                url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
            )))
            .header("content-type", media_type)
            .body(body),
    )
    .await
}

pub(crate) async fn upload_ok(
    app: &TestApp,
    caller: &Caller,
    name: &str,
    media_type: &str,
    body: Vec<u8>,
) -> Document {
    let response = upload(app, caller, name, media_type, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "upload of {name}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn upload_corpus(app: &TestApp, caller: &Caller) -> HashMap<String, Document> {
    let mut documents = HashMap::new();
    for (name, media_type) in corpus_files() {
        let body = std::fs::read(corpus_dir().join(&name)).unwrap();
        let document = upload_ok(app, caller, &name, media_type, body).await;
        assert_eq!(document.name, name);
        assert_eq!(document.media_type, media_type);
        assert!(document.chunk_count >= 1);
        assert_eq!(document.embedder, "all-MiniLM-L6-v2");
        documents.insert(name, document);
    }
    documents
}

pub(crate) async fn search(
    app: &TestApp,
    caller: &Caller,
    query: &str,
    limit: u32,
) -> Vec<SearchHit> {
    let response = search_response(app, caller, query, limit).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "search {query:?}: {text}");
    serde_json::from_str::<SearchResponse>(&text).unwrap().hits
}

async fn search_response(
    app: &TestApp,
    caller: &Caller,
    query: &str,
    limit: u32,
) -> reqwest::Response {
    app.send_as(
        caller,
        app.client
            .post(app.url("/api/v1/knowledge/search"))
            .json(&serde_json::json!({ "query": query, "limit": limit })),
    )
    .await
}

async fn document_text(app: &TestApp, caller: &Caller, id: &str) -> reqwest::Response {
    app.send_as(
        caller,
        app.client
            .get(app.url(&format!("/api/v1/documents/{id}/text"))),
    )
    .await
}

fn char_slice(text: &str, start: u64, end: u64) -> String {
    text.chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect()
}

/// Recall@5 on the labelled corpus, through the HTTP API with the real local embedder, on both
/// backends; and both backends rank every query alike (the storage round trip of vectors and
/// offsets loses nothing).
#[tokio::test]
async fn recall_at_5_on_the_labelled_corpus_is_at_least_0_8() {
    let queries = labelled_queries();
    assert!(queries.len() >= 15);
    let caller = Caller::user("librarian");
    let mut rankings: Vec<Vec<Vec<(String, u32)>>> = Vec::new();
    for backend in BACKENDS {
        let app = spawn(backend).await;
        let documents = upload_corpus(&app, &caller).await;
        let mut found = 0;
        let mut misses = Vec::new();
        let mut ranking = Vec::new();
        for labelled in &queries {
            assert!(documents.contains_key(&labelled.document), "{labelled:?}");
            let hits = search(&app, &caller, &labelled.query, 5).await;
            assert!(hits.len() <= 5);
            let relevant = hits.iter().any(|hit| {
                hit.chunk.document_name == labelled.document
                    && hit.chunk.text.contains(&labelled.answer)
            });
            if relevant {
                found += 1;
            } else {
                misses.push((
                    labelled.query.clone(),
                    hits.iter()
                        .map(|hit| format!("{}#{}", hit.chunk.document_name, hit.chunk.chunk_index))
                        .collect::<Vec<_>>(),
                ));
            }
            // Hits are ordered by fused score, each carries its leg ranks.
            for pair in hits.windows(2) {
                assert!(pair[0].score >= pair[1].score, "{hits:?}");
            }
            for hit in &hits {
                assert!(hit.bm25_rank.is_some() || hit.vector_rank.is_some());
                assert_eq!(hit.vector_rank.is_some(), hit.vector_score.is_some());
            }
            ranking.push(
                hits.iter()
                    .map(|hit| (hit.chunk.document_name.clone(), hit.chunk.chunk_index))
                    .collect(),
            );
        }
        let recall = f64::from(found) / queries.len() as f64;
        eprintln!(
            "{backend}: recall@5 = {recall:.3} ({found}/{}); misses: {misses:?}",
            queries.len()
        );
        assert!(
            recall >= 0.8,
            "{backend}: recall@5 {recall:.3} below 0.8; misses: {misses:?}"
        );
        rankings.push(ranking);
    }
    assert_eq!(
        rankings[0], rankings[1],
        "SQLite and PostgreSQL rank the corpus differently"
    );
}

/// Every hit's offsets reproduce its text from the document's extracted text; for plain text
/// and Markdown that text is the uploaded file itself.
#[tokio::test]
async fn citations_point_at_the_chunk_they_quote() {
    let app = spawn(Backend::Sqlite).await;
    let caller = Caller::user("citer");
    let documents = upload_corpus(&app, &caller).await;
    let mut texts: HashMap<String, String> = HashMap::new();
    for (name, document) in &documents {
        let response = document_text(&app, &caller, &document.id).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        let text = response.text().await.unwrap();
        assert_eq!(text.chars().count() as u64, document.chars, "{name}");
        if name.ends_with(".txt") || name.ends_with(".md") {
            let original = std::fs::read_to_string(corpus_dir().join(name)).unwrap();
            assert_eq!(text, original, "{name} is stored verbatim");
        }
        texts.insert(document.id.clone(), text);
    }
    // The HTML lost its markup, scripts and styles, and kept its words and entities decoded.
    let html = &texts[&documents["cast-iron-care.html"].id];
    assert!(
        html.contains("Bake it upside down at 450°F (230 °C)"),
        "{html}"
    );
    assert!(!html.contains('<') && !html.contains("analytics") && !html.contains("font-family"));
    // The PDF's text came out.
    let pdf = &texts[&documents["bicycle-maintenance.pdf"].id];
    assert!(pdf.contains("80 to 100 psi"), "{pdf}");

    let mut checked = 0;
    for labelled in labelled_queries() {
        for hit in search(&app, &caller, &labelled.query, 5).await {
            let text = &texts[&hit.chunk.document_id];
            assert!(hit.chunk.start < hit.chunk.end);
            assert_eq!(
                char_slice(text, hit.chunk.start, hit.chunk.end),
                hit.chunk.text,
                "{hit:?}"
            );
            assert_eq!(
                documents[&hit.chunk.document_name].id,
                hit.chunk.document_id
            );
            checked += 1;
        }
    }
    assert!(checked > 50);

    // The detail lists every chunk with the same offsets; together they cover the text, and
    // consecutive chunks of a multi-chunk document overlap.
    let returns = &documents["returns-policy.md"];
    let response = app
        .send_as(
            &caller,
            app.client
                .get(app.url(&format!("/api/v1/documents/{}", returns.id))),
        )
        .await;
    assert_eq!(response.status(), 200);
    let detail: DocumentDetail = response.json().await.unwrap();
    assert_eq!(detail.document, *returns);
    assert_eq!(detail.chunks.len() as u32, returns.chunk_count);
    assert!(detail.chunks.len() >= 2, "{detail:?}");
    let text = &texts[&returns.id];
    for (i, chunk) in detail.chunks.iter().enumerate() {
        assert_eq!(chunk.index as usize, i);
        assert!(chunk.end - chunk.start <= 1000);
        assert_eq!(char_slice(text, chunk.start, chunk.end), chunk.text);
    }
    for pair in detail.chunks.windows(2) {
        assert!(pair[1].start < pair[0].end, "chunks overlap: {pair:?}");
    }
}

/// Another tenant can never list, read, search or delete a caller's documents, and gets the
/// same 404 as for a document that does not exist.
#[tokio::test]
async fn documents_are_invisible_to_other_tenants() {
    for backend in BACKENDS {
        let app = spawn(backend).await;
        let owner = Caller::user("alice");
        let intruders = [
            Caller::user("mallory"),
            Caller::anonymous("sess-of-alice"), // alice's own session id, but not signed in as her
        ];
        let secret = upload_ok(
            &app,
            &owner,
            "secret.txt",
            "text/plain",
            b"The vault combination is 31-41-59. Only Alice may read this vault note.".to_vec(),
        )
        .await;
        for intruder in &intruders {
            // An intruder with a knowledge base of its own, so its searches really run.
            upload_ok(
                &app,
                intruder,
                "mine.txt",
                "text/plain",
                b"Notes about the vault of a bank and its combination lock.".to_vec(),
            )
            .await;
            let list = documents_of(&app, intruder).await;
            assert!(
                list.documents.iter().all(|d| d.id != secret.id),
                "{backend}"
            );
            assert_eq!(list.documents.len(), 1);

            let path = format!("/api/v1/documents/{}", secret.id);
            let missing = format!("/api/v1/documents/{}", uuid::Uuid::new_v4());
            for path in [&path, &missing] {
                let body = assert_error(
                    app.send_as(intruder, app.client.get(app.url(path))).await,
                    ErrorCode::NotFound,
                )
                .await;
                assert_eq!(body.error.message, "no such document");
            }
            assert_error(
                document_text(&app, intruder, &secret.id).await,
                ErrorCode::NotFound,
            )
            .await;
            assert_error(
                app.send_as(intruder, app.client.delete(app.url(&path)))
                    .await,
                ErrorCode::NotFound,
            )
            .await;
            let hits = search(&app, intruder, "vault combination 31-41-59 Alice", 50).await;
            assert!(!hits.is_empty());
            assert!(
                hits.iter().all(|hit| hit.chunk.document_id != secret.id
                    && !hit.chunk.text.contains("31-41-59")),
                "{backend}: {hits:?}"
            );
        }
        // Still there for its owner, after every attempt.
        let response = app
            .send_as(
                &owner,
                app.client
                    .get(app.url(&format!("/api/v1/documents/{}", secret.id))),
            )
            .await;
        assert_eq!(response.status(), 200);
        let hits = search(&app, &owner, "vault combination", 5).await;
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].chunk.document_id, secret.id);
        // No identity at all: 401.
        assert_error(
            app.send(app.client.get(app.url("/api/v1/documents"))).await,
            ErrorCode::Unauthorized,
        )
        .await;
    }
}

/// Multipart uploads; deleting a document removes it from listings and from search at once.
#[tokio::test]
async fn multipart_upload_then_delete_removes_it_from_search() {
    let app = spawn(Backend::Postgres).await;
    let caller = Caller::anonymous("sess-42");
    let pdf = std::fs::read(corpus_dir().join("bicycle-maintenance.pdf")).unwrap();
    let (content_type, body) = multipart(&[
        ("name", None, b"Bike care"),
        ("file", Some("bike.pdf"), &pdf),
    ]);
    let response = app
        .send_as(
            &caller,
            app.client
                .post(app.url("/api/v1/documents"))
                .header("content-type", content_type)
                .body(body),
        )
        .await;
    assert_eq!(response.status(), 201);
    let bike: Document = response.json().await.unwrap();
    assert_eq!(bike.name, "Bike care");
    assert_eq!(bike.media_type, "application/pdf");
    upload_ok(
        &app,
        &caller,
        "tent.txt",
        "text/plain",
        std::fs::read(corpus_dir().join("tent-setup.txt")).unwrap(),
    )
    .await;

    let hits = search(&app, &caller, "chain lubrication and tyre pressure", 5).await;
    assert_eq!(hits[0].chunk.document_id, bike.id);
    let response = app
        .send_as(
            &caller,
            app.client
                .delete(app.url(&format!("/api/v1/documents/{}", bike.id))),
        )
        .await;
    assert_eq!(response.status(), 204);
    let hits = search(&app, &caller, "chain lubrication and tyre pressure", 5).await;
    assert!(
        hits.iter().all(|hit| hit.chunk.document_id != bike.id),
        "{hits:?}"
    );
    let list = documents_of(&app, &caller).await;
    assert_eq!(list.documents.len(), 1);
    assert_error(
        app.send_as(
            &caller,
            app.client
                .delete(app.url(&format!("/api/v1/documents/{}", bike.id))),
        )
        .await,
        ErrorCode::NotFound,
    )
    .await;
}

/// Bad uploads and searches get the error shape with the right status, and leave nothing
/// stored.
#[tokio::test]
async fn bad_input_is_refused_in_the_error_shape() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.knowledge.knowledge_max_document_bytes = 4_000;
        config.knowledge.knowledge_max_chunks_per_owner = 3;
        config.knowledge.knowledge_max_search_limit = 2;
    })
    .await;
    let caller = Caller::user("careless");
    let text = b"Plain words about returns.".to_vec();

    let body = assert_error(
        upload(&app, &caller, "a.png", "image/png", text.clone()).await,
        ErrorCode::UnsupportedMediaType,
    )
    .await;
    assert!(body.error.message.contains("image/png"), "{body:?}");
    let body = assert_error(
        upload(
            &app,
            &caller,
            "a.txt",
            "text/plain",
            b"caf\xc3\xa9 \xff!".to_vec(),
        )
        .await,
        ErrorCode::Unprocessable,
    )
    .await;
    assert!(body.error.message.contains("offset 6"), "{body:?}");
    let body = assert_error(
        upload(
            &app,
            &caller,
            "a.pdf",
            "application/pdf",
            b"%PDF-1.7\n1 0 obj <<".to_vec(),
        )
        .await,
        ErrorCode::Unprocessable,
    )
    .await;
    assert!(
        body.error.message.contains("not a readable PDF"),
        "{body:?}"
    );
    assert_error(
        upload(
            &app,
            &caller,
            "a.html",
            "text/html",
            b"<html><script>x</script></html>".to_vec(),
        )
        .await,
        ErrorCode::Unprocessable,
    )
    .await;
    assert_error(
        upload(&app, &caller, "", "text/plain", text.clone()).await,
        ErrorCode::BadRequest,
    )
    .await;
    let body = assert_error(
        upload(&app, &caller, "big.txt", "text/plain", vec![b'a'; 4_001]).await,
        ErrorCode::PayloadTooLarge,
    )
    .await;
    assert!(body.error.message.contains("4000"), "{body:?}");
    // Too many chunks for the caller's quota (3 at most; this one has more).
    let long = "A sentence about store policy and opening hours. ".repeat(70);
    let body = assert_error(
        upload(&app, &caller, "long.txt", "text/plain", long.into_bytes()).await,
        ErrorCode::Unprocessable,
    )
    .await;
    assert!(
        body.error.message.contains("limit per caller is 3"),
        "{body:?}"
    );

    // Nothing of the refused uploads was stored.
    let list = documents_of(&app, &caller).await;
    assert!(list.documents.is_empty(), "{list:?}");
    assert!(search(&app, &caller, "returns", 5).await.is_empty());

    // Searches: empty query, zero limit, unknown fields; large limits are capped.
    assert_error(
        search_response(&app, &caller, "   ", 5).await,
        ErrorCode::BadRequest,
    )
    .await;
    assert_error(
        search_response(&app, &caller, "returns", 0).await,
        ErrorCode::BadRequest,
    )
    .await;
    assert_error(
        app.send_as(
            &caller,
            app.client
                .post(app.url("/api/v1/knowledge/search"))
                .json(&serde_json::json!({ "q": "returns" })),
        )
        .await,
        ErrorCode::InvalidJson,
    )
    .await;
    for name in ["one.txt", "two.txt", "three.txt"] {
        upload_ok(&app, &caller, name, "text/plain", text.clone()).await;
    }
    assert_eq!(search(&app, &caller, "returns", 50).await.len(), 2);
    // The quota is full now: even a one-chunk document is refused.
    assert_error(
        upload(&app, &caller, "four.txt", "text/plain", text.clone()).await,
        ErrorCode::Unprocessable,
    )
    .await;
}

/// Without the local model's files the brain still starts; the knowledge endpoints that need
/// embeddings answer 503 naming what is missing, the others work.
#[tokio::test]
async fn a_missing_local_model_makes_embedding_endpoints_unavailable() {
    let empty = std::env::temp_dir().join(format!("no-model-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&empty).unwrap();
    let dir = empty.clone();
    let app = spawn_app_with(Backend::Sqlite, move |config| {
        config.knowledge.knowledge_model_dir = Some(dir);
    })
    .await;
    let caller = Caller::user("early");
    let body = assert_error(
        upload(&app, &caller, "a.txt", "text/plain", b"Some text.".to_vec()).await,
        ErrorCode::Unavailable,
    )
    .await;
    assert!(body.error.message.contains("model.safetensors"), "{body:?}");
    assert!(body.error.message.contains("scripts/setup-llm"), "{body:?}");
    let response = app
        .send_as(&caller, app.client.get(app.url("/api/v1/documents")))
        .await;
    assert_eq!(response.status(), 200);
    std::fs::remove_dir_all(&empty).unwrap();
}

/// The caller's documents, as the list endpoint shows them.
async fn documents_of(app: &TestApp, caller: &Caller) -> DocumentList {
    app.send_as(caller, app.client.get(app.url("/api/v1/documents")))
        .await
        .json()
        .await
        .unwrap()
}

/// Points the brain at [`crate::scripted_llm::fake_embeddings_server`] (its model name, no API key).
pub(crate) fn use_fake_embeddings(config: &mut brain::Config, url: String) {
    config.knowledge.knowledge_embedder = brain::config::EmbedderKind::OpenaiCompatible;
    config.knowledge.embeddings_url = url;
    config.knowledge.embeddings_model = "fake-embed".to_owned();
    config.knowledge.embeddings_api_key_env = "EDGEBRAIN_TEST_UNSET_EMBEDDINGS_KEY".to_owned();
}

/// The OpenAI-compatible embedder: chunks and queries go to the provider, documents record its
/// model, search uses its vectors; a failing provider is a 503 and stores nothing.
#[tokio::test]
async fn an_openai_compatible_embedder_serves_uploads_and_search() {
    let (url, seen) = fake_embeddings_server().await;
    let app = spawn_app_with(Backend::Sqlite, move |config| {
        use_fake_embeddings(config, url);
    })
    .await;
    let caller = Caller::user("remote");
    let document = upload_ok(
        &app,
        &caller,
        "gift-cards.txt",
        "text/plain",
        std::fs::read(corpus_dir().join("gift-cards.txt")).unwrap(),
    )
    .await;
    assert_eq!(document.embedder, "fake-embed");
    upload_ok(
        &app,
        &caller,
        "zzz.txt",
        "text/plain",
        b"zzz zzz zzz".to_vec(),
    )
    .await;
    let hits = search(&app, &caller, "gift card balance", 5).await;
    assert_eq!(hits[0].chunk.document_id, document.id);
    assert!(hits[0].vector_rank.is_some());
    {
        let seen = seen.lock().unwrap();
        assert!(
            seen.iter().any(|input| input == "gift card balance"),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|input| input.starts_with("Gift cards")),
            "{seen:?}"
        );
    }
    let body = assert_error(
        upload(
            &app,
            &caller,
            "bad.txt",
            "text/plain",
            b"please FAIL now".to_vec(),
        )
        .await,
        ErrorCode::Unavailable,
    )
    .await;
    assert!(body.error.message.contains("500"), "{body:?}");
    let list = documents_of(&app, &caller).await;
    assert_eq!(list.documents.len(), 2);
}

#[tokio::test]
async fn an_upload_whose_embedding_exceeds_the_time_limit_is_refused_and_not_stored() {
    let (url, _) = fake_embeddings_server().await;
    let app = spawn_app_with(Backend::Sqlite, move |config| {
        use_fake_embeddings(config, url);
        // The per-call limit is far away: the document's own limit must be what answers.
        config.knowledge.embeddings_timeout_ms = 600_000;
        config.knowledge.knowledge_embed_timeout_ms = 300;
    })
    .await;
    let caller = Caller::user("patient");
    let body = assert_error(
        upload(
            &app,
            &caller,
            "slow.txt",
            "text/plain",
            b"this one will STALL".to_vec(),
        )
        .await,
        ErrorCode::Unprocessable,
    )
    .await;
    assert!(
        body.error.message.contains("300 ms")
            && body.error.message.contains("--knowledge-embed-timeout-ms"),
        "{body:?}"
    );
    let list = documents_of(&app, &caller).await;
    assert!(list.documents.is_empty(), "{list:?}");
}

/// Deleting several documents at once on SQLite: every delete is done (no `SQLITE_BUSY` from
/// two transactions upgrading their read locks), each chunk count given back once.
#[tokio::test]
async fn concurrent_deletes_on_sqlite_all_succeed() {
    let (url, _) = fake_embeddings_server().await;
    let app = spawn_app_with(Backend::Sqlite, |config| use_fake_embeddings(config, url)).await;
    let caller = Caller::user("dora");
    let mut ids = Vec::new();
    for n in 0..6 {
        let text = format!("Document number {n} about tents and ground sheets.");
        ids.push(
            upload_ok(
                &app,
                &caller,
                &format!("d{n}.txt"),
                "text/plain",
                text.into_bytes(),
            )
            .await
            .id,
        );
    }
    let deletes = ids.iter().map(|id| {
        app.send_as(
            &caller,
            app.client
                .delete(app.url(&format!("/api/v1/documents/{id}"))),
        )
    });
    for response in futures_util::future::join_all(deletes).await {
        assert_eq!(response.status(), 204);
    }
    assert!(
        search(&app, &caller, "tents ground sheets", 10)
            .await
            .is_empty()
    );
}
