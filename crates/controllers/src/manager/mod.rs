//! The controller manager: runs the enabled controllers over shared
//! informers, under Lease-based leader election, as kube-controller-manager.
//!
//! [`run`] is the whole program: with leader election on, it waits until
//! this candidate holds the `kube-controller-manager` Lease, starts the
//! informers and controllers, and stops them again if the Lease is lost
//! (then waits to lead again). Two managers may run; one acts. Because every
//! reconcile is a function of what the caches show, a manager started in the
//! middle of anything picks up where the last one stopped.
//!
//! # Layout
//! - `informers`: one informer per kind, shared by the controllers.
//! - `worker`: the loop that takes keys off a queue and reconciles them.
//!
//! # Caveats
//! No health or metrics endpoints; controllers are named as
//! kube-controller-manager's `--controllers` flag names them.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use skiff_client::{Client, LeaderElectionConfig, LeaderElector};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::events::Recorder;

pub(crate) mod informers;
pub(crate) mod worker;

use informers::Informers;

/// Every controller, by the name `--controllers` uses.
pub const CONTROLLERS: &[&str] = &[
    "replicaset",
    "deployment",
    "job",
    "endpoints",
    "cronjob",
    "nodelifecycle",
    "serviceaccount",
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

/// The current time as Kubernetes writes it.
pub(crate) fn now() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp::new(since.as_secs() as i64, since.subsec_nanos() as i32)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Runs the controller manager until `shutdown` is cancelled.
pub async fn run(config: Config, client: Client, shutdown: CancellationToken) -> Result<(), Error> {
    let Some(election) = config.leader_election.clone() else {
        return run_controllers(&config, &client, shutdown).await;
    };
    let elector = LeaderElector::new(client.clone(), election).map_err(Error::LeaderElection)?;
    let mut leading = elector.leading();
    let elector_task = tokio::spawn(elector.run(shutdown.clone()));
    while !shutdown.is_cancelled() {
        tokio::select! {
            changed = leading.wait_for(|l| *l) => if changed.is_err() { break },
            _ = shutdown.cancelled() => break,
        }
        tracing::info!("leading: starting controllers");
        let term = shutdown.child_token();
        let mut watch = leading.clone();
        let lost = term.clone();
        let guard = tokio::spawn(async move {
            let _ = watch.wait_for(|l| !*l).await;
            lost.cancel();
        });
        run_controllers(&config, &client, term).await?;
        guard.abort();
        tracing::info!("controllers stopped");
    }
    let _ = elector_task.await;
    Ok(())
}

/// Starts the enabled controllers over shared informers and runs them until `shutdown`.
async fn run_controllers(
    config: &Config,
    client: &Client,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let context = Context {
        client: client.clone(),
        events: Recorder::new(client.clone(), "controller-manager"),
        config: config.clone(),
    };
    let mut informers = Informers::new(client.clone());
    let mut runners: Vec<Runner> = Vec::new();
    type Register = fn(&Context, &mut Informers) -> Result<Runner, Error>;
    let all: [(&str, Register); 7] = [
        ("replicaset", crate::replicaset::controller::register),
        ("deployment", crate::deployment::controller::register),
        ("job", crate::job::controller::register),
        ("endpoints", crate::endpoints::controller::register),
        ("cronjob", crate::cronjob::controller::register),
        ("nodelifecycle", crate::nodelifecycle::controller::register),
        (
            "serviceaccount",
            crate::serviceaccount::controller::register,
        ),
    ];
    for (name, register) in all {
        if config.enabled(name) {
            runners.push(register(&context, &mut informers)?);
        }
    }
    informers.start(&shutdown).await;
    let tasks: Vec<_> = runners
        .into_iter()
        .map(|runner| tokio::spawn(runner(shutdown.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_are_chosen_as_the_controllers_flag_chooses() {
        let config = |list: &[&str]| Config {
            controllers: list.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(config(&["*"]).enabled("job"));
        assert!(!config(&["*", "-job"]).enabled("job"));
        assert!(config(&["job"]).enabled("job"));
        assert!(!config(&["job"]).enabled("deployment"));
    }
}
