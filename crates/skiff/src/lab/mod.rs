//! `skiff lab`: a multi-node lab cluster on one machine, every component a
//! separate process of this same binary, started with the flags one would
//! give it on a machine of its own.
//!
//! # The process layout
//! `skiff lab up --servers 3 --nodes 3` starts, under one supervisor:
//!
//! | name                   | what                                  | address            |
//! |------------------------|---------------------------------------|--------------------|
//! | `store-1..3`           | `skiff store`, one raft member each   | 127.0.0.*i*        |
//! | `apiserver-1..3`       | `skiff apiserver` on all store members| 127.0.0.*i*        |
//! | `scheduler-1..3`       | `skiff scheduler`, Lease election     | (talks to apiserver-*i*) |
//! | `controller-manager-1..3` | `skiff controller-manager`, Lease election | (apiserver-*i*) |
//! | `node-1..N`            | `skiff kubelet`, Node `lab-node-k`, zone `lab-zone-a/b/c` | 127.0.0.(10+*k*) |
//!
//! Server *i* is store-*i* with the API server, scheduler and controller
//! manager beside it; only one scheduler and one controller manager act at a
//! time, the holders of their Leases. Node *k* talks to API server
//! ((*k*-1) mod servers)+1. Every port is a free one picked at start.
//!
//! The store members' peer traffic goes through TCP relays the supervisor
//! owns: each member advertises a relay's port as its peer URL and listens on
//! another. `skiff lab partition store-2` (or `server-2`) makes the relays
//! drop every connection to or from store-2 — the sender of a connection is
//! found by which member process owns its socket — while clients still
//! reach it; `skiff lab heal` lets them through again.
//!
//! Everything lives in `--dir` (default `./skiff-lab`): `lab.json` (names,
//! roles, pids, addresses, flags), `lab.sock` (the supervisor's control
//! socket: one request line, one answer line), `logs/NAME.log` and each
//! process's data (`store-i/`, `node-k/`). `skiff lab up` stays in the
//! foreground as the supervisor; Ctrl-C or `skiff lab down` stops every
//! process it started, by pid, and waits for them. A later `lab up` over the
//! same directory resumes the same cluster.
//!
//! # Layout
//! - `plan`: the pure part — which processes, names, addresses and flags.
//! - `state`: `lab.json` and the `lab status` table.
//! - `supervisor`: starting, killing, restarting and stopping the processes.
//! - `relay`: the store members' peer relays, and partitions.
//! - `control`: the control socket, both ends.
//!
//! # Where to start
//! [`run`] below; `supervisor::up` for what `lab up` does.
//!
//! # Caveats
//! - A partition cuts a store member only; an API server on it still serves
//!   what its other store members answer.
//! - The supervisor does not restart what dies or is killed; `lab restart` does.
//! - No TLS anywhere, as in the rest of skiff.

mod control;
mod plan;
mod relay;
mod state;
mod supervisor;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::flags::{parse_duration, RuntimeName};

/// `skiff lab …`.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start a lab cluster and supervise it until Ctrl-C or `skiff lab down`.
    Up(LabUpArgs),
    /// Show the lab's processes, the store leader and the nodes.
    Status(LabDirArgs),
    /// SIGKILL one of the lab's processes (it stays down).
    Kill(LabNameArgs),
    /// Start a killed process again with the same flags and data.
    Restart(LabNameArgs),
    /// Cut a store member (`store-i` or `server-i`) off from its peers.
    Partition(LabNameArgs),
    /// Undo a partition (of NAME, or all of them).
    Heal(LabHealArgs),
    /// Stop the lab: every process, then the supervisor.
    Down(LabDirArgs),
}

/// `skiff lab up`.
#[derive(Debug, Args)]
pub struct LabUpArgs {
    /// How many servers (a store member, an API server, a scheduler and a controller manager each).
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// How many nodes (kubelets).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The kubelets' container runtime.
    #[arg(long, value_enum, default_value = "process")]
    pub runtime: RuntimeName,
    /// Where the lab keeps its state, logs and data.
    #[arg(long, default_value = "./skiff-lab")]
    pub dir: PathBuf,
    /// The controller managers' --node-monitor-grace-period.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,
    /// The kubelets' --node-lease-duration-seconds.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,
    /// The schedulers' and controller managers' --leader-elect-lease-duration.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: std::time::Duration,
}

/// The lab's directory, for the short commands.
#[derive(Debug, Args)]
pub struct LabDirArgs {
    /// The lab's directory.
    #[arg(long, default_value = "./skiff-lab")]
    pub dir: PathBuf,
}

/// A process of the lab, by name.
#[derive(Debug, Args)]
pub struct LabNameArgs {
    /// The process's name, as `skiff lab status` shows it.
    pub name: String,
    #[command(flatten)]
    pub lab: LabDirArgs,
}

/// `skiff lab heal [NAME]`.
#[derive(Debug, Args)]
pub struct LabHealArgs {
    /// The partitioned member [default: all].
    pub name: Option<String>,
    #[command(flatten)]
    pub lab: LabDirArgs,
}

/// Runs one `skiff lab` command.
pub fn run(command: LabCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        match command {
            LabCommand::Up(args) => supervisor::up(args).await,
            LabCommand::Status(args) => state::print_status(&args.dir).await,
            LabCommand::Kill(args) => {
                control::one_request(&args.lab.dir, "kill", Some(&args.name)).await
            }
            LabCommand::Restart(args) => {
                control::one_request(&args.lab.dir, "restart", Some(&args.name)).await
            }
            LabCommand::Partition(args) => {
                control::one_request(&args.lab.dir, "partition", Some(&args.name)).await
            }
            LabCommand::Heal(args) => {
                control::one_request(&args.lab.dir, "heal", args.name.as_deref()).await
            }
            LabCommand::Down(args) => control::down(&args.dir).await,
        }
    });
    if let Err(err) = result {
        // The message says what is wrong ("no lab is running in …"); a backtrace would not.
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
