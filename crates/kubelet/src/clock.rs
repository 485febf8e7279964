//! Wall-clock time, injected: the pod sync, the hollow runtime and the
//! CrashLoopBackOff all read "now" through [`Clock`], so tests move time by
//! hand instead of sleeping.
//!
//! # Caveats
//! [`TestClock`] only moves when told; code that also sleeps on tokio's timer
//! pairs it with `tokio::time::pause`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A source of wall-clock time (status timestamps are wall-clock times).
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

/// A clock that moves only when [`TestClock::advance`] is called.
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
        let mut now = self
            .now
            .lock()
            .expect("the test clock's lock is never poisoned");
        *now += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self
            .now
            .lock()
            .expect("the test clock's lock is never poisoned")
    }
}

/// A wall-clock time as jiff's Timestamp (the type inside k8s-openapi's
/// `Time` and `MicroTime`); times before 1970 or past jiff's range clamp to
/// the epoch.
pub(crate) fn timestamp(at: SystemTime) -> k8s_openapi::jiff::Timestamp {
    use k8s_openapi::jiff::Timestamp;
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let nanos = i32::try_from(since.subsec_nanos()).unwrap_or(0);
    Timestamp::new(seconds, nanos).unwrap_or(Timestamp::UNIX_EPOCH)
}
