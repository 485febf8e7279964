//! What the scheduler writes besides Bindings: the pod's `PodScheduled`
//! condition, Events (`Scheduled`, `FailedScheduling`, `Preempted`) and
//! preemption's deletions and `status.nominatedNodeName`. Failures here are
//! logged and dropped: the next cycle writes them again if they still apply.
//!
//! skiff-client has no EventRecorder yet, so Events are created here, one per
//! occurrence, named as Kubernetes names them (`<pod>.<nanoseconds in hex>`).

use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use skiff_client::{Api, Client, DeleteParams, Patch, PatchParams, PostParams};

use crate::framework::PostFilterResult;

/// Events recorded so far, to make names unique.
static EVENTS: AtomicU64 = AtomicU64::new(0);

/// The component name Events carry (`source.component`).
const COMPONENT: &str = "default-scheduler";

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

/// Records an Event about `pod`.
async fn record(client: &Client, pod: &Pod, kind: &str, reason: &str, message: &str) {
    let now = Time(Timestamp::now());
    // Kubernetes' event names: `<object>.<unix nanoseconds in hex>`; the
    // counter keeps two events of one nanosecond apart.
    let unique = now.0.as_nanosecond() as u128 + u128::from(EVENTS.fetch_add(1, Ordering::Relaxed));
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{unique:x}", name(pod))),
            namespace: Some(namespace(pod).to_string()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: Some(namespace(pod).to_string()),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..ObjectReference::default()
        },
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(kind.into()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), namespace(pod));
    if let Err(error) = api.create(&PostParams::default(), &event).await {
        tracing::warn!(pod = name(pod), %error, reason, "recording an event failed");
    }
}

/// `Scheduled`: `Successfully assigned ns/name to node`.
pub(crate) async fn scheduled(client: &Client, pod: &Pod, node: &str) {
    let message = format!(
        "Successfully assigned {}/{} to {node}",
        namespace(pod),
        name(pod)
    );
    record(client, pod, "Normal", "Scheduled", &message).await;
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
    client: &Client,
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
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace(pod));
    let patch = Patch::Merge(json!({ "status": status }));
    if let Err(error) = api
        .patch_status(name(pod), &PatchParams::default(), &patch)
        .await
    {
        tracing::debug!(pod = name(pod), %error, "writing PodScheduled failed");
    }
    record(client, pod, "Warning", "FailedScheduling", message).await;
}

/// A pod bound to another node than the one it was nominated to (in the
/// queue, or in the status the pod had when it was taken off the queue): its
/// `status.nominatedNodeName` no longer means anything, so it is cleared.
pub(crate) async fn clear_stale_nomination(
    client: &Client,
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
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace(pod));
    let patch = Patch::Merge(json!({"status": {"nominatedNodeName": null}}));
    if let Err(error) = api
        .patch_status(name(pod), &PatchParams::default(), &patch)
        .await
    {
        tracing::debug!(pod = name(pod), %error, "clearing nominatedNodeName failed");
    }
}

/// Deletes preemption's victims, each with a `Preempted` Event.
pub(crate) async fn preempt(client: &Client, preemptor: &Pod, result: &PostFilterResult) {
    for victim in &result.victims {
        let pod = &victim.pod;
        let message = format!(
            "Preempted by pod {}/{} on node {}",
            namespace(preemptor),
            name(preemptor),
            result.nominated_node_name
        );
        record(client, pod, "Normal", "Preempted", &message).await;
        let api: Api<Pod> = Api::namespaced(client.clone(), namespace(pod));
        if let Err(error) = api.delete(name(pod), &DeleteParams::default()).await {
            tracing::warn!(victim = name(pod), %error, "deleting a preemption victim failed");
        }
    }
}
