//! `GpuInfo`: what `hearth inspect --gpu` prints about the chosen adapter.

use std::fmt;

#[derive(Clone, Debug)]
pub struct GpuInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    /// The features the device was created with (the wanted ones the adapter has).
    pub features: wgpu::Features,
    pub subgroup_min_size: u32,
    pub subgroup_max_size: u32,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_workgroup_storage_size: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub min_storage_buffer_offset_alignment: u32,
}

impl GpuInfo {
    pub(crate) fn new(a: &wgpu::AdapterInfo, features: wgpu::Features, l: &wgpu::Limits) -> Self {
        GpuInfo {
            name: a.name.clone(),
            backend: format!("{:?}", a.backend),
            device_type: format!("{:?}", a.device_type),
            driver: a.driver.clone(),
            driver_info: a.driver_info.clone(),
            features,
            subgroup_min_size: a.subgroup_min_size,
            subgroup_max_size: a.subgroup_max_size,
            max_storage_buffer_binding_size: l.max_storage_buffer_binding_size,
            max_buffer_size: l.max_buffer_size,
            max_storage_buffers_per_shader_stage: l.max_storage_buffers_per_shader_stage,
            max_compute_workgroup_storage_size: l.max_compute_workgroup_storage_size,
            max_compute_invocations_per_workgroup: l.max_compute_invocations_per_workgroup,
            max_compute_workgroups_per_dimension: l.max_compute_workgroups_per_dimension,
            min_storage_buffer_offset_alignment: l.min_storage_buffer_offset_alignment,
        }
    }

    /// A software rasterizer on the CPU (lavapipe, llvmpipe, WARP).
    pub fn is_cpu(&self) -> bool {
        self.device_type == "Cpu"
    }

    /// Whether shader loops may be cut short after a fixed iteration budget
    /// (`ops::LLVMPIPE_LOOP_LIMIT`): llvmpipe does so; kernels with loops that grow with the
    /// context split their work on such adapters. Assumed of every CPU adapter.
    pub fn loops_limited(&self) -> bool {
        self.is_cpu()
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

impl fmt::Display for GpuInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let has = |x: wgpu::Features| {
            if self.features.contains(x) {
                "yes"
            } else {
                "no"
            }
        };
        writeln!(f, "adapter:      {}", self.name)?;
        writeln!(f, "backend:      {} ({})", self.backend, self.device_type)?;
        writeln!(f, "driver:       {} {}", self.driver, self.driver_info)?;
        writeln!(
            f,
            "features:     shader-f16 {}, subgroup {} (size {}..{}), timestamp-query {}",
            has(wgpu::Features::SHADER_F16),
            has(wgpu::Features::SUBGROUP),
            self.subgroup_min_size,
            self.subgroup_max_size,
            has(wgpu::Features::TIMESTAMP_QUERY)
        )?;
        writeln!(
            f,
            "limits:       storage binding {}, buffer {}, {} storage buffers/stage",
            mib(self.max_storage_buffer_binding_size),
            mib(self.max_buffer_size),
            self.max_storage_buffers_per_shader_stage
        )?;
        write!(
            f,
            "compute:      {} B workgroup memory, {} invocations/workgroup, {} workgroups/dim",
            self.max_compute_workgroup_storage_size,
            self.max_compute_invocations_per_workgroup,
            self.max_compute_workgroups_per_dimension
        )
    }
}
