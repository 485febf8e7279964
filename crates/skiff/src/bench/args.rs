//! The flags of `skiff bench`: one clap subcommand per benchmark, each turned into
//! its workload's `Config`.
//!
//! They live beside the benchmarks rather than in `cli.rs`, so that the command line
//! includes them and the benchmarks need nothing from it.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::api::{self, Workload};
use super::common::{normalize_endpoint, parse_duration, BenchError, Op, OutputFormat};
use super::{controllers, kv, scheduler};

/// The benchmarks `skiff bench` can run.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Key-value load through etcd's v3 API: put, get, get-serializable, txn or watch.
    Kv(KvArgs),
    /// Kubernetes API load through skiff's API server: pod creates, watches or lists.
    Api(ApiArgs),
    /// A node's costs: pod startup latency (create → Running), or memory per hollow node.
    Pods(super::pods::PodsArgs),
    /// Pods scheduled and bound per second, against an in-process API server and store.
    Scheduler(SchedulerArgs),
    /// The controllers at scale in an in-process cluster of hollow nodes:
    /// a ReplicaSet scale-up and a Deployment rollout.
    Controllers(ControllersArgs),
    /// What a cluster costs: `skiff up` and TestCluster start to a Ready node, idle memory.
    Up(super::up::UpArgs),
}

/// The flags of `skiff bench scheduler`; defaults come from [`scheduler::Config::default`].
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Simulated nodes (8 cpu, 32Gi, 110 pods; three zones).
    #[arg(long, default_value_t = scheduler::Config::default().nodes)]
    pub nodes: usize,
    /// Pending pods to schedule (100m cpu, 128Mi; spread over zones; every
    /// twentieth one per host).
    #[arg(long, default_value_t = scheduler::Config::default().pods)]
    pub pods: usize,
    /// Do not record a `Scheduled` Event per pod (kube-scheduler records one).
    #[arg(long)]
    pub no_events: bool,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

impl SchedulerArgs {
    /// The benchmark configuration these flags describe;
    /// [`scheduler::Config::validate`] checks it.
    pub fn config(&self) -> scheduler::Config {
        scheduler::Config {
            nodes: self.nodes,
            pods: self.pods,
            events: !self.no_events,
        }
    }
}

/// The flags of `skiff bench controllers`; defaults from [`controllers::Config::default`].
#[derive(Debug, Args)]
pub struct ControllersArgs {
    /// Hollow nodes (kubelets whose containers run nothing).
    #[arg(long, default_value_t = controllers::Config::default().nodes)]
    pub nodes: usize,
    /// Pods the ReplicaSet is scaled up to.
    #[arg(long, default_value_t = controllers::Config::default().pods)]
    pub pods: i32,
    /// Pods of the Deployment whose image is rolled out.
    #[arg(long, default_value_t = controllers::Config::default().rollout_pods)]
    pub rollout_pods: i32,
}

impl ControllersArgs {
    /// The benchmark's configuration.
    pub fn config(&self) -> controllers::Config {
        controllers::Config {
            nodes: self.nodes,
            pods: self.pods,
            rollout_pods: self.rollout_pods,
            ..controllers::Config::default()
        }
    }
}

/// The flags of `skiff bench api`; defaults come from [`api::Config::default`].
#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The API server to load.
    #[arg(long, default_value_t = api::Config::default().server)]
    pub server: String,
    /// What to measure.
    #[arg(long, value_enum)]
    pub workload: Workload,
    /// The namespace of the workload's pods, created if absent [default: bench-<workload>].
    #[arg(long)]
    pub namespace: Option<String>,
    /// Concurrent clients creating pods, each with one request in flight (create, and
    /// the list workload's preparation).
    #[arg(long, default_value_t = api::Config::default().clients)]
    pub clients: usize,
    /// gRPC connections [default: min(clients, 8); for watch, one per 100 watchers, at most 16].
    #[arg(long)]
    pub conns: Option<usize>,
    /// How long create and watch run: seconds, or with a unit (500ms, 10s, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Watch streams of the watch workload.
    #[arg(long, default_value_t = api::Config::default().watchers)]
    pub watchers: usize,
    /// Writes per second of the watch workload's single writer.
    #[arg(long, default_value_t = api::Config::default().rate)]
    pub rate: u32,
    /// Pods the list workload creates (once, not measured) and lists.
    #[arg(long, default_value_t = api::Config::default().pods)]
    pub pods: u64,
    /// Timed lists of the list workload.
    #[arg(long, default_value_t = api::Config::default().repetitions)]
    pub repetitions: u32,
    /// The lists' resourceVersion: empty for the newest state, "0" for the server's cache.
    #[arg(long, default_value = "")]
    pub resource_version: String,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

impl ApiArgs {
    /// The benchmark configuration these flags describe, with the server URL normalized;
    /// [`api::Config::validate`] checks the rest.
    pub fn config(&self) -> Result<api::Config, BenchError> {
        Ok(api::Config {
            server: normalize_endpoint(&self.server)?,
            workload: self.workload,
            namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| api::Config::default_namespace(self.workload)),
            clients: self.clients,
            conns: self.conns.unwrap_or_else(|| {
                api::Config::default_conns(self.workload, self.clients, self.watchers)
            }),
            duration: self.duration,
            watchers: self.watchers,
            rate: self.rate,
            pods: self.pods,
            repetitions: self.repetitions,
            resource_version: self.resource_version.clone(),
        })
    }
}

