//! `skiff bench pods`: what a node costs. Two measurements, each in one
//! process with an API server in it (a store in a temporary directory, the
//! registry, an in-process connection):
//!
//! - **Pod startup latency** (`--runtime process|containerd`): one kubelet;
//!   pods bound to its node are created `--concurrency` at a time, and each
//!   pod's latency is from sending its create to seeing it `Running` through
//!   a watch — Kubernetes' pod startup SLI, without the scheduler (the pods
//!   name their node). With containerd the image is imported first, from
//!   `--image` or built from the node's `/bin/busybox` as the containerd
//!   test suite builds it, and pods get addresses on a bridge of the
//!   benchmark's own, deleted at the end.
//! - **Memory per hollow node** (`--hollow-nodes N`): N kubelets on the
//!   hollow runtime, each with a connection of its own, as kubemark packs
//!   hollow nodes; the process's resident memory (VmRSS) after all N have
//!   registered and settled, minus before, divided by N.
//!
//! # Caveats
//! Pods run `sleep`; image pulls are not part of the latency (images are
//! imported beforehand, as skiff pulls from no registry). The RSS delta
//! counts the allocator's retained memory too, so it is an upper bound.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use serde::Serialize;
use serde_json::json;
use skiff_apiserver::{LocalStorage, Registry, RegistryConfig};
use skiff_client::{
    Api, Change, Client, DeleteParams, Informer, InformerConfig, ListParams, PostParams,
};
use skiff_kubelet::clock::SystemClock;
use skiff_kubelet::cni::NetworkConfig;
use skiff_kubelet::image::{busybox_tarball, ImageStore};
use skiff_kubelet::node::Capacity;
use skiff_kubelet::runtime::containerd::{ContainerdConfig, ContainerdRuntime};
use skiff_kubelet::runtime::hollow::HollowConfig;
use skiff_kubelet::runtime::process::{ProcessConfig, ProcessRuntime};
use skiff_kubelet::runtime::{labels, Runtime};
use skiff_kubelet::{Config, RuntimeChoice};
use skiff_store::{Store, StoreConfig};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::common::{format_latency, rss_of, BenchError, Latency, OutputFormat};

/// The namespace the benchmark's pods live in.
const NAMESPACE: &str = "bench-pods";
/// How long the hollow nodes settle after registering before RSS is read.
const SETTLE: Duration = Duration::from_secs(3);
/// The containerd namespace the benchmark's containers live in.
const CONTAINERD_NAMESPACE: &str = "skiff-bench";

/// The runtime whose pod startup is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PodRuntime {
    /// Plain processes.
    Process,
    /// containerd and runc (needs root, containerd and the CNI plugins).
    Containerd,
}

impl PodRuntime {
    /// The name as `--runtime` spells it.
    fn name(self) -> &'static str {
        match self {
            PodRuntime::Process => "process",
            PodRuntime::Containerd => "containerd",
        }
    }
}

/// The flags of `skiff bench pods`.
#[derive(Debug, Args)]
pub struct PodsArgs {
    /// The runtime whose pod startup latency is measured.
    #[arg(long, value_enum, default_value_t = PodRuntime::Process)]
    pub runtime: PodRuntime,
    /// Pods to start.
    #[arg(long, default_value_t = 100)]
    pub pods: usize,
    /// Pods created at once, each waited for before the next.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Instead of pod startup: run this many hollow nodes and report memory per node.
    #[arg(long)]
    pub hollow_nodes: Option<usize>,
    /// containerd's socket (`--runtime containerd`).
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// An OCI image layout tarball to import and run; by default a busybox image
    /// built from /bin/busybox.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// The pods' podCIDR on the benchmark's bridge (`--runtime containerd`).
    #[arg(long, default_value = "10.244.250.0/24")]
    pub pod_cidr: String,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// What `skiff bench pods` reports.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum PodsReport {
    /// Pod startup latency.
    Startup {
        /// The runtime measured.
        runtime: PodRuntime,
        /// Pods started.
        pods: usize,
        /// Pods created at once.
        concurrency: usize,
        /// Create → Running.
        latency: Latency,
    },
    /// Memory of hollow nodes.
    Hollow {
        /// Hollow nodes run.
        hollow_nodes: usize,
        /// Resident memory added, in bytes.
        rss_delta_bytes: u64,
        /// The same per node.
        bytes_per_node: u64,
    },
}

