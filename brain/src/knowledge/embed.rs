//! Text embeddings behind one trait: the local all-MiniLM-L6-v2 (candle, CPU, off the executor)
//! or an OpenAI-compatible `/v1/embeddings` endpoint.
//!
//! Every embedder returns unit-length vectors, so cosine similarity is a dot product.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{OnceCell, Semaphore};

use crate::llm::ApiKey;

/// The files of the local model, as `scripts/setup-llm` installs them.
pub const MINILM_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];
/// The local model's name, stored with every vector it made.
pub const MINILM_NAME: &str = "all-MiniLM-L6-v2";
/// Tokens per text the local model reads (its training length); longer texts are truncated.
const MINILM_MAX_TOKENS: usize = 256;

/// Why texts could not be embedded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbedError {
    /// The embedder cannot work at all (model files missing, provider unreachable): retry
    /// after fixing the setup.
    #[error("{0}")]
    Unavailable(String),
    /// It ran and failed.
    #[error("{0}")]
    Failed(String),
}

/// Turns texts into unit-length vectors, one per text, in order.
pub trait Embedder: Send + Sync + fmt::Debug {
    /// Names the model (stored with the vectors; vectors of different models are never compared).
    fn model(&self) -> &str;

    /// Embeds `texts` (any number; implementations batch).
    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>>;
}

/// Scales `vector` to unit length (a zero vector stays zero).
pub fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Stands in for an embedder that cannot work (the local model's files are missing): every
/// call fails with [`EmbedError::Unavailable`] and the reason, so the knowledge endpoints answer
/// 503 while the rest of the brain serves.
#[derive(Debug, Clone)]
pub struct UnavailableEmbedder {
    model: String,
    reason: String,
}

impl UnavailableEmbedder {
    pub fn new(model: &str, reason: String) -> Self {
        Self {
            model: model.to_owned(),
            reason,
        }
    }
}

impl Embedder for UnavailableEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn embed(&self, _texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move { Err(EmbedError::Unavailable(self.reason.clone())) })
    }
}

/// all-MiniLM-L6-v2 on the CPU through candle: BERT, mean pooling over the attention mask,
/// L2 normalisation; 384 dimensions.
///
/// The model loads on first use (so a brain that never embeds never pays for it), in
/// `spawn_blocking`; inference runs there too, one batch at a time (candle already uses every
/// core for one batch).
pub struct MiniLmEmbedder {
    dir: PathBuf,
    batch_size: usize,
    model: OnceCell<Arc<LoadedMiniLm>>,
    /// One inference at a time.
    permit: Semaphore,
}

impl fmt::Debug for MiniLmEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MiniLmEmbedder")
            .field("dir", &self.dir)
            .field("batch_size", &self.batch_size)
            .field("loaded", &self.model.initialized())
            .finish()
    }
}

struct LoadedMiniLm {
    model: candle_transformers::models::bert::BertModel,
    tokenizer: tokenizers::Tokenizer,
}

impl MiniLmEmbedder {
    /// An embedder for the model files in `dir`, which must all exist.
    pub fn new(dir: &Path, batch_size: usize) -> Result<Self, EmbedError> {
        if let Some(missing) = Self::missing_file(dir) {
            return Err(EmbedError::Unavailable(format!(
                "the local embedding model {MINILM_NAME} is not installed: {} is missing \
                 (run scripts/setup-llm, or point --knowledge-model-dir at its files)",
                missing.display()
            )));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            batch_size: batch_size.max(1),
            model: OnceCell::new(),
            permit: Semaphore::new(1),
        })
    }

    /// The first model file missing from `dir`, if any.
    pub fn missing_file(dir: &Path) -> Option<PathBuf> {
        MINILM_FILES
            .iter()
            .map(|file| dir.join(file))
            .find(|path| !path.is_file())
    }

    async fn loaded(&self) -> Result<Arc<LoadedMiniLm>, EmbedError> {
        let dir = self.dir.clone();
        self.model
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || LoadedMiniLm::load(&dir).map(Arc::new))
                    .await
                    .map_err(|error| {
                        EmbedError::Failed(format!("model loading stopped: {error}"))
                    })?
            })
            .await
            .cloned()
    }
}

