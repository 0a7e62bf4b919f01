//! `hearth inspect`: metadata summary, tensor table, model config and memory estimate.

use std::path::PathBuf;

use anyhow::Result;
use hearth::gguf::{GgufFile, MetadataValue};
use hearth::model::{ModelConfig, estimate_memory};
use hearth::quant::GgmlType;
use serde_json::{Value, json};

use super::util::{open_model, print_json};

/// Arrays longer than this are summarised (vocabularies hold 100k+ strings).
const ARRAY_PREVIEW: usize = 8;

#[derive(clap::Args)]
#[command(arg_required_else_help = true)]
pub struct Args {
    /// The GGUF model (optional with --gpu).
    #[arg(required_unless_present = "gpu")]
    model: Option<PathBuf>,
    /// Show the GPU adapter Hearth would use: features and limits.
    #[arg(long)]
    gpu: bool,
    /// Context length for the memory estimate (default: the model's training context).
    #[arg(long)]
    ctx: Option<usize>,
    /// KV cache type for the memory estimate: f16, f32 or q8_0.
    #[arg(long, default_value = "f16")]
    kv_type: String,
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let gpu = args.gpu.then(gpu_report);
    let Some(model) = &args.model else {
        let gpu = gpu.unwrap_or(Value::Null);
        if args.json {
            return print_json(&gpu);
        }
        println!("{}", gpu["text"].as_str().unwrap_or(""));
        return Ok(());
    };
    let file = open_model(model)?;
    let kv_type = GgmlType::from_name(&args.kv_type)
        .filter(|t| matches!(t, GgmlType::F16 | GgmlType::F32 | GgmlType::Q8_0))
        .ok_or_else(|| anyhow::anyhow!("--kv-type must be f16, f32 or q8_0"))?;
    let mut report = build_report(&file, args.ctx, kv_type);
    if let Some(gpu) = gpu {
        report["gpu"] = gpu;
    }
    if args.json {
        return print_json(&report);
    }
    print_human(&file, &report);
    Ok(())
}

fn build_report(file: &GgufFile, ctx: Option<usize>, kv_type: GgmlType) -> Value {
    let metadata: serde_json::Map<String, Value> = file
        .metadata()
        .iter()
        .map(|(k, v)| (k.clone(), value_json(v)))
        .collect();
    let tensors: Vec<Value> = file
        .tensors()
        .iter()
        .map(|t| {
            json!({"name": t.name, "type": t.ggml_type.name(), "dims": t.dims,
                   "n_elements": t.n_elements, "bytes": t.n_bytes, "offset": t.offset})
        })
        .collect();
    let mut report = json!({
        "gguf_version": file.version(),
        "file_bytes": file.file_size(),
        "alignment": file.alignment(),
        "data_offset": file.data_offset(),
        "architecture": file.opt_str("general.architecture").ok().flatten(),
        "name": file.opt_str("general.name").ok().flatten(),
        "n_tensors": tensors.len(),
        "metadata": metadata,
        "tensors": tensors,
    });
    match ModelConfig::from_gguf(file) {
        Ok(cfg) => {
            let n_ctx = ctx.unwrap_or(cfg.n_ctx_train);
            let mem = estimate_memory(file, &cfg, n_ctx, kv_type);
            report["config"] = json!({
                "arch": format!("{:?}", cfg.arch).to_lowercase(),
                "n_vocab": cfg.n_vocab, "n_embd": cfg.n_embd, "n_layer": cfg.n_layer,
                "n_head": cfg.n_head, "n_head_kv": cfg.n_head_kv, "head_dim": cfg.head_dim,
                "n_ff": cfg.n_ff, "n_ctx_train": cfg.n_ctx_train, "rms_eps": cfg.rms_eps,
                "tied_output": cfg.tied_output, "qkv_bias": cfg.qkv_bias,
            });
            report["memory"] = json!({
                "n_ctx": n_ctx, "kv_type": kv_type.name(),
                "weights_bytes": mem.weights_bytes, "kv_bytes": mem.kv_bytes,
                "scratch_bytes": mem.scratch_bytes, "total_bytes": mem.total_bytes,
            });
        }
        Err(e) => report["config_error"] = json!(e.to_string()),
    }
    report
}