impl PodsReport {
    /// The report as `name=value` lines or one JSON object.
    pub(crate) fn render(&self, output: OutputFormat) -> Result<String, BenchError> {
        if output == OutputFormat::Json {
            return Ok(format!("{}\n", serde_json::to_string(self)?));
        }
        Ok(match self {
            PodsReport::Startup {
                runtime,
                pods,
                concurrency,
                latency,
            } => format!(
                "runtime={} pods={pods} concurrency={concurrency}\n\
                 startup p50={} p99={} max={}\n",
                runtime.name(),
                format_latency(latency.p50_us),
                format_latency(latency.p99_us),
                format_latency(latency.max_us),
            ),
            PodsReport::Hollow {
                hollow_nodes,
                rss_delta_bytes,
                bytes_per_node,
            } => format!(
                "hollow_nodes={hollow_nodes} rss_delta={:.1}MiB per_node={:.2}MiB\n",
                *rss_delta_bytes as f64 / (1 << 20) as f64,
                *bytes_per_node as f64 / (1 << 20) as f64,
            ),
        })
    }
}

/// Runs the benchmark the flags ask for.
pub(crate) async fn run(args: &PodsArgs) -> Result<PodsReport, BenchError> {
    if args.pods == 0 || args.concurrency == 0 || args.hollow_nodes == Some(0) {
        return Err(BenchError::InvalidConfig(
            "--pods, --concurrency and --hollow-nodes must be at least 1".into(),
        ));
    }
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let name = format!("skiff-bench-pods-{}-{run}", std::process::id());
    let dir = std::env::temp_dir().join(name);
    let api = ApiServer::start(&dir).await?;
    let shutdown = CancellationToken::new();
    let result = match args.hollow_nodes {
        Some(nodes) => hollow_memory(&api, nodes, &dir, &shutdown).await,
        None => startup(args, &api, &dir, &shutdown).await,
    };
    shutdown.cancel();
    drop(api);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// A store and an API server in this process.
struct ApiServer {
    registry: Arc<Registry>,
    _store: Store,
}

impl ApiServer {
    async fn start(dir: &std::path::Path) -> Result<ApiServer, BenchError> {
        let store = Store::open(StoreConfig {
            data_dir: dir.join("store"),
            ..StoreConfig::default()
        })
        .await
        .map_err(|e| setup(format!("opening the store: {e}")))?;
        let registry = Arc::new(Registry::new(
            Arc::new(LocalStorage::new(store.clone())),
            RegistryConfig::default(),
        ));
        registry
            .bootstrap()
            .await
            .map_err(|e| setup(format!("preparing the API server: {e}")))?;
        Ok(ApiServer {
            registry,
            _store: store,
        })
    }

    /// A client over a connection of its own.
    async fn client(&self) -> Result<Client, BenchError> {
        let channel = skiff_apiserver::grpc::in_process_channel(self.registry.clone())
            .await
            .map_err(|e| setup(format!("connecting in process: {e}")))?;
        Ok(Client::new(channel))
    }
}

fn setup(reason: String) -> BenchError {
    BenchError::ApiSetup {
        workload: "pods".into(),
        reason,
    }
}

/// Resident memory of this process.
fn rss_bytes() -> Result<u64, BenchError> {
    rss_of("self").map_err(setup)
}

async fn hollow_memory(
    api: &ApiServer,
    nodes: usize,
    dir: &std::path::Path,
    shutdown: &CancellationToken,
) -> Result<PodsReport, BenchError> {
    let watcher = api.client().await?;
    let before = rss_bytes()?;
    for index in 0..nodes {
        let config = Config {
            node_name: format!("hollow-{index}"),
            runtime: RuntimeChoice::Hollow(HollowConfig::default()),
            root_dir: dir.join("hollow").join(index.to_string()),
            capacity: Some(Capacity {
                cpu_millis: 4000,
                memory_bytes: 16 << 30,
                pods: 110,
            }),
            ..Config::default()
        };
        let client = api.client().await?;
        tokio::spawn(skiff_kubelet::run(config, client, shutdown.child_token()));
    }
    let api_nodes: Api<Node> = Api::all(watcher);
    loop {
        let listed = api_nodes.list(&ListParams::default()).await;
        let count = listed.map(|l| l.items.len()).unwrap_or(0);
        if count >= nodes {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(SETTLE).await;
    let delta = rss_bytes()?.saturating_sub(before);
    Ok(PodsReport::Hollow {
        hollow_nodes: nodes,
        rss_delta_bytes: delta,
        bytes_per_node: delta / nodes as u64,
    })
}

/// The kubelet's runtime, and what the benchmark needs of it.
struct BenchNode {
    choice: RuntimeChoice,
    image: String,
    /// The kubelet's runtime itself, shared with the benchmark: the kubelet
    /// must not stop before the runtime holds none of the benchmark's pods,
    /// or their containers (a process runtime's `sleep`s) outlive it.
    runtime: Arc<dyn Runtime>,
}

async fn prepare_runtime(args: &PodsArgs, dir: &std::path::Path) -> Result<BenchNode, BenchError> {
    if args.runtime == PodRuntime::Process {
        let process = ProcessConfig {
            root_dir: kubelet_root(dir).join("process"),
            pod_ip: Config::default().node_ip,
        };
        let runtime = ProcessRuntime::open(process)
            .await
            .map_err(|e| setup(format!("the process runtime: {e}")))?;
        return Ok(BenchNode {
            choice: RuntimeChoice::Process,
            image: "none".into(),
            runtime: Arc::new(runtime),
        });
    }
    let config = ContainerdConfig {
        socket: args.containerd_socket.clone(),
        namespace: CONTAINERD_NAMESPACE.into(),
        state_dir: dir.join("containerd"),
        network: NetworkConfig {
            name: "skiff-bench".into(),
            bridge: "skiffbench0".into(),
            pod_cidr: args.pod_cidr.clone(),
            ipam_data_dir: dir.join("ipam"),
            ..NetworkConfig::default()
        },
        ..ContainerdConfig::default()
    };
    let tarball = match &args.image {
        Some(path) => {
            std::fs::read(path).map_err(|e| setup(format!("reading {}: {e}", path.display())))?
        }
        None => busybox_image()?,
    };
    let images = ImageStore::connect(&config.socket, &config.namespace)
        .await
        .map_err(|e| setup(format!("containerd at {}: {e}", config.socket.display())))?;
    let image = images
        .import(&tarball)
        .await
        .map_err(|e| setup(format!("importing the image: {e}")))?;
    let containerd = ContainerdRuntime::connect(config.clone())
        .await
        .map_err(|e| setup(format!("containerd: {e}")))?;
    Ok(BenchNode {
        choice: RuntimeChoice::Containerd(config),
        image,
        runtime: Arc::new(containerd),
    })
}

/// The kubelet's root directory in the benchmark's.
fn kubelet_root(dir: &std::path::Path) -> PathBuf {
    dir.join("kubelet")
}

/// An OCI image of the node's static busybox, as the containerd suite builds it.
fn busybox_image() -> Result<Vec<u8>, BenchError> {
    let busybox = std::fs::read("/bin/busybox")
        .map_err(|e| setup(format!("reading /bin/busybox (busybox-static): {e}")))?;
    busybox_tarball(busybox).map_err(|e| setup(format!("building the busybox image: {e}")))
}

/// Waiters for pods to be seen Running, by name.
type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>;

async fn startup(
    args: &PodsArgs,
    api: &ApiServer,
    dir: &std::path::Path,
    shutdown: &CancellationToken,
) -> Result<PodsReport, BenchError> {
    let node = prepare_runtime(args, dir).await?;
    let client = api.client().await?;
    let config = Config {
        node_name: "bench-node".into(),
        runtime: node.choice.clone(),
        root_dir: kubelet_root(dir),
        relist_period: Duration::from_millis(100),
        ..Config::default()
    };
    let kubelet = tokio::spawn(skiff_kubelet::run_with_runtime(
        config,
        api.client().await?,
        node.runtime.clone(),
        Arc::new(SystemClock),
        shutdown.child_token(),
    ));
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .map_err(|e| setup(format!("creating namespace {NAMESPACE}: {e}")))?;
    let waiters = watch_running(&client, shutdown).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let measured = measure(args, &pods, &node.image, &waiters).await;
    clean_up(&pods, node.runtime.as_ref(), args.pods).await;
    shutdown.cancel();
    let _ = kubelet.await;
    if args.runtime == PodRuntime::Containerd {
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", "skiffbench0"])
            .status();
    }
    let histogram = measured?;
    Ok(PodsReport::Startup {
        runtime: args.runtime,
        pods: args.pods,
        concurrency: args.concurrency,
        latency: Latency::from_histogram(&histogram),
    })
}

/// Watches the namespace; tells each waiter when its pod is first Running.
async fn watch_running(client: &Client, shutdown: &CancellationToken) -> Waiters {
    let waiters: Waiters = Arc::default();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let mut informer = Informer::new(pods, InformerConfig::default());
    let mut changes = informer.subscribe();
    let synced = informer.store();
    tokio::spawn(informer.run(shutdown.child_token()));
    synced.wait_for_sync().await;
    let told = waiters.clone();
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            let (Change::Added(pod) | Change::Updated { new: pod, .. }) = change else {
                continue;
            };
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            let name = pod.metadata.name.clone().unwrap_or_default();
            if running {
                let waiter = told.lock().unwrap_or_else(|p| p.into_inner()).remove(&name);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(Instant::now());
                }
            }
        }
    });
    waiters
}