impl LoadedMiniLm {
    fn load(dir: &Path) -> Result<Self, EmbedError> {
        use candle_core::{DType, Device};
        use candle_transformers::models::bert::{BertModel, Config};
        let unavailable = |what: &str, error: String| {
            EmbedError::Unavailable(format!(
                "cannot load the local embedding model {MINILM_NAME} from {}: {what}: {error}",
                dir.display()
            ))
        };
        let config = std::fs::read(dir.join("config.json"))
            .map_err(|error| unavailable("config.json", error.to_string()))?;
        let config: Config = serde_json::from_slice(&config)
            .map_err(|error| unavailable("config.json", error.to_string()))?;
        let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|error| unavailable("tokenizer.json", error.to_string()))?;
        tokenizer.with_padding(Some(tokenizers::PaddingParams {
            strategy: tokenizers::PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: MINILM_MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|error| unavailable("tokenizer.json", error.to_string()))?;
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|error| unavailable("model.safetensors", error.to_string()))?;
        let vb =
            candle_nn::VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
                .map_err(|error| unavailable("model.safetensors", error.to_string()))?;
        let model = BertModel::load(vb, &config)
            .map_err(|error| unavailable("model.safetensors", error.to_string()))?;
        Ok(Self { model, tokenizer })
    }

    /// Embeds one batch: token ids → BERT → mean over real tokens → unit length.
    fn embed_batch(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        use candle_core::{DType, Device, Tensor};
        let failed = |error: String| EmbedError::Failed(format!("{MINILM_NAME}: {error}"));
        let encodings = self
            .tokenizer
            .encode_batch(texts, true)
            .map_err(|error| failed(error.to_string()))?;
        let device = Device::Cpu;
        let tensor = |values: &[u32]| Tensor::new(values, &device);
        let ids = encodings
            .iter()
            .map(|encoding| tensor(encoding.get_ids()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| failed(error.to_string()))?;
        let masks = encodings
            .iter()
            .map(|encoding| tensor(encoding.get_attention_mask()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| failed(error.to_string()))?;
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let input_ids = Tensor::stack(&ids, 0)?;
            let attention_mask = Tensor::stack(&masks, 0)?;
            let token_type_ids = input_ids.zeros_like()?;
            let hidden = self
                .model
                .forward(&input_ids, &token_type_ids, Some(&attention_mask))?;
            let mask = attention_mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            let mean = summed.broadcast_div(&counts)?;
            let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
            mean.broadcast_div(&norms)?.to_vec2::<f32>()
        };
        run().map_err(|error| failed(error.to_string()))
    }
}

impl Embedder for MiniLmEmbedder {
    fn model(&self) -> &str {
        MINILM_NAME
    }

    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            if texts.is_empty() {
                return Ok(Vec::new());
            }
            let model = self.loaded().await?;
            let _permit =
                self.permit.acquire().await.map_err(|_| {
                    EmbedError::Unavailable("the embedder is shutting down".to_owned())
                })?;
            let batch_size = self.batch_size;
            // Dropping this future (a caller's time limit) stops the blocking work at its next
            // batch instead of letting it run on, unawaited, after the permit was released.
            let cancel = CancelOnDrop::default();
            let cancelled = Arc::clone(&cancel.0);
            tokio::task::spawn_blocking(move || embed_sorted(&model, texts, batch_size, &cancelled))
                .await
                .map_err(|error| EmbedError::Failed(format!("embedding stopped: {error}")))?
        })
    }
}

/// Sets its flag when dropped: tells blocking work that nobody awaits its result any more.
#[derive(Default)]
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Batches texts of similar length together (less padding), then restores the input order.
fn embed_sorted(
    model: &LoadedMiniLm,
    texts: Vec<String>,
    batch_size: usize,
    cancelled: &AtomicBool,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    for batch in order.chunks(batch_size) {
        if cancelled.load(Ordering::Relaxed) {
            return Err(EmbedError::Failed(
                "cancelled: nobody awaits the result".to_owned(),
            ));
        }
        let batch_texts = batch.iter().map(|&i| texts[i].clone()).collect();
        let embedded = model.embed_batch(batch_texts)?;
        if embedded.len() != batch.len() {
            return Err(EmbedError::Failed(format!(
                "{MINILM_NAME}: {} vectors for {} texts",
                embedded.len(),
                batch.len()
            )));
        }
        for (&i, vector) in batch.iter().zip(embedded) {
            vectors[i] = vector;
        }
    }
    Ok(vectors)
}

