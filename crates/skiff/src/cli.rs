//! The command line: one clap subcommand per component or client action.
//!
//! Subcommands are added as the component behind them works; none pretends.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::bench::api::{self, Workload};
use crate::bench::kv::{self, Op};
use crate::bench::{normalize_endpoint, parse_duration, BenchError, OutputFormat};

/// A Kubernetes-style control plane: an etcd-compatible store, an API server,
/// a scheduler, controllers and a kubelet, in one binary.
#[derive(Debug, Parser)]
#[command(name = "skiff", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Everything `skiff` can do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print skiff's version.
    Version,
    /// Run an etcd-compatible store member (etcd's flags).
    Store(StoreArgs),
    /// Run the API server (gRPC) against etcd-compatible stores.
    Apiserver(ApiserverArgs),
    /// Run a one-machine control plane: a store and the API server in one process.
    Up(UpArgs),
    /// Measure an etcd-API store (skiff-store or etcd) under load.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Display one or many objects (as kubectl get).
    Get(GetArgs),
    /// Create or update objects from manifest files (as kubectl apply).
    Apply(ApplyArgs),
    /// Delete objects by kind and name, or those in manifest files (as kubectl delete).
    Delete(DeleteArgs),
    /// Show the details of objects and their events (as kubectl describe).
    Describe(DescribeArgs),
}

/// The benchmarks `skiff bench` can run.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Key-value load through etcd's v3 API: put, get, get-serializable, txn or watch.
    Kv(KvArgs),
    /// Kubernetes API load through skiff's API server: pod creates, watches or lists.
    Api(ApiArgs),
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

/// `skiff store`: flags named as etcd's.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Path to the data directory [default: <name>.skiff].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// List of URLs to listen on for client traffic.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub listen_client_urls: Vec<String>,
    /// List of this member's client URLs to advertise [default: the listen URLs].
    #[arg(long, value_delimiter = ',')]
    pub advertise_client_urls: Vec<String>,
    /// List of this member's peer URLs to advertise to the rest of the cluster.
    #[arg(long, value_delimiter = ',', default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: Vec<String>,
    /// List of URLs to listen on for peer traffic [default: the advertised peer
    /// URLs when --initial-cluster is given, else none].
    #[arg(long, value_delimiter = ',')]
    pub listen_peer_urls: Vec<String>,
    /// Initial cluster configuration for bootstrapping, as name=url,name=url.
    #[arg(long, value_delimiter = ',', value_parser = parse_cluster_member)]
    pub initial_cluster: Vec<(String, String)>,
    /// Initial cluster state: 'new' to start a cluster, 'existing' to join one
    /// (after `member add`).
    #[arg(long, default_value = "new", value_parser = ["new", "existing"])]
    pub initial_cluster_state: String,
    /// Initial cluster token for the etcd cluster during bootstrap.
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// Time (in milliseconds) of a heartbeat interval.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Time (in milliseconds) for an election to timeout.
    #[arg(long, default_value_t = 1000)]
    pub election_timeout: u64,
    /// Number of committed transactions to trigger a snapshot to disk.
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_count: u64,
    /// Number of entries kept in the log behind a snapshot, for slow followers
    /// to catch up from.
    #[arg(long, default_value_t = 5_000)]
    pub snapshot_catchup_entries: u64,
    /// Maximum client request size in bytes the server will accept.
    #[arg(long, default_value_t = 1536 * 1024)]
    pub max_request_bytes: usize,
    /// Maximum number of operations permitted in a transaction.
    #[arg(long, default_value_t = 128)]
    pub max_txn_ops: usize,
}

/// Parses one `name=url` of `--initial-cluster`.
fn parse_cluster_member(item: &str) -> Result<(String, String), String> {
    match item.split_once('=') {
        Some((name, url)) if !name.is_empty() && url.contains("://") => {
            Ok((name.to_string(), url.to_string()))
        }
        _ => Err(format!(
            "{item:?} is not name=url (as infra1=http://127.0.0.1:2380)"
        )),
    }
}