/// Starts the pods, `concurrency` at a time; a histogram of their latencies.
async fn measure(
    args: &PodsArgs,
    pods: &Api<Pod>,
    image: &str,
    waiters: &Waiters,
) -> Result<Histogram<u64>, BenchError> {
    let mut histogram = Histogram::<u64>::new(3).map_err(|e| setup(format!("a histogram: {e}")))?;
    let mut next = 0;
    while next < args.pods {
        let batch: Vec<usize> = (next..args.pods.min(next + args.concurrency)).collect();
        next += batch.len();
        let starts = batch.iter().map(|i| start_one(pods, image, *i, waiters));
        for latency in futures::future::join_all(starts).await {
            let micros = latency?.as_micros().max(1);
            let _ = histogram.record(u64::try_from(micros).unwrap_or(u64::MAX));
        }
    }
    Ok(histogram)
}

/// Creates pod `index` and waits until it is seen Running.
async fn start_one(
    pods: &Api<Pod>,
    image: &str,
    index: usize,
    waiters: &Waiters,
) -> Result<Duration, BenchError> {
    let name = format!("pod-{index:05}");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "nodeName": "bench-node",
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": image, "command": ["sleep", "3600"]}],
        },
    }))?;
    let (tx, rx) = oneshot::channel();
    waiters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.clone(), tx);
    let sent = Instant::now();
    pods.create(&PostParams::default(), &pod)
        .await
        .map_err(|e| setup(format!("creating {name}: {e}")))?;
    let running = rx
        .await
        .map_err(|_| setup(format!("{name} was never seen Running")))?;
    Ok(running.saturating_duration_since(sent))
}