/// The adapter's summary, or why there is none (not an error: inspecting a model needs no GPU).
fn gpu_report() -> Value {
    match hearth::gpu::GpuContext::new() {
        Ok(ctx) => {
            let i = ctx.info();
            json!({
                "name": i.name, "backend": i.backend, "device_type": i.device_type,
                "driver": i.driver, "driver_info": i.driver_info,
                "shader_f16": i.features.contains(wgpu::Features::SHADER_F16),
                "subgroup": i.features.contains(wgpu::Features::SUBGROUP),
                "timestamp_query": i.features.contains(wgpu::Features::TIMESTAMP_QUERY),
                "subgroup_size": [i.subgroup_min_size, i.subgroup_max_size],
                "max_storage_buffer_binding_size": i.max_storage_buffer_binding_size,
                "max_buffer_size": i.max_buffer_size,
                "max_storage_buffers_per_shader_stage": i.max_storage_buffers_per_shader_stage,
                "max_compute_workgroup_storage_size": i.max_compute_workgroup_storage_size,
                "max_compute_invocations_per_workgroup": i.max_compute_invocations_per_workgroup,
                "text": i.to_string(),
            })
        }
        Err(e) => json!({ "error": e.to_string(), "text": format!("no usable GPU adapter: {e}") }),
    }
}

fn value_json(v: &MetadataValue) -> Value {
    match v {
        MetadataValue::Array(items) if items.len() > ARRAY_PREVIEW => json!({
            "array_len": items.len(),
            "head": items.iter().take(ARRAY_PREVIEW).map(value_json).collect::<Vec<_>>(),
        }),
        MetadataValue::Array(items) => Value::Array(items.iter().map(value_json).collect()),
        MetadataValue::String(s) => json!(s),
        MetadataValue::Bool(b) => json!(b),
        other => other
            .as_u64()
            .map(|u| json!(u))
            .or_else(|| other.as_i64().map(|i| json!(i)))
            .or_else(|| other.as_f64().map(|f| json!(f)))
            .unwrap_or(Value::Null),
    }
}

fn print_human(file: &GgufFile, report: &Value) {
    if let Some(text) = report["gpu"]["text"].as_str() {
        println!("{text}\n");
    }
    println!(
        "GGUF v{}  {} bytes  alignment {}",
        file.version(),
        file.file_size(),
        file.alignment()
    );
    for key in ["architecture", "name"] {
        if let Some(s) = report[key].as_str() {
            println!("{key:>14}: {s}");
        }
    }
    println!("\nmetadata ({} keys)", file.metadata().len());
    for (k, v) in file.metadata() {
        let shown = value_json(v).to_string();
        let shown = if shown.len() > 100 {
            // The last char boundary at or before byte 100 (floor_char_boundary needs 1.91).
            let end = (0..=100)
                .rev()
                .find(|&i| shown.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}…", &shown[..end])
        } else {
            shown
        };
        println!("  {k} = {shown}");
    }
    println!("\ntensors ({})", file.tensors().len());
    for t in file.tensors() {
        println!(
            "  {:<32} {:<6} {:<24} {:>12} bytes",
            t.name,
            t.ggml_type.name(),
            format!("{:?}", t.dims),
            t.n_bytes
        );
    }
    match (&report["config"], &report["memory"]) {
        (Value::Object(_), Value::Object(m)) => {
            println!("\nconfig: {}", report["config"]);
            let mib = |k: &str| m[k].as_u64().unwrap_or(0) as f64 / (1024.0 * 1024.0);
            println!(
                "memory at n_ctx {} (KV {}): weights {:.1} MiB + KV {:.1} MiB + scratch {:.1} MiB = {:.1} MiB",
                m["n_ctx"],
                m["kv_type"].as_str().unwrap_or(""),
                mib("weights_bytes"),
                mib("kv_bytes"),
                mib("scratch_bytes"),
                mib("total_bytes")
            );
        }
        _ => println!(
            "\nnot a runnable model: {}",
            report["config_error"].as_str().unwrap_or("unknown")
        ),
    }
}
