//! The model files on disk, checked against `models/manifest.toml` (compiled in), and the one
//! ONNX Runtime environment of the process.
//!
//! The library is loaded with `ort::init_from(path)` before fastembed touches ort, so a missing or
//! wrong library is a [`CacheError`] instead of the panic ort's lazy loader raises, and the user
//! needs no `ORT_DYLIB_PATH`.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::CacheError;

const MANIFEST: &str = include_str!("../../models/manifest.toml");

/// Where the manifest puts the library, relative to the models directory.
pub const ORT_LIBRARY: &str = "onnxruntime/libonnxruntime.so.1.32.0";

#[derive(Debug, Deserialize)]
struct Manifest {
    model: ModelInfo,
    file: Vec<FileEntry>,
}

#[derive(Debug, Deserialize)]
struct ModelInfo {
    name: String,
    dimensions: usize,
    max_length: usize,
}

#[derive(Debug, Deserialize)]
struct FileEntry {
    path: String,
    size: u64,
    sha256: String,
}

fn manifest() -> Result<Manifest, CacheError> {
    toml::from_str(MANIFEST).map_err(|e| CacheError::ModelLoad(format!("bad manifest: {e}")))
}

/// The verified model files, read into memory.
pub struct ModelFiles {
    /// Model name plus the sha256 of its weights: what the stored vectors depend on.
    pub id: String,
    pub dimensions: usize,
    pub max_length: usize,
    pub onnx: Vec<u8>,
    pub tokenizer: Vec<u8>,
    pub config: Vec<u8>,
    pub special_tokens_map: Vec<u8>,
    pub tokenizer_config: Vec<u8>,
}

/// Reads `path` and checks its size and sha256 against the manifest entry for `rel`.
fn read_verified(models_dir: &Path, rel: &str, m: &Manifest) -> Result<Vec<u8>, CacheError> {
    let path = models_dir.join(rel);
    let problem = |problem: String| CacheError::ModelAsset {
        path: path.clone(),
        problem,
    };
    let entry = m
        .file
        .iter()
        .find(|f| f.path == rel)
        .ok_or_else(|| problem("not listed in models/manifest.toml".into()))?;
    let size = std::fs::metadata(&path)
        .map_err(|e| problem(format!("cannot read ({e})")))?
        .len();
    if size != entry.size {
        return Err(problem(format!("{size} bytes, expected {}", entry.size)));
    }
    let bytes = std::fs::read(&path).map_err(|e| problem(format!("cannot read ({e})")))?;
    let digest = hex::encode(Sha256::digest(&bytes));
    if digest != entry.sha256 {
        return Err(problem(format!(
            "sha256 {digest}, expected {}",
            entry.sha256
        )));
    }
    Ok(bytes)
}

/// Reads and verifies the model files of `models_dir`.
pub fn model_files(models_dir: &Path) -> Result<ModelFiles, CacheError> {
    let m = manifest()?;
    let dir = m.model.name.clone();
    let file = |name: &str| read_verified(models_dir, &format!("{dir}/{name}"), &m);
    let onnx = file("model.onnx")?;
    let sha = m
        .file
        .iter()
        .find(|f| f.path == format!("{dir}/model.onnx"))
        .map(|f| f.sha256.clone())
        .unwrap_or_default();
    Ok(ModelFiles {
        id: format!("{}@{}", m.model.name, &sha[..sha.len().min(16)]),
        dimensions: m.model.dimensions,
        max_length: m.model.max_length,
        tokenizer: file("tokenizer.json")?,
        config: file("config.json")?,
        special_tokens_map: file("special_tokens_map.json")?,
        tokenizer_config: file("tokenizer_config.json")?,
        onnx,
    })
}

/// The library to load: an explicit path as given, else the manifest's file under `models_dir`
/// (verified first, so a truncated or swapped file is reported as such).
pub fn ort_library(models_dir: &Path, explicit: Option<&Path>) -> Result<PathBuf, CacheError> {
    match explicit {
        Some(p) => {
            if !p.is_file() {
                return Err(CacheError::Runtime {
                    path: p.to_path_buf(),
                    detail: "no such file".into(),
                });
            }
            Ok(p.to_path_buf())
        }
        None => {
            read_verified(models_dir, ORT_LIBRARY, &manifest()?)?;
            Ok(models_dir.join(ORT_LIBRARY))
        }
    }
}

/// ONNX Runtime allows one library and one environment per process: the first successful load
/// wins, and later loads of the same path share it.
static ORT: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);

pub fn ort_environment(library: &Path) -> Result<ort::environment::Environment, CacheError> {
    let runtime_err = |detail: String| CacheError::Runtime {
        path: library.to_path_buf(),
        detail,
    };
    let canonical = library
        .canonicalize()
        .map_err(|e| runtime_err(e.to_string()))?;
    let mut slot = ORT.lock();
    if let Some((loaded, env)) = slot.as_ref() {
        if *loaded != canonical {
            return Err(runtime_err(format!(
                "ONNX Runtime is already loaded from {} in this process",
                loaded.display()
            )));
        }
        return Ok(env.clone());
    }
    let env = ort::init_from(&canonical)
        .map_err(|e| runtime_err(e.to_string()))?
        .with_name("sluice")
        .with_telemetry(false)
        .build()
        .map_err(|e| runtime_err(e.to_string()))?;
    *slot = Some((canonical, env.clone()));
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_lists_every_model_file() {
        let m = manifest().unwrap();
        assert_eq!(m.model.dimensions, 384);
        for name in ["model.onnx", "tokenizer.json", "config.json"] {
            let rel = format!("{}/{name}", m.model.name);
            assert!(m.file.iter().any(|f| f.path == rel), "{rel}");
        }
        assert!(m.file.iter().any(|f| f.path == ORT_LIBRARY));
    }

    #[test]
    fn missing_and_wrong_files_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = model_files(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("model.onnx") && err.contains("fetch-models"),
            "{err}"
        );
        let lib = dir.path().join(ORT_LIBRARY);
        std::fs::create_dir_all(lib.parent().unwrap()).unwrap();
        std::fs::write(&lib, b"not a library").unwrap();
        let err = ort_library(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("bytes, expected"), "{err}");
    }
}