/// The Service address ranges (kube-apiserver's flag names).
#[derive(Debug, Args)]
pub struct ServiceRangeArgs {
    /// CIDR range from which Service ClusterIPs are allocated.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,
    /// Port range reserved for Services of type NodePort, as LOW-HIGH.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
}

/// `skiff apiserver`: flags named as kube-apiserver's.
#[derive(Debug, Args)]
pub struct ApiserverArgs {
    /// List of etcd servers to connect with (scheme://ip:port), comma separated.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub etcd_servers: Vec<String>,
    /// The address to serve the gRPC API on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub ranges: ServiceRangeArgs,
}

/// `skiff up`: a store and the API server in one process.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the store keeps its data.
    #[arg(long, default_value = "./skiff-data")]
    pub data_dir: PathBuf,
    /// The address to serve the gRPC API on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: std::net::SocketAddr,
    /// List of URLs to serve etcd's API on, for outside store clients.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub listen_client_urls: Vec<String>,
    #[command(flatten)]
    pub ranges: ServiceRangeArgs,
}

/// Where the kubectl-like commands find the API server.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The API server's URL [default: `server` in ~/.skiff/config, else http://127.0.0.1:6443].
    #[arg(long, env = "SKIFF_SERVER")]
    pub server: Option<String>,
}

/// How `skiff get` prints objects (kubectl's `-o`); parsed from text by
/// `FromStr` in the kubectl module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetOutput {
    /// The table with extra columns.
    Wide,
    /// YAML: the object, or a List of several.
    Yaml,
    /// JSON: the object, or a List of several.
    Json,
    /// `kind/name` per object.
    Name,
    /// `jsonpath=TEMPLATE`: the template's text over the object or List.
    JsonPath(String),
    /// `custom-columns=HEADER:PATH,…`: a table of the given columns.
    CustomColumns(String),
}

