//! Events the kubelet records about pods (`Unhealthy`, `Killing`, `Failed`),
//! as client-go's EventRecorder with the source `kubelet` on this node.
//!
//! # Caveats
//! No aggregation or rate limiting: every call is one new Event, written in
//! the background; a failed write is only logged.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_client::{Api, Client, PostParams};

use crate::pod::status_time;

/// Writes Events with this node as their source.
#[derive(Clone)]
pub(crate) struct EventRecorder {
    client: Client,
    node: String,
}

impl EventRecorder {
    pub fn new(client: Client, node: String) -> EventRecorder {
        EventRecorder { client, node }
    }

    /// Records a Warning about `pod` (and one of its containers).
    pub fn warning(&self, pod: &Pod, reason: &str, message: &str, container: Option<&str>) {
        self.record(pod, "Warning", reason, message, container);
    }

    /// Records a Normal event about `pod`.
    pub fn normal(&self, pod: &Pod, reason: &str, message: &str, container: Option<&str>) {
        self.record(pod, "Normal", reason, message, container);
    }

    fn record(&self, pod: &Pod, type_: &str, reason: &str, message: &str, container: Option<&str>) {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let now = std::time::SystemTime::now();
        let nanos = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{nanos:x}")),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name),
                namespace: Some(namespace.clone()),
                uid: pod.metadata.uid.clone(),
                field_path: container.map(|c| format!("spec.containers{{{c}}}")),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(type_.to_string()),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node.clone()),
            }),
            first_timestamp: Some(status_time(now)),
            last_timestamp: Some(status_time(now)),
            count: Some(1),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            ..Event::default()
        };
        let client = self.client.clone();
        tokio::spawn(async move {
            let events = Api::<Event>::namespaced(client, &namespace);
            let written = events.create(&PostParams::default(), &event).await;
            if let Err(error) = written {
                tracing::debug!(%error, "cannot record an event");
            }
        });
    }
}
