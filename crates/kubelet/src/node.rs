//! The kubelet's Node: registration, node status, and the node Lease.
//!
//! At start the kubelet creates its Node (or takes over the one with its
//! name): labels `kubernetes.io/hostname`, `topology.kubernetes.io/zone`,
//! `node.kubernetes.io/instance-type`, and `kubernetes.io/os`/`arch`; status
//! with capacity and allocatable (cpu, memory, pods), addresses, node info
//! and the four conditions Ready, MemoryPressure, DiskPressure and
//! PIDPressure. Then, as the real kubelet with the NodeLease heartbeat, it
//! renews the Lease `kube-node-lease/<node>` every 10 s (the node controller
//! watches that), and posts the node status again every minute.
//!
//! # Caveats
//! The pressure conditions are always False (no eviction manager); capacity
//! is read once at start.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use serde_json::json;
use skiff_client::{Api, Client, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use crate::pod::status_time;
use crate::{Config, Error, RuntimeChoice};

/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// What the node offers, as capacity (allocatable is the same: nothing is
/// reserved for the system).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// How many pods may run here.
    pub pods: u64,
}

impl Capacity {
    /// The host's CPUs and memory, with `pods` pods.
    pub fn of_host(pods: u64) -> Capacity {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        Capacity {
            cpu_millis: cpus * 1000,
            memory_bytes: host_memory().unwrap_or(0),
            pods,
        }
    }

    fn quantities(&self) -> std::collections::BTreeMap<String, Quantity> {
        let cpu = match self.cpu_millis % 1000 {
            0 => format!("{}", self.cpu_millis / 1000),
            _ => format!("{}m", self.cpu_millis),
        };
        [
            ("cpu", cpu),
            ("memory", format!("{}Ki", self.memory_bytes / 1024)),
            ("pods", self.pods.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), Quantity(v)))
        .collect()
    }
}

/// MemTotal from /proc/meminfo, in bytes.
fn host_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The Node this kubelet registers, with its labels and first status.
pub fn node_object(
    config: &Config,
    capacity: Capacity,
    runtime: &str,
    port: Option<u16>,
    now: SystemTime,
) -> Node {
    let mut labels = std::collections::BTreeMap::new();
    labels.insert(
        "kubernetes.io/hostname".to_string(),
        config.node_name.clone(),
    );
    labels.insert(
        "kubernetes.io/os".to_string(),
        std::env::consts::OS.to_string(),
    );
    labels.insert("kubernetes.io/arch".to_string(), arch().to_string());
    if let Some(zone) = &config.zone {
        labels.insert("topology.kubernetes.io/zone".to_string(), zone.clone());
    }
    if let Some(instance_type) = &config.instance_type {
        labels.insert(
            "node.kubernetes.io/instance-type".to_string(),
            instance_type.clone(),
        );
    }
    Node {
        metadata: ObjectMeta {
            name: Some(config.node_name.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: pod_cidr(config).map(|cidr| NodeSpec {
            pod_cidr: Some(cidr.clone()),
            pod_cidrs: Some(vec![cidr]),
            ..NodeSpec::default()
        }),
        status: Some(node_status(config, capacity, runtime, port, now)),
    }
}

/// The podCIDR the node's pod network hands addresses out of, published in
/// `spec.podCIDR` as a kubelet started with `--pod-cidr` does (skiff has no
/// node IPAM controller to assign one). Only the containerd runtime gives
/// pods addresses of their own.
fn pod_cidr(config: &Config) -> Option<String> {
    match &config.runtime {
        RuntimeChoice::Containerd(containerd) => Some(containerd.network.pod_cidr.clone()),
        RuntimeChoice::Process | RuntimeChoice::Hollow(_) => None,
    }
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The node's status: capacity, addresses, info and conditions.
pub fn node_status(
    config: &Config,
    capacity: Capacity,
    runtime: &str,
    port: Option<u16>,
    now: SystemTime,
) -> NodeStatus {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(status_time(now)),
        last_transition_time: Some(status_time(config.started_at.unwrap_or(now))),
    };
    NodeStatus {
        capacity: Some(capacity.quantities()),
        allocatable: Some(capacity.quantities()),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: config.node_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: config.node_name.clone(),
            },
        ]),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: arch().to_string(),
            operating_system: std::env::consts::OS.to_string(),
            container_runtime_version: format!("{runtime}://{}", env!("CARGO_PKG_VERSION")),
            kubelet_version: format!("v{}-skiff", env!("CARGO_PKG_VERSION")),
            kube_proxy_version: String::new(),
            boot_id: String::new(),
            kernel_version: String::new(),
            machine_id: String::new(),
            os_image: "skiff".to_string(),
            system_uuid: String::new(),
            swap: None,
        }),
        daemon_endpoints: port.map(|port| NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(port),
            }),
        }),
        ..NodeStatus::default()
    }
}

