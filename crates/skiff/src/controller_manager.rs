//! `skiff controller-manager`: kube-controller-manager's flags turned into
//! `skiff_controllers::Config`, then its `run` until a signal.
//!
//! With `--leader-elect` (the default) only the holder of the
//! `kube-system/kube-controller-manager` Lease reconciles, so several may run.
//!
//! # Caveats
//! No health or metrics endpoints; one `--concurrent-syncs` for every
//! controller instead of Kubernetes' flag per controller.

use anyhow::Context;

use crate::cli::ControllerManagerArgs;
use crate::component;
use crate::shutdown::cancel_on_signal;

/// The controller manager's `Config` from its flags.
pub(crate) fn config(args: &ControllerManagerArgs) -> skiff_controllers::Config {
    let leader_election = args
        .leader_election
        .leader_elect
        .then(|| component::leader_election(&args.leader_election, "kube-controller-manager"));
    skiff_controllers::Config {
        controllers: args.controllers.clone(),
        workers: args.concurrent_syncs,
        leader_election,
        node_monitor_grace_period: args.node_monitor_grace_period,
        node_monitor_period: args.node_monitor_period,
        node_eviction_rate: args.node_eviction_rate,
        secondary_node_eviction_rate: args.secondary_node_eviction_rate,
    }
}

/// `skiff controller-manager`: flags to config, then run until a signal.
pub fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let client = component::client(args.server.server.as_deref())?;
        skiff_controllers::run(config(&args), client, cancel_on_signal())
            .await
            .context("the controller manager")
    })
}
