//! [`ObjectMetadata`]: an object of any discovered resource with only its
//! metadata, as Kubernetes' metadata informers hold `PartialObjectMetadata`.
//!
//! The garbage collector watches every resource but reads nothing beyond
//! uids, owner references, finalizers and deletion timestamps. Decoding
//! into this type skips each object's spec and status without building
//! them, so a pod the ReplicaSet controller already caches whole is not
//! cached whole a second time.
//!
//! # Caveats
//! The server still sends whole objects (there is no `as=PartialObjectMetadata`
//! content negotiation): what is saved is decoding and memory, not bytes on
//! the wire. Written back, an `ObjectMetadata` carries no spec, so it is only
//! ever read, patched or deleted by name.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use skiff_client::kube_core::{DynamicResourceScope, Resource};
use skiff_client::ApiResource;

/// An object's `metadata` and nothing else; every other field is skipped
/// when decoding.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub(crate) struct ObjectMetadata {
    /// The object's metadata.
    #[serde(default)]
    pub(crate) metadata: ObjectMeta,
}

impl Resource for ObjectMetadata {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(resource: &ApiResource) -> Cow<'_, str> {
        resource.kind.as_str().into()
    }

    fn group(resource: &ApiResource) -> Cow<'_, str> {
        resource.group.as_str().into()
    }

    fn version(resource: &ApiResource) -> Cow<'_, str> {
        resource.version.as_str().into()
    }

    fn api_version(resource: &ApiResource) -> Cow<'_, str> {
        resource.api_version.as_str().into()
    }

    fn plural(resource: &ApiResource) -> Cow<'_, str> {
        resource.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_keeps_the_metadata_and_skips_the_rest() {
        let pod = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web-1",
                "uid": "u1",
                "finalizers": ["foregroundDeletion"],
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web", "uid": "u0", "controller": true
                }]
            },
            "spec": {"containers": [{"name": "main", "image": "nginx"}]},
            "status": {"phase": "Running"}
        });
        let object: ObjectMetadata = serde_json::from_value(pod).expect("decodes");
        assert_eq!(object.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(object.metadata.owner_references.unwrap()[0].uid, "u0");
        assert_eq!(
            serde_json::to_value(ObjectMetadata::default()).unwrap(),
            serde_json::json!({"metadata": {}})
        );
    }
}
