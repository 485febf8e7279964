//! `skiff scheduler`: kube-scheduler's flags turned into
//! `skiff_scheduler::Config`, then its `run` until a signal.
//!
//! With `--leader-elect` (the default) only the holder of the
//! `kube-system/kube-scheduler` Lease schedules, so several may run.
//!
//! # Caveats
//! No health or metrics endpoints.

use anyhow::Context;

use crate::cli::SchedulerArgs;
use crate::component;
use crate::shutdown::cancel_on_signal;

/// The scheduler's `Config` from its flags.
pub(crate) fn config(args: &SchedulerArgs) -> skiff_scheduler::Config {
    skiff_scheduler::Config {
        config_file: args.config.clone(),
        leader_election: args.leader_election.leader_elect,
        leader_election_config: component::leader_election(&args.leader_election, "kube-scheduler"),
        ..skiff_scheduler::Config::default()
    }
}

/// `skiff scheduler`: flags to config, then run until a signal.
pub fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let client = component::client(args.server.server.as_deref())?;
        skiff_scheduler::run(config(&args), client, cancel_on_signal())
            .await
            .context("the scheduler")
    })
}
