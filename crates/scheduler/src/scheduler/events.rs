//! What the scheduler writes besides Bindings: the pod's `PodScheduled`
//! condition, Events (`Scheduled`, `FailedScheduling`, `Preempted`) and
//! preemption's deletions and `status.nominatedNodeName`. Failures here are
//! logged and dropped: the next cycle writes them again if they still apply.
//!
//! Events go through skiff-client's [`Recorder`] as `default-scheduler`.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use skiff_client::{
    Api, Client, DeleteParams, EventType, Occurrence, Patch, PatchParams, Recorder, Reporter,
};

use crate::framework::PostFilterResult;

/// The component name Events carry (`source.component`).
const COMPONENT: &str = "default-scheduler";

/// What the scheduler writes through: its client, and its Event recorder
/// (repeated `FailedScheduling` of one pod fold into one Event's count).
#[derive(Clone)]
pub(crate) struct Writer {
    pub(crate) client: Client,
    recorder: Recorder,
}

impl Writer {
    pub(crate) fn new(client: Client) -> Writer {
        let reporter = Reporter {
            component: COMPONENT.into(),
            instance: None,
        };
        Writer {
            recorder: Recorder::new(client.clone(), reporter),
            client,
        }
    }

    async fn record(&self, pod: &Pod, type_: EventType, reason: &str, message: &str) {
        let occurrence = Occurrence {
            type_,
            reason,
            message,
            field_path: None,
        };
        self.recorder.publish(pod, occurrence).await;
    }
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

/// `Scheduled`: `Successfully assigned ns/name to node`.
pub(crate) async fn scheduled(writer: &Writer, pod: &Pod, node: &str) {
    let message = format!(
        "Successfully assigned {}/{} to {node}",
        namespace(pod),
        name(pod)
    );
    writer
        .record(pod, EventType::Normal, "Scheduled", &message)
        .await;
}

/// What to write to a pod's `status.nominatedNodeName`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NominatedNode<'a> {
    /// Preemption made room on this node.
    Set(&'a str),
    /// No node can be made to fit: clear it (if the pod has one).
    Clear,
    /// Leave it alone.
    Keep,
}

/// The pod's `status.nominatedNodeName`, if set.
fn nominated_node_name(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .nominated_node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// `PodScheduled=False` (reason Unschedulable) with `message`, the nominated
/// node as preemption decided, and a `FailedScheduling` Warning Event.
pub(crate) async fn failed_scheduling(
    writer: &Writer,
    pod: &Pod,
    message: &str,
    nominated: NominatedNode<'_>,
) {
    let mut status = json!({"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastTransitionTime": Time(Timestamp::now()),
    }]});
    match nominated {
        NominatedNode::Set(node) => status["nominatedNodeName"] = json!(node),
        NominatedNode::Clear if nominated_node_name(pod).is_some() => {
            status["nominatedNodeName"] = serde_json::Value::Null
        }
        NominatedNode::Clear | NominatedNode::Keep => {}
    }
    let api: Api<Pod> = Api::namespaced(writer.client.clone(), namespace(pod));
    let patch = Patch::Merge(json!({ "status": status }));
    if let Err(error) = api
        .patch_status(name(pod), &PatchParams::default(), &patch)
        .await
    {
        tracing::debug!(pod = name(pod), %error, "writing PodScheduled failed");
    }
    writer
        .record(pod, EventType::Warning, "FailedScheduling", message)
        .await;
}

/// A pod bound to another node than the one it was nominated to (in the
/// queue, or in the status the pod had when it was taken off the queue): its
/// `status.nominatedNodeName` no longer means anything, so it is cleared.
pub(crate) async fn clear_stale_nomination(
    writer: &Writer,
    pod: &Pod,
    nominated: Option<&str>,
    node: &str,
) {
    if nominated
        .or(nominated_node_name(pod))
        .is_none_or(|nominated| nominated == node)
    {
        return;
    }
    let api: Api<Pod> = Api::namespaced(writer.client.clone(), namespace(pod));
    let patch = Patch::Merge(json!({"status": {"nominatedNodeName": null}}));
    if let Err(error) = api
        .patch_status(name(pod), &PatchParams::default(), &patch)
        .await
    {
        tracing::debug!(pod = name(pod), %error, "clearing nominatedNodeName failed");
    }
}

/// Deletes preemption's victims, each with a `Preempted` Event.
pub(crate) async fn preempt(writer: &Writer, preemptor: &Pod, result: &PostFilterResult) {
    for victim in &result.victims {
        let pod = &victim.pod;
        let message = format!(
            "Preempted by pod {}/{} on node {}",
            namespace(preemptor),
            name(preemptor),
            result.nominated_node_name
        );
        writer
            .record(pod, EventType::Normal, "Preempted", &message)
            .await;
        let api: Api<Pod> = Api::namespaced(writer.client.clone(), namespace(pod));
        if let Err(error) = api.delete(name(pod), &DeleteParams::default()).await {
            tracing::warn!(victim = name(pod), %error, "deleting a preemption victim failed");
        }
    }
}
