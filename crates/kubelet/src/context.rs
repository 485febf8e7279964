//! What the kubelet's parts share: its configuration, client, runtime,
//! clock, probers and event recorder, and where a pod's files live.

use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use skiff_client::Client;

use crate::clock::Clock;
use crate::events::EventRecorder;
use crate::probe::ProbeManager;
use crate::runtime::{labels, Runtime};
use crate::Config;

/// What every worker, the relist and the server share.
pub(crate) struct Kubelet {
    pub config: Config,
    pub client: Client,
    pub runtime: Arc<dyn Runtime>,
    pub clock: Arc<dyn Clock>,
    pub probes: ProbeManager,
    pub events: EventRecorder,
}

impl Kubelet {
    /// The pod's directory (volumes).
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.config.root_dir.join("pods").join(uid)
    }

    /// The pod's log directory, named as the real kubelet's
    /// `/var/log/pods/<namespace>_<name>_<uid>`.
    pub fn pod_log_dir(&self, pod: &Pod) -> PathBuf {
        let meta = &pod.metadata;
        self.config.root_dir.join("logs").join(format!(
            "{}_{}_{}",
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
            meta.uid.as_deref().unwrap_or_default()
        ))
    }

    /// Stops and removes every sandbox of the pod `uid`, and its directory.
    pub async fn tear_down(&self, uid: &str) {
        self.probes.forget(uid);
        let sandboxes = match self.runtime.list_pod_sandboxes().await {
            Ok(sandboxes) => sandboxes,
            Err(error) => {
                tracing::warn!(%uid, %error, "cannot list sandboxes to tear down");
                return;
            }
        };
        for sandbox in sandboxes
            .iter()
            .filter(|s| s.labels.get(labels::POD_UID).map(String::as_str) == Some(uid))
        {
            if let Err(error) = self.runtime.stop_pod_sandbox(&sandbox.id).await {
                tracing::warn!(%uid, %error, "cannot stop sandbox");
            }
            if let Err(error) = self.runtime.remove_pod_sandbox(&sandbox.id).await {
                tracing::warn!(%uid, %error, "cannot remove sandbox");
            }
        }
        let _ = tokio::fs::remove_dir_all(self.pod_dir(uid)).await;
    }
}
