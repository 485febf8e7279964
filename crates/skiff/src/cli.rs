//! The command line: one clap subcommand per component or client action.
//!
//! Subcommands are added as the component behind them works; none pretends.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bench::BenchCommand;
pub use crate::flags::{parse_duration, RuntimeName};
use crate::lab::LabCommand;

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
    /// Run a one-machine cluster in one process: a store, the API server, the
    /// scheduler, the controllers and a kubelet.
    Up(UpArgs),
    /// Run a multi-node lab cluster on this machine as separate processes.
    #[command(subcommand)]
    Lab(LabCommand),
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
    /// Manage the rollout of a Deployment (as kubectl rollout).
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Show an object's journey through the cluster, step by step.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Run a node agent: register a Node and run the pods bound to it.
    Kubelet(KubeletArgs),
    /// Run the scheduler: bind every pod without a node to one.
    Scheduler(SchedulerArgs),
    /// Run the controllers (ReplicaSet, Deployment, Job, CronJob, Endpoints, …).
    ControllerManager(ControllerManagerArgs),
    /// Manage the node's container images (containerd).
    #[command(subcommand)]
    Image(ImageCommand),
}

/// A component `skiff up` runs beside the store and the API server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Component {
    /// The scheduler.
    Scheduler,
    /// The controller manager.
    ControllerManager,
    /// The node's kubelet.
    Kubelet,
}

/// `skiff kubelet`: flags named as the kubelet's.
#[derive(Debug, Args)]
pub struct KubeletArgs {
    /// The Node's name [default: this host's name].
    #[arg(long)]
    pub node_name: Option<String>,
    /// The container runtime.
    #[arg(long, value_enum, default_value = "auto")]
    pub runtime: RuntimeName,
    /// Where pod directories, volumes, logs and the process runtime live.
    #[arg(long, default_value = "/var/lib/skiff/kubelet")]
    pub root_dir: PathBuf,
    /// The node's IP, reported in its status and as the pods' hostIP.
    #[arg(long, default_value = "127.0.0.1")]
    pub node_ip: std::net::IpAddr,
    /// The address the kubelet's server (logs, exec) listens on.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: std::net::IpAddr,
    /// The port of the kubelet's server; 0 for none.
    #[arg(long, default_value_t = 10250)]
    pub port: u16,
    /// The node's `topology.kubernetes.io/zone` label.
    #[arg(long)]
    pub zone: Option<String>,
    /// The node's `node.kubernetes.io/instance-type` label.
    #[arg(long)]
    pub instance_type: Option<String>,
    /// The node Lease's duration in seconds; it is renewed every quarter of it.
    #[arg(long, default_value_t = 40)]
    pub node_lease_duration_seconds: i32,
    /// How often the node's status is posted (such as 10s).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub node_status_update_frequency: std::time::Duration,
    /// containerd's gRPC socket (the containerd runtime).
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// Import every `*.tar` OCI image layout in this directory into
    /// containerd before starting (the containerd runtime).
    #[arg(long)]
    pub image_dir: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Kubernetes' leader-election flags, shared by the scheduler and the
/// controller manager.
#[derive(Debug, Args)]
pub struct LeaderElectionArgs {
    /// Run only while holding the Lease, so that one of several copies acts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// How long a Lease stays held without renewal (such as 15s).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: std::time::Duration,
    /// How long the leader keeps trying to renew before it stops leading.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: std::time::Duration,
    /// How often to try to acquire or renew the Lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: std::time::Duration,
    /// The namespace of the Lease.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
}

/// `skiff scheduler`: flags named as kube-scheduler's.
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// A KubeSchedulerConfiguration YAML file with the profiles.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `skiff controller-manager`: flags named as kube-controller-manager's.
#[derive(Debug, Args)]
pub struct ControllerManagerArgs {
    /// Controllers to run: `*` for all, a name to add one, `-name` to leave one out.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// Workers per controller.
    #[arg(long, default_value_t = 5)]
    pub concurrent_syncs: usize,
    /// How long a node may go without renewing its Lease before it is Unknown.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,
    /// How often node health is looked at.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: std::time::Duration,
    /// Nodes whose pods are evicted per second.
    #[arg(long, default_value_t = 0.1)]
    pub node_eviction_rate: f64,
    /// The eviction rate when a zone is mostly down.
    #[arg(long, default_value_t = 0.01)]
    pub secondary_node_eviction_rate: f64,
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `skiff image …`.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Import OCI image layout tarballs into containerd's content store, create
    /// the images and unpack them, so pods can run them without a registry.
    Import(ImageImportArgs),
}

/// `skiff image import FILE…`.
#[derive(Debug, Args)]
pub struct ImageImportArgs {
    /// OCI image layout tarballs (`docker save`, `ctr image export`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// containerd's gRPC socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// The containerd namespace the kubelet runs pods in.
    #[arg(long, default_value = "skiff")]
    pub namespace: String,
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
    /// The address to serve the API on (gRPC and REST).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: std::net::SocketAddr,
    /// The serving certificate for TLS (PEM; intermediates after it).
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// Verify client certificates signed by this CA (PEM) when clients present them.
    #[arg(long, requires = "tls_cert_file")]
    pub client_ca_file: Option<PathBuf>,
    /// Serve the REST API over plain HTTP too (without it, REST needs TLS).
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub ranges: ServiceRangeArgs,
}

/// `skiff up`: a whole one-machine cluster in one process.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the store keeps its data.
    #[arg(long, default_value = "./skiff-data")]
    pub data_dir: PathBuf,
    /// The address to serve the API on (gRPC, and REST over TLS).
    #[arg(long, default_value = "127.0.0.1:6443")]
    pub listen: std::net::SocketAddr,
    /// List of URLs to serve etcd's API on, for outside store clients.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub listen_client_urls: Vec<String>,
    /// The container runtime of the cluster's one kubelet.
    #[arg(long, value_enum, default_value = "auto")]
    pub runtime: RuntimeName,
    /// The kubelet's Node name [default: this host's name].
    #[arg(long)]
    pub node_name: Option<String>,
    /// The port of the kubelet's server (logs, exec) on 127.0.0.1.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// containerd's gRPC socket (the containerd runtime).
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// Components not to run, comma-separated: `scheduler`,
    /// `controller-manager`, `kubelet` (the store and the API server always run).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub disable: Vec<Component>,
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
    /// Keep metadata.managedFields in YAML and JSON output.
    #[arg(long)]
    pub show_managed_fields: bool,
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
    /// Apply on the server (server-side apply) instead of merging here.
    #[arg(long)]
    pub server_side: bool,
    /// With --server-side: take over fields other managers own instead of failing.
    #[arg(long)]
    pub force_conflicts: bool,
    /// The field manager the writes are recorded under [default: kubectl for
    /// --server-side, kubectl-client-side-apply otherwise].
    #[arg(long)]
    pub field_manager: Option<String>,
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
    /// What happens to the objects' dependents: background (deleted after
    /// their owner), foreground (deleted before it) or orphan (kept, their
    /// ownerReferences removed); `true` and `false` are deprecated spellings
    /// of background and orphan.
    #[arg(long, default_value = "background", num_args = 0..=1,
          default_missing_value = "background", require_equals = true)]
    pub cascade: String,
    /// Seconds given to the objects to terminate gracefully; -1 uses each
    /// object's own default, 0 means 1 unless --force is given.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// Signal the objects to shut down at once (same as --grace-period=1).
    #[arg(long)]
    pub now: bool,
    /// Remove the objects from the API at once, without waiting for the
    /// node to confirm that pods stopped (--grace-period=0).
    #[arg(long)]
    pub force: bool,
    /// Wait until the objects are gone before returning.
    #[arg(long, default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", require_equals = true,
          action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long to wait for the objects to be gone; 0 waits for a week.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `skiff rollout …`: kubectl's subcommands for Deployments.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Watch a rollout until it completes (as kubectl rollout status).
    Status(RolloutStatusArgs),
    /// Show the revisions of a Deployment (as kubectl rollout history).
    History(RolloutHistoryArgs),
    /// Roll back to a previous revision (as kubectl rollout undo).
    Undo(RolloutUndoArgs),
    /// Stop the controller from rolling out template changes (as kubectl rollout pause).
    Pause(RolloutArgs),
    /// Let a paused Deployment roll out again (as kubectl rollout resume).
    Resume(RolloutArgs),
    /// Replace every pod through a new rollout (as kubectl rollout restart).
    Restart(RolloutArgs),
}

