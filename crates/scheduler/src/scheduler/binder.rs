//! DefaultBinder: binds a pod by creating its `pods/binding` subresource,
//! as kube-scheduler's plugin of the same name; the API server then sets
//! `spec.nodeName` (once: a second binding is a conflict).

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_client::{Api, Client, PostParams};

use crate::framework::{BindPlugin, Status};

/// The Bind plugin that writes Bindings through the client.
pub struct DefaultBinder {
    client: Client,
}

impl DefaultBinder {
    /// A binder over `client`.
    pub fn new(client: Client) -> DefaultBinder {
        DefaultBinder { client }
    }
}

#[async_trait]
impl BindPlugin for DefaultBinder {
    async fn bind(&self, pod: &Pod, node_name: &str) -> Status {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(namespace.to_string()),
                uid: pod.metadata.uid.clone(),
                ..ObjectMeta::default()
            },
            target: ObjectReference {
                kind: Some("Node".into()),
                name: Some(node_name.to_string()),
                ..ObjectReference::default()
            },
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        match api.bind(name, &PostParams::default(), &binding).await {
            Ok(()) => Status::success(),
            Err(error) => Status::error(error.to_string()),
        }
    }
}
