//! Wall-clock time, injected: every component that stamps objects
//! (`creationTimestamp`, status times, Lease renewals) or measures back-offs
//! reads "now" through [`Clock`], so a test fixes or moves time by hand
//! instead of sleeping. The API server and the kubelet share this one.
//!
//! # Caveats
//! [`TestClock`] only moves when told; code that also sleeps on tokio's timer
//! pairs it with `tokio::time::pause`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A source of wall-clock time (Kubernetes' timestamps are wall-clock times).
pub trait Clock: Send + Sync + 'static {
    /// The time now.
    fn now(&self) -> SystemTime;
}

/// The machine's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when [`TestClock::advance`] is called; its
/// clones share one time.
#[derive(Clone, Debug)]
pub struct TestClock {
    now: Arc<Mutex<SystemTime>>,
}

impl TestClock {
    /// A clock standing at `start`.
    pub fn at(start: SystemTime) -> TestClock {
        TestClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_only_when_advanced_and_its_clones_move_with_it() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = TestClock::at(start);
        let clone = clock.clone();
        assert_eq!(clock.now(), start);
        clone.advance(Duration::from_secs(5));
        assert_eq!(clock.now(), start + Duration::from_secs(5));
    }
}
