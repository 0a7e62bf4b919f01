//! Counters of the device calls that must not happen per token: `queue.submit` and buffer
//! creation. Every Hearth call goes through `GpuContext`, which bumps these atomics, so a test
//! can assert "one submit per decode step, no buffer after warm-up" without timing anything.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct GpuCounters {
    submits: AtomicU64,
    buffers_created: AtomicU64,
}

/// The counter values at one moment; subtract two snapshots to count what happened between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    pub submits: u64,
    pub buffers_created: u64,
}

impl std::ops::Sub for CounterSnapshot {
    type Output = CounterSnapshot;
    fn sub(self, earlier: CounterSnapshot) -> CounterSnapshot {
        CounterSnapshot {
            submits: self.submits - earlier.submits,
            buffers_created: self.buffers_created - earlier.buffers_created,
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

    pub fn snapshot(&self) -> CounterSnapshot {
        CounterSnapshot {
            submits: self.submits.load(Ordering::Relaxed),
            buffers_created: self.buffers_created.load(Ordering::Relaxed),
        }
    }
}
