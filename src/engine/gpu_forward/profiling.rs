//! Kernel profiling of a model's steps: switched on here, recorded by the step itself
//! (`GpuForward::run` records each dispatch in a timed pass while a profiler is set).

use crate::gpu::{KernelProfiler, StepProfile};

use super::{GpuForward, GpuForwardError};

impl GpuForward {
    /// Times every kernel of the following steps with timestamp queries (each dispatch in a
    /// pass of its own), or stops. Fails where the adapter has no timestamps.
    pub fn set_profiling(&mut self, on: bool) -> Result<(), GpuForwardError> {
        self.profiler = if on {
            Some(KernelProfiler::new(&self.ctx)?)
        } else {
            None
        };
        self.last_profile = None;
        Ok(())
    }

    /// The kernel times of the last step run while profiling.
    pub fn take_profile(&mut self) -> Option<StepProfile> {
        self.last_profile.take()
    }
}
