//! The `scale` subresource of Deployments and ReplicaSets: an
//! `autoscaling/v1` Scale that reads and writes only `spec.replicas`, as
//! `kubectl scale` and the HorizontalPodAutoscaler use it (Kubernetes'
//! `ScaleREST` in `pkg/registry/apps/deployment/storage`).
//!
//! A Scale carries the object's name, namespace, uid, resourceVersion and
//! creationTimestamp; `spec.replicas`; and in its status the replicas
//! observed and the object's selector as a string (`app=web`), the form an
//! autoscaler lists pods with.
//!
//! # Caveats
//! StatefulSets are not served, so neither is their scale. A strategic merge
//! patch of a Scale is applied as a merge patch (a Scale has no lists, where
//! the two differ); server-side apply of a Scale is not served.

use serde_json::{json, Value};
use skiff_api::labels::LabelSelector;
use skiff_api::resources::Resource;
use skiff_api::status::{ApiError, Reason};

use super::write::{Outcome, PatchType};
use super::{Registry, Reply, WriteOptions};
use crate::object::{decode_kind, meta_str, parse_resource_version};

/// The kinds whose objects have a `scale` subresource.
const SCALABLE: &[&str] = &["Deployment", "ReplicaSet"];

impl Registry {
    /// The Scale of a Deployment or ReplicaSet.
    pub async fn get_scale(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        check_scalable(resource)?;
        let current = self.read_existing(resource, namespace, name).await?;
        Ok(to_scale(&current.object))
    }

    /// Sets `spec.replicas` from a Scale body; its resourceVersion, when set,
    /// is a precondition. Answers the new Scale.
    pub async fn update_scale(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        check_scalable(resource)?;
        let decoded = decode_kind("Scale", "autoscaling/v1", body, options.field_validation)?;
        let scale = decoded.object;
        let body_name = meta_str(&scale, "name");
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let precondition = parse_resource_version(meta_str(&scale, "resourceVersion"))?;
        let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
        let object = self
            .write_replicas(resource, namespace, name, options, |current| {
                if let Some(expected) = precondition {
                    if meta_str(current, "resourceVersion") != expected.to_string() {
                        return Err(ApiError::stale(resource, name));
                    }
                }
                Ok(replicas)
            })
            .await?;
        Ok(Reply {
            object: to_scale(&object),
            warnings: decoded.warnings,
        })
    }

    /// Patches the Scale (merge or JSON patch) and stores its `spec.replicas`.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch_scale(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        patch: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        check_scalable(resource)?;
        let patch: Value = serde_json::from_slice(patch)
            .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
        let object = self
            .write_replicas(resource, namespace, name, options, |current| {
                let mut scale = to_scale(current);
                match patch_type {
                    PatchType::Merge | PatchType::StrategicMerge => {
                        skiff_api::patch::merge_patch(&mut scale, &patch)
                    }
                    PatchType::Json => {
                        skiff_api::patch::json_patch(&mut scale, &patch).map_err(|e| {
                            ApiError::new(
                                Reason::Invalid,
                                format!("the JSON patch could not be applied: {e}"),
                            )
                        })?
                    }
                    PatchType::Apply => {
                        return Err(ApiError::new(
                            Reason::UnsupportedMediaType,
                            "apply patches of a Scale are not supported",
                        ))
                    }
                }
                if meta_str(&scale, "resourceVersion") != meta_str(current, "resourceVersion") {
                    return Err(ApiError::stale(resource, name));
                }
                scale["spec"]["replicas"].as_i64().ok_or_else(|| {
                    ApiError::bad_request("spec.replicas of the patched Scale is not an integer")
                })
            })
            .await?;
        Ok(Reply {
            object: to_scale(&object),
            warnings: Vec::new(),
        })
    }

    /// Stores the replicas `replicas(current)` picks, through the update path
    /// (so the kind's validation sees it); answers the object as stored.
    async fn write_replicas(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        options: &WriteOptions,
        mut replicas: impl FnMut(&Value) -> Result<i64, ApiError>,
    ) -> Result<Value, ApiError> {
        let manager = self.manager(resource, options, "scale");
        let outcome = self
            .guaranteed_update(
                resource,
                namespace,
                name,
                options.dry_run,
                |current, taken| {
                    let mut next = current.clone();
                    next["spec"]["replicas"] = json!(replicas(current)?);
                    self.prepare_update(resource, "", current, next, taken, manager.as_ref())
                },
            )
            .await?;
        match outcome {
            Outcome::Stored(object) | Outcome::Deleted(object) => Ok(object),
        }
    }
}

