//! Device context: instance, adapter choice, the device with the optional features that the
//! adapter really has, and the counted entry points (`create_buffer`, `submit`).

use std::sync::Arc;

use super::GpuError;
use super::counters::GpuCounters;
use super::info::GpuInfo;
use super::pipelines::PipelineCache;

/// The optional features Hearth uses when present; a device never asks for more than the
/// adapter offers, and kernels fall back (f32 math, shared-memory reductions) without them.
pub const WANTED_FEATURES: wgpu::Features = wgpu::Features::SHADER_F16
    .union(wgpu::Features::SUBGROUP)
    .union(wgpu::Features::TIMESTAMP_QUERY);

/// How to pick the adapter.
#[derive(Clone, Debug, Default)]
pub enum AdapterChoice {
    /// `HEARTH_ADAPTER` (a case-insensitive substring of the adapter name) when set,
    /// otherwise the best adapter: discrete > integrated > virtual > other > CPU.
    #[default]
    FromEnv,
    /// The first adapter whose name contains this substring (case-insensitive).
    NameContains(String),
    /// The best adapter by device type, ignoring the environment.
    Best,
}

/// The wgpu device and queue with Hearth's counters and pipeline cache.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: GpuInfo,
    counters: Arc<GpuCounters>,
    pipelines: PipelineCache,
}

fn type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Picks an adapter by `choice` from the enumerated list.
fn pick(adapters: Vec<wgpu::Adapter>, choice: &AdapterChoice) -> Result<wgpu::Adapter, GpuError> {
    let wanted = match choice {
        AdapterChoice::FromEnv => std::env::var("HEARTH_ADAPTER")
            .ok()
            .filter(|s| !s.is_empty()),
        AdapterChoice::NameContains(s) => Some(s.clone()),
        AdapterChoice::Best => None,
    };
    if adapters.is_empty() {
        return Err(GpuError::NoAdapter {
            backends: format!("{:?}", wgpu::Instance::enabled_backend_features()),
        });
    }
    if let Some(wanted) = wanted {
        let needle = wanted.to_lowercase();
        let available = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect::<Vec<_>>()
            .join(", ");
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&needle))
            .ok_or(GpuError::AdapterNotFound { wanted, available });
    }
    // Best device type first; Vulkan/Metal/DX12 before GL for the same type.
    let mut adapters = adapters;
    adapters.sort_by_key(|a| {
        let i = a.get_info();
        (type_rank(i.device_type), i.backend == wgpu::Backend::Gl)
    });
    Ok(adapters.remove(0))
}

impl GpuContext {
    /// Opens the adapter chosen by `HEARTH_ADAPTER` or the best one.
    pub fn new() -> Result<GpuContext, GpuError> {
        Self::with_choice(&AdapterChoice::FromEnv)
    }

    pub fn with_choice(choice: &AdapterChoice) -> Result<GpuContext, GpuError> {
        Self::with_features(choice, WANTED_FEATURES)
    }

    /// Opens the adapter `choice` picks, asking only for the optional features in `allowed`
    /// that it has (tests mask features off to check the fallbacks on adapters without them).
    pub fn with_features(
        choice: &AdapterChoice,
        allowed: wgpu::Features,
    ) -> Result<GpuContext, GpuError> {
        pollster::block_on(Self::open(choice, allowed & WANTED_FEATURES))
    }

    async fn open(choice: &AdapterChoice, wanted: wgpu::Features) -> Result<GpuContext, GpuError> {
        // GL is a last resort (and on Linux it prints XDG_RUNTIME_DIR warnings): try the
        // primary backends first unless WGPU_BACKEND names one explicitly.
        let explicit = std::env::var_os("WGPU_BACKEND").is_some();
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        if !explicit {
            desc.backends = wgpu::Backends::PRIMARY;
        }
        let mut instance = wgpu::Instance::new(desc);
        let mut adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        if adapters.is_empty() && !explicit {
            instance = wgpu::Instance::new(
                wgpu::InstanceDescriptor::new_without_display_handle_from_env(),
            );
            adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        }
        let adapter = pick(adapters, choice)?;
        let features = adapter.features() & wanted;
        let desc = wgpu::DeviceDescriptor {
            label: Some("hearth"),
            required_features: features,
            // The adapter's own limits: the defaults cap storage bindings far below what
            // weights need.
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) = adapter
            .request_device(&desc)
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        let info = GpuInfo::new(&adapter.get_info(), device.features(), &device.limits());
        Ok(GpuContext {
            device,
            queue,
            info,
            counters: Arc::new(GpuCounters::default()),
            pipelines: PipelineCache::default(),
        })
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    pub fn counters(&self) -> &Arc<GpuCounters> {
        &self.counters
    }

    pub fn pipelines(&self) -> &PipelineCache {
        &self.pipelines
    }

    pub fn has_f16(&self) -> bool {
        self.info.features.contains(wgpu::Features::SHADER_F16)
    }

    pub fn has_subgroup(&self) -> bool {
        self.info.features.contains(wgpu::Features::SUBGROUP)
    }

    /// Largest byte size one storage binding may cover (also capped by max_buffer_size).
    pub fn max_binding_bytes(&self) -> u64 {
        self.info
            .max_storage_buffer_binding_size
            .min(self.info.max_buffer_size)
    }

    /// Creates a buffer and counts it.
    pub fn create_buffer(&self, desc: &wgpu::BufferDescriptor<'_>) -> wgpu::Buffer {
        self.counters.count_buffer();
        self.device.create_buffer(desc)
    }

    /// Submits command buffers and counts the submit.
    pub fn submit(
        &self,
        cmd: impl IntoIterator<Item = wgpu::CommandBuffer>,
    ) -> wgpu::SubmissionIndex {
        self.counters.count_submit();
        self.queue.submit(cmd)
    }

    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Submits the queued buffer writes and waits for them, so their staging memory is
    /// released (call between large uploads: weights would otherwise sit in staging twice).
    pub fn flush_uploads(&self) -> Result<(), GpuError> {
        self.submit(std::iter::empty());
        self.wait_idle()
    }

    /// Blocks until all submitted work is done.
    pub fn wait_idle(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| GpuError::Validation {
                what: "device poll".into(),
                message: e.to_string(),
            })
    }

    /// Runs `f` inside a validation error scope and turns a captured error into `GpuError`.
    pub fn validated<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T, GpuError> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        match pollster::block_on(scope.pop()) {
            None => Ok(out),
            Some(e) => Err(GpuError::Validation {
                what: what.to_string(),
                message: e.to_string(),
            }),
        }
    }
}
