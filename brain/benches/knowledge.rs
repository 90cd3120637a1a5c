//! Knowledge-base cost without HTTP or a database: the local embedder (all-MiniLM-L6-v2 on the
//! CPU) and hybrid search (BM25 + exact cosine + reciprocal rank fusion) over 10,000 chunks.
//! Run in release: `cargo bench -p brain --bench knowledge`; see BENCHMARKS.md.
//!
//! The model comes from `BENCH_MODEL_DIR`, else the brain's default
//! (`$EDGEBRAIN_CACHE/llm/models/all-MiniLM-L6-v2`, installed by `scripts/setup-llm`).
//! `BENCH_CHUNKS` (default 10000) sets the corpus size. The chunks are ~1,000-char texts mixed
//! from the sentences of the test corpus (`tests/data/knowledge/`); 256 distinct chunks are
//! embedded for real and their vectors reused, slightly perturbed, for the rest (the vector
//! leg's cost does not depend on the values).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use brain::knowledge::embed::{Embedder, MiniLmEmbedder, normalize};
use brain::knowledge::extract::{DocumentFormat, extract_text};
use brain::knowledge::index::{IndexedChunk, TenantIndex};
use criterion::{Criterion, criterion_group, criterion_main};
use shared_types::knowledge::DocumentChunk;

const QUERY: &str = "how should I dry wet leather boots after a hike";
const DISTINCT_VECTORS: usize = 256;

fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BENCH_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    brain::Config::from_args(["brain"])
        .unwrap()
        .knowledge_model_dir()
}

/// Every sentence of the test corpus (extracted like uploads are).
fn corpus_sentences() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/knowledge");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let mut sentences = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(format) = DocumentFormat::from_file_name(&name) else {
            continue;
        };
        let text = extract_text(format, &std::fs::read(&path).unwrap()).unwrap();
        for sentence in text.split_inclusive(". ") {
            let sentence = sentence.split_whitespace().collect::<Vec<_>>().join(" ");
            if sentence.len() > 20 {
                sentences.push(sentence);
            }
        }
    }
    sentences
}

/// `n` chunk texts of ~1,000 chars, deterministic.
fn chunk_texts(n: usize) -> Vec<String> {
    let sentences = corpus_sentences();
    let mut rng = fastrand::Rng::with_seed(42);
    (0..n)
        .map(|i| {
            let mut text = format!("Section {i}. ");
            while text.len() < 950 {
                text.push_str(&sentences[rng.usize(..sentences.len())]);
                text.push(' ');
            }
            text
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let chunks: usize = std::env::var("BENCH_CHUNKS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let embedder: Arc<dyn Embedder> = Arc::new(MiniLmEmbedder::new(&model_dir(), 32).unwrap());
    let texts = chunk_texts(chunks);

    // Real vectors for DISTINCT_VECTORS chunks (this also loads the model).
    let distinct = runtime
        .block_on(embedder.embed(texts[..DISTINCT_VECTORS.min(chunks)].to_vec()))
        .unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let indexed: Vec<IndexedChunk> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let mut vector = distinct[i % distinct.len()].clone();
            if i >= distinct.len() {
                vector
                    .iter_mut()
                    .for_each(|x| *x += (rng.f32() - 0.5) * 0.02);
                normalize(&mut vector);
            }
            IndexedChunk {
                chunk: DocumentChunk {
                    document_id: format!("doc-{}", i / 10),
                    document_name: format!("document {}", i / 10),
                    chunk_index: (i % 10) as u32,
                    start: 0,
                    end: text.chars().count() as u64,
                    text: text.clone(),
                },
                vector: Some(vector),
            }
        })
        .collect();
    let query_vector = runtime
        .block_on(embedder.embed(vec![QUERY.to_owned()]))
        .unwrap()
        .remove(0);

    let mut group = c.benchmark_group("embed_all_minilm_l6_v2");
    group.sample_size(20);
    group.bench_function("query_1", |b| {
        b.iter(|| {
            black_box(
                runtime
                    .block_on(embedder.embed(vec![QUERY.to_owned()]))
                    .unwrap(),
            )
        })
    });
    group.sample_size(10);
    let batch: Vec<String> = texts[..32].to_vec();
    group.bench_function("chunks_32x1000_chars", |b| {
        b.iter(|| black_box(runtime.block_on(embedder.embed(batch.clone())).unwrap()))
    });
    group.finish();

    let mut group = c.benchmark_group(format!("search_{chunks}_chunks"));
    group.sample_size(10);
    group.bench_function("index_build", |b| {
        b.iter(|| black_box(TenantIndex::build(indexed.clone())))
    });
    let index = TenantIndex::build(indexed.clone());
    eprintln!(
        "index: {} chunks, ~{:.1} MiB in memory",
        index.len(),
        index.approx_bytes() as f64 / (1024.0 * 1024.0)
    );
    group.sample_size(50);
    group.bench_function("hybrid_top5", |b| {
        b.iter(|| black_box(index.search(QUERY, &query_vector, 5)))
    });
    group.bench_function("vector_leg_top50", |b| {
        b.iter(|| black_box(index.vector_top(&query_vector, 50)))
    });
    group.bench_function("hybrid_top5_with_query_embedding", |b| {
        b.iter(|| {
            let vector = runtime
                .block_on(embedder.embed(vec![QUERY.to_owned()]))
                .unwrap()
                .remove(0);
            black_box(index.search(QUERY, &vector, 5))
        })
    });
    group.finish();
}

criterion_group!(knowledge, benches);
criterion_main!(knowledge);
