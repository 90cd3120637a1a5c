//! One tenant's searchable chunks in memory: a BM25 inverted index and a matrix of unit
//! vectors, searched by both and fused by reciprocal rank fusion. Pure and synchronous (the
//! caller runs it in `spawn_blocking`).
//!
//! - **BM25** (Robertson/Spärck Jones, `k1 = 1.2`, `b = 0.75`, idf `ln(1 + (N − df + 0.5) /
//!   (df + 0.5))`) over [`tokenize`]d chunk text.
//! - **Vectors**: exact cosine similarity (dot products of unit vectors) against every chunk
//!   embedded by the current model; no approximate index, so results are exact and repeatable.
//! - **Fusion**: each leg contributes its best [`CANDIDATES_PER_LEG`] chunks (more when the
//!   caller wants more hits); a chunk's fused score is `Σ 1 / (RRF_K + rank)` over the legs that
//!   ranked it (rank 1-based). `RRF_K = 60` is the constant of Cormack, Clarke and Büttcher
//!   (SIGIR 2009), which damps the influence of any single leg's top ranks. Ties are broken by
//!   the better single-leg rank, then by position (document order), so rankings are
//!   deterministic.

use std::cmp::Ordering;
use std::collections::HashMap;

use shared_types::knowledge::{DocumentChunk, SearchHit};

/// The reciprocal rank fusion constant.
pub const RRF_K: f64 = 60.0;
/// Chunks each leg contributes to the fusion (at least the number of hits asked for).
pub const CANDIDATES_PER_LEG: usize = 50;

const BM25_K1: f64 = 1.2;
const BM25_B: f64 = 0.75;

/// A chunk as the index holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedChunk {
    pub chunk: DocumentChunk,
    /// Its unit vector, when it was embedded by the model now in use (`None`: keyword leg only).
    pub vector: Option<Vec<f32>>,
}

/// A tenant's chunks, indexed.
#[derive(Debug)]
pub struct TenantIndex {
    chunks: Vec<IndexedChunk>,
    bm25: Bm25,
    /// Dimension of the vectors (0 when none).
    dims: usize,
    /// `(chunk position, vector)` rows, flattened: `vector_rows[i]` owns
    /// `vectors[i * dims..(i + 1) * dims]`.
    vector_rows: Vec<u32>,
    vectors: Vec<f32>,
}

