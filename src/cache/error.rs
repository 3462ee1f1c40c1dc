//! The cache stage's error type.

use std::path::PathBuf;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A model file is missing or is not the file the manifest names.
    #[error("embedding model file {}: {problem}; run scripts/fetch-models.sh (see models/README.md)", path.display())]
    ModelAsset { path: PathBuf, problem: String },
    /// The ONNX Runtime shared library could not be loaded.
    #[error("ONNX Runtime library {}: {detail}; run scripts/fetch-models.sh or set the cache's ort_library path", path.display())]
    Runtime { path: PathBuf, detail: String },
    #[error("embedding model failed to load: {0}")]
    ModelLoad(String),
    #[error("embedding failed: {0}")]
    Embed(String),
    /// The embedding queue is full: the lookup is treated as a miss rather than waiting.
    #[error("embedding queue is full")]
    Overloaded,
    /// A background thread of the cache is gone (it panicked or the cache was shut down).
    #[error("cache {0} thread stopped")]
    WorkerStopped(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cached response of entry {id} is unreadable: {detail}")]
    Response { id: u64, detail: String },
}

impl CacheError {
    /// Fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CacheError::ModelAsset { .. } => "model_asset",
            CacheError::Runtime { .. } => "runtime",
            CacheError::ModelLoad(_) => "model_load",
            CacheError::Embed(_) => "embed",
            CacheError::Overloaded => "overloaded",
            CacheError::WorkerStopped(_) => "worker_stopped",
            CacheError::Store(_) => "store",
            CacheError::Response { .. } => "response",
        }
    }
}
