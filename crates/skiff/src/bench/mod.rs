//! `skiff bench`: load generators that measure a store through etcd's v3 gRPC API.
//!
//! Because the load goes through etcd's own wire protocol, the same command measures
//! skiff-store and a real etcd, so the two can be compared on one machine with one tool
//! (`scripts/bench-store.sh` does exactly that; `docs/benchmarks.md` explains the numbers).
//!
//! # What is measured
//! A *client* is one task issuing one request at a time: it sends a request, waits for the
//! answer, records how long that took and sends the next one (a closed loop, as in etcd's own
//! `benchmark` tool). Clients share a few HTTP/2 connections, round-robin, because that is
//! how real etcd clients (kube-apiserver among them) multiplex many requests. Latency is the
//! time from sending a request to having its answer, recorded in an HDR histogram with
//! microsecond precision; throughput is completed operations divided by wall-clock time.
//! Failed requests are counted apart and kept out of the latency histogram.
//!
//! etcd's `benchmark` tool (`tools/benchmark` in the etcd repository) measures the same
//! things with the same closed-loop model; differences worth knowing when comparing numbers:
//! keys here are readable decimal names (`/bench/0000000042`) rather than random binary keys,
//! `--total` and `--duration` are both available for every operation, and the watch workload
//! measures put-to-event latency with a timestamp carried in each value.
//!
//! # Layout
//! - this module: the [`run`] entry and the runtime each benchmark runs on.
//! - `args`: the flags of each `skiff bench` subcommand ([`BenchCommand`]).
//! - `common`: what the workloads share: connections, the stop condition (`Budget`),
//!   error counting (`ErrorLog`), latency histograms, the errors, and the key-value
//!   operations (`Op`) with the `Report` printed at the end of their runs.
//! - [`kv`]: the key-value workloads (put, get, get-serializable, txn) and their configuration.
//! - [`watch`]: the watch workload (many watchers, one paced writer).
//! - [`api`]: `skiff bench api`, the same measurements one level up, through the API
//!   server's gRPC service: pod creates, pod watches and pod lists.
//! - `pods`: `skiff bench pods`, a node's costs: pod startup latency on a real
//!   runtime, and memory per hollow node.
//! - [`scheduler`]: `skiff bench scheduler`, pods scheduled and bound per second by the
//!   scheduler against an API server and store it starts in-process.
//! - [`controllers`]: `skiff bench controllers`, a ReplicaSet scale-up and a Deployment
//!   rollout in an in-process cluster of hollow nodes.
//!
//! # Where to start
//! [`run`] reads top to bottom: validate, connect, run the workload, print the report.
//!
//! # Caveats
//! - Plain `http://` only: skiff is built without a TLS stack.
//! - One process generates the load; on a small machine the load generator competes with
//!   the server for CPU, which is why comparisons should run both targets the same way.
//! - No rate limiting for put/get/txn (etcd's `--rate`): every client goes as fast as it can.

pub(crate) mod api;
mod args;
mod common;
pub(crate) mod controllers;
pub(crate) mod kv;
mod pods;
pub(crate) mod scheduler;
mod up;
pub(crate) mod watch;

pub use args::BenchCommand;
pub use common::BenchError;
use common::{connect, Op};

/// The runtime a `skiff bench …` command runs on. `kv` runs on `--threads` threads: with
/// one, a single event loop, where a response wakes its client with no hand-off between
/// threads (the cheapest per request); with more, a multi-threaded runtime of that many
/// workers. `api` and `scheduler` use a multi-threaded runtime of one worker per core.
pub fn runtime(command: &BenchCommand) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = match command {
        BenchCommand::Kv(args) => args.threads(),
        BenchCommand::Api(_)
        | BenchCommand::Pods(_)
        | BenchCommand::Scheduler(_)
        | BenchCommand::Controllers(_)
        | BenchCommand::Up(_) => return tokio::runtime::Runtime::new(),
    };
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// Runs one `skiff bench …` command and prints its report on stdout.
pub async fn run(command: BenchCommand) -> Result<(), BenchError> {
    match command {
        BenchCommand::Kv(args) => {
            let output = args.output;
            let config = args.config()?;
            config.validate()?;
            let channels = connect(&config.endpoints, config.conns).await?;
            let report = match config.op {
                Op::Watch => watch::run(&config, &channels).await?,
                _ => kv::run(&config, &channels).await?,
            };
            print!("{}", report.render(output)?);
            Ok(())
        }
        BenchCommand::Api(args) => {
            let output = args.output;
            let config = args.config()?;
            config.validate()?;
            let report = api::run(&config).await?;
            print!("{}", report.render(output)?);
            Ok(())
        }
        BenchCommand::Pods(args) => {
            let report = pods::run(&args).await?;
            print!("{}", report.render(args.output)?);
            Ok(())
        }
        BenchCommand::Scheduler(args) => {
            let config = args.config();
            config.validate()?;
            let report = scheduler::run(&config).await?;
            print!("{}", report.render(args.output)?);
            Ok(())
        }
        BenchCommand::Controllers(args) => {
            let config = args.config();
            config.validate()?;
            print!("{}", controllers::run(&config).await?.render());
            Ok(())
        }
        BenchCommand::Up(args) => {
            print!("{}", up::run(&args).await?.render(&args));
            Ok(())
        }
    }
}
