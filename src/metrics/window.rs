//! Bounded sliding windows: recent latency samples (for exact percentiles) and the hit-rate
//! history the UI charts.

use std::collections::VecDeque;

/// The most recent `capacity` items; pushing onto a full window drops the oldest.
#[derive(Debug, Clone)]
pub(super) struct Window<T> {
    items: VecDeque<T>,
    capacity: usize,
}

impl<T> Window<T> {
    /// An empty window holding at most `capacity` items (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Window {
            items: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.capacity {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter()
    }
}

impl Window<f64> {
    /// Exact percentiles of the samples in the window by the nearest-rank method: the
    /// `p`-th percentile is the smallest sample with at least `p`% of the samples at or below
    /// it (so P50 of 1..=100 is 50 and P99 is 99). `None` when the window is empty.
    ///
    /// Samples are finite (the recorder drops NaN and infinities), so the sort is total.
    pub fn percentiles<const N: usize>(&self, ps: [f64; N]) -> [Option<f64>; N] {
        let mut sorted: Vec<f64> = self.items.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        ps.map(|p| nearest_rank(&sorted, p))
    }
}

fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() || !p.is_finite() {
        return None;
    }
    let n = sorted.len();
    // rank = ceil(p/100 * n), clamped to 1..=n; the cast saturates and the clamp bounds it.
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_most_recent_items() {
        let mut w = Window::new(3);
        for i in 1..=5 {
            w.push(i);
        }
        assert_eq!(w.iter().copied().collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(w.len(), 3);
    }

    #[test]
    fn nearest_rank_percentiles_are_exact() {
        let mut w = Window::new(1000);
        // Pushed out of order: the percentile must not depend on arrival order.
        for i in (1..=100).rev() {
            w.push(i as f64);
        }
        assert_eq!(
            w.percentiles([50.0, 99.0, 100.0, 0.0]),
            [Some(50.0), Some(99.0), Some(100.0), Some(1.0)]
        );
    }

    #[test]
    fn small_windows_and_empty_windows() {
        let mut w = Window::new(10);
        assert_eq!(w.percentiles([50.0]), [None]);
        w.push(7.0);
        assert_eq!(w.percentiles([50.0, 99.0]), [Some(7.0), Some(7.0)]);
        w.push(3.0);
        // Two samples: P50 is the lower one (rank ceil(1.0) = 1), P99 the upper.
        assert_eq!(w.percentiles([50.0, 99.0]), [Some(3.0), Some(7.0)]);
    }

    #[test]
    fn percentiles_cover_only_the_window() {
        let mut w = Window::new(4);
        for v in [1000.0, 1000.0, 1.0, 2.0, 3.0, 4.0] {
            w.push(v);
        }
        assert_eq!(w.percentiles([50.0, 99.0]), [Some(2.0), Some(4.0)]);
    }
}