/// An OpenAI-compatible embeddings endpoint (`POST {base_url}/embeddings`): OpenAI, vLLM,
/// Ollama, llama.cpp servers.
pub struct OpenAiEmbedder {
    client: reqwest::Client,
    endpoint: String,
    model: String,
    api_key: Option<ApiKey>,
    batch_size: usize,
    timeout: Duration,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl OpenAiEmbedder {
    /// `base_url` is the API root (`https://api.openai.com/v1`).
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<ApiKey>,
        batch_size: usize,
        timeout: Duration,
    ) -> Result<Self, EmbedError> {
        crate::llm::install_tls_crypto();
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .build()
            .map_err(|error| EmbedError::Unavailable(format!("HTTP client: {error}")))?;
        Ok(Self {
            client,
            endpoint: format!("{}/embeddings", base_url.trim_end_matches('/')),
            model: model.to_owned(),
            api_key,
            batch_size: batch_size.max(1),
            timeout,
        })
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = serde_json::json!({ "model": self.model, "input": texts });
        let mut request = self.client.post(&self.endpoint).json(&body);
        if let Some(key) = &self.api_key {
            let mut value =
                reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        EmbedError::Unavailable("the API key is not a valid header".to_owned())
                    })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| {
                EmbedError::Unavailable(format!(
                    "embeddings provider: no answer within {} ms",
                    self.timeout.as_millis()
                ))
            })?
            .map_err(|error| {
                EmbedError::Unavailable(format!("embeddings provider unreachable: {error}"))
            })?;
        let status = response.status();
        let text = tokio::time::timeout(self.timeout, response.text())
            .await
            .map_err(|_| EmbedError::Unavailable("embeddings provider: body timed out".to_owned()))?
            .map_err(|error| EmbedError::Unavailable(format!("embeddings provider: {error}")))?;
        if !status.is_success() {
            let detail: String = text.chars().take(200).collect();
            let detail = match &self.api_key {
                Some(key) if !key.expose().is_empty() => detail.replace(key.expose(), "[redacted]"),
                _ => detail,
            };
            let error = format!("embeddings provider answered {status}: {detail}");
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                EmbedError::Unavailable(error)
            } else {
                EmbedError::Failed(error)
            });
        }
        parse_embeddings(&text, texts.len())
    }
}

/// Reads an OpenAI embeddings response: `data[].embedding`, put in order by `data[].index`.
pub fn parse_embeddings(body: &str, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let failed = |what: &str| EmbedError::Failed(format!("embeddings provider: {what}"));
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|_| failed("the answer is not JSON"))?;
    let data = value
        .get("data")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| failed("the answer has no `data` array"))?;
    if data.len() != expected {
        return Err(failed(&format!(
            "{} embeddings for {expected} inputs",
            data.len()
        )));
    }
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; expected];
    for (position, item) in data.iter().enumerate() {
        let index = item
            .get("index")
            .and_then(serde_json::Value::as_u64)
            .map_or(Ok(position), |index| {
                usize::try_from(index).map_err(|_| failed("an index out of range"))
            })?;
        let embedding = item
            .get("embedding")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| failed("an item without an `embedding` array"))?;
        let mut vector = embedding
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| failed("an embedding with a non-number"))?;
        if vector.is_empty() {
            return Err(failed("an empty embedding"));
        }
        normalize(&mut vector);
        let slot = vectors
            .get_mut(index)
            .ok_or_else(|| failed("an index out of range"))?;
        if slot.replace(vector).is_some() {
            return Err(failed("a repeated index"));
        }
    }
    let vectors: Vec<Vec<f32>> = vectors
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| failed("a missing index"))?;
    if vectors
        .windows(2)
        .any(|pair| pair[0].len() != pair[1].len())
    {
        return Err(failed("embeddings of different lengths"));
    }
    Ok(vectors)
}

impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn embed(&self, texts: Vec<String>) -> BoxFuture<'_, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let mut vectors = Vec::with_capacity(texts.len());
            for batch in texts.chunks(self.batch_size) {
                vectors.extend(self.embed_batch(batch).await?);
            }
            Ok(vectors)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn openai_answers_are_ordered_by_index_and_normalised() {
        let body = r#"{"object":"list","data":[
            {"object":"embedding","index":1,"embedding":[0.0,2.0]},
            {"object":"embedding","index":0,"embedding":[3.0,4.0]}],"model":"m"}"#;
        let vectors = parse_embeddings(body, 2).unwrap();
        assert_eq!(vectors, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
    }

    #[test]
    fn malformed_openai_answers_are_errors() {
        for (body, expected) in [
            ("nope", 1),
            (r#"{"data":[]}"#, 1),
            (r#"{"data":[{"index":0,"embedding":["x"]}]}"#, 1),
            (r#"{"data":[{"index":5,"embedding":[1.0]}]}"#, 1),
            (
                r#"{"data":[{"index":0,"embedding":[1.0]},{"index":0,"embedding":[1.0]}]}"#,
                2,
            ),
            (
                r#"{"data":[{"index":0,"embedding":[1.0]},{"index":1,"embedding":[1.0,2.0]}]}"#,
                2,
            ),
        ] {
            assert!(
                matches!(parse_embeddings(body, expected), Err(EmbedError::Failed(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn missing_model_files_are_named() {
        let dir = std::env::temp_dir().join(format!("no-model-{}", uuid::Uuid::new_v4()));
        let error = MiniLmEmbedder::new(&dir, 8).unwrap_err();
        assert!(matches!(&error, EmbedError::Unavailable(m) if m.contains("model.safetensors")));
    }
}
