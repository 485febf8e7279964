//! Data one scheduling cycle passes from a plugin's early extension points to
//! its later ones (PreFilter → Filter, PreScore → Score): kube-scheduler's
//! `framework.CycleState`, keyed by the plugin's name.

use std::any::Any;
use std::collections::HashMap;

/// Per-cycle data, written by PreFilter/PreScore and read by Filter/Score.
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn Any + Send + Sync>>,
    skip_filter: Vec<&'static str>,
    skip_score: Vec<&'static str>,
}

impl CycleState {
    /// An empty state for a new cycle.
    pub fn new() -> CycleState {
        CycleState::default()
    }

    /// Stores `value` under `key` (a plugin's name), replacing what was there.
    pub fn write<T: Any + Send + Sync>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    /// What was stored under `key`, if it is a `T`.
    pub fn read<T: Any + Send + Sync>(&self, key: &'static str) -> Option<&T> {
        self.data.get(key)?.downcast_ref()
    }

    pub(crate) fn skip_filter(&mut self, plugin: &'static str) {
        self.skip_filter.push(plugin);
    }

    pub(crate) fn skips_filter(&self, plugin: &'static str) -> bool {
        self.skip_filter.contains(&plugin)
    }

    pub(crate) fn skip_score(&mut self, plugin: &'static str) {
        self.skip_score.push(plugin);
    }

    pub(crate) fn skips_score(&self, plugin: &'static str) -> bool {
        self.skip_score.contains(&plugin)
    }
}
