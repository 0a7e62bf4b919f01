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

pub fn open_model(path: &Path) -> Result<GgufFile> {
    GgufFile::open(path).with_context(|| format!("cannot load model {}", path.display()))
}

pub fn print_json(value: &serde_json::Value) -> Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
