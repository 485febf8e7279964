//! Writes: create, update, patch and pods/binding.

use std::collections::HashSet;

use serde_json::{json, Value};
use skiff_api::admission;
use skiff_api::resources::{self, Resource};
use skiff_api::status::{ApiError, Details, Reason};
use skiff_proto::etcdserverpb::{
    compare, request_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};

use super::allocator::{self, Allocation, NODE_PORTS_PREFIX, SERVICE_IPS_PREFIX};
use super::{storage_error, Registry, Reply, WriteOptions};
use crate::object::{
    self, decode, decode_kind, is_deleting, meta_mut, meta_str, parse_resource_version,
    set_resource_version, spec_part, to_stored, FieldValidation,
};
use crate::storage::prefix_end;

/// How a patch body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386 JSON merge patch.
    Merge,
    /// RFC 6902 JSON patch.
    Json,
}

/// What an update does to the stored key.
pub(crate) enum Change {
    Put(Value, Allocation),
    Delete(Allocation),
    Unchanged,
}

/// Where an update ended.
pub(crate) enum Outcome {
    /// Stored (or unchanged): the object with its resourceVersion.
    Stored(Value),
    /// The key was deleted; the object's last state.
    Deleted(Value),
}

/// The expectation a write's txn compares.
pub(crate) enum Expect {
    Absent,
    ModRevision(i64),
}

/// How often a write without a precondition is retried after losing a race.
const MAX_RETRIES: usize = 1000;

impl Registry {
    /// Runs a txn writing (or deleting) `key` if `expect` holds; the new
    /// revision, or `None` when a compare failed.
    pub(crate) async fn commit(
        &self,
        key: &str,
        value: Option<&Value>,
        expect: Expect,
        allocation: Allocation,
    ) -> Result<Option<i64>, ApiError> {
        let key_bytes = key.as_bytes().to_vec();
        let mut compares = vec![match expect {
            Expect::Absent => Compare {
                key: key_bytes.clone(),
                target: compare::CompareTarget::Create as i32,
                result: compare::CompareResult::Equal as i32,
                target_union: Some(compare::TargetUnion::CreateRevision(0)),
                ..Default::default()
            },
            Expect::ModRevision(rev) => Compare {
                key: key_bytes.clone(),
                target: compare::CompareTarget::Mod as i32,
                result: compare::CompareResult::Equal as i32,
                target_union: Some(compare::TargetUnion::ModRevision(rev)),
                ..Default::default()
            },
        }];
        compares.extend(allocation.compares);
        let write = match value {
            Some(object) => request_op::Request::RequestPut(PutRequest {
                key: key_bytes,
                value: to_stored(object),
                ..Default::default()
            }),
            None => request_op::Request::RequestDeleteRange(DeleteRangeRequest {
                key: key_bytes,
                ..Default::default()
            }),
        };
        let mut success = vec![RequestOp {
            request: Some(write),
        }];
        success.extend(allocation.ops);
        let resp = self
            .storage
            .txn(TxnRequest {
                compare: compares,
                success,
                failure: vec![],
            })
            .await
            .map_err(storage_error)?;
        Ok(resp
            .succeeded
            .then(|| resp.header.map_or(0, |h| h.revision)))
    }

    /// Every allocated ClusterIP and NodePort key.
    pub(crate) async fn allocated(&self) -> Result<HashSet<String>, ApiError> {
        let mut taken = HashSet::new();
        for prefix in [SERVICE_IPS_PREFIX, NODE_PORTS_PREFIX] {
            let resp = self
                .storage
                .range(RangeRequest {
                    key: prefix.as_bytes().to_vec(),
                    range_end: prefix_end(prefix.as_bytes()),
                    keys_only: true,
                    ..Default::default()
                })
                .await
                .map_err(storage_error)?;
            taken.extend(
                resp.kvs
                    .into_iter()
                    .map(|kv| String::from_utf8_lossy(&kv.key).into_owned()),
            );
        }
        Ok(taken)
    }

    /// The namespace `namespace` exists and is not terminating.
    async fn check_namespace(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let namespaces = resources::lookup("namespaces").expect("namespaces are served");
        let Some(ns) = self.read(&namespaces.key("", namespace)).await? else {
            return Err(ApiError::not_found(namespaces, namespace));
        };
        if is_deleting(&ns.object) || ns.object["status"]["phase"] == "Terminating" {
            return Err(ApiError::forbidden(
                resource,
                name,
                &format!("unable to create new content in namespace {namespace} because it is being terminated"),
            ));
        }
        Ok(())
    }

