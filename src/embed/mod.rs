//! Sentence embeddings (all-MiniLM-L6-v2 and other BERT encoders in the sentence-transformers
//! layout): the model's files read with bounds (`config`, `weights`), its tokenizer, a plain-Rust
//! forward pass (`reference`, always built) and, behind the default `embed-burn` feature, the
//! same forward pass on the GPU through burn (`burn_forward`). A leaf: uses no other module of
//! the crate.
//!
//! A text becomes `[CLS] tokens [SEP]` (truncated to [`MAX_TOKENS`], no padding: one text per
//! pass), the encoder's last states are mean-pooled and L2-normalized, so the cosine of two
//! embeddings is their dot product.

mod config;
mod error;
mod files;
pub mod reference;
mod weights;

#[cfg(feature = "embed-burn")]
pub mod burn_forward;

use std::path::{Path, PathBuf};
#[cfg(feature = "embed-burn")]
use std::sync::Mutex;
use std::sync::{Arc, OnceLock};

pub use config::{BertConfig, MAX_TOKENS, Pooling};
pub use error::EmbedError;
pub use weights::{BertWeights, MAX_WEIGHT_BYTES};

use files::read_bounded;

/// Most bytes `tokenizer.json` may have.
const MAX_TOKENIZER_BYTES: u64 = 64 << 20;
/// The folder name the fetch scripts unpack the default model into.
pub const DEFAULT_MODEL_DIR: &str = "all-MiniLM-L6-v2";

/// A loaded embedding model: config, pooling, weights, tokenizer and a fingerprint naming all
/// of them (stored vectors are keyed by it, so a changed file means recomputed vectors).
pub struct EmbedModel {
    pub config: BertConfig,
    pub pooling: Pooling,
    weights: BertWeights,
    tokenizer: tokenizers::Tokenizer,
    fingerprint: String,
    dir: PathBuf,
}

impl std::fmt::Debug for EmbedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedModel")
            .field("dir", &self.dir)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// One text's embedding and how many tokens (with `[CLS]`/`[SEP]`, after truncation) it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub vector: Vec<f32>,
    pub tokens: usize,
}

impl EmbedModel {
    /// Loads a sentence-transformers folder: `config.json`, `model.safetensors`,
    /// `tokenizer.json`, and optionally `1_Pooling/config.json` and `modules.json`.
    pub fn load(dir: &Path) -> Result<EmbedModel, EmbedError> {
        let config = config::read_config(dir)?;
        let pooling = config::read_pooling(dir)?;
        let weights_path = dir.join("model.safetensors");
        let bytes = read_bounded(&weights_path, MAX_WEIGHT_BYTES)?;
        let weights = weights::parse_weights(&weights_path, &bytes, &config)?;
        let tok_path = dir.join("tokenizer.json");
        let tok_bytes = read_bounded(&tok_path, MAX_TOKENIZER_BYTES)?;
        let tokenizer = load_tokenizer(&tok_path, &tok_bytes)?;
        let config_bytes = read_bounded(&dir.join("config.json"), 1 << 20)?;
        let mut h = blake3::Hasher::new();
        h.update(b"hearth-embed-v1\0");
        for part in [
            &bytes[..],
            &tok_bytes,
            &config_bytes,
            pooling.describe().as_bytes(),
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        Ok(EmbedModel {
            config,
            pooling,
            weights,
            tokenizer,
            fingerprint: h.finalize().to_hex().to_string(),
            dir: dir.to_path_buf(),
        })
    }

    /// Lowercase hex blake3 of the weights, tokenizer, config and pooling.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `[CLS] … [SEP]` ids of `text`, truncated to [`MAX_TOKENS`] (and the model's positions).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, EmbedError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EmbedError::Tokenize(e.to_string()))?;
        let max = MAX_TOKENS.min(self.config.max_position_embeddings);
        let ids = enc.get_ids();
        if ids.len() > max {
            return Err(EmbedError::Tokenize(format!(
                "{} tokens after truncation to {max}",
                ids.len()
            )));
        }
        if let Some(bad) = ids
            .iter()
            .find(|&&id| id as usize >= self.config.vocab_size)
        {
            return Err(EmbedError::Tokenize(format!(
                "token id {bad} is outside the model's {} embeddings",
                self.config.vocab_size
            )));
        }
        Ok(ids.to_vec())
    }

    /// The embedding of `text` by the plain-Rust forward pass.
    pub fn embed_reference(&self, text: &str) -> Result<Embedding, EmbedError> {
        let ids = self.tokenize(text)?;
        let states = reference::encode(&self.weights, &self.config, &ids);
        Ok(self.finish(reference::mean_pool(&states, self.dim()), ids.len()))
    }

    fn finish(&self, mut vector: Vec<f32>, tokens: usize) -> Embedding {
        if self.pooling.normalize {
            normalize(&mut vector);
        }
        Embedding { vector, tokens }
    }
}

fn load_tokenizer(path: &Path, bytes: &[u8]) -> Result<tokenizers::Tokenizer, EmbedError> {
    let bad = |reason: String| EmbedError::BadTokenizer {
        path: path.into(),
        reason,
    };
    let mut t = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| bad(e.to_string()))?;
    t.with_padding(None);
    t.with_truncation(Some(tokenizers::TruncationParams {
        max_length: MAX_TOKENS,
        ..Default::default()
    }))
    .map_err(|e| bad(e.to_string()))?;
    Ok(t)
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity; 0 when either vector is zero or the lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut ab, mut aa, mut bb) = (0f32, 0f32, 0f32);
    for (x, y) in a.iter().zip(b) {
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

/// Which forward pass an [`Embedder`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The plain-Rust reference on the CPU.
    Cpu,
    /// burn on a wgpu device.
    Gpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Gpu => "gpu",
        }
    }
}

