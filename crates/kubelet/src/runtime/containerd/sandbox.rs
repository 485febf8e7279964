//! Pod sandboxes: a network namespace on the node's bridge, recorded as a
//! containerd container without a task.

use std::collections::HashMap;
use std::time::Duration;

use containerd_client::services::v1::container::Runtime as ShimRuntime;
use containerd_client::services::v1::{Container, CreateContainerRequest};

use super::record::{self, new_id};
use super::{netns, spec, ContainerdRuntime};
use crate::runtime::{Result, RuntimeError, SandboxConfig, SandboxId, SandboxStatus};

impl ContainerdRuntime {
    #[tracing::instrument(skip_all, fields(pod = %format!("{}/{}", config.namespace, config.name)))]
    pub(super) async fn run_sandbox(&self, config: &SandboxConfig) -> Result<SandboxId> {
        let id = new_id(&format!(
            "{}/{}/{}",
            config.namespace, config.name, config.uid
        ));
        let mut labels: HashMap<String, String> = config.labels.clone().into_iter().collect();
        labels.insert(record::KIND.into(), record::KIND_SANDBOX.into());
        labels.insert(record::HOSTNAME.into(), config.hostname.clone());
        labels.insert(record::STATE.into(), record::STATE_READY.into());
        if !config.host_network {
            let netns = netns::name_for(&id);
            let ip = self.set_up_network(&id, &netns).await?;
            labels.insert(record::NETNS.into(), netns);
            labels.insert(record::IP.into(), ip.to_string());
        }
        let sandbox = Container {
            id: id.clone(),
            labels: labels.clone(),
            runtime: Some(ShimRuntime {
                name: self.config.shim.clone(),
                options: None,
            }),
            // containerd wants a spec on every container; a sandbox runs nothing.
            spec: Some(prost_types::Any {
                type_url: spec::SPEC_TYPE_URL.to_string(),
                value: br#"{"ociVersion":"1.0.2-dev"}"#.to_vec(),
            }),
            ..Container::default()
        };
        let create = CreateContainerRequest {
            container: Some(sandbox),
        };
        if let Err(status) = self
            .connection
            .containers()
            .create(self.connection.request(create))
            .await
        {
            self.tear_down_network(&id, &labels).await.ok();
            return Err(RuntimeError::CreateSandbox(format!(
                "recording the sandbox in containerd: {}",
                status.message()
            )));
        }
        tracing::info!(sandbox = %id, pod = %config.name, "sandbox ready");
        Ok(id)
    }

    /// Creates the namespace and runs CNI ADD in it; undoes both on failure.
    async fn set_up_network(&self, id: &str, netns: &str) -> Result<std::net::IpAddr> {
        netns::add(netns).await?;
        match self.cni.add(id, &netns::path_of(netns)).await {
            Ok(ip) => Ok(ip),
            Err(error) => {
                self.cni.del(id, &netns::path_of(netns)).await.ok();
                netns::delete(netns).await.ok();
                Err(RuntimeError::CreateSandbox(error.to_string()))
            }
        }
    }

    /// CNI DEL, then the namespace goes; both are idempotent.
    async fn tear_down_network(&self, id: &str, labels: &HashMap<String, String>) -> Result<()> {
        let Some(netns) = labels.get(record::NETNS) else {
            return Ok(());
        };
        self.cni
            .del(id, &netns::path_of(netns))
            .await
            .map_err(|error| RuntimeError::Other(error.to_string()))?;
        netns::delete(netns).await
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn stop_sandbox(&self, id: &str) -> Result<()> {
        let sandbox = self.record(record::KIND_SANDBOX, id).await?;
        for container in self.containers_of(id).await? {
            self.stop(&container, Duration::ZERO).await?;
        }
        self.tear_down_network(id, &sandbox.labels).await?;
        if sandbox.labels.get(record::STATE).map(String::as_str) != Some(record::STATE_NOT_READY) {
            self.set_label(sandbox, record::STATE, record::STATE_NOT_READY.into())
                .await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn remove_sandbox(&self, id: &str) -> Result<()> {
        match self.stop_sandbox(id).await {
            Ok(()) => {}
            Err(RuntimeError::NotFound { .. }) => return Ok(()),
            Err(error) => return Err(error),
        }
        for container in self.containers_of(id).await? {
            self.remove(&container).await?;
        }
        self.delete_record(id).await
    }

    pub(super) async fn list_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
        let records = self.records(record::KIND_SANDBOX).await?;
        Ok(records.into_iter().map(sandbox_status).collect())
    }

    /// The IDs of a sandbox's containers.
    async fn containers_of(&self, sandbox: &str) -> Result<Vec<String>> {
        Ok(self
            .records(record::KIND_CONTAINER)
            .await?
            .into_iter()
            .filter(|c| c.labels.get(record::SANDBOX_ID).map(String::as_str) == Some(sandbox))
            .map(|c| c.id)
            .collect())
    }
}

fn sandbox_status(sandbox: Container) -> SandboxStatus {
    let ready = sandbox.labels.get(record::STATE).map(String::as_str) == Some(record::STATE_READY);
    SandboxStatus {
        ip: sandbox
            .labels
            .get(record::IP)
            .and_then(|ip| ip.parse().ok()),
        labels: record::kubelet_labels(&sandbox.labels),
        created_at: record::from_timestamp(sandbox.created_at)
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH),
        ready,
        id: sandbox.id,
    }
}

/// The netns path a sandbox's containers join, `None` with hostNetwork.
pub(super) fn netns_path(sandbox: &Container) -> Option<String> {
    sandbox
        .labels
        .get(record::NETNS)
        .map(|name| netns::path_of(name).display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(labels: &[(&str, &str)]) -> Container {
        Container {
            id: "s1".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Container::default()
        }
    }

    #[test]
    fn a_ready_sandbox_reports_its_ip_and_only_the_kubelets_labels() {
        let sandbox = record(&[
            (record::KIND, record::KIND_SANDBOX),
            (record::STATE, record::STATE_READY),
            (record::IP, "10.244.0.7"),
            (record::NETNS, "skiff-s1"),
            ("io.kubernetes.pod.name", "web"),
        ]);
        assert_eq!(
            netns_path(&sandbox).as_deref(),
            Some("/var/run/netns/skiff-s1")
        );
        let status = sandbox_status(sandbox);
        assert!(status.ready);
        assert_eq!(status.ip, Some("10.244.0.7".parse().unwrap()));
        assert_eq!(status.labels.len(), 1);
        assert_eq!(status.labels["io.kubernetes.pod.name"], "web");
    }

    #[test]
    fn a_stopped_host_network_sandbox_is_not_ready_and_has_no_ip_or_netns() {
        let sandbox = record(&[(record::STATE, record::STATE_NOT_READY)]);
        assert_eq!(netns_path(&sandbox), None);
        let status = sandbox_status(sandbox);
        assert!(!status.ready);
        assert_eq!(status.ip, None);
    }
}
