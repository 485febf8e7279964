//! CrashLoopBackOff: how long a pod worker waits before restarting a
//! container that failed, as the real kubelet's backoff (client-go's
//! `flowcontrol.Backoff` with 10 s initial, 300 s maximum).
//!
//! The first restart after a failure is immediate; each later one waits
//! twice as long as the one before (10 s, 20 s, 40 s, … capped at 5 min),
//! counted from when the container ended. A container that ran for 10
//! minutes (twice the maximum) since its last restart starts over at 10 s.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// The first delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// The longest delay.
pub const MAX: Duration = Duration::from_secs(300);

/// Per-container backoff state of one pod.
#[derive(Clone, Debug, Default)]
pub struct BackOff {
    entries: HashMap<String, Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    delay: Duration,
    last_update: SystemTime,
}

fn elapsed(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}

impl BackOff {
    /// When `key` may be restarted again if it failed at `failed_at`: `None`
    /// when it may be restarted now.
    pub fn blocked_until(
        &self,
        key: &str,
        failed_at: SystemTime,
        now: SystemTime,
    ) -> Option<SystemTime> {
        let entry = self.entries.get(key)?;
        if elapsed(entry.last_update, failed_at) > 2 * MAX {
            return None;
        }
        let until = failed_at + entry.delay;
        (now < until).then_some(until)
    }

    /// Records a restart of `key` at `now`, lengthening the next delay.
    pub fn restarted(&mut self, key: &str, now: SystemTime) {
        let delay = match self.entries.get(key) {
            Some(entry) if elapsed(entry.last_update, now) <= 2 * MAX => (entry.delay * 2).min(MAX),
            _ => INITIAL,
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                last_update: now,
            },
        );
    }

    /// The delay the next failure of `key` will wait.
    pub fn delay(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn the_first_restart_is_immediate_then_delays_double_from_10s_to_5min() {
        let mut backoff = BackOff::default();
        let mut now = 1000;
        assert_eq!(backoff.blocked_until("c", at(now), at(now)), None);
        let mut waits = Vec::new();
        for _ in 0..8 {
            backoff.restarted("c", at(now));
            let crashed = now + 1; // it crashes a second after each start
            let until = backoff
                .blocked_until("c", at(crashed), at(crashed))
                .expect("in backoff");
            waits.push(until.duration_since(at(crashed)).unwrap().as_secs());
            now = until
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            assert_eq!(backoff.blocked_until("c", at(crashed), at(now)), None);
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn ten_minutes_of_running_resets_the_delay() {
        let mut backoff = BackOff::default();
        for t in [0, 20, 60, 140] {
            backoff.restarted("c", at(t));
        }
        assert_eq!(backoff.delay("c"), Some(Duration::from_secs(80)));
        let failed = at(140 + 601);
        assert_eq!(backoff.blocked_until("c", failed, failed), None);
        backoff.restarted("c", failed);
        assert_eq!(backoff.delay("c"), Some(INITIAL));
    }
}