/// The flags of `skiff bench kv`; defaults come from [`kv::Config::default`].
#[derive(Debug, Args)]
pub struct KvArgs {
    /// etcd endpoints, comma-separated; connections are spread over them round-robin.
    #[arg(long, value_delimiter = ',', default_values_t = kv::Config::default().endpoints)]
    pub endpoints: Vec<String>,
    /// The operation to measure.
    #[arg(long, value_enum)]
    pub op: Op,
    /// Concurrent clients, each with one request in flight (for watch: watchers).
    #[arg(long, default_value_t = kv::Config::default().clients)]
    pub clients: usize,
    /// gRPC connections shared by the clients [default: min(clients, 8)].
    #[arg(long)]
    pub conns: Option<usize>,
    /// Threads the load generator runs on [default: half the cores, at least 1].
    #[arg(long)]
    pub threads: Option<usize>,
    /// How long to run: seconds, or with a unit (500ms, 10s, 1m). Ignored with --total.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Bytes per value written.
    #[arg(long, default_value_t = kv::Config::default().value_size)]
    pub value_size: usize,
    /// Number of distinct keys used.
    #[arg(long, default_value_t = kv::Config::default().key_space)]
    pub key_space: u64,
    /// Prefix of every key the benchmark touches.
    #[arg(long, default_value_t = kv::Config::default().key_prefix)]
    pub key_prefix: String,
    /// Stop after this many operations (over all clients) instead of after --duration.
    #[arg(long)]
    pub total: Option<u64>,
    /// Use the keys in order, each once per lap of the key space, instead of at random.
    #[arg(long)]
    pub sequential_keys: bool,
    /// Puts per second of the watch workload's single writer.
    #[arg(long, default_value_t = kv::Config::default().put_rate)]
    pub put_rate: u32,
    /// Seed of the random keys and values.
    #[arg(long, default_value_t = kv::Config::default().seed)]
    pub seed: u64,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

impl KvArgs {
    /// `--threads`, or its default.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(kv::Config::default_threads)
    }

