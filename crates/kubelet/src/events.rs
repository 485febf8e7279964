//! Events the kubelet records about pods (`Unhealthy`, `Killing`, `Failed`,
//! `BackOff`), through skiff-client's [`Recorder`] with the source `kubelet`
//! on this node; an event about one container names it in the field path
//! (`spec.containers{app}`), as the kubelet does.
//!
//! # Caveats
//! Written in the background; a failed write is only logged. Repeats fold
//! into one Event's count (see [`skiff_client::events`]).

use k8s_openapi::api::core::v1::Pod;
use skiff_client::{Client, EventType, Occurrence, Recorder, Reporter};

/// Writes Events with this node as their source.
#[derive(Clone)]
pub(crate) struct EventRecorder {
    recorder: Recorder,
}

impl EventRecorder {
    pub fn new(client: Client, node: String) -> EventRecorder {
        let reporter = Reporter {
            component: "kubelet".into(),
            instance: Some(node),
        };
        EventRecorder {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Records a Warning about `pod` (and one of its containers).
    pub fn warning(&self, pod: &Pod, reason: &str, message: &str, container: Option<&str>) {
        self.record(pod, EventType::Warning, reason, message, container);
    }

    /// Records a Normal event about `pod`.
    pub fn normal(&self, pod: &Pod, reason: &str, message: &str, container: Option<&str>) {
        self.record(pod, EventType::Normal, reason, message, container);
    }

    fn record(
        &self,
        pod: &Pod,
        type_: EventType,
        reason: &str,
        message: &str,
        container: Option<&str>,
    ) {
        let occurrence = Occurrence {
            type_,
            reason,
            message,
            field_path: container.map(|c| format!("spec.containers{{{c}}}")),
        };
        self.recorder.record(pod, occurrence);
    }
}