/// Which forward pass to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefer {
    /// burn on a GPU adapter; the CPU reference when the only adapter is itself a CPU
    /// (lavapipe: there the reference is ~3× faster than burn, one text per pass), when the
    /// feature is off, or when no adapter opens.
    Auto,
    /// burn on any wgpu adapter, lavapipe included (the CPU reference when none opens).
    Gpu,
    /// The CPU reference.
    Cpu,
}

/// A model with the forward pass it runs on: the GPU (burn) when built with `embed-burn` and a
/// wgpu adapter opens, else the CPU reference.
pub struct Embedder {
    model: Arc<EmbedModel>,
    #[cfg(feature = "embed-burn")]
    gpu: Option<Mutex<burn_forward::BurnEncoder>>,
    /// Why the GPU is not used (no feature, no adapter, or CPU asked for).
    pub gpu_problem: Option<String>,
}

impl Embedder {
    /// The embedder `prefer` asks for; when it falls back to the CPU, `gpu_problem` says why.
    pub fn new(model: Arc<EmbedModel>, prefer: Prefer) -> Embedder {
        if prefer == Prefer::Cpu {
            return Embedder::cpu(model, "the CPU was asked for".into());
        }
        #[cfg(feature = "embed-burn")]
        {
            match burn_forward::BurnEncoder::new(&model.weights) {
                Ok(enc) if enc.cpu_adapter && prefer == Prefer::Auto => Embedder::cpu(
                    model,
                    "the GPU adapter is a CPU (lavapipe); the reference pass is faster there"
                        .into(),
                ),
                Ok(enc) => Embedder {
                    model,
                    gpu: Some(Mutex::new(enc)),
                    gpu_problem: None,
                },
                Err(e) => Embedder::cpu(model, e.to_string()),
            }
        }
        #[cfg(not(feature = "embed-burn"))]
        Embedder::cpu(model, "built without the embed-burn feature".into())
    }

    fn cpu(model: Arc<EmbedModel>, why: String) -> Embedder {
        Embedder {
            model,
            #[cfg(feature = "embed-burn")]
            gpu: None,
            gpu_problem: Some(why),
        }
    }

    pub fn model(&self) -> &Arc<EmbedModel> {
        &self.model
    }

    pub fn backend(&self) -> Backend {
        #[cfg(feature = "embed-burn")]
        if self.gpu.is_some() {
            return Backend::Gpu;
        }
        Backend::Cpu
    }

    /// The embedding of `text` on this embedder's backend.
    pub fn embed(&self, text: &str) -> Result<Embedding, EmbedError> {
        let mut one = self.embed_batch(&[text])?;
        Ok(one.remove(0))
    }

    /// The embeddings of `texts`, in order: on the GPU in one pass (padded to the longest),
    /// on the CPU one at a time.
    pub fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Embedding>, EmbedError> {
        #[cfg(feature = "embed-burn")]
        if let Some(gpu) = &self.gpu {
            let m = &self.model;
            let ids = texts
                .iter()
                .map(|t| m.tokenize(t))
                .collect::<Result<Vec<_>, _>>()?;
            let enc = gpu.lock().unwrap_or_else(|p| p.into_inner());
            let pooled = enc.pooled_batch(&m.weights, &m.config, &ids)?;
            let bad = pooled.len() != texts.len()
                || pooled
                    .iter()
                    .any(|p| p.len() != m.dim() || p.iter().any(|v| !v.is_finite()));
            if bad {
                return Err(EmbedError::Backend(format!(
                    "the GPU gave {} embeddings (or wrong-sized or non-finite ones) for {} texts",
                    pooled.len(),
                    texts.len()
                )));
            }
            return Ok(pooled
                .into_iter()
                .zip(&ids)
                .map(|(p, ids)| m.finish(p, ids.len()))
                .collect());
        }
        texts
            .iter()
            .map(|t| self.model.embed_reference(t))
            .collect()
    }
}

static DEFAULT_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Names the folder [`find_model_dir`] offers after `$HEARTH_EMBED_MODEL` (the desktop app's
/// bundled copy). Only the first call counts.
pub fn set_bundled_model_dir(dir: PathBuf) {
    let _ = DEFAULT_DIR.set(dir);
}

/// The model cache the fetch scripts fill:
/// `${HEARTH_MODEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hearth/models}`.
pub fn model_cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("HEARTH_MODEL_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|c| c.join("hearth/models")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/hearth/models")))
}

/// Where the embedding model is: `$HEARTH_EMBED_MODEL`, the bundled folder, or
/// [`DEFAULT_MODEL_DIR`] in the model cache — the first holding `model.safetensors`.
pub fn find_model_dir() -> Result<PathBuf, EmbedError> {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("HEARTH_EMBED_MODEL").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(p));
    }
    if let Some(p) = DEFAULT_DIR.get() {
        candidates.push(p.clone());
    }
    if let Some(c) = model_cache_dir() {
        candidates.push(c.join(DEFAULT_MODEL_DIR));
    }
    candidates
        .iter()
        .find(|d| d.join("model.safetensors").is_file())
        .cloned()
        .ok_or_else(|| EmbedError::NoModel {
            looked: candidates
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_odd_inputs_is_defined() {
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 1.0]), 0.0);
        let mut v = vec![3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
    }
}