    /// The benchmark configuration these flags describe, with endpoints normalized;
    /// [`kv::Config::validate`] checks the rest.
    pub fn config(&self) -> Result<kv::Config, BenchError> {
        let endpoints = self
            .endpoints
            .iter()
            .map(|endpoint| normalize_endpoint(endpoint))
            .collect::<Result<_, _>>()?;
        Ok(kv::Config {
            endpoints,
            op: self.op,
            clients: self.clients,
            conns: self
                .conns
                .unwrap_or_else(|| kv::Config::default_conns(self.clients)),
            threads: self.threads(),
            duration: self.duration,
            value_size: self.value_size,
            key_space: self.key_space,
            key_prefix: self.key_prefix.clone(),
            total: self.total,
            sequential_keys: self.sequential_keys,
            put_rate: self.put_rate,
            seed: self.seed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// `skiff bench` on its own, as the command line parses it.
    #[derive(Debug, Parser)]
    struct Bench {
        #[command(subcommand)]
        command: BenchCommand,
    }

    /// Parses `skiff bench <flags>`.
    fn parse(flags: &[&str]) -> Result<BenchCommand, clap::Error> {
        let args = ["bench"].iter().chain(flags);
        Bench::try_parse_from(args).map(|bench| bench.command)
    }

    fn bench_kv(flags: &[&str]) -> KvArgs {
        match parse(&[&["kv"], flags].concat()).unwrap() {
            BenchCommand::Kv(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn bench_kv_defaults_match_the_documented_ones() {
        let config = bench_kv(&["--op", "put"]).config().unwrap();
        assert_eq!(config.endpoints, vec!["http://127.0.0.1:2379"]);
        assert_eq!(config.op, Op::Put);
        assert_eq!(config.clients, 16);
        assert_eq!(config.conns, 8);
        assert_eq!(config.threads, kv::Config::default_threads());
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.value_size, 256);
        assert_eq!(config.key_space, 10_000);
        assert_eq!(config.key_prefix, "/bench/");
        assert_eq!(config.total, None);
        assert!(!config.sequential_keys);
    }

    #[test]
    fn bench_kv_parses_every_flag() {
        let args = bench_kv(&[
            "--endpoints",
            "http://10.0.0.1:2379,10.0.0.2:2379",
            "--op",
            "get-serializable",
            "--clients",
            "64",
            "--conns",
            "2",
            "--threads",
            "3",
            "--duration",
            "500ms",
            "--value-size",
            "1024",
            "--key-space",
            "1000000",
            "--key-prefix",
            "/load/",
            "--total",
            "1000000",
            "--sequential-keys",
            "--put-rate",
            "200",
            "--seed",
            "7",
            "--output",
            "json",
        ]);
        assert_eq!(args.output, OutputFormat::Json);
        let config = args.config().unwrap();
        assert_eq!(
            config.endpoints,
            vec!["http://10.0.0.1:2379", "http://10.0.0.2:2379"]
        );
        assert_eq!(config.op, Op::GetSerializable);
        assert_eq!((config.clients, config.conns, config.threads), (64, 2, 3));
        assert_eq!(config.duration, Duration::from_millis(500));
        assert_eq!(config.value_size, 1024);
        assert_eq!(config.key_space, 1_000_000);
        assert_eq!(config.key_prefix, "/load/");
        assert_eq!(config.total, Some(1_000_000));
        assert!(config.sequential_keys);
        assert_eq!((config.put_rate, config.seed), (200, 7));
    }

    #[test]
    fn bench_kv_uses_one_connection_per_client_below_eight() {
        let config = bench_kv(&["--op", "txn", "--clients", "3"])
            .config()
            .unwrap();
        assert_eq!(config.conns, 3);
    }

    #[test]
    fn bench_kv_requires_a_known_op() {
        let err = parse(&["kv"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err = parse(&["kv", "--op", "delete"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        for op in ["put", "get", "get-serializable", "txn", "watch"] {
            assert_eq!(bench_kv(&["--op", op]).op.to_string(), op);
        }
    }

    #[test]
    fn bench_kv_rejects_a_malformed_duration() {
        let err = parse(&["kv", "--op", "put", "--duration", "soon"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn bench_kv_refuses_tls_endpoints_when_building_the_config() {
        let err = bench_kv(&["--op", "put", "--endpoints", "https://etcd:2379"])
            .config()
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
    }

    #[test]
    fn bench_controllers_takes_the_scale_of_the_issue_by_default() {
        let args = match parse(&["controllers", "--nodes", "3"]).unwrap() {
            BenchCommand::Controllers(args) => args,
            other => panic!("parsed as {other:?}"),
        };
        let config = args.config();
        assert_eq!(
            (config.nodes, config.pods, config.rollout_pods),
            (3, 10_000, 1_000)
        );
        assert!(config.validate().is_ok());
        let none = match parse(&["controllers", "--pods", "0"]).unwrap() {
            BenchCommand::Controllers(args) => args.config(),
            other => panic!("parsed as {other:?}"),
        };
        assert!(none.validate().is_err());
    }

    fn bench_api(flags: &[&str]) -> ApiArgs {
        match parse(&[&["api"], flags].concat()).unwrap() {
            BenchCommand::Api(args) => args,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn bench_api_defaults_match_the_documented_ones() {
        let config = bench_api(&["--workload", "create"]).config().unwrap();
        assert_eq!(config.server, "http://127.0.0.1:6443");
        assert_eq!(config.workload, Workload::Create);
        assert_eq!(config.namespace, "bench-create");
        assert_eq!((config.clients, config.conns), (64, 8));
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!((config.watchers, config.rate), (1000, 100));
        assert_eq!((config.pods, config.repetitions), (10_000, 10));
        assert_eq!(config.resource_version, "");
        let watch = bench_api(&["--workload", "watch"]).config().unwrap();
        assert_eq!((watch.namespace.as_str(), watch.conns), ("bench-watch", 10));
    }

    #[test]
    fn bench_api_parses_every_flag() {
        let args = bench_api(&[
            "--server",
            "10.0.0.1:6443",
            "--workload",
            "list",
            "--namespace",
            "load",
            "--clients",
            "2",
            "--conns",
            "3",
            "--duration",
            "1s",
            "--watchers",
            "5",
            "--rate",
            "20",
            "--pods",
            "50",
            "--repetitions",
            "4",
            "--resource-version",
            "0",
            "--output",
            "json",
        ]);
        assert_eq!(args.output, OutputFormat::Json);
        let config = args.config().unwrap();
        assert_eq!(config.server, "http://10.0.0.1:6443");
        assert_eq!(config.workload, Workload::List);
        assert_eq!(config.namespace, "load");
        assert_eq!((config.clients, config.conns), (2, 3));
        assert_eq!(config.duration, Duration::from_secs(1));
        assert_eq!((config.watchers, config.rate), (5, 20));
        assert_eq!((config.pods, config.repetitions), (50, 4));
        assert_eq!(config.resource_version, "0");
    }

    #[test]
    fn bench_api_requires_a_known_workload() {
        let err = parse(&["api"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err = parse(&["api", "--workload", "delete"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn bench_scheduler_defaults_and_flags() {
        let parsed = |flags: &[&str]| match parse(&[&["scheduler"], flags].concat()).unwrap() {
            BenchCommand::Scheduler(args) => args,
            other => panic!("parsed as {other:?}"),
        };
        let defaults = parsed(&[]).config();
        assert_eq!(
            (defaults.nodes, defaults.pods, defaults.events),
            (1000, 10_000, true)
        );
        let args = parsed(&[
            "--nodes",
            "5000",
            "--pods",
            "20000",
            "--no-events",
            "--output",
            "json",
        ]);
        assert_eq!(args.output, OutputFormat::Json);
        let config = args.config();
        assert_eq!(
            (config.nodes, config.pods, config.events),
            (5000, 20_000, false)
        );
    }
}
