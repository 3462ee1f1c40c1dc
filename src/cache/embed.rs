//! Sentence embeddings (all-MiniLM-L6-v2 through fastembed), computed off the async runtime.
//!
//! One `std::thread` owns the `TextEmbedding` (its `embed` takes `&mut self`). Callers send jobs
//! over a bounded channel and await a tokio oneshot; the worker takes whatever is queued, up to
//! [`EmbedderConfig::batch_max`] texts, and runs them as one batch, so under load throughput
//! approaches batch throughput while a lone request still goes straight through. A full queue is
//! [`CacheError::Overloaded`] at once (the lookup becomes a miss) rather than an unbounded wait.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use tokio::sync::oneshot;

use super::assets;
use super::CacheError;

/// fastembed pads a batch to its longest text, so the worker sorts by length and runs chunks of
/// this many similar-length texts.
const CHUNK: usize = 32;

#[derive(Debug, Clone)]
pub struct EmbedderConfig {
    pub models_dir: PathBuf,
    /// ONNX Runtime library; None = `<models_dir>/onnxruntime/libonnxruntime.so.1.32.0`.
    pub ort_library: Option<PathBuf>,
    /// Most texts in one model call.
    pub batch_max: usize,
    /// Jobs waiting before callers are refused.
    pub queue: usize,
    /// ONNX Runtime intra-op threads; None = all cores.
    pub threads: Option<usize>,
}

impl EmbedderConfig {
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        EmbedderConfig {
            models_dir: models_dir.into(),
            ort_library: None,
            batch_max: 64,
            queue: 1024,
            threads: None,
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, CacheError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// Handle on the embedding worker; clones share it. The worker stops when the last handle drops.
#[derive(Clone)]
pub struct Embedder {
    tx: mpsc::SyncSender<Job>,
    info: Arc<EmbedderInfo>,
}

#[derive(Debug)]
struct EmbedderInfo {
    model_id: String,
    dimensions: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model", &self.info.model_id)
            .finish()
    }
}

impl Embedder {
    /// Verifies the model files, loads ONNX Runtime and the model, and starts the worker.
    /// Blocks for the load (~0.3 s): call it at startup, not on a request path.
    pub fn load(config: &EmbedderConfig) -> Result<Embedder, CacheError> {
        let files = assets::model_files(&config.models_dir)?;
        let library = assets::ort_library(&config.models_dir, config.ort_library.as_deref())?;
        let env = assets::ort_environment(&library)?;
        let info = Arc::new(EmbedderInfo {
            model_id: files.id.clone(),
            dimensions: files.dimensions,
        });
        let mut options = InitOptionsUserDefined::new()
            .with_environment(env)
            .with_max_length(files.max_length);
        if let Some(n) = config.threads {
            options = options.with_intra_threads(n);
        }
        let model = UserDefinedEmbeddingModel::new(
            files.onnx,
            TokenizerFiles {
                tokenizer_file: files.tokenizer,
                config_file: files.config,
                special_tokens_map_file: files.special_tokens_map,
                tokenizer_config_file: files.tokenizer_config,
            },
        )
        .with_pooling(Pooling::Mean);

        let (tx, rx) = mpsc::sync_channel::<Job>(config.queue.max(1));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), CacheError>>();
        let batch_max = config.batch_max.max(1);
        let dims = files.dimensions;
        std::thread::Builder::new()
            .name("sluice-embed".into())
            .spawn(move || {
                let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    TextEmbedding::try_new_from_user_defined(model, options)
                }));
                let mut engine = match built {
                    Ok(Ok(engine)) => engine,
                    Ok(Err(e)) => {
                        let _ = ready_tx.send(Err(CacheError::ModelLoad(e.to_string())));
                        return;
                    }
                    Err(_) => {
                        let _ = ready_tx.send(Err(CacheError::ModelLoad("panicked".into())));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                drop(ready_tx);
                run_worker(&mut engine, &rx, batch_max, dims);
            })
            .map_err(|e| CacheError::ModelLoad(format!("cannot start worker: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| CacheError::WorkerStopped("embedding"))??;
        Ok(Embedder { tx, info })
    }

    /// Model name and weights hash: vectors from different ids are not comparable.
    pub fn model_id(&self) -> &str {
        &self.info.model_id
    }

    pub fn dimensions(&self) -> usize {
        self.info.dimensions
    }

    /// The L2-normalised embedding of `text`.
    pub async fn embed(&self, text: &str) -> Result<Vec<f32>, CacheError> {
        let mut v = self.embed_batch(vec![text.to_owned()]).await?;
        v.pop()
            .ok_or(CacheError::Embed("no vector returned".into()))
    }

    /// Embeddings of `texts`, in order.
    pub async fn embed_batch(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, CacheError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.submit(Job { texts, reply })?;
        rx.await
            .map_err(|_| CacheError::WorkerStopped("embedding"))?
    }

    /// [`Self::embed_batch`] for plain threads (the cache writer). Must not run on the runtime.
    pub(crate) fn embed_batch_blocking(
        &self,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, CacheError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        // The writer may wait for room: its inserts are not on a request path.
        self.tx
            .send(Job { texts, reply })
            .map_err(|_| CacheError::WorkerStopped("embedding"))?;
        rx.blocking_recv()
            .map_err(|_| CacheError::WorkerStopped("embedding"))?
    }

    fn submit(&self, job: Job) -> Result<(), CacheError> {
        self.tx.try_send(job).map_err(|e| match e {
            mpsc::TrySendError::Full(_) => CacheError::Overloaded,
            mpsc::TrySendError::Disconnected(_) => CacheError::WorkerStopped("embedding"),
        })
    }
}

fn run_worker(engine: &mut TextEmbedding, rx: &mpsc::Receiver<Job>, batch_max: usize, dims: usize) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut count = jobs[0].texts.len();
        while count < batch_max {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        match embed_sorted(engine, &texts, dims) {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                for job in jobs {
                    let mine: Vec<Vec<f32>> = vectors.by_ref().take(job.texts.len()).collect();
                    let _ = job.reply.send(Ok(mine));
                }
            }
            Err(detail) => {
                for job in jobs {
                    let _ = job.reply.send(Err(CacheError::Embed(detail.clone())));
                }
            }
        }
    }
}

