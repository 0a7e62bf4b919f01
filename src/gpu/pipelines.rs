//! Compute pipelines compiled once and cached by (shader, entry point, defines, override
//! constants). Layouts are derived from the shader ("auto" layout), so every kernel uses all
//! the bindings it declares.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::shaders::{ShaderId, preprocess};
use super::{GpuContext, GpuError};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    pub shader: ShaderId,
    pub entry: &'static str,
    /// Sorted preprocessor defines.
    pub defines: Vec<&'static str>,
    /// Override constants as (name, f64 bits), sorted by name.
    pub constants: Vec<(&'static str, u64)>,
}

impl PipelineKey {
    pub fn new(shader: ShaderId, entry: &'static str) -> Self {
        PipelineKey {
            shader,
            entry,
            defines: Vec::new(),
            constants: Vec::new(),
        }
    }

    pub fn define(mut self, d: &'static str) -> Self {
        if !self.defines.contains(&d) {
            self.defines.push(d);
            self.defines.sort_unstable();
        }
        self
    }

    pub fn constant(mut self, name: &'static str, value: f64) -> Self {
        self.constants.retain(|(n, _)| *n != name);
        self.constants.push((name, value.to_bits()));
        self.constants.sort_unstable();
        self
    }
}

#[derive(Default)]
pub struct PipelineCache {
    map: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    /// Each pipeline's kernel family (by the pipeline's address; cached pipelines are never
    /// dropped, so an address names one pipeline for the cache's life): for profiles.
    families: Mutex<HashMap<usize, String>>,
}

/// Preprocessor defines that change how a kernel computes, not what: left out of its family.
const MECHANICS: &[&str] = &[
    "SUBGROUP",
    "SUBGROUP_ROWS",
    "DOT32",
    "KV_F16",
    "PARTIAL",
    "COMBINE",
];

/// The name a profile groups a kernel under: shader, entry point when not `main`, then what it
/// computes — weight types (`q4_k`, a fused kernel's slots in order) and variants (`add`,
/// `norm`, `qkv`, `multi`...).
pub fn kernel_family(key: &PipelineKey) -> String {
    let mut name = key.shader.name().to_string();
    if key.entry != "main" {
        name = format!("{name}:{}", key.entry);
    }
    let mut types = Vec::new();
    let mut variants = Vec::new();
    for d in &key.defines {
        // Fused kernels name a slot's type `S<slot>_TYPE_<T>`; sorted defines keep slot order.
        let bare = match d.split_once('_') {
            Some((slot, rest)) if slot.starts_with('S') && slot[1..].parse::<u8>().is_ok() => rest,
            _ => d,
        };
        if let Some(ty) = bare.strip_prefix("TYPE_") {
            types.push(ty.to_lowercase());
        } else if !MECHANICS.contains(&bare) {
            variants.push(bare.to_lowercase());
        }
    }
    if !variants.is_empty() {
        name = format!("{name}+{}", variants.join("+"));
    }
    if !types.is_empty() {
        name = format!("{name} {}", types.join(","));
    }
    name
}

impl PipelineCache {
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kernel family of a pipeline this cache compiled ([`kernel_family`]).
    pub fn family_of(&self, pipeline: &Arc<wgpu::ComputePipeline>) -> Option<String> {
        let families = self.families.lock().ok()?;
        families.get(&(Arc::as_ptr(pipeline) as usize)).cloned()
    }
}

impl GpuContext {
    /// The pipeline for `key`, compiled on first use.
    pub fn pipeline(&self, key: &PipelineKey) -> Result<Arc<wgpu::ComputePipeline>, GpuError> {
        let cache = &self.pipelines().map;
        if let Some(p) = cache.lock().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(p);
        }
        let source = preprocess(key.shader.source(), &key.defines)?;
        let constants: Vec<(&str, f64)> = key
            .constants
            .iter()
            .map(|&(n, bits)| (n, f64::from_bits(bits)))
            .collect();
        let label = format!("{}:{}{:?}", key.shader.name(), key.entry, key.defines);
        let compile_err = |message: String| GpuError::ShaderCompile {
            shader: key.shader.name(),
            entry: key.entry.to_string(),
            message,
        };
        let scope = self
            .device()
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device()
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let pipeline = self
            .device()
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&label),
                layout: None,
                module: &module,
                entry_point: Some(key.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    zero_initialize_workgroup_memory: false,
                },
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(compile_err(e.to_string()));
        }
        let pipeline = Arc::new(pipeline);
        if let Ok(mut m) = cache.lock() {
            // A racing compile of the same key keeps the first pipeline; name that one.
            let kept = m.entry(key.clone()).or_insert(pipeline).clone();
            if let Ok(mut f) = self.pipelines().families.lock() {
                f.insert(Arc::as_ptr(&kept) as usize, kernel_family(key));
            }
            return Ok(kept);
        }
        Ok(pipeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_name_what_a_kernel_computes_not_how() {
        let fused = PipelineKey::new(ShaderId::MatVecFused, "main")
            .define("QKV")
            .define("S0_TYPE_Q4_K")
            .define("S1_TYPE_Q4_K")
            .define("S2_TYPE_Q6_K")
            .define("S2_DOT32")
            .define("SUBGROUP")
            .define("NORM");
        assert_eq!(
            kernel_family(&fused),
            "matvec_fused+norm+qkv q4_k,q4_k,q6_k"
        );
        let add = PipelineKey::new(ShaderId::MatVec, "main")
            .define("TYPE_Q8_0")
            .define("ADD")
            .constant("TPR", 8.0);
        assert_eq!(kernel_family(&add), "matvec+add q8_0");
        let combine = PipelineKey::new(ShaderId::Attention, "combine").define("COMBINE");
        assert_eq!(kernel_family(&combine), "attention:combine");
    }
}
