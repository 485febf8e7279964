//! How sandboxes and containers are recorded in containerd, so that a
//! restarted kubelet recovers everything by listing.
//!
//! Both are containerd *containers* in skiff's namespace, told apart by the
//! [`KIND`] label. A sandbox is a container record without a task: its labels
//! hold the pod's labels plus the netns, IP, hostname and state. A container
//! is a container record with the runc spec, its snapshot, and a task once
//! started; its labels hold the kubelet's labels plus the sandbox ID, attempt,
//! image reference, log path and start time.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::{
    Container, DeleteContainerRequest, GetContainerRequest, ListContainersRequest,
    UpdateContainerRequest,
};
use tonic::Code;

use super::{containerd_error, ContainerdRuntime};
use crate::runtime::{Result, RuntimeError};

/// `sandbox` or `container`.
pub const KIND: &str = "skiff.io/kind";
/// The sandbox a container belongs to.
pub const SANDBOX_ID: &str = "skiff.io/sandbox-id";
/// The container's attempt number.
pub const ATTEMPT: &str = "skiff.io/attempt";
/// The image reference as the pod spec gave it.
pub const IMAGE: &str = "skiff.io/image";
/// The container's CRI log file.
pub const LOG_PATH: &str = "skiff.io/log-path";
/// When the container's task started, in nanoseconds since the epoch.
pub const STARTED_AT: &str = "skiff.io/started-at";
/// The container's name in the pod spec.
pub const NAME: &str = "skiff.io/name";
/// The sandbox's network namespace name (absent with hostNetwork).
pub const NETNS: &str = "skiff.io/netns";
/// The pod's IP.
pub const IP: &str = "skiff.io/ip";
/// The pod's hostname.
pub const HOSTNAME: &str = "skiff.io/hostname";
/// `ready` or `notready`.
pub const STATE: &str = "skiff.io/state";

/// [`KIND`] of a sandbox record.
pub const KIND_SANDBOX: &str = "sandbox";
/// [`KIND`] of a container record.
pub const KIND_CONTAINER: &str = "container";
/// [`STATE`] of a sandbox that can hold containers.
pub const STATE_READY: &str = "ready";
/// [`STATE`] of a stopped sandbox.
pub const STATE_NOT_READY: &str = "notready";

/// The labels the kubelet gave (without skiff's own).
pub fn kubelet_labels(labels: &HashMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(key, _)| !key.starts_with("skiff.io/"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

/// A time as a label value: nanoseconds since the epoch.
pub fn time_label(time: SystemTime) -> String {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .to_string()
}

/// A time from a label value written by [`time_label`].
pub fn parse_time_label(value: &str) -> Option<SystemTime> {
    let nanos: u64 = value.parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// A containerd timestamp as a time.
pub fn from_timestamp(timestamp: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    timestamp.and_then(|t| SystemTime::try_from(t).ok())
}

/// A fresh ID: 32 hex characters from the SHA-256 of `seed` and the time.
pub fn new_id(seed: &str) -> String {
    let input = format!("{seed} {}", time_label(SystemTime::now()));
    let digest = crate::image::digest::sha256_digest(input.as_bytes());
    digest["sha256:".len().."sha256:".len() + 32].to_string()
}

impl ContainerdRuntime {
    /// The record with this ID, if it is of `kind`.
    pub(super) async fn record(&self, kind: &'static str, id: &str) -> Result<Container> {
        let request = self
            .connection
            .request(GetContainerRequest { id: id.to_string() });
        let not_found = || RuntimeError::NotFound {
            kind,
            id: id.to_string(),
        };
        match self.connection.containers().get(request).await {
            Ok(response) => response
                .into_inner()
                .container
                .filter(|c| c.labels.get(KIND).map(String::as_str) == Some(kind))
                .ok_or_else(not_found),
            Err(status) if status.code() == Code::NotFound => Err(not_found()),
            Err(status) => Err(containerd_error("get container", status)),
        }
    }

    /// Every record of `kind`, in ID order.
    pub(super) async fn records(&self, kind: &str) -> Result<Vec<Container>> {
        let request = self.connection.request(ListContainersRequest::default());
        let mut records: Vec<Container> = self
            .connection
            .containers()
            .list(request)
            .await
            .map_err(|status| containerd_error("list containers", status))?
            .into_inner()
            .containers
            .into_iter()
            .filter(|c| c.labels.get(KIND).map(String::as_str) == Some(kind))
            .collect();
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }

    /// Sets one of skiff's labels on a record.
    pub(super) async fn set_label(
        &self,
        mut record: Container,
        key: &str,
        value: String,
    ) -> Result<()> {
        record.labels.insert(key.to_string(), value);
        let update = UpdateContainerRequest {
            container: Some(Container {
                id: record.id,
                labels: record.labels,
                ..Container::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["labels".to_string()],
            }),
        };
        self.connection
            .containers()
            .update(self.connection.request(update))
            .await
            .map(|_| ())
            .map_err(|status| containerd_error("update container", status))
    }

    /// Deletes a record; a missing one is already deleted.
    pub(super) async fn delete_record(&self, id: &str) -> Result<()> {
        let request = self
            .connection
            .request(DeleteContainerRequest { id: id.to_string() });
        match self.connection.containers().delete(request).await {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Ok(()),
            Err(status) => Err(containerd_error("delete container", status)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiffs_own_labels_are_not_reported_as_the_kubelets() {
        let labels = HashMap::from([
            (KIND.to_string(), KIND_SANDBOX.to_string()),
            ("io.kubernetes.pod.name".to_string(), "web".to_string()),
        ]);
        assert_eq!(
            kubelet_labels(&labels),
            BTreeMap::from([("io.kubernetes.pod.name".to_string(), "web".to_string())])
        );
    }

    #[test]
    fn a_time_label_round_trips_to_the_nanosecond() {
        let time = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 42);
        assert_eq!(parse_time_label(&time_label(time)), Some(time));
        assert_eq!(parse_time_label("yesterday"), None);
    }

    #[test]
    fn ids_are_32_hex_characters_and_differ_by_seed() {
        let a = new_id("a");
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_id("b"));
    }
}
