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
//! Each term starts by asking the server what it serves (discovery): the
//! garbage collector watches, and the namespace controller empties, every
//! resource found.
//!
//! # Caveats
//! No health or metrics endpoints; controllers are named as
//! kube-controller-manager's `--controllers` flag names them. Resources are
//! discovered once per term, not re-discovered while it lasts.

use skiff_client::{Client, LeaderElector};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::events::Recorder;

use crate::context::{Config, Context, Runner};
use crate::informers::Informers;

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
    // Discovered once per term: the garbage collector and the namespace
    // controller act on every resource the server serves.
    let discovery = client.discover().await?;
    let mut informers = Informers::new(client.clone(), discovery);
    let mut runners: Vec<Runner> = Vec::new();
    type Register = fn(&Context, &mut Informers) -> Result<Runner, Error>;
    let all: [(&str, Register); 9] = [
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
        (
            "garbagecollector",
            crate::garbagecollector::controller::register,
        ),
        ("namespace", crate::namespace::controller::register),
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