fn check_scalable(resource: &Resource) -> Result<(), ApiError> {
    if SCALABLE.contains(&resource.kind) {
        return Ok(());
    }
    Err(ApiError::new(
        Reason::NotFound,
        format!(
            "the server could not find the requested resource ({}/scale)",
            resource.resource
        ),
    ))
}

/// The autoscaling/v1 Scale of a Deployment or ReplicaSet.
fn to_scale(object: &Value) -> Value {
    let meta = &object["metadata"];
    let selector = LabelSelector::from_json(&object["spec"]["selector"])
        .map(|s| s.to_string())
        .unwrap_or_default();
    let mut metadata = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(value) = meta.get(field) {
            metadata[field] = value.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(0)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use skiff_api::status::Reason;

    use crate::registry::tests::{r, Fixture};
    use crate::registry::write::PatchType;
    use crate::registry::WriteOptions;

    fn deployment(name: &str, replicas: i64) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name},
                             "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
                "template": {"metadata": {"labels": {"app": name, "tier": "web"}},
                             "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            },
        }))
        .unwrap()
    }

    fn scale_body(name: &str, replicas: i64) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas},
        }))
        .unwrap()
    }

    async fn fixture_with(name: &str) -> Fixture {
        let f = Fixture::new().await;
        f.registry
            .create(
                r("deployments"),
                "default",
                &deployment(name, 2),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        f
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scale_shows_replicas_and_the_selector_as_text() {
        let f = fixture_with("web").await;
        let scale = f
            .registry
            .get_scale(r("deployments"), "default", "web")
            .await
            .unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["apiVersion"], "autoscaling/v1");
        assert_eq!(scale["metadata"]["name"], "web");
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(scale["status"]["selector"], "app=web,tier in (web)");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn updating_the_scale_sets_spec_replicas_and_a_new_generation() {
        let f = fixture_with("web").await;
        let reply = f
            .registry
            .update_scale(
                r("deployments"),
                "default",
                "web",
                &scale_body("web", 5),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(reply.object["spec"]["replicas"], 5);
        let stored = f
            .registry
            .get(r("deployments"), "default", "web", "")
            .await
            .unwrap();
        assert_eq!(stored["spec"]["replicas"], 5);
        assert_eq!(stored["metadata"]["generation"], 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_scale_is_a_conflict_and_a_negative_one_invalid() {
        let f = fixture_with("web").await;
        let mut stale: Value = serde_json::from_slice(&scale_body("web", 3)).unwrap();
        stale["metadata"]["resourceVersion"] = json!("1");
        let err = f
            .registry
            .update_scale(
                r("deployments"),
                "default",
                "web",
                &serde_json::to_vec(&stale).unwrap(),
                &WriteOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::Conflict);
        let err = f
            .registry
            .update_scale(
                r("deployments"),
                "default",
                "web",
                &scale_body("web", -1),
                &WriteOptions::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::Invalid, "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn patching_the_scale_changes_only_replicas() {
        let f = fixture_with("web").await;
        let reply = f
            .registry
            .patch_scale(
                r("deployments"),
                "default",
                "web",
                PatchType::Merge,
                br#"{"spec":{"replicas":4}}"#,
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(reply.object["spec"]["replicas"], 4);
        let reply = f
            .registry
            .patch_scale(
                r("deployments"),
                "default",
                "web",
                PatchType::Json,
                br#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(reply.object["spec"]["replicas"], 1);
        let err = f
            .registry
            .get_scale(r("pods"), "default", "web")
            .await
            .unwrap_err();
        assert_eq!(err.reason, Reason::NotFound);
    }
}
