//! `hearth score`: one forward pass over given tokens; top logits at every Nth position and
//! the last one (the shape of llama.cpp's recorded fixtures).

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::json;

use super::backend::{Backend, BackendOptions, gpu_for};
use super::util::{Device, KvType, open_model, print_json};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated token ids, e.g. 1,2,3.
    #[arg(long, value_delimiter = ',', required = true)]
    tokens: Vec<u32>,
    #[arg(long, default_value_t = 20)]
    top_k: usize,
    /// Report positions 0, N, 2N, ... and always the last.
    #[arg(long, default_value_t = 8)]
    every: usize,
    #[arg(long, value_enum, default_value_t = Device::Gpu)]
    device: Device,
    /// The GPU's KV cache type (f32 by default, as llama.cpp's recorded runs use).
    #[arg(long, value_enum, default_value_t = KvType::F32)]
    kv_type: KvType,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    if args.every == 0 {
        bail!("--every must be at least 1");
    }
    let file = open_model(&args.model)?;
    let gpu = gpu_for(args.device)?;
    let n = args.tokens.len();
    let options = BackendOptions {
        max_tokens: n,
        max_batch: n.min(512),
        kv: args.kv_type,
        all_logits: true,
    };
    let mut backend = Backend::load(args.device, &file, gpu.as_ref(), options)?;
    let n_vocab = backend.n_vocab();
    let logits = backend.forward_all(&args.tokens)?;
    let last = args.tokens.len() - 1;
    let positions: Vec<_> = (0..args.tokens.len())
        .filter(|p| p % args.every == 0 || *p == last)
        .map(|pos| {
            let row = &logits[pos * n_vocab..(pos + 1) * n_vocab];
            json!({ "pos": pos, "top": top_k(row, args.top_k) })
        })
        .collect();
    let out = json!({ "positions": positions });
    if args.json {
        return print_json(&out);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// The k largest logits as `[id, logit]`, descending, ties to the lower id.
pub fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut ids: Vec<u32> = (0..row.len() as u32).collect();
    let cmp = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    let k = k.min(ids.len());
    if k < ids.len() && k > 0 {
        ids.select_nth_unstable_by(k - 1, cmp);
    }
    ids.truncate(k);
    ids.sort_by(cmp);
    ids.into_iter().map(|i| (i, row[i as usize])).collect()
}
