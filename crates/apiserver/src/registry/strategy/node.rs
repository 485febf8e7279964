//! Nodes (Kubernetes' `pkg/registry/core/node/strategy.go`).

use serde_json::Value;
use skiff_api::resources::Resource;

use super::Strategy;

/// The strategy of Nodes.
pub(super) struct NodeStrategy;

impl Strategy for NodeStrategy {
    /// A kubelet registers its node with its status, so a new node keeps it.
    fn prepare_for_create(&self, _resource: &Resource, _object: &mut Value) {}
}
