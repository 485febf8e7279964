//! Subresources created by POST: pods/binding, as a scheduler binds a pod to
//! a node (Kubernetes' `BindingREST` in `pkg/registry/core/pod/storage`).

use serde_json::{json, Value};
use skiff_api::admission;
use skiff_api::resources::{self, Resource};
use skiff_api::status::{ApiError, Details, Reason};

use super::allocator::Allocation;
use super::strategy::{self, CreateSubresource};
use super::write::{success_status, Change};
use super::{Registry, Reply, WriteOptions};
use crate::object::{decode_kind, is_deleting, FieldValidation};

impl Registry {
    /// Creates `subresource` of the object `name`, if its kind serves that
    /// subresource to create (pods/binding); MethodNotAllowed otherwise.
    pub async fn create_subresource(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: &str,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        match strategy::for_kind(resource).create_subresource(subresource) {
            Some(CreateSubresource::Binding) => self.bind(namespace, name, body, options).await,
            None => Err(ApiError::method_not_allowed(format!(
                "create is not served for {}/{subresource}",
                resource.resource
            ))),
        }
    }

    /// Binds a pod to a node (pods/binding): sets `spec.nodeName` once.
    pub async fn bind(
        &self,
        namespace: &str,
        name: &str,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        let pods = resources::lookup("pods").expect("pods are served");
        let binding = decode_kind("Binding", "v1", body, FieldValidation::Warn)?.object;
        let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
        if node.is_empty() {
            return Err(ApiError::invalid(
                pods,
                name,
                &[admission::FieldError {
                    field: "target.name".into(),
                    kind: admission::FieldErrorKind::Required,
                    detail: String::new(),
                }],
            ));
        }
        let now = self.now();
        let conflict = |why: String| ApiError {
            details: Some(Box::new(Details {
                name: name.to_string(),
                kind: "pods/binding".into(),
                ..Default::default()
            })),
            ..ApiError::new(
                Reason::Conflict,
                format!("Operation cannot be fulfilled on pods/binding \"{name}\": {why}"),
            )
        };
        self.guaranteed_update(pods, namespace, name, options.dry_run, |current, _| {
            let bound = current["spec"]["nodeName"].as_str().unwrap_or("");
            if !bound.is_empty() {
                return Err(conflict(format!(
                    "pod {name} is already assigned to node \"{bound}\""
                )));
            }
            if is_deleting(current) {
                return Err(conflict(format!(
                    "pod {name} is being deleted, cannot be assigned to a host"
                )));
            }
            let mut next = current.clone();
            next["spec"]["nodeName"] = json!(node);
            let conditions = next["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut conditions: Vec<Value> = conditions
                .into_iter()
                .filter(|c| c["type"] != "PodScheduled")
                .collect();
            conditions
                .push(json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": now}));
            next["status"]["conditions"] = Value::Array(conditions);
            Ok(Change::Put(next, Allocation::default()))
        })
        .await?;
        Ok(Reply {
            object: success_status(201, None),
            warnings: Vec::new(),
        })
    }
}
