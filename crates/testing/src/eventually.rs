//! [`eventually`]: wait for a cluster to reach a state, as tests of
//! level-triggered components must — they converge, at no fixed moment.

use std::future::Future;
use std::time::Duration;

/// How often a check is tried.
const INTERVAL: Duration = Duration::from_millis(20);
/// How many tries before giving up: a minute of polling. The bound only
/// stops a hung test; a slow machine must never reach it.
const TRIES: usize = 3000;

/// What an [`eventually`] check answers: whether the state is reached yet,
/// with what it found, or what it saw instead.
pub trait Observation {
    /// What the check hands back once it holds.
    type Value;
    /// `Ok` once the state is reached; otherwise what was observed.
    fn into_result(self) -> Result<Self::Value, String>;
}

impl Observation for bool {
    type Value = ();
    fn into_result(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("false".into())
        }
    }
}

impl<T> Observation for Option<T> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".into())
    }
}

impl<T> Observation for Result<T, String> {
    type Value = T;
    fn into_result(self) -> Result<T, String> {
        self
    }
}

/// Polls `check` every 20 ms until it holds (`true`, `Some`, `Ok`) and
/// answers what it found; panics naming `what` and the last observation
/// after a minute.
pub async fn eventually<F, Fut>(what: &str, mut check: F) -> <Fut::Output as Observation>::Value
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: Observation,
{
    let mut last = String::new();
    for _ in 0..TRIES {
        match check().await.into_result() {
            Ok(value) => return value,
            Err(observed) => last = observed,
        }
        tokio::time::sleep(INTERVAL).await;
    }
    panic!("never happened: {what}; last seen: {last}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_value_found_is_handed_back_once_the_check_holds() {
        let mut tries = 0;
        let found = eventually("three tries", || {
            tries += 1;
            let now = tries;
            async move { (now == 3).then_some(now) }
        })
        .await;
        assert_eq!(found, 3);
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "never happened: the impossible; last seen: still 1")]
    async fn a_check_that_never_holds_names_what_it_last_saw() {
        eventually("the impossible", || async {
            Err::<(), _>("still 1".to_string())
        })
        .await;
    }
}