/// Embeds `texts` in length-sorted chunks and returns the vectors in input order.
fn embed_sorted(
    engine: &mut TextEmbedding,
    texts: &[&str],
    dims: usize,
) -> Result<Vec<Vec<f32>>, String> {
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| texts[i].len());
    let sorted: Vec<&str> = order.iter().map(|&i| texts[i]).collect();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        engine.embed(&sorted, Some(CHUNK))
    }))
    .map_err(|_| "the model panicked".to_owned())?
    .map_err(|e| e.to_string())?;
    if out.len() != texts.len() || out.iter().any(|v| v.len() != dims) {
        return Err(format!(
            "model returned {} vectors for {} texts",
            out.len(),
            texts.len()
        ));
    }
    let mut result = vec![Vec::new(); texts.len()];
    for (slot, mut v) in order.into_iter().zip(out) {
        // The model's output is normalised already; renormalising keeps `cosine` a plain dot
        // product even if a future model is not.
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|x| *x /= norm);
        }
        result[slot] = v;
    }
    Ok(result)
}

/// Cosine similarity of two L2-normalised vectors (their dot product).
///
/// This is the distance the HNSW walk evaluates thousands of times per search. On x86-64 CPUs
/// with AVX2 and FMA (detected once, then a cached flag) it runs an AVX2/FMA loop, about
/// twice as fast as what the compiler makes of the portable loop (the fallback elsewhere).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU supports the features `dot_avx2_fma` is compiled for.
            return unsafe { dot_avx2_fma(a, b) };
        }
    }
    dot_lanes(a, b)
}

/// [`dot_lanes`] in AVX2 with fused multiply-adds: four 8-lane accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps,
        _mm256_storeu_ps,
    };
    const LANES: usize = 32;
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = dot_tail(ca.remainder(), cb.remainder());
    let mut acc: [__m256; 4] = [_mm256_setzero_ps(); 4];
    for (x, y) in ca.zip(cb) {
        for (j, s) in acc.iter_mut().enumerate() {
            // SAFETY: `x` and `y` hold LANES = 32 floats, so 8 from 8 * j (j < 4) are in bounds.
            let (vx, vy) = unsafe {
                (
                    _mm256_loadu_ps(x.as_ptr().add(8 * j)),
                    _mm256_loadu_ps(y.as_ptr().add(8 * j)),
                )
            };
            *s = _mm256_fmadd_ps(vx, vy, *s);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut out = [0f32; 8];
    // SAFETY: `out` holds 8 floats.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum::<f32>() + tail
}

fn dot_tail(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Dot product with 32 independent accumulators, so the compiler can vectorise it (a single
/// running sum is a serial chain that float rules forbid it to reorder).
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 32;
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = dot_tail(ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}
