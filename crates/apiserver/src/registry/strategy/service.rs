//! Services: ClusterIPs and NodePorts taken on create and update, freed on
//! delete (Kubernetes' `pkg/registry/core/service/strategy.go` and its
//! allocators; skiff's allocator is `registry/allocator.rs`).

use serde_json::Value;
use skiff_api::admission::FieldError;
use skiff_api::resources::Resource;

use super::{keep, AllocationContext, Strategy};
use crate::object::meta_str;
use crate::registry::allocator::{self, Allocation};

/// The strategy of Services.
pub(super) struct ServiceStrategy;

impl Strategy for ServiceStrategy {
    /// What the client left out of the allocated addresses is the old value,
    /// before validation sees it.
    fn prepare_for_update(&self, resource: &Resource, next: &mut Value, old: &Value) {
        if resource.has_subresource("status") {
            keep(next, old, "status");
        }
        allocator::carry_over_allocated(next, old);
    }

    fn allocates(&self) -> bool {
        true
    }

    fn allocate(
        &self,
        context: &AllocationContext<'_>,
        service: &mut Value,
        old: Option<&Value>,
    ) -> Result<Allocation, Vec<FieldError>> {
        let owner = format!(
            "{}/{}",
            meta_str(service, "namespace"),
            meta_str(service, "name")
        );
        allocator::allocate(
            context.ranges,
            context.random,
            service,
            old,
            &owner,
            &|key| context.taken.contains(key),
        )
    }

    fn release(&self, service: &Value) -> Allocation {
        allocator::release_all(service)
    }
}
