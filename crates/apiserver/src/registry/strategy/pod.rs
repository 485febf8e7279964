//! Pods: `Pending` on create, graceful deletion, pods/binding
//! (Kubernetes' `pkg/registry/core/pod/strategy.go`).

use serde_json::{json, Value};
use skiff_api::resources::Resource;

use super::{CreateSubresource, Strategy};

/// The strategy of Pods.
pub(super) struct PodStrategy;

impl Strategy for PodStrategy {
    /// A new pod waits to be scheduled, whatever status the client sent.
    fn prepare_for_create(&self, _resource: &Resource, object: &mut Value) {
        object["status"] = json!({"phase": "Pending"});
    }

    /// A pod bound to a node stays until its kubelet has stopped it: the
    /// request's grace period, else the pod's
    /// `terminationGracePeriodSeconds`, else 30. An unbound pod goes at once.
    fn grace_period_seconds(&self, pod: &Value, requested: Option<i64>) -> i64 {
        if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
            return 0;
        }
        requested
            .or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30)
            .max(0)
    }

    fn create_subresource(&self, name: &str) -> Option<CreateSubresource> {
        (name == "binding").then_some(CreateSubresource::Binding)
    }
}