/// Creates the Node, or adopts an existing one of that name (its labels
/// merged with ours, its status replaced).
pub async fn register(client: &Client, node: &Node) -> Result<Node, Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let name = node.metadata.name.clone().unwrap_or_default();
    match nodes.create(&PostParams::default(), node).await {
        Ok(created) => {
            // The status of a create is dropped; write it through the subresource.
            post_status(&nodes, &name, node).await?;
            Ok(created)
        }
        Err(e) if e.is_already_exists() => {
            let labels = json!({"metadata": {"labels": node.metadata.labels}});
            nodes
                .patch(&name, &PatchParams::default(), &Patch::Merge(labels))
                .await?;
            post_status(&nodes, &name, node).await
        }
        Err(e) => Err(e.into()),
    }
}

/// [`register`], tried again after a failure as the kubelet does ("Unable to
/// register node with API server"): the API server may be starting, or its
/// store electing a leader. `None` if `shutdown` comes first.
pub async fn register_until_done(
    client: &Client,
    node: &Node,
    shutdown: &CancellationToken,
) -> Option<Node> {
    retry(shutdown, || register(client, node)).await
}

/// The first wait after a failed registration; each next one doubles.
const REGISTER_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between registrations (the kubelet's 7 s).
const MAX_REGISTER_BACKOFF: Duration = Duration::from_secs(7);

/// Runs `attempt` until it succeeds, waiting [`REGISTER_BACKOFF`] after the
/// first failure and twice as long after each next one, up to
/// [`MAX_REGISTER_BACKOFF`]; `None` once `shutdown` is cancelled.
async fn retry<T, F, Fut>(shutdown: &CancellationToken, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut delay = REGISTER_BACKOFF;
    loop {
        match attempt().await {
            Ok(done) => return Some(done),
            Err(error) => {
                tracing::warn!(%error, retry_in = ?delay, "unable to register the node with the API server")
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_REGISTER_BACKOFF);
    }
}

async fn post_status(nodes: &Api<Node>, name: &str, node: &Node) -> Result<Node, Error> {
    let patch = Patch::Merge(json!({ "status": node.status }));
    Ok(nodes
        .patch_status(name, &PatchParams::default(), &patch)
        .await?)
}

/// Renews the node Lease every `renew` and posts the node status every
/// `status_every`, until `shutdown`.
pub async fn heartbeat(
    client: Client,
    node: Node,
    config: Config,
    capacity: Capacity,
    runtime: &'static str,
    port: Option<u16>,
    shutdown: CancellationToken,
) {
    let name = node.metadata.name.clone().unwrap_or_default();
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let mut last_status = tokio::time::Instant::now();
    loop {
        if let Err(error) = renew_lease(&client, &name, &uid, config.lease_duration_seconds).await {
            tracing::warn!(node = %name, %error, "cannot renew the node lease");
        }
        if last_status.elapsed() >= config.node_status_update_frequency {
            last_status = tokio::time::Instant::now();
            let status = node_object(&config, capacity, runtime, port, SystemTime::now());
            let nodes = Api::<Node>::all(client.clone());
            if let Err(error) = post_status(&nodes, &name, &status).await {
                tracing::warn!(node = %name, %error, "cannot post the node status");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(config.lease_renew_interval) => {}
        }
    }
}

fn micro_now() -> MicroTime {
    let now = crate::clock::timestamp(SystemTime::now());
    MicroTime(now)
}

/// Creates or renews `kube-node-lease/<node>`, owned by the Node so that it
/// goes when the Node does.
pub async fn renew_lease(
    client: &Client,
    node: &str,
    node_uid: &str,
    duration_seconds: i32,
) -> Result<(), Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    match leases.get_opt(node).await? {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.renew_time = Some(micro_now());
            spec.holder_identity = Some(node.to_string());
            spec.lease_duration_seconds = Some(duration_seconds);
            leases.replace(node, &PostParams::default(), &lease).await?;
        }
        None => {
            let owner = (!node_uid.is_empty()).then(|| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: node.to_string(),
                    uid: node_uid.to_string(),
                    ..OwnerReference::default()
                }]
            });
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.to_string()),
                    namespace: Some(LEASE_NAMESPACE.to_string()),
                    owner_references: owner,
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.to_string()),
                    lease_duration_seconds: Some(duration_seconds),
                    renew_time: Some(micro_now()),
                    ..LeaseSpec::default()
                }),
            };
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

/// How long the node status may go unposted.
pub const DEFAULT_NODE_STATUS_UPDATE_FREQUENCY: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::runtime::RuntimeError;

    #[tokio::test(start_paused = true)]
    async fn a_failed_registration_is_tried_again_after_a_doubling_wait() {
        let tries = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let done = retry(&CancellationToken::new(), || async {
            match tries.fetch_add(1, Ordering::Relaxed) {
                0..=2 => Err(Error::Runtime(RuntimeError::Other("not yet".into()))),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(done, Some(3));
        // 100 + 200 + 400 ms of waiting between the four tries.
        assert_eq!(started.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn retrying_stops_at_shutdown() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let done: Option<()> = retry(&shutdown, || async {
            Err(Error::Runtime(RuntimeError::Other("never".into())))
        })
        .await;
        assert_eq!(done, None);
    }
}
