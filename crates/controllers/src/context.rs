//! What every controller is built from: the manager's [`Config`], the
//! [`Context`] handed to each controller, and the [`Runner`] a controller
//! registers to be started once the shared caches are in sync.

use std::time::Duration;

use futures::future::BoxFuture;
use skiff_client::{Client, LeaderElectionConfig};
use tokio_util::sync::CancellationToken;

use crate::events::Recorder;

/// Every controller, by the name `--controllers` uses.
pub const CONTROLLERS: &[&str] = &[
    "replicaset",
    "deployment",
    "job",
    "endpoints",
    "cronjob",
    "nodelifecycle",
    "serviceaccount",
    "garbagecollector",
    "namespace",
];

/// What the manager runs, and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// Controllers to run, as kube-controller-manager's `--controllers`:
    /// `*` for all, a name to add one, `-name` to leave one out.
    pub controllers: Vec<String>,
    /// Workers per controller (Kubernetes' `--concurrent-*-syncs`, 5).
    pub workers: usize,
    /// Run only while holding the Lease; `None` runs at once.
    pub leader_election: Option<LeaderElectionConfig>,
    /// How long a node may go without renewing its Lease before it is
    /// marked Unknown (`--node-monitor-grace-period`).
    pub node_monitor_grace_period: Duration,
    /// How often node health is looked at (`--node-monitor-period`).
    pub node_monitor_period: Duration,
    /// Nodes whose pods are evicted per second (`--node-eviction-rate`).
    pub node_eviction_rate: f64,
    /// The rate when a zone is mostly down (`--secondary-node-eviction-rate`).
    pub secondary_node_eviction_rate: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            controllers: vec!["*".into()],
            workers: 5,
            leader_election: Some(LeaderElectionConfig {
                lease_name: "kube-controller-manager".into(),
                identity: format!("controller-manager-{}", std::process::id()),
                ..Default::default()
            }),
            node_monitor_grace_period: Duration::from_secs(40),
            node_monitor_period: Duration::from_secs(5),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
        }
    }
}

impl Config {
    /// Whether the controller `name` is enabled.
    pub fn enabled(&self, name: &str) -> bool {
        let mut on = false;
        for entry in &self.controllers {
            match entry.as_str() {
                "*" => on = true,
                e if e.strip_prefix('-') == Some(name) => return false,
                e if e == name => on = true,
                _ => {}
            }
        }
        on
    }
}

/// What every controller is built from.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) client: Client,
    pub(crate) events: Recorder,
    pub(crate) config: Config,
}

/// A registered controller, waiting for its caches to start.
pub(crate) type Runner = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;
