//! Per-kernel GPU time from timestamp queries: the project's Nsight.
//!
//! A profiled step records each dispatch in a compute pass of its own whose beginning and end
//! write timestamps (`TIMESTAMP_QUERY`; no `…_INSIDE_PASSES` needed), resolves them into a
//! buffer in the same submit, and reads them back after it. Each dispatch is named by its
//! pipeline's kernel family ([`super::kernel_family`]), so a step's time can be summed per
//! family (matvec by weight type, attention, norms, …).
//!
//! One pass per dispatch is what a profile costs: the passes' boundaries add no barriers that
//! a shared pass would not have (wgpu orders dependent dispatches within a pass too), but the
//! span of a profiled step is a little longer than an unprofiled one. Timestamps are taken
//! where the adapter writes them: on lavapipe that is when the CPU threads start and finish a
//! pass.

use super::{Dispatch, GpuContext, GpuError};

/// Queries in one query set (wgpu's `QUERY_SET_MAX_QUERIES`): two per dispatch.
const QUERIES_PER_SET: u32 = wgpu::QUERY_SET_MAX_QUERIES;

/// One dispatch's time in a profiled step.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTime {
    pub family: String,
    pub ns: f64,
}

/// The kernels of one step in recording order, and the step's span on the GPU: first
/// dispatch's start to the last one's end (the kernels plus the gaps between them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepProfile {
    pub kernels: Vec<KernelTime>,
    pub span_ns: f64,
}

/// Records dispatches with timestamps and reads the times back. Holds its query sets and
/// buffers between steps; grows them for a longer step.
pub struct KernelProfiler {
    sets: Vec<wgpu::QuerySet>,
    resolve: Option<wgpu::Buffer>,
    staging: Option<wgpu::Buffer>,
    /// Families of the dispatches recorded since the last read.
    pending: Vec<String>,
}

