//! Wall-clock time, injected: the pod sync, the hollow runtime and the
//! CrashLoopBackOff all read "now" through [`Clock`] (skiff-api's, which the
//! API server uses too), so tests move time by hand instead of sleeping.
//!
//! # Caveats
//! [`TestClock`] only moves when told; code that also sleeps on tokio's timer
//! pairs it with `tokio::time::pause`.

use std::time::SystemTime;

pub use skiff_api::clock::{Clock, SystemClock, TestClock};

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
