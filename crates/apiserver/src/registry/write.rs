//! Writes: update and patch, and the txn every write ends in.
//!
//! A patch is applied to the live object inside the update loop: JSON merge
//! patch, JSON patch or strategic merge patch (`skiff_api::patch`); an apply
//! goes to `apply.rs`. Every write with a field manager records the fields it
//! changed in managedFields (`managed_fields/`).
//!
//! An update is Kubernetes' `GuaranteedUpdate`: read the object, compute the
//! next one, write it with a txn comparing the `mod_revision` read, and start
//! again when another writer won. The kind's [`Strategy`] says what the main
//! resource and each subresource may change, how the kind is defaulted and
//! validated, and what addresses it takes.

use std::collections::HashSet;

use serde_json::{json, Value};
use skiff_api::resources::Resource;
use skiff_api::status::{ApiError, Reason};
use skiff_proto::etcdserverpb::{
    compare, request_op, Compare, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};

use super::allocator::{Allocation, NODE_PORTS_PREFIX, SERVICE_IPS_PREFIX};
use super::managed_fields::{self, Manager};
use super::strategy::{self, AllocationContext, Strategy};
use super::{storage_error, Registry, Reply, WriteOptions};
use crate::object::{
    self, decode, is_deleting, meta_mut, meta_str, parse_resource_version, set_resource_version,
    spec_part, to_stored,
};
use crate::storage::prefix_end;

/// How a patch body is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 7386 JSON merge patch.
    Merge,
    /// RFC 6902 JSON patch.
    Json,
    /// Kubernetes' strategic merge patch (lists merged by their patchMergeKey).
    StrategicMerge,
    /// Server-side apply: the body is the field manager's whole intent.
    Apply,
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

/// Metadata the server owns: an update keeps the old values.
const OWNED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "resourceVersion",
];

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

    /// The allocated addresses, read only for kinds that take some.
    pub(crate) async fn taken(&self, strategy: &dyn Strategy) -> Result<HashSet<String>, ApiError> {
        if strategy.allocates() {
            self.allocated().await
        } else {
            Ok(HashSet::new())
        }
    }

    /// What a strategy allocates from, with the `taken` addresses.
    pub(crate) fn allocation_context<'a>(
        &'a self,
        taken: &'a HashSet<String>,
    ) -> AllocationContext<'a> {
        AllocationContext {
            ranges: &self.config.service_ranges,
            random: &self.random,
            taken,
        }
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
        let strategy = strategy::for_kind(resource);
        for _attempt in 0..MAX_RETRIES {
            let current = self.read_existing(resource, namespace, name).await?;
            let taken = self.taken(strategy).await?;
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
        let manager = self.manager(resource, options, subresource);
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
                    let next = new.clone();
                    self.prepare_update(
                        resource,
                        subresource,
                        current,
                        next,
                        taken,
                        manager.as_ref(),
                    )
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
        if patch_type == PatchType::Apply {
            return self
                .apply(resource, namespace, name, subresource, patch, options)
                .await;
        }
        let patch: Value = serde_json::from_slice(patch)
            .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
        let mut warnings = Vec::new();
        let manager = self.manager(resource, options, subresource);
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
                        PatchType::StrategicMerge => skiff_api::patch::strategic_merge_patch(
                            resource.kind,
                            &mut patched,
                            &patch,
                        )
                        .map_err(|e| {
                            ApiError::bad_request(format!(
                                "the strategic merge patch could not be applied: {e}"
                            ))
                        })?,
                        PatchType::Apply => unreachable!("answered by apply above"),
                    }
                    if meta_str(&patched, "resourceVersion") != meta_str(current, "resourceVersion")
                    {
                        // A resourceVersion in the patch is a precondition.
                        return Err(ApiError::stale(resource, name));
                    }
                    let bytes = serde_json::to_vec(&patched).expect("a Value always encodes");
                    let decoded = decode(resource, &bytes, options.field_validation)?;
                    warnings = decoded.warnings;
                    let next = decoded.object;
                    self.prepare_update(
                        resource,
                        subresource,
                        current,
                        next,
                        taken,
                        manager.as_ref(),
                    )
                },
            )
            .await?;
        Ok(reply(outcome, warnings))
    }

    /// The field manager of a write to `subresource`; `None` when the write
    /// names none, and then managedFields are left as they are.
    pub(crate) fn manager(
        &self,
        resource: &Resource,
        options: &WriteOptions,
        subresource: &str,
    ) -> Option<Manager> {
        (!options.field_manager.is_empty()).then(|| Manager {
            name: options.field_manager.clone(),
            api_version: resource.api_version(),
            time: self.now(),
            subresource: subresource.to_string(),
        })
    }

    /// The object an update of `old` to `new` stores: the kind's strategy
    /// prepares, defaults and validates it, and takes its addresses; the
    /// fields it changes are recorded for `manager`.
    pub(crate) fn prepare_update(
        &self,
        resource: &'static Resource,
        subresource: &str,
        old: &Value,
        new: Value,
        taken: &HashSet<String>,
        manager: Option<&Manager>,
    ) -> Result<Change, ApiError> {
        let strategy = strategy::for_kind(resource);
        let name = meta_str(old, "name").to_string();
        let mut next = if subresource.is_empty() {
            let mut next = new;
            strategy.prepare_for_update(resource, &mut next, old);
            next
        } else {
            strategy.prepare_for_subresource_update(subresource, old, &new)
        };
        keep_owned_metadata(&mut next, old);
        managed_fields::carry_over(&mut next, old);
        strategy.default(resource, &mut next);
        bump_generation(&mut next, old);
        if let Some(manager) = manager {
            let ty = skiff_api::patch::schema::for_kind(resource.kind);
            managed_fields::record_update(Some(old), &mut next, ty, manager);
        }
        let errors = if subresource.is_empty() {
            strategy.validate_update(resource, &next, old)
        } else {
            strategy.validate_status_update(resource, &next, old)
        };
        if !errors.is_empty() {
            return Err(ApiError::invalid(resource, &name, &errors));
        }
        let allocation = strategy
            .allocate(&self.allocation_context(taken), &mut next, Some(old))
            .map_err(|errors| ApiError::invalid(resource, &name, &errors))?;
        if is_deleting(&next) && object::finalizers(&next).is_empty() && strategy.finalized(&next) {
            // The last finalizer is gone: the object goes.
            let mut release = allocation;
            release.ops.extend(strategy.release(&next).ops);
            return Ok(Change::Delete(release));
        }
        if next == *old {
            return Ok(Change::Unchanged);
        }
        Ok(Change::Put(next, allocation))
    }
}

/// Puts back the metadata the server owns, as it was in `old`.
fn keep_owned_metadata(next: &mut Value, old: &Value) {
    let old_meta = old.get("metadata").cloned().unwrap_or_default();
    let meta = meta_mut(next);
    for owned in OWNED_METADATA {
        match old_meta.get(*owned) {
            Some(v) => meta.insert((*owned).into(), v.clone()),
            None => meta.remove(*owned),
        };
    }
}

/// A change of the spec (anything but metadata and status) is a new generation.
fn bump_generation(next: &mut Value, old: &Value) {
    let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
    if spec_part(next) != spec_part(old) {
        meta_mut(next).insert("generation".into(), json!(generation + 1));
    }
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
