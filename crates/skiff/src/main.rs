//! `skiff`: one binary that runs any part of the control plane.
//!
//! `main` only parses flags, sets up tracing and hands over to the subcommand's
//! `run`; everything a subcommand does lives in the library crates.
//!
//! # Layout
//! - `cli`: the command line (clap), one subcommand per component or client action.
//! - `store`, `apiserver`, `kubelet`, `scheduler`, `controller_manager`, `up`:
//!   the servers' subcommands, flags turned into the library's config and
//!   `run` until a signal; `up` runs them all in one process.
//! - `lab`: `skiff lab`, a multi-process lab cluster on one machine and the
//!   supervisor that starts, kills, restarts and partitions its processes.
//! - `component`: what the kubelet, scheduler and controller manager share
//!   (finding the API server, leader-election flags).
//! - `shutdown`: the one graceful-shutdown path of those servers (SIGINT/SIGTERM).
//! - `image`: `skiff image import`, OCI image tarballs into containerd.
//! - `kubectl`: the client commands (`get`, `apply`, `delete`, `describe`,
//!   `rollout`, …).
//! - `bench`: `skiff bench`, load generators for a store and for the API server.
//!
//! # Where to start
//! `main` below: one match arm per subcommand.

#![forbid(unsafe_code)]

mod apiserver;
mod bench;
mod cli;
mod component;
mod controller_manager;
mod flags;
mod image;
mod kubeconfig;
mod kubectl;
mod kubelet;
mod lab;
mod scheduler;
mod shutdown;
mod store;
mod up;

use std::io::IsTerminal;

use clap::Parser;
use mimalloc::MiMalloc;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};

/// mimalloc instead of the system allocator: gRPC and the store allocate many
/// small, short-lived buffers, which glibc's allocator serves more slowly.
/// Built without transparent huge pages (the `no_thp` feature in the workspace
/// manifest): with them, the first touch of each 2 MiB of new heap zeroes all of
/// it, which stalled a fresh API server's writes for 100-200 ms when its first
/// thousand watch streams grew the heap, and kept pages resident that hold
/// little.
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Version => {
            println!("{}", cli::version_line());
            Ok(())
        }
        Command::Store(args) => store::run(args),
        Command::Apiserver(args) => apiserver::run(args),
        Command::Up(args) => up::run(args),
        Command::Lab(command) => lab::run(command),
        Command::Get(args) => kubectl::run(kubectl::Verb::Get(args)),
        Command::Apply(args) => kubectl::run(kubectl::Verb::Apply(args)),
        Command::Delete(args) => kubectl::run(kubectl::Verb::Delete(args)),
        Command::Describe(args) => kubectl::run(kubectl::Verb::Describe(args)),
        Command::Logs(args) => kubectl::run(kubectl::Verb::Logs(args)),
        Command::Exec(args) => kubectl::exec::run_blocking(args),
        Command::Rollout(command) => kubectl::run(kubectl::Verb::Rollout(command)),
        Command::Trace(command) => kubectl::run(kubectl::Verb::Trace(command)),
        Command::Image(command) => image::run(command),
        Command::Kubelet(args) => kubelet::run(args),
        Command::Scheduler(args) => scheduler::run(args),
        Command::ControllerManager(args) => controller_manager::run(args),
        Command::Bench(command) => {
            let runtime = bench::runtime(&command)?;
            let result = runtime.block_on(bench::run(command));
            drop(runtime);
            if let Err(err) = result {
                // The message says what to fix ("cannot connect to …"); a backtrace would not.
                eprintln!("error: {err}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// Logs go to stderr; `RUST_LOG` picks what is shown (default: info).
/// Colour codes only when stderr is a terminal, so a log written to a file
/// or a pipe reads as plain text.
fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
