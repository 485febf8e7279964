//! Latencies the scheduler records when asked to, for benchmarks: the
//! duration of each scheduling attempt and of each binding, as
//! kube-scheduler's `scheduling_attempt_duration_seconds` and
//! `binding_duration_seconds` histograms measure them.
//!
//! # Caveats
//! Every sample is kept (a benchmark wants exact percentiles), so memory
//! grows with the pods scheduled: give a [`Metrics`] to a scheduler that
//! runs for a bounded workload, not to a long-lived one.

use std::sync::Mutex;
use std::time::Duration;

/// Samples of scheduling attempts and bindings.
#[derive(Debug, Default)]
pub struct Metrics {
    attempts: Mutex<Vec<Duration>>,
    bindings: Mutex<Vec<Duration>>,
}

/// The 50th and 99th percentiles of some samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// How many samples there were.
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
}

impl Metrics {
    /// One scheduling cycle: from taking the pod off the queue until it is
    /// assumed on a node or parked as unschedulable.
    pub(crate) fn observe_attempt(&self, took: Duration) {
        self.attempts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(took);
    }

    /// One binding cycle: PreBind and Bind, the API write included.
    pub(crate) fn observe_binding(&self, took: Duration) {
        self.bindings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(took);
    }

    /// Percentiles of the scheduling attempts so far.
    pub fn scheduling_attempts(&self) -> Percentiles {
        percentiles(&self.attempts.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Percentiles of the bindings so far.
    pub fn bindings(&self) -> Percentiles {
        percentiles(&self.bindings.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Nearest-rank percentiles: the smallest sample at or above the rank.
fn percentiles(samples: &[Duration]) -> Percentiles {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = |p: usize| -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = (sorted.len() * p).div_ceil(100).max(1) - 1;
        sorted[index]
    };
    Percentiles {
        count: sorted.len(),
        p50: rank(50),
        p99: rank(99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let metrics = Metrics::default();
        for ms in (1..=100).rev() {
            metrics.observe_attempt(Duration::from_millis(ms));
        }
        let attempts = metrics.scheduling_attempts();
        assert_eq!(attempts.count, 100);
        assert_eq!(attempts.p50, Duration::from_millis(50));
        assert_eq!(attempts.p99, Duration::from_millis(99));
        metrics.observe_binding(Duration::from_millis(7));
        let one = metrics.bindings();
        assert_eq!(
            (one.count, one.p50, one.p99),
            (1, Duration::from_millis(7), Duration::from_millis(7))
        );
    }

    #[test]
    fn no_samples_give_zero() {
        assert_eq!(Metrics::default().bindings(), Percentiles::default());
    }
}
