//! `hearth embed`: a text's sentence embedding (the document retrieval model), and
//! `hearth bench embed`: how fast a long document is indexed and questions are ranked.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use hearth::embed::{EmbedModel, Embedder, Prefer, find_model_dir};
use serde_json::json;

use super::util::print_json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EmbedDevice {
    /// burn on a GPU; the CPU reference when the only adapter is a CPU (lavapipe) or none opens.
    Auto,
    /// burn on any wgpu adapter, lavapipe included.
    Gpu,
    /// The plain-Rust reference forward pass.
    Cpu,
}

#[derive(clap::Args)]
pub struct Args {
    /// The text to embed.
    #[arg(long)]
    text: String,
    /// The model folder (sentence-transformers layout); default: $HEARTH_EMBED_MODEL or the
    /// model cache's all-MiniLM-L6-v2.
    #[arg(long)]
    model: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = EmbedDevice::Auto)]
    device: EmbedDevice,
    #[arg(long)]
    json: bool,
}

/// The embedder for `model` (or the one found) on `device`.
pub fn open_embedder(model: Option<PathBuf>, device: EmbedDevice) -> Result<Arc<Embedder>> {
    let dir = match model {
        Some(d) => d,
        None => find_model_dir()?,
    };
    let model = EmbedModel::load(&dir)
        .with_context(|| format!("cannot load the embedding model in {}", dir.display()))?;
    let prefer = match device {
        EmbedDevice::Auto => Prefer::Auto,
        EmbedDevice::Gpu => Prefer::Gpu,
        EmbedDevice::Cpu => Prefer::Cpu,
    };
    Ok(Arc::new(Embedder::new(Arc::new(model), prefer)))
}

pub fn run(args: Args) -> Result<()> {
    let embedder = open_embedder(args.model, args.device)?;
    let e = embedder.embed(&args.text)?;
    if args.json {
        return print_json(&json!({
            "embedding": e.vector,
            "tokens": e.tokens,
            "backend": embedder.backend().name(),
        }));
    }
    println!(
        "{} tokens, {} dimensions on the {} (model {})",
        e.tokens,
        e.vector.len(),
        embedder.backend().name(),
        &embedder.model().fingerprint()[..16]
    );
    let head: Vec<String> = e.vector.iter().take(8).map(|v| format!("{v:.5}")).collect();
    println!("[{}, …]", head.join(", "));
    Ok(())
}