    /// Creates an object of `resource` in `namespace` from a JSON body.
    pub async fn create(
        &self,
        resource: &'static Resource,
        namespace: &str,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        let decoded = decode(resource, body, options.field_validation)?;
        let warnings = decoded.warnings;
        let mut object = decoded.object;
        let body_namespace = meta_str(&object, "namespace").to_string();
        let namespace = if resource.namespaced {
            if !body_namespace.is_empty() && !namespace.is_empty() && body_namespace != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            let ns = if namespace.is_empty() {
                body_namespace
            } else {
                namespace.to_string()
            };
            if ns.is_empty() {
                return Err(ApiError::bad_request(
                    "a namespace is required to create a namespaced object",
                ));
            }
            ns
        } else {
            String::new()
        };
        let given_name = meta_str(&object, "name").to_string();
        let generate = meta_str(&object, "generateName").to_string();
        if given_name.is_empty() && generate.is_empty() {
            return Err(ApiError::invalid(
                resource,
                "",
                &[admission::FieldError {
                    field: "metadata.name".into(),
                    kind: admission::FieldErrorKind::Required,
                    detail: "name or generateName is required".into(),
                }],
            ));
        }
        if resource.namespaced {
            self.check_namespace(resource, &namespace, &given_name)
                .await?;
        }
        {
            let now = self.now();
            let uid = self.random.uuid();
            let meta = meta_mut(&mut object);
            for server_owned in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "managedFields",
            ] {
                meta.remove(server_owned);
            }
            meta.insert("uid".into(), json!(uid));
            meta.insert("creationTimestamp".into(), json!(now));
            meta.insert("generation".into(), json!(1));
            if resource.namespaced {
                meta.insert("namespace".into(), json!(namespace));
            } else {
                meta.remove("namespace");
            }
        }
        // As Kubernetes' PrepareForCreate strategies: status is the server's
        // (nodes excepted: a kubelet registers its node with its status).
        if resource.has_subresource("status") && resource.kind != "Node" {
            if let Some(fields) = object.as_object_mut() {
                fields.remove("status");
            }
        }
        if resource.kind == "Pod" {
            object["status"] = json!({"phase": "Pending"});
        }
        if resource.kind == "Namespace" {
            object["status"] = json!({"phase": "Active"});
            object["spec"]["finalizers"] = json!(["kubernetes"]);
        }
        tracing::debug!(resource = resource.resource, namespace, "create");
        for _attempt in 0..8 {
            let name = if given_name.is_empty() {
                format!("{generate}{}", self.random.name_suffix())
            } else {
                given_name.clone()
            };
            let mut candidate = object.clone();
            meta_mut(&mut candidate).insert("name".into(), json!(name));
            admission::default(resource.kind, &mut candidate);
            let errors = admission::validate(resource.kind, &candidate, None);
            if !errors.is_empty() {
                return Err(ApiError::invalid(resource, &name, &errors));
            }
            let allocation = if resource.kind == "Service" {
                let taken = self.allocated().await?;
                let owner = format!("{namespace}/{name}");
                allocator::allocate(
                    &self.config.service_ranges,
                    &self.random,
                    &mut candidate,
                    None,
                    &owner,
                    &|key| taken.contains(key),
                )
                .map_err(|errors| ApiError::invalid(resource, &name, &errors))?
            } else {
                Allocation::default()
            };
            if options.dry_run {
                return Ok(Reply {
                    object: candidate,
                    warnings,
                });
            }
            let key = resource.key(&namespace, &name);
            if let Some(revision) = self
                .commit(&key, Some(&candidate), Expect::Absent, allocation)
                .await?
            {
                set_resource_version(&mut candidate, revision);
                return Ok(Reply {
                    object: candidate,
                    warnings,
                });
            }
            let exists = self.read(&key).await?.is_some();
            if exists && !given_name.is_empty() {
                return Err(ApiError::already_exists(resource, &name));
            }
            // A generated name or an address was taken meanwhile: try again.
        }
        Err(ApiError::new(
            Reason::AlreadyExists,
            format!(
                "{} could not be created: every generated name or address tried was taken",
                resource.qualified_name()
            ),
        ))
    }

    /// Reads, changes and writes one object until the write wins the race (a
    /// txn on `mod_revision`), as Kubernetes' `GuaranteedUpdate`. `change` sees
    /// the current object and the allocated addresses (for Services).
    pub(crate) async fn guaranteed_update(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        dry_run: bool,
        mut change: impl FnMut(&Value, &HashSet<String>) -> Result<Change, ApiError>,
    ) -> Result<Outcome, ApiError> {
        let key = resource.key(namespace, name);
        for _attempt in 0..MAX_RETRIES {
            let current = self.read_existing(resource, namespace, name).await?;
            let taken = if resource.kind == "Service" {
                self.allocated().await?
            } else {
                HashSet::new()
            };
            let expect = Expect::ModRevision(current.mod_revision);
            match change(&current.object, &taken)? {
                Change::Unchanged => return Ok(Outcome::Stored(current.object)),
                Change::Put(mut object, _) if dry_run => {
                    set_resource_version(&mut object, current.mod_revision);
                    return Ok(Outcome::Stored(object));
                }
                Change::Delete(_) if dry_run => return Ok(Outcome::Deleted(current.object)),
                Change::Put(mut object, allocation) => {
                    if let Some(rev) = self.commit(&key, Some(&object), expect, allocation).await? {
                        set_resource_version(&mut object, rev);
                        return Ok(Outcome::Stored(object));
                    }
                }
                Change::Delete(allocation) => {
                    if let Some(rev) = self.commit(&key, None, expect, allocation).await? {
                        let mut last = current.object;
                        set_resource_version(&mut last, rev);
                        return Ok(Outcome::Deleted(last));
                    }
                }
            }
        }
        Err(ApiError::new(
            Reason::Conflict,
            format!(
                "{} \"{name}\": too many concurrent writers; gave up after {MAX_RETRIES} tries",
                resource.qualified_name()
            ),
        ))
    }

    /// Replaces an object (`subresource` "" or "status"; "finalize" for namespaces).
    /// A `metadata.resourceVersion` in the body is a precondition.
    pub async fn update(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: &str,
        body: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        check_subresource(resource, subresource, &["", "status", "finalize"])?;
        let decoded = decode(resource, body, options.field_validation)?;
        let new = decoded.object;
        let body_name = meta_str(&new, "name");
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if subresource == "finalize" {
            self.check_namespace_empty(name).await?;
        }
        let precondition = parse_resource_version(meta_str(&new, "resourceVersion"))?;
        let outcome = self
            .guaranteed_update(
                resource,
                namespace,
                name,
                options.dry_run,
                |current, taken| {
                    if let Some(expected) = precondition {
                        if meta_str(current, "resourceVersion") != expected.to_string() {
                            return Err(ApiError::stale(resource, name));
                        }
                    }
                    self.prepare_update(resource, subresource, current, new.clone(), taken)
                },
            )
            .await?;
        Ok(reply(outcome, decoded.warnings))
    }

    /// Patches an object, then stores it as an update would.
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        resource: &'static Resource,
        namespace: &str,
        name: &str,
        subresource: &str,
        patch_type: PatchType,
        patch: &[u8],
        options: &WriteOptions,
    ) -> Result<Reply, ApiError> {
        check_subresource(resource, subresource, &["", "status"])?;
        let patch: Value = serde_json::from_slice(patch)
            .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
        let mut warnings = Vec::new();
        let outcome = self
            .guaranteed_update(
                resource,
                namespace,
                name,
                options.dry_run,
                |current, taken| {
                    let mut patched = current.clone();
                    match patch_type {
                        PatchType::Merge => skiff_api::patch::merge_patch(&mut patched, &patch),
                        PatchType::Json => skiff_api::patch::json_patch(&mut patched, &patch)
                            .map_err(|e| {
                                ApiError::new(
                                    Reason::Invalid,
                                    format!("the JSON patch could not be applied: {e}"),
                                )
                            })?,
                    }
                    if meta_str(&patched, "resourceVersion") != meta_str(current, "resourceVersion")
                    {
                        // A resourceVersion in the patch is a precondition.
                        return Err(ApiError::stale(resource, name));
                    }
                    let bytes = serde_json::to_vec(&patched).expect("a Value always encodes");
                    let decoded = decode(resource, &bytes, options.field_validation)?;
                    warnings = decoded.warnings;
                    self.prepare_update(resource, subresource, current, decoded.object, taken)
                },
            )
            .await?;
        Ok(reply(outcome, warnings))
    }

    /// The object an update of `old` to `new` stores.
    pub(crate) fn prepare_update(
        &self,
        resource: &'static Resource,
        subresource: &str,
        old: &Value,
        new: Value,
        taken: &HashSet<String>,
    ) -> Result<Change, ApiError> {
        let name = meta_str(old, "name").to_string();
        let mut next = match subresource {
            "status" => {
                let mut next = old.clone();
                match new.get("status") {
                    Some(status) => next["status"] = status.clone(),
                    None => {
                        next.as_object_mut().map(|o| o.remove("status"));
                    }
                }
                next
            }
            "finalize" => {
                let mut next = old.clone();
                next["spec"]["finalizers"] = new["spec"]["finalizers"].clone();
                next
            }
            _ => {
                let mut next = new;
                if resource.has_subresource("status") {
                    match old.get("status") {
                        Some(status) => next["status"] = status.clone(),
                        None => {
                            next.as_object_mut().map(|o| o.remove("status"));
                        }
                    }
                }
                if resource.kind == "Namespace" {
                    next["spec"] = old["spec"].clone();
                }
                next
            }
        };
        // Metadata the server owns.
        let old_meta = old.get("metadata").cloned().unwrap_or_default();
        let meta = meta_mut(&mut next);
        for owned in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old_meta.get(owned) {
                Some(v) => meta.insert(owned.into(), v.clone()),
                None => meta.remove(owned),
            };
        }
        if resource.kind == "Service" && subresource.is_empty() {
            // As Kubernetes' Service strategy: what the client left out of the
            // allocated addresses is the old value, before validation sees it.
            allocator::carry_over_allocated(&mut next, old);
        }
        admission::default(resource.kind, &mut next);
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        if spec_part(&next) != spec_part(old) {
            meta_mut(&mut next).insert("generation".into(), json!(generation + 1));
        }
        // A status or finalize write leaves the spec alone: only the metadata
        // rules of an update apply, not the kind's spec update rules (a pod's
        // spec is immutable, but its status is the kubelet's to write).
        let errors = if subresource.is_empty() {
            admission::validate(resource.kind, &next, Some(old))
        } else {
            admission::validate_status_update(resource.kind, &next, old)
        };
        if !errors.is_empty() {
            return Err(ApiError::invalid(resource, &name, &errors));
        }
        let allocation = if resource.kind == "Service" {
            let owner = format!("{}/{name}", meta_str(old, "namespace"));
            allocator::allocate(
                &self.config.service_ranges,
                &self.random,
                &mut next,
                Some(old),
                &owner,
                &|k| taken.contains(k),
            )
            .map_err(|errors| ApiError::invalid(resource, &name, &errors))?
        } else {
            Allocation::default()
        };
        if is_deleting(&next)
            && object::finalizers(&next).is_empty()
            && namespace_finished(resource, &next)
        {
            // The last finalizer is gone: the object goes.
            let mut release = allocation;
            if resource.kind == "Service" {
                release.ops.extend(allocator::release_all(&next).ops);
            }
            return Ok(Change::Delete(release));
        }
        if next == *old {
            return Ok(Change::Unchanged);
        }
        Ok(Change::Put(next, allocation))
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

/// A namespace leaves only once its own `spec.finalizers` are empty too.
fn namespace_finished(resource: &Resource, object: &Value) -> bool {
    resource.kind != "Namespace"
        || object["spec"]["finalizers"]
            .as_array()
            .is_none_or(|f| f.is_empty())
}

pub(crate) fn check_subresource(
    resource: &Resource,
    subresource: &str,
    allowed: &[&str],
) -> Result<(), ApiError> {
    if subresource.is_empty() {
        return Ok(());
    }
    if !resource.has_subresource(subresource) {
        return Err(ApiError::new(
            Reason::NotFound,
            format!(
                "the server could not find the requested resource ({}/{subresource})",
                resource.resource
            ),
        ));
    }
    if !allowed.contains(&subresource) {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({}/{subresource})",
            resource.resource
        )));
    }
    Ok(())
}

fn reply(outcome: Outcome, warnings: Vec<String>) -> Reply {
    match outcome {
        Outcome::Stored(object) | Outcome::Deleted(object) => Reply { object, warnings },
    }
}

/// A `Status` with `status: Success`, as Kubernetes answers deletes and bindings.
pub(crate) fn success_status(code: u16, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}