/// Deletes every pod and waits until the API and the runtime hold none:
/// a pod gone from the API may still run until the kubelet has seen its
/// deletion and torn it down.
async fn clean_up(pods: &Api<Pod>, runtime: &dyn Runtime, count: usize) {
    let delete = DeleteParams::default();
    for index in 0..count {
        let _ = pods.delete(&format!("pod-{index:05}"), &delete).await;
    }
    for _ in 0..600 {
        let left = pods.list(&ListParams::default()).await;
        let api_empty = left.map(|l| l.items.is_empty()).unwrap_or(false);
        let runtime_empty = runtime
            .list_pod_sandboxes()
            .await
            .map(|s| {
                !s.iter().any(|s| {
                    s.labels.get(labels::POD_NAMESPACE).map(String::as_str) == Some(NAMESPACE)
                })
            })
            .unwrap_or(false);
        if api_empty && runtime_empty {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tracing::warn!("the benchmark's pods were not all gone after 2 minutes");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(runtime: PodRuntime, pods: usize, hollow_nodes: Option<usize>) -> PodsArgs {
        PodsArgs {
            runtime,
            pods,
            concurrency: 2,
            hollow_nodes,
            containerd_socket: PathBuf::from("/nonexistent.sock"),
            image: None,
            pod_cidr: "10.244.250.0/24".into(),
            output: OutputFormat::Text,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn process_pods_are_started_and_measured_then_cleaned_up() {
        let report = run(&args(PodRuntime::Process, 3, None)).await.unwrap();
        let PodsReport::Startup { pods, latency, .. } = &report else {
            panic!("not a startup report: {report:?}");
        };
        assert_eq!(*pods, 3);
        assert!(latency.p50_us > 0 && latency.p50_us <= latency.max_us);
        let text = report.render(OutputFormat::Text).unwrap();
        assert!(
            text.starts_with("runtime=process pods=3 concurrency=2\nstartup p50="),
            "{text}"
        );
        let ours = format!("skiff-bench-pods-{}-", std::process::id());
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
            .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
            .filter(|cmdline| cmdline.contains(&ours))
            .collect();
        assert!(
            left.is_empty(),
            "the pods' processes outlived the benchmark: {left:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hollow_nodes_register_and_their_memory_is_divided_among_them() {
        let report = run(&args(PodRuntime::Process, 1, Some(3))).await.unwrap();
        let PodsReport::Hollow {
            hollow_nodes,
            rss_delta_bytes,
            bytes_per_node,
        } = report
        else {
            panic!("not a hollow report: {report:?}");
        };
        assert_eq!(hollow_nodes, 3);
        assert_eq!(bytes_per_node, rss_delta_bytes / 3);
    }

    #[tokio::test]
    async fn zero_pods_or_nodes_are_refused() {
        for bad in [
            args(PodRuntime::Process, 0, None),
            args(PodRuntime::Process, 1, Some(0)),
        ] {
            let error = run(&bad).await.unwrap_err();
            assert!(error.to_string().contains("at least 1"), "{error}");
        }
    }
}
