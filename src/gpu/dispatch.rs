//! A prepared dispatch: pipeline, bind group and grid, built once (at load) and recorded into
//! any number of compute passes without creating anything on the device.

use std::sync::Arc;

use super::{GpuContext, GpuError};

pub struct Dispatch {
    pub pipeline: Arc<wgpu::ComputePipeline>,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
}

impl Dispatch {
    /// Whether recording it dispatches anything (an empty grid records nothing).
    pub fn is_live(&self) -> bool {
        self.workgroups.iter().all(|&n| n > 0)
    }

    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        let [x, y, z] = self.workgroups;
        if x == 0 || y == 0 || z == 0 {
            return;
        }
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(x, y, z);
    }
}

/// A 2-D grid of at least `groups` workgroups with no dimension above `limit`:
/// `[x, ceil(groups / x), 1]`. Kernels rebuild the flat index as `wid.x + wid.y * nwg.x` and
/// skip the overshoot.
pub fn max_workgroups_grid(groups: u32, limit: u32) -> [u32; 3] {
    let limit = limit.max(1);
    if groups <= limit {
        [groups, 1, 1]
    } else {
        [limit, groups.div_ceil(limit), 1]
    }
}

impl GpuContext {
    /// A bind group over whole buffers at bindings 0, 1, 2, ... for `pipeline`'s group 0.
    pub fn bind(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
    ) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        })
    }

    /// A bind group over whole buffers at the given binding numbers of `pipeline`'s group 0
    /// (kernels whose optional bindings keep fixed numbers).
    pub fn bind_numbered(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[(u32, &wgpu::Buffer)],
    ) -> wgpu::BindGroup {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .map(|&(binding, b)| wgpu::BindGroupEntry {
                binding,
                resource: b.as_entire_binding(),
            })
            .collect();
        self.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        })
    }

    /// Records `dispatches` into one compute pass, submits once and waits (tests, one-offs).
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<(), GpuError> {
        let mut enc = self.encoder("hearth-run");
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        self.counters()
            .count_dispatches(dispatches.iter().filter(|d| d.is_live()).count() as u64);
        self.submit([enc.finish()]);
        self.wait_idle()
    }

    pub(crate) fn grid_limit(&self) -> u32 {
        self.info().max_compute_workgroups_per_dimension
    }
}
