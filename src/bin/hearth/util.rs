//! Small pieces shared by the subcommands.

use std::path::Path;

use anyhow::{Context, Result};
use clap::ValueEnum;
use hearth::gguf::GgufFile;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Device {
    /// The plain-Rust reference forward pass.
    Cpu,
    /// The wgpu engine.
    Gpu,
}

/// The KV cache's element type on the GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KvType {
    /// Half precision, two values packed per u32 word (no `SHADER_F16` needed).
    F16,
    /// Single precision, as llama.cpp's recorded fixture runs use.
    F32,
}

impl KvType {
    pub fn name(self) -> &'static str {
        match self {
            KvType::F16 => "f16",
            KvType::F32 => "f32",
        }
    }
}

pub fn open_model(path: &Path) -> Result<GgufFile> {
    GgufFile::open(path).with_context(|| format!("cannot load model {}", path.display()))
}

pub fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
