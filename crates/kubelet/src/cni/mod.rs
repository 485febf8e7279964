//! Pod networking through CNI, the Container Network Interface
//! (<https://www.cni.dev/docs/spec/>): a pod's network namespace is handed to
//! plugin binaries that set it up, exactly as the real kubelet's runtimes do.
//!
//! skiff runs two of the standard plugins (Debian's
//! containernetworking-plugins, in `/usr/lib/cni`): `loopback` brings `lo`
//! up, and `bridge` puts a veth pair between the pod and a Linux bridge on the
//! node (`skiff0`), with `host-local` IPAM allocating the pod's IP from the
//! node's podCIDR. Pods on one node reach each other over the bridge.
//!
//! A plugin is run once per call: `CNI_COMMAND` (ADD or DEL), the container
//! ID, the netns path, the interface name and `CNI_PATH` in its environment,
//! its network configuration on stdin; it prints a result (or an error) as JSON.
//!
//! # Layout
//! - [`config`]: the configurations and result parsing (pure).
//! - this module: [`Cni`], which runs the plugins.
//!
//! # Caveats
//! No network configuration files (`/etc/cni/net.d`): the network is the
//! bridge and nothing else. No NAT to outside the node, no port mappings, no
//! routes between nodes, IPv4 only.

pub mod config;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// What a CNI call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// The plugin binary could not be run.
    #[error("cannot run CNI plugin {plugin}: {source}")]
    Spawn {
        /// The plugin's path.
        plugin: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The plugin ran and reported a failure.
    #[error("CNI plugin {plugin} {command} failed: {message}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// ADD or DEL.
        command: &'static str,
        /// The plugin's error message.
        message: String,
    },
    /// The plugin's result could not be read.
    #[error("unreadable CNI result: {0}")]
    Result(String),
}

/// The node's pod network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The network's name in CNI configurations (host-local keys its
    /// allocations by it).
    pub name: String,
    /// The Linux bridge on the node, created by the bridge plugin on first use.
    pub bridge: String,
    /// The node's podCIDR, e.g. `10.244.1.0/24`.
    pub pod_cidr: String,
    /// Where the plugin binaries are.
    pub plugin_dir: PathBuf,
    /// Where host-local records allocated addresses.
    pub ipam_data_dir: PathBuf,
}

impl Default for NetworkConfig {
    fn default() -> NetworkConfig {
        NetworkConfig {
            name: "skiff".to_string(),
            bridge: "skiff0".to_string(),
            pod_cidr: "10.244.0.0/24".to_string(),
            plugin_dir: PathBuf::from("/usr/lib/cni"),
            ipam_data_dir: PathBuf::from("/var/lib/skiff/cni/networks"),
        }
    }
}

/// Runs the CNI plugins for one node's pod network.
#[derive(Clone, Debug)]
pub struct Cni {
    network: NetworkConfig,
}

impl Cni {
    /// The plugins for `network`.
    pub fn new(network: NetworkConfig) -> Cni {
        Cni { network }
    }

    /// The network this runs plugins for.
    pub fn network(&self) -> &NetworkConfig {
        &self.network
    }

    /// Sets up the network namespace at `netns` for the sandbox
    /// `container_id`: loopback, then the bridge; returns the pod's IP.
    pub async fn add(&self, container_id: &str, netns: &Path) -> Result<IpAddr, CniError> {
        let loopback = config::loopback_config(&self.network);
        self.run("ADD", &loopback, container_id, netns, "lo")
            .await?;
        let bridge = config::bridge_config(&self.network);
        let stdout = self
            .run("ADD", &bridge, container_id, netns, "eth0")
            .await?;
        config::parse_add_result(&stdout)
    }

    /// Tears down what [`Cni::add`] set up, releasing the pod's IP. Works
    /// when the namespace is already gone.
    pub async fn del(&self, container_id: &str, netns: &Path) -> Result<(), CniError> {
        let bridge = config::bridge_config(&self.network);
        self.run("DEL", &bridge, container_id, netns, "eth0")
            .await?;
        let loopback = config::loopback_config(&self.network);
        self.run("DEL", &loopback, container_id, netns, "lo")
            .await?;
        Ok(())
    }

    async fn run(
        &self,
        command: &'static str,
        config: &Value,
        container_id: &str,
        netns: &Path,
        interface: &str,
    ) -> Result<Vec<u8>, CniError> {
        let plugin_name = config["type"].as_str().unwrap_or_default().to_string();
        let plugin = self.network.plugin_dir.join(&plugin_name);
        let spawn_error = |source| CniError::Spawn {
            plugin: plugin.clone(),
            source,
        };
        let mut child = tokio::process::Command::new(&plugin)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", interface)
            .env("CNI_PATH", &self.network.plugin_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(config.to_string().as_bytes())
                .await
                .map_err(spawn_error)?;
        }
        let output = child.wait_with_output().await.map_err(spawn_error)?;
        if !output.status.success() {
            return Err(CniError::Plugin {
                plugin: plugin_name,
                command,
                message: config::failure_message(&output.stdout, &output.stderr),
            });
        }
        Ok(output.stdout)
    }
}

#[cfg(test)]
mod tests;