impl TenantIndex {
    /// Indexes `chunks`. Vectors whose length differs from the first vector's are ignored
    /// (they cannot come from the same model).
    pub fn build(mut chunks: Vec<IndexedChunk>) -> Self {
        let bm25 = Bm25::build(chunks.iter().map(|indexed| indexed.chunk.text.as_str()));
        let dims = chunks
            .iter()
            .find_map(|indexed| indexed.vector.as_ref().map(Vec::len))
            .unwrap_or(0);
        let mut vector_rows = Vec::new();
        let mut vectors = Vec::new();
        for (position, indexed) in chunks.iter_mut().enumerate() {
            if let Some(vector) = indexed.vector.take()
                && vector.len() == dims
                && let Ok(position) = u32::try_from(position)
            {
                vector_rows.push(position);
                vectors.extend_from_slice(&vector);
            }
        }
        Self {
            chunks,
            bm25,
            dims,
            vector_rows,
            vectors,
        }
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Approximate heap size, for the cache's budget.
    pub fn approx_bytes(&self) -> usize {
        let text: usize = self
            .chunks
            .iter()
            .map(|c| {
                c.chunk.text.len() + c.chunk.document_id.len() + c.chunk.document_name.len() + 64
            })
            .sum();
        text + self.vectors.len() * 4 + self.bm25.approx_bytes()
    }

    /// The best `limit` chunks for `query` (keywords) and `query_vector` (a unit vector of the
    /// model the index's vectors came from), fused.
    pub fn search(&self, query: &str, query_vector: &[f32], limit: usize) -> Vec<SearchHit> {
        if limit == 0 || self.chunks.is_empty() {
            return Vec::new();
        }
        let candidates = CANDIDATES_PER_LEG.max(limit);
        let keyword = self.bm25.top(&tokenize(query), candidates);
        let vector = self.vector_top(query_vector, candidates);

        #[derive(Default, Clone, Copy)]
        struct Fused {
            score: f64,
            bm25: Option<(u32, f64)>,
            vector: Option<(u32, f64)>,
        }
        let mut fused: HashMap<u32, Fused> = HashMap::new();
        for (rank, &(position, score)) in keyword.iter().enumerate() {
            let rank = rank_u32(rank);
            let entry = fused.entry(position).or_default();
            entry.score += 1.0 / (RRF_K + f64::from(rank));
            entry.bm25 = Some((rank, score));
        }
        for (rank, &(position, score)) in vector.iter().enumerate() {
            let rank = rank_u32(rank);
            let entry = fused.entry(position).or_default();
            entry.score += 1.0 / (RRF_K + f64::from(rank));
            entry.vector = Some((rank, score));
        }
        let best_rank = |f: &Fused| {
            let bm25 = f.bm25.map_or(u32::MAX, |(rank, _)| rank);
            let vector = f.vector.map_or(u32::MAX, |(rank, _)| rank);
            bm25.min(vector)
        };
        let mut ranked: Vec<(u32, Fused)> = fused.into_iter().collect();
        ranked.sort_by(|(pa, a), (pb, b)| {
            b.score
                .partial_cmp(&a.score)
                .unwrap_or(Ordering::Equal)
                .then_with(|| best_rank(a).cmp(&best_rank(b)))
                .then_with(|| pa.cmp(pb))
        });
        ranked
            .into_iter()
            .take(limit)
            .filter_map(|(position, f)| {
                let indexed = self.chunks.get(usize::try_from(position).ok()?)?;
                Some(SearchHit {
                    chunk: indexed.chunk.clone(),
                    score: f.score,
                    bm25_rank: f.bm25.map(|(rank, _)| rank),
                    vector_rank: f.vector.map(|(rank, _)| rank),
                    bm25_score: f.bm25.map(|(_, score)| score),
                    vector_score: f.vector.map(|(_, score)| score),
                })
            })
            .collect()
    }

    /// The vector leg alone: `(chunk position, cosine)`, best first (ties: position). Exposed
    /// so the storage layer's own vector search can be checked against it.
    pub fn vector_top(&self, query_vector: &[f32], candidates: usize) -> Vec<(u32, f64)> {
        if self.dims == 0 || query_vector.len() != self.dims {
            return Vec::new();
        }
        let scored: Vec<(u32, f64)> = self
            .vector_rows
            .iter()
            .zip(self.vectors.chunks_exact(self.dims))
            .map(|(&position, vector)| (position, f64::from(dot(vector, query_vector))))
            .collect();
        top_k(scored, candidates)
    }
}

fn rank_u32(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four accumulators: lets the compiler vectorise without changing results run to run.
    let mut sums = [0.0f32; 4];
    let mut chunks_a = a.chunks_exact(4);
    let mut chunks_b = b.chunks_exact(4);
    for (x, y) in (&mut chunks_a).zip(&mut chunks_b) {
        for ((sum, x), y) in sums.iter_mut().zip(x).zip(y) {
            *sum += x * y;
        }
    }
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    (sums[0] + sums[1]) + (sums[2] + sums[3]) + tail
}

/// The `k` best `(position, score)` pairs, best first; equal scores by position.
fn top_k(mut scored: Vec<(u32, f64)>, k: usize) -> Vec<(u32, f64)> {
    let order = |a: &(u32, f64), b: &(u32, f64)| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    };
    if scored.len() > k && k > 0 {
        scored.select_nth_unstable_by(k - 1, order);
        scored.truncate(k);
    }
    scored.truncate(k);
    scored.sort_by(order);
    scored
}

/// Words that carry no topic: not indexed, not searched.
const STOPWORDS: [&str; 64] = [
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "before", "but", "by", "can", "could", "do", "does", "for", "from", "had", "has", "have",
    "how", "i", "if", "in", "into", "is", "it", "its", "may", "me", "my", "no", "not", "of", "on",
    "or", "our", "should", "so", "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "to", "was", "we", "were", "what", "when", "which", "who", "will", "with",
];

/// Lower-cased alphanumeric words without stopwords, lightly stemmed (plural `s`, `es`,
/// `ies`), so `Returns` matches `return`.
pub fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .filter(|word| !STOPWORDS.contains(&word.as_str()))
        .map(|word| stem(&word))
        .collect()
}

fn stem(word: &str) -> String {
    let chars = word.chars().count();
    if chars > 4
        && let Some(base) = word.strip_suffix("ies")
    {
        return format!("{base}y");
    }
    if chars > 3
        && !word.ends_with("ss")
        && !word.ends_with("us")
        && !word.ends_with("is")
        && let Some(base) = word.strip_suffix('s')
    {
        return base.to_owned();
    }
    word.to_owned()
}

/// An inverted index: term → `(chunk position, term frequency)`.
#[derive(Debug, Default)]
struct Bm25 {
    postings: HashMap<String, Vec<(u32, u32)>>,
    lengths: Vec<u32>,
    average_length: f64,
}

