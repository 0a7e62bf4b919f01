//! Counters of the device calls that must not happen per token — `queue.submit` and buffer
//! creation — and of the compute dispatches recorded (what a decode step costs on adapters
//! where each dispatch has a fixed price, ~0.5 ms on lavapipe). Every Hearth call goes through `GpuContext`, which bumps these atomics, so a test
//! can assert "one submit per decode step, no buffer after warm-up" without timing anything.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct GpuCounters {
    submits: AtomicU64,
    buffers_created: AtomicU64,
    dispatches: AtomicU64,
}

/// The counter values at one moment; subtract two snapshots to count what happened between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub submits: u64,
    pub buffers_created: u64,
    /// Compute dispatches recorded (forward steps and `GpuContext::run`).
    pub dispatches: u64,
}

impl std::ops::Sub for CounterSnapshot {
    type Output = CounterSnapshot;
    fn sub(self, earlier: CounterSnapshot) -> CounterSnapshot {
        CounterSnapshot {
            submits: self.submits - earlier.submits,
            buffers_created: self.buffers_created - earlier.buffers_created,
            dispatches: self.dispatches - earlier.dispatches,
        }
    }
}

impl GpuCounters {
    pub(crate) fn count_submit(&self) {
        self.submits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_buffer(&self) {
        self.buffers_created.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_dispatches(&self, n: u64) {
        self.dispatches.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            submits: self.submits.load(Ordering::Relaxed),
            buffers_created: self.buffers_created.load(Ordering::Relaxed),
            dispatches: self.dispatches.load(Ordering::Relaxed),
        }
    }
}
