//! The kubelet's configuration: a plain struct, filled by the binary from
//! its flags.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::node::{Capacity, DEFAULT_NODE_STATUS_UPDATE_FREQUENCY};
use crate::runtime::containerd::ContainerdConfig;
use crate::runtime::hollow::HollowConfig;

/// Which runtime runs the containers.
#[derive(Clone, Debug, Default)]
pub enum RuntimeChoice {
    /// Plain processes under `<root_dir>/process`.
    #[default]
    Process,
    /// Simulated containers.
    Hollow(HollowConfig),
    /// Real containers through containerd.
    Containerd(ContainerdConfig),
}

/// Everything the kubelet is told. `Default` suits a test on 127.0.0.1.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Node's name (`--node-name`).
    pub node_name: String,
    /// The node's IP: status.addresses, the pods' hostIP.
    pub node_ip: IpAddr,
    /// The runtime (`--runtime`); any other [`crate::runtime::Runtime`] is
    /// plugged in with [`crate::run_with_runtime`].
    pub runtime: RuntimeChoice,
    /// Where pod directories, volumes, logs and the process runtime live.
    pub root_dir: PathBuf,
    /// The node's capacity; `None` reads the host's (with 110 pods).
    pub capacity: Option<Capacity>,
    /// The `topology.kubernetes.io/zone` label.
    pub zone: Option<String>,
    /// The `node.kubernetes.io/instance-type` label.
    pub instance_type: Option<String>,
    /// Where the kubelet's own server (logs, exec) listens; `None` for none.
    /// Kubernetes' port is 10250.
    pub listen: Option<SocketAddr>,
    /// The node Lease's leaseDurationSeconds.
    pub lease_duration_seconds: i32,
    /// How often the node Lease is renewed.
    pub lease_renew_interval: Duration,
    /// How often the node status is posted.
    pub node_status_update_frequency: Duration,
    /// How often the runtime is relisted for container changes (PLEG).
    pub relist_period: Duration,
    /// How often every pod is synced even without a hint.
    pub resync_period: Duration,
    /// When this kubelet started (the conditions' lastTransitionTime);
    /// `None` is now.
    pub started_at: Option<SystemTime>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_name: "node-1".to_string(),
            node_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            runtime: RuntimeChoice::default(),
            root_dir: PathBuf::from("skiff-data/kubelet"),
            capacity: None,
            zone: None,
            instance_type: None,
            listen: None,
            lease_duration_seconds: 40,
            lease_renew_interval: Duration::from_secs(10),
            node_status_update_frequency: DEFAULT_NODE_STATUS_UPDATE_FREQUENCY,
            relist_period: Duration::from_secs(1),
            resync_period: Duration::from_secs(10),
            started_at: None,
        }
    }
}