/// `skiff trace`: what the cluster did with an object, in order.
#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// A pod's journey: stored, created by its owner, scheduled, started, ready, ended.
    Pod(TracePodArgs),
}

/// `skiff trace pod NAME`.
#[derive(Debug, Args)]
pub struct TracePodArgs {
    /// The pod, as NAME or pod/NAME.
    pub pod: String,
    /// The namespace [default: default].
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// The Deployments a rollout command acts on.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// The kind (deployment, deploy, deployments.apps), or KIND/NAME.
    pub kind: String,
    /// Names of the objects, or more KIND/NAME.
    pub names: Vec<String>,
    /// The namespace [default: default].
    #[arg(short, long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `skiff rollout status`: flags named as kubectl's.
#[derive(Debug, Args)]
pub struct RolloutStatusArgs {
    #[command(flatten)]
    pub target: RolloutArgs,
    /// Keep watching until the rollout finishes; with false, print the
    /// status once.
    #[arg(short, long, default_value_t = true, num_args = 0..=1,
          default_missing_value = "true", require_equals = true,
          action = clap::ArgAction::Set)]
    pub watch: bool,
    /// How long to wait before giving up; 0 waits for ever.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
    /// Fail unless the rollout is of this revision (0: any).
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

/// `skiff rollout history`: flags named as kubectl's.
#[derive(Debug, Args)]
pub struct RolloutHistoryArgs {
    #[command(flatten)]
    pub target: RolloutArgs,
    /// Show the pod template of this revision (0: list every revision).
    #[arg(long, default_value_t = 0)]
    pub revision: i64,
}

