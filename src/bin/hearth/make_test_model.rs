//! `hearth make-test-model`: deterministic random-weight GGUF models, from a preset (real 7B
//! shapes included) or explicit dimensions.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use hearth::model::Arch;
use hearth::model::testgen::{TestModelSpec, preset, write_test_model};
use hearth::quant::GgmlType;

#[derive(Clone, Copy, ValueEnum)]
enum ArchArg {
    Llama,
    Qwen2,
}

#[derive(Clone, Copy, ValueEnum)]
enum TypeArg {
    F32,
    F16,
    #[value(name = "q8_0")]
    Q8,
    #[value(name = "q4_0")]
    Q4,
    #[value(name = "q4_k")]
    Q4K,
}

impl TypeArg {
    fn ggml(self) -> GgmlType {
        match self {
            Self::F32 => GgmlType::F32,
            Self::F16 => GgmlType::F16,
            Self::Q8 => GgmlType::Q8_0,
            Self::Q4 => GgmlType::Q4_0,
            Self::Q4K => GgmlType::Q4_K,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    out: PathBuf,
    /// tiny, llama2-7b, mistral-7b, llama3-8b, qwen2.5-7b.
    #[arg(long)]
    preset: Option<String>,
    #[arg(long, value_enum)]
    arch: Option<ArchArg>,
    #[arg(long)]
    dim: Option<usize>,
    #[arg(long)]
    layers: Option<usize>,
    #[arg(long)]
    heads: Option<usize>,
    #[arg(long)]
    kv_heads: Option<usize>,
    #[arg(long)]
    ffn: Option<usize>,
    /// Copy the vocabulary (all tokenizer.* metadata) from this GGUF.
    #[arg(long)]
    vocab_from: Option<PathBuf>,
    #[arg(long = "type", value_enum)]
    weight_type: Option<TypeArg>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: Args) -> Result<()> {
    let base = args.preset.as_deref().unwrap_or("tiny");
    let mut spec: TestModelSpec = preset(base).with_context(|| {
        format!("unknown preset {base:?}: choose tiny, llama2-7b, mistral-7b, llama3-8b or qwen2.5-7b")
    })?;
    if args.preset.is_none() && args.dim.is_none() {
        bail!("give --preset NAME or explicit dimensions (--dim --layers --heads --kv-heads --ffn)");
    }
    if let Some(a) = args.arch {
        spec.arch = match a {
            ArchArg::Llama => Arch::Llama,
            ArchArg::Qwen2 => Arch::Qwen2,
        };
    }
    spec.n_embd = args.dim.unwrap_or(spec.n_embd);
    spec.n_layer = args.layers.unwrap_or(spec.n_layer);
    spec.n_head = args.heads.unwrap_or(spec.n_head);
    spec.n_head_kv = args.kv_heads.or(args.heads).unwrap_or(spec.n_head_kv);
    spec.n_ff = args.ffn.unwrap_or(spec.n_ff);
    if let Some(t) = args.weight_type {
        spec.weight_type = t.ggml();
    }
    spec.seed = args.seed;
    let vocab = args.vocab_from.as_deref().map(super::util::open_model).transpose()?;
    let start = Instant::now();
    write_test_model(&spec, vocab.as_ref(), &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({:.1} MiB) in {:.1} s",
        args.out.display(),
        bytes as f64 / (1024.0 * 1024.0),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