/// `skiff get`: flags named as kubectl's.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The kinds of object, comma-separated (pods, po,svc, deployments.apps, …),
    /// or KIND/NAME.
    pub kind: String,
    /// Names of the objects to show [default: all], or more KIND/NAME.
    pub names: Vec<String>,
    /// The namespace [default: default].
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Label selector, such as app=web,tier!=db.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector, such as status.phase=Running.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Output format: wide, yaml, json, name, jsonpath=TEMPLATE or
    /// custom-columns=HEADER:PATH,….
    #[arg(short, long)]
    pub output: Option<GetOutput>,
    /// Print tables without their header row.
    #[arg(long)]
    pub no_headers: bool,
    /// Add a LABELS column with each object's labels.
    #[arg(long)]
    pub show_labels: bool,
    /// Name each object with its type (pod/web) even when all are of one type.
    #[arg(long)]
    pub show_kind: bool,
    /// Add a column per label key (comma-separated, or the flag repeated).
    #[arg(short = 'L', long = "label-columns", value_delimiter = ',')]
    pub label_columns: Vec<String>,
    /// Exit successfully when a named object does not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Sort each type's objects by this field, such as .metadata.name.
    #[arg(long)]
    pub sort_by: Option<String>,
    /// After listing, print changes as they happen.
    #[arg(short, long)]
    pub watch: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `skiff apply`: flags named as kubectl's.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest files or directories; `-` for standard input.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// The namespace of objects whose manifest names none [default: default].
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `skiff delete`: flags named as kubectl's.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The kind of object, or KIND/NAME; omit with -f.
    pub kind: Option<String>,
    /// Names of the objects to delete.
    pub names: Vec<String>,
    /// Delete the objects in these manifest files or directories instead.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// The namespace [default: default].
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Treat objects that do not exist as deleted.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Delete the objects of the type that match this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete every object of the type in the namespace.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `skiff describe`: flags named as kubectl's.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// The kind of object, or KIND/NAME.
    pub kind: String,
    /// Names of the objects to describe [default: all in the namespace].
    pub names: Vec<String>,
    /// The namespace [default: default].
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// What `skiff version` prints.
pub fn version_line() -> String {
    format!("skiff version {}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn version_subcommand_parses() {
        let cli = Cli::try_parse_from(["skiff", "version"]).unwrap();
        assert!(matches!(cli.command, Command::Version));
    }

    #[test]
    fn unknown_subcommand_is_rejected_with_its_name() {
        let err = Cli::try_parse_from(["skiff", "frobnicate"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidSubcommand);
        assert!(err.to_string().contains("frobnicate"), "{err}");
    }

    #[test]
    fn a_subcommand_is_required() {
        let err = Cli::try_parse_from(["skiff"]).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
    }

    fn bench_kv(flags: &[&str]) -> KvArgs {
        let args = ["skiff", "bench", "kv"].iter().chain(flags);
        match Cli::try_parse_from(args).unwrap().command {
            Command::Bench(BenchCommand::Kv(args)) => args,
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
        let err = Cli::try_parse_from(["skiff", "bench", "kv"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err = Cli::try_parse_from(["skiff", "bench", "kv", "--op", "delete"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        for op in ["put", "get", "get-serializable", "txn", "watch"] {
            assert_eq!(bench_kv(&["--op", op]).op.to_string(), op);
        }
    }

    #[test]
    fn bench_kv_rejects_a_malformed_duration() {
        let err =
            Cli::try_parse_from(["skiff", "bench", "kv", "--op", "put", "--duration", "soon"])
                .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn bench_kv_refuses_tls_endpoints_when_building_the_config() {
        let err = bench_kv(&["--op", "put", "--endpoints", "https://etcd:2379"])
            .config()
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
    }

    fn bench_api(flags: &[&str]) -> ApiArgs {
        let args = ["skiff", "bench", "api"].iter().chain(flags);
        match Cli::try_parse_from(args).unwrap().command {
            Command::Bench(BenchCommand::Api(args)) => args,
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
        let err = Cli::try_parse_from(["skiff", "bench", "api"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let err =
            Cli::try_parse_from(["skiff", "bench", "api", "--workload", "delete"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn store_flags_follow_etcds_names_and_defaults() {
        let cli = Cli::try_parse_from([
            "skiff",
            "store",
            "--data-dir",
            "/tmp/d",
            "--listen-client-urls",
            "http://127.0.0.1:1,http://127.0.0.2:2",
        ])
        .unwrap();
        let Command::Store(args) = cli.command else {
            panic!("not the store command")
        };
        assert_eq!(args.name, "default");
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(
            args.listen_client_urls,
            ["http://127.0.0.1:1", "http://127.0.0.2:2"]
        );
        assert_eq!(args.max_request_bytes, 1536 * 1024);
        assert!(args.advertise_client_urls.is_empty());
    }

    #[test]
    fn store_rejects_a_non_numeric_request_limit() {
        let err =
            Cli::try_parse_from(["skiff", "store", "--max-request-bytes", "lots"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn apiserver_and_up_flags_have_kubernetes_defaults() {
        let Command::Apiserver(args) = Cli::try_parse_from([
            "skiff",
            "apiserver",
            "--etcd-servers",
            "http://127.0.0.1:1,http://127.0.0.1:2",
        ])
        .unwrap()
        .command
        else {
            panic!("not the apiserver command")
        };
        assert_eq!(
            args.etcd_servers,
            ["http://127.0.0.1:1", "http://127.0.0.1:2"]
        );
        assert_eq!(args.listen.to_string(), "127.0.0.1:6443");
        assert_eq!(args.ranges.service_cluster_ip_range, "10.96.0.0/12");
        let Command::Up(args) = Cli::try_parse_from(["skiff", "up"]).unwrap().command else {
            panic!("not the up command")
        };
        assert_eq!(args.data_dir, PathBuf::from("./skiff-data"));
        assert_eq!(args.listen_client_urls, ["http://127.0.0.1:2379"]);
    }

    #[test]
    fn version_line_names_the_package_version() {
        assert_eq!(
            version_line(),
            format!("skiff version {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