/// `skiff rollout undo`: flags named as kubectl's.
#[derive(Debug, Args)]
pub struct RolloutUndoArgs {
    #[command(flatten)]
    pub target: RolloutArgs,
    /// The revision to roll back to (0: the one before the current).
    #[arg(long, default_value_t = 0)]
    pub to_revision: i64,
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
    /// Stdin is a TTY: the command runs on a terminal (with -i).
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
    fn image_import_takes_files_and_defaults_to_containerds_socket() {
        let Command::Image(ImageCommand::Import(args)) =
            Cli::try_parse_from(["skiff", "image", "import", "a.tar", "b.tar"])
                .unwrap()
                .command
        else {
            panic!("not the image import command")
        };
        assert_eq!(args.files, [PathBuf::from("a.tar"), PathBuf::from("b.tar")]);
        assert_eq!(
            args.containerd_socket,
            PathBuf::from("/run/containerd/containerd.sock")
        );
        assert_eq!(args.namespace, "skiff");
        let err = Cli::try_parse_from(["skiff", "image", "import"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn kubelet_flags_follow_the_kubelets_names() {
        let Command::Kubelet(args) = Cli::try_parse_from([
            "skiff",
            "kubelet",
            "--node-name",
            "n1",
            "--runtime",
            "hollow",
            "--zone",
            "eu-1a",
            "--instance-type",
            "m5.large",
            "--server",
            "http://10.0.0.1:6443",
        ])
        .unwrap()
        .command
        else {
            panic!("not the kubelet command")
        };
        assert_eq!(args.node_name.as_deref(), Some("n1"));
        assert_eq!(args.runtime, RuntimeName::Hollow);
        assert_eq!(args.zone.as_deref(), Some("eu-1a"));
        assert_eq!(args.instance_type.as_deref(), Some("m5.large"));
        assert_eq!(args.server.server.as_deref(), Some("http://10.0.0.1:6443"));
        assert_eq!(args.port, 10250);
        let err = Cli::try_parse_from(["skiff", "kubelet", "--runtime", "docker"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn leader_election_is_on_unless_turned_off() {
        let Command::Scheduler(args) =
            Cli::try_parse_from(["skiff", "scheduler", "--config", "s.yaml"])
                .unwrap()
                .command
        else {
            panic!("not the scheduler command")
        };
        assert!(args.leader_election.leader_elect);
        assert_eq!(
            args.leader_election.leader_elect_lease_duration,
            std::time::Duration::from_secs(15)
        );
        assert_eq!(args.config, Some(PathBuf::from("s.yaml")));
        let Command::ControllerManager(args) = Cli::try_parse_from([
            "skiff",
            "controller-manager",
            "--leader-elect=false",
            "--controllers",
            "*,-cronjob",
        ])
        .unwrap()
        .command
        else {
            panic!("not the controller-manager command")
        };
        assert!(!args.leader_election.leader_elect);
        assert_eq!(args.controllers, ["*", "-cronjob"]);
    }

    #[test]
    fn rollout_flags_follow_kubectls() {
        let parse = |line: &[&str]| {
            let line = [&["skiff", "rollout"], line].concat();
            match Cli::try_parse_from(line).unwrap().command {
                Command::Rollout(command) => command,
                other => panic!("not rollout: {other:?}"),
            }
        };
        let RolloutCommand::Status(status) = parse(&["status", "deploy/web"]) else {
            panic!("not status")
        };
        assert!(status.watch && status.timeout.is_zero() && status.revision == 0);
        assert_eq!(status.target.kind, "deploy/web");
        let RolloutCommand::Status(status) = parse(&[
            "status",
            "deployment",
            "web",
            "-n",
            "prod",
            "--watch=false",
            "--timeout=2m",
            "--revision",
            "3",
        ]) else {
            panic!("not status")
        };
        assert!(!status.watch);
        assert_eq!(status.timeout, std::time::Duration::from_secs(120));
        assert_eq!(status.revision, 3);
        assert_eq!(status.target.names, ["web"]);
        assert_eq!(status.target.namespace.as_deref(), Some("prod"));
        let RolloutCommand::Undo(undo) = parse(&["undo", "deploy/web", "--to-revision=2"]) else {
            panic!("not undo")
        };
        assert_eq!(undo.to_revision, 2);
        let RolloutCommand::History(history) = parse(&["history", "deploy/web"]) else {
            panic!("not history")
        };
        assert_eq!(history.revision, 0);
        for verb in ["pause", "resume", "restart"] {
            parse(&[verb, "deploy/web"]);
        }
        let err = Cli::try_parse_from(["skiff", "rollout", "status"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn durations_are_written_with_a_unit() {
        use std::time::Duration;
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("15").unwrap_err().contains("no unit"));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("15d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn version_line_names_the_package_version() {
        assert_eq!(
            version_line(),
            format!("skiff version {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
