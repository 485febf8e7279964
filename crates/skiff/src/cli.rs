//! The command line: one clap subcommand per component or client action.
//!
//! Subcommands are added as the component behind them works; none pretends.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bench::BenchCommand;

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
    /// Print the logs for a container in a pod (as kubectl logs).
    Logs(LogsArgs),
    /// Execute a command in a container (as kubectl exec).
    Exec(ExecArgs),
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

/// `skiff logs`: flags named as kubectl's.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The pod, as NAME or pod/NAME.
    pub pod: String,
    /// The container [default: the pod's only container].
    #[arg(short, long)]
    pub container: Option<String>,
    /// Keep streaming the log as it grows.
    #[arg(short, long)]
    pub follow: bool,
    /// The log of the container's previous, terminated instance.
    #[arg(short, long)]
    pub previous: bool,
    /// Lines of recent log to show; -1 shows all.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// Prefix each line with its timestamp.
    #[arg(long)]
    pub timestamps: bool,
    /// The most bytes of log to show [default: no limit].
    #[arg(long)]
    pub limit_bytes: Option<i64>,
    /// The namespace [default: default].
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `skiff exec`: flags named as kubectl's.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The pod, as NAME or pod/NAME.
    pub pod: String,
    /// The container [default: the pod's only container].
    #[arg(short, long)]
    pub container: Option<String>,
    /// Pass standard input to the command.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Ask for a terminal (accepted; skiff's exec has none).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The namespace [default: default].
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
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
