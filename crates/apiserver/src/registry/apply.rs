//! Server-side apply (`PATCH` with `application/apply-patch+yaml`,
//! `kubectl apply --server-side`): the body is the field manager's whole
//! intent for the object, in YAML or JSON.
//!
//! The intent is merged into the live object by the kind's list strategies;
//! fields the manager applied before and omits now are removed unless
//! another manager owns them; a field another manager owns with another
//! value is a 409 Conflict naming each field, unless `force` takes it over
//! (`managed_fields/`). An apply to an object that does not exist creates it,
//! with create's defaulting and validation.

use serde_json::Value;
use skiff_api::resources::Resource;
use skiff_api::status::{ApiError, Cause, Details, Reason};

use super::create::NewWrite;
use super::managed_fields::{self, ApplyError, Manager};
use super::write::{check_subresource, Outcome};
use super::{Registry, Reply, WriteOptions};
use crate::object::{decode, meta_mut, meta_str};

impl Registry {
    /// Applies `body`, `options.field_manager`'s intent, to the object `name`
    /// (`subresource` "" or "status"), creating it when absent.
    pub(crate) async fn apply(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: &str,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        check_subresource(resource, subresource, &["", "status"])?;
        let Some(manager) = self.manager(resource, options, subresource) else {
            return Err(ApiError::bad_request(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        };
        let (intent, warnings) = decode_intent(resource, namespace, name, body, options)?;
        // The object is created when missing; losing that race to another
        // creator turns the apply into an update of what it created.
        for _attempt in 0..2 {
            if subresource.is_empty() && self.read(&resource.key(namespace, name)).await?.is_none()
            {
                let write = NewWrite {
                    dry_run: options.dry_run,
                    manager: Some(&manager),
                    intent: Some(&intent),
                };
                match self
                    .create_decoded(resource, namespace, intent.clone(), &write)
                    .await
                {
                    Err(e) if e.reason == Reason::AlreadyExists => continue,
                    created => {
                        return created.map(|object| Reply { object, warnings });
                    }
                }
            }
            let object = self
                .apply_to_existing(resource, namespace, name, &intent, &manager, options)
                .await?;
            return Ok(Reply { object, warnings });
        }
        Err(ApiError::already_exists(resource, name))
    }

    async fn apply_to_existing(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        intent: &Value,
        manager: &Manager,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let ty = skiff_api::patch::schema::for_kind(resource.kind);
        let precondition = meta_str(intent, "resourceVersion").to_string();
        let outcome = self
            .guaranteed_update(
                resource,
                namespace,
                name,
                options.dry_run,
                |current, taken| {
                    if !precondition.is_empty()
                        && meta_str(current, "resourceVersion") != precondition
                    {
                        return Err(ApiError::stale(resource, name));
                    }
                    let merge = |live: &mut Value, intent: &Value| {
                        skiff_api::patch::apply_merge(resource.kind, live, intent)
                            .map_err(|e| e.to_string())
                    };
                    let merged =
                        managed_fields::apply(current, intent, ty, manager, options.force, merge)
                            .map_err(|e| apply_error(resource, name, e))?;
                    self.prepare_update(
                        resource,
                        &manager.subresource,
                        current,
                        merged,
                        taken,
                        None,
                    )
                },
            )
            .await?;
        match outcome {
            Outcome::Stored(object) | Outcome::Deleted(object) => Ok(object),
        }
    }
}

/// Reads the intent (JSON, or YAML as `kubectl apply --server-side` sends
/// it) and checks its kind, name and namespace against the request.
fn decode_intent(
    resource: &Resource,
    namespace: &str,
    name: &str,
    body: &[u8],
    options: &WriteOptions,
) -> Result<(Value, Vec<String>), ApiError> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(_) => serde_yaml::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("the apply body is neither JSON nor YAML: {e}"))
        })?,
    };
    let json = serde_json::to_vec(&parsed).expect("a Value always encodes");
    let decoded = decode(resource, &json, options.field_validation)?;
    let mut intent = decoded.object;
    let body_name = meta_str(&intent, "name");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let body_namespace = meta_str(&intent, "namespace");
    if resource.namespaced && !body_namespace.is_empty() && body_namespace != namespace {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    meta_mut(&mut intent).remove("managedFields");
    Ok((intent, decoded.warnings))
}

/// A failed apply as Kubernetes answers it: 409 with a cause per conflicting
/// field (`FieldManagerConflict`).
fn apply_error(resource: &Resource, name: &str, error: ApplyError) -> ApiError {
    match &error {
        ApplyError::Merge(why) => {
            ApiError::bad_request(format!("the apply could not be merged: {why}"))
        }
        ApplyError::Conflicts(conflicts) => ApiError {
            details: Some(Box::new(Details {
                name: name.to_string(),
                group: resource.group.to_string(),
                kind: resource.resource.to_string(),
                causes: conflicts
                    .iter()
                    .map(|c| Cause {
                        reason: "FieldManagerConflict".into(),
                        message: format!("conflict with {}", c.manager),
                        field: c.field.clone(),
                    })
                    .collect(),
            })),
            ..ApiError::new(Reason::Conflict, error.to_string())
        },
    }
}