impl KernelProfiler {
    /// A profiler on `ctx`, or [`GpuError::NoTimestamps`] when the adapter cannot write
    /// timestamps.
    pub fn new(ctx: &GpuContext) -> Result<KernelProfiler, GpuError> {
        if !ctx
            .info()
            .features
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Err(GpuError::NoTimestamps {
                adapter: ctx.info().name.clone(),
            });
        }
        Ok(KernelProfiler {
            sets: Vec::new(),
            resolve: None,
            staging: None,
            pending: Vec::new(),
        })
    }

    /// Records the live dispatches of `plan` into `enc`, each in its own timed pass, and the
    /// resolve of their timestamps; [`KernelProfiler::read`] after the submit.
    pub fn record(&mut self, ctx: &GpuContext, enc: &mut wgpu::CommandEncoder, plan: &[Dispatch]) {
        let live: Vec<&Dispatch> = plan.iter().filter(|d| d.is_live()).collect();
        let queries = live.len() as u32 * 2;
        self.reserve(ctx, queries);
        self.pending = live
            .iter()
            .map(|d| {
                ctx.pipelines()
                    .family_of(&d.pipeline)
                    .unwrap_or_else(|| "unnamed".into())
            })
            .collect();
        for (i, d) in live.iter().enumerate() {
            let q = i as u32 * 2;
            let set = &self.sets[(q / QUERIES_PER_SET) as usize];
            let at = q % QUERIES_PER_SET;
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("profiled"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: Some(at),
                    end_of_pass_write_index: Some(at + 1),
                }),
            });
            d.record(&mut pass);
        }
        let (Some(resolve), Some(staging)) = (&self.resolve, &self.staging) else {
            return;
        };
        let mut left = queries;
        for (k, set) in self.sets.iter().enumerate() {
            let n = left.min(QUERIES_PER_SET);
            if n == 0 {
                break;
            }
            let offset = k as u64 * QUERIES_PER_SET as u64 * 8;
            enc.resolve_query_set(set, 0..n, resolve, offset);
            left -= n;
        }
        enc.copy_buffer_to_buffer(resolve, 0, staging, 0, queries as u64 * 8);
    }

    /// The times of the dispatches recorded by the last [`KernelProfiler::record`] (whose
    /// encoder has been submitted).
    pub fn read(&mut self, ctx: &GpuContext) -> Result<StepProfile, GpuError> {
        let families = std::mem::take(&mut self.pending);
        let Some(staging) = &self.staging else {
            return Ok(StepProfile::default());
        };
        if families.is_empty() {
            return Ok(StepProfile::default());
        }
        let bytes = ctx.map_and_copy_range(staging, families.len() as u64 * 16)?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let period = ctx.queue().get_timestamp_period() as f64;
        Ok(profile_from_ticks(&families, &ticks, period))
    }

    /// Query sets and buffers for `queries` timestamps.
    fn reserve(&mut self, ctx: &GpuContext, queries: u32) {
        let sets_needed = queries.div_ceil(QUERIES_PER_SET) as usize;
        while self.sets.len() < sets_needed {
            self.sets
                .push(ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("kernel-profile"),
                    ty: wgpu::QueryType::Timestamp,
                    count: QUERIES_PER_SET,
                }));
        }
        let bytes = self.sets.len() as u64 * QUERIES_PER_SET as u64 * 8;
        if self.resolve.as_ref().is_none_or(|b| b.size() < bytes) {
            self.resolve = Some(ctx.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel-profile-resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }));
            self.staging = Some(ctx.create_buffer(&wgpu::BufferDescriptor {
                label: Some("kernel-profile-staging"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
        }
    }
}

/// Kernel times from begin/end tick pairs (`ticks[2i]`, `ticks[2i + 1]` for dispatch `i`)
/// and the timestamp period in ns per tick. A pair that runs backwards (a clock the adapter
/// does not keep monotonic across passes) counts as zero rather than wrapping.
pub fn profile_from_ticks(families: &[String], ticks: &[u64], period_ns: f64) -> StepProfile {
    let n = families.len().min(ticks.len() / 2);
    let kernels: Vec<KernelTime> = (0..n)
        .map(|i| KernelTime {
            family: families[i].clone(),
            ns: ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period_ns,
        })
        .collect();
    let span_ns = if n == 0 {
        0.0
    } else {
        let first = ticks[0];
        let last = ticks[2 * n - 1];
        last.saturating_sub(first) as f64 * period_ns
    };
    StepProfile { kernels, span_ns }
}

/// Time per family summed over `steps`, largest first: (family, total ns, dispatches).
pub fn totals_by_family(steps: &[StepProfile]) -> Vec<(String, f64, usize)> {
    let mut totals: Vec<(String, f64, usize)> = Vec::new();
    for k in steps.iter().flat_map(|s| &s.kernels) {
        match totals.iter_mut().find(|(f, _, _)| *f == k.family) {
            Some(t) => {
                t.1 += k.ns;
                t.2 += 1;
            }
            None => totals.push((k.family.clone(), k.ns, 1)),
        }
    }
    totals.sort_by(|a, b| b.1.total_cmp(&a.1));
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_become_kernel_times_and_span() {
        let fams = vec!["matvec q4_k".to_string(), "rmsnorm".to_string()];
        // Dispatch 0: 100..400, dispatch 1: 450..500, period 2 ns.
        let p = profile_from_ticks(&fams, &[100, 400, 450, 500], 2.0);
        assert_eq!(p.kernels[0].ns, 600.0);
        assert_eq!(p.kernels[1].ns, 100.0);
        assert_eq!(p.span_ns, 800.0);
    }

    #[test]
    fn backwards_ticks_count_as_zero_and_short_readbacks_are_cut() {
        let fams = vec!["a".to_string(), "b".to_string()];
        let p = profile_from_ticks(&fams, &[500, 100, 7], 1.0);
        assert_eq!(p.kernels.len(), 1);
        assert_eq!(p.kernels[0].ns, 0.0);
        assert_eq!(p.span_ns, 0.0);
    }

    #[test]
    fn totals_group_by_family_largest_first() {
        let step = |v: &[(&str, f64)]| StepProfile {
            kernels: v
                .iter()
                .map(|(f, ns)| KernelTime {
                    family: f.to_string(),
                    ns: *ns,
                })
                .collect(),
            span_ns: 0.0,
        };
        let t = totals_by_family(&[
            step(&[("a", 1.0), ("b", 5.0)]),
            step(&[("a", 2.0), ("b", 5.0), ("c", 0.5)]),
        ]);
        assert_eq!(
            t,
            vec![
                ("b".to_string(), 10.0, 2),
                ("a".to_string(), 3.0, 2),
                ("c".to_string(), 0.5, 1)
            ]
        );
    }
}