impl Bm25 {
    fn build<'a>(texts: impl Iterator<Item = &'a str>) -> Self {
        let mut index = Self::default();
        for (position, text) in texts.enumerate() {
            let Ok(position) = u32::try_from(position) else {
                break;
            };
            let terms = tokenize(text);
            index
                .lengths
                .push(u32::try_from(terms.len()).unwrap_or(u32::MAX));
            let mut counts: HashMap<String, u32> = HashMap::new();
            for term in terms {
                *counts.entry(term).or_default() += 1;
            }
            for (term, count) in counts {
                index
                    .postings
                    .entry(term)
                    .or_default()
                    .push((position, count));
            }
        }
        let total: f64 = index.lengths.iter().map(|&l| f64::from(l)).sum();
        index.average_length = if index.lengths.is_empty() {
            0.0
        } else {
            total / index.lengths.len() as f64
        };
        index
    }

    fn approx_bytes(&self) -> usize {
        self.postings
            .iter()
            .map(|(term, list)| term.len() + 48 + list.len() * 8)
            .sum::<usize>()
            + self.lengths.len() * 4
    }

    /// The `k` best chunks for `terms` (chunks matching no term are not ranked).
    fn top(&self, terms: &[String], k: usize) -> Vec<(u32, f64)> {
        let n = self.lengths.len() as f64;
        let mut scores: HashMap<u32, f64> = HashMap::new();
        let mut seen: Vec<&str> = Vec::new();
        for term in terms {
            if seen.contains(&term.as_str()) {
                continue;
            }
            seen.push(term);
            let Some(list) = self.postings.get(term) else {
                continue;
            };
            let df = list.len() as f64;
            let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
            for &(position, tf) in list {
                let length = self
                    .lengths
                    .get(usize::try_from(position).unwrap_or(usize::MAX))
                    .map_or(0.0, |&l| f64::from(l));
                let tf = f64::from(tf);
                let norm = 1.0 - BM25_B + BM25_B * length / self.average_length.max(1e-9);
                *scores.entry(position).or_default() +=
                    idf * tf * (BM25_K1 + 1.0) / (tf + BM25_K1 * norm);
            }
        }
        top_k(scores.into_iter().collect(), k)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn chunk(id: &str, text: &str, vector: Option<Vec<f32>>) -> IndexedChunk {
        IndexedChunk {
            chunk: DocumentChunk {
                document_id: id.to_owned(),
                document_name: format!("{id}.txt"),
                chunk_index: 0,
                start: 0,
                end: text.chars().count() as u64,
                text: text.to_owned(),
            },
            vector,
        }
    }

    #[test]
    fn tokenize_drops_stopwords_and_stems_plurals() {
        assert_eq!(
            tokenize("The Returns of all Batteries, a glass and buses!"),
            vec!["return", "battery", "glass", "buse"]
        );
    }

    #[test]
    fn bm25_prefers_rare_terms_and_shorter_chunks() {
        let index = TenantIndex::build(vec![
            chunk("a", "refund refund policy for shoes", None),
            chunk("b", "policy policy policy policy", None),
            chunk(
                "c",
                "refund policy with a very long tail of other words here",
                None,
            ),
        ]);
        let hits = index.search("refund", &[], 3);
        let ids: Vec<&str> = hits.iter().map(|h| h.chunk.document_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "c"]);
        assert_eq!(hits[0].bm25_rank, Some(1));
        assert_eq!(hits[0].vector_rank, None);
    }

    #[test]
    fn fusion_rewards_agreement_between_legs() {
        let index = TenantIndex::build(vec![
            chunk("kw-only", "warranty warranty claim", None),
            chunk("both", "warranty claim form", Some(vec![0.8, 0.6])),
            chunk("vec-only", "unrelated words", Some(vec![1.0, 0.0])),
        ]);
        let hits = index.search("warranty", &[1.0, 0.0], 3);
        let ids: Vec<&str> = hits.iter().map(|h| h.chunk.document_id.as_str()).collect();
        // `both` is 2nd in each leg: 2/(60+2) beats a single first place, 1/(60+1).
        assert_eq!(ids[0], "both");
        assert_eq!(hits[0].bm25_rank, Some(2));
        assert_eq!(hits[0].vector_rank, Some(2));
        let expected = 2.0 / (RRF_K + 2.0);
        assert!((hits[0].score - expected).abs() < 1e-12);
        assert_eq!(hits.len(), 3);
        assert!((hits[0].vector_score.unwrap() - 0.8).abs() < 1e-6);
    }

    #[test]
    fn vectors_of_another_model_are_ignored_and_limits_hold() {
        let index = TenantIndex::build(vec![
            chunk("a", "alpha", Some(vec![1.0, 0.0])),
            chunk("b", "beta", Some(vec![1.0, 0.0, 0.0])),
            chunk("c", "gamma", None),
        ]);
        let top = index.vector_top(&[1.0, 0.0], 10);
        assert_eq!(top, vec![(0, 1.0)]);
        assert!(index.vector_top(&[1.0, 0.0, 0.0], 10).is_empty());
        assert_eq!(index.search("alpha beta gamma", &[1.0, 0.0], 2).len(), 2);
        assert!(index.search("alpha", &[1.0, 0.0], 0).is_empty());
    }

    #[test]
    fn top_k_is_deterministic_on_ties() {
        let scored = vec![(3, 1.0), (1, 1.0), (2, 2.0), (0, 1.0)];
        assert_eq!(top_k(scored, 3), vec![(2, 2.0), (0, 1.0), (1, 1.0)]);
    }
}
