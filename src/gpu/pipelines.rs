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
}

impl PipelineCache {
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            m.insert(key.clone(), pipeline.clone());
        }
        Ok(pipeline)
    }
}
