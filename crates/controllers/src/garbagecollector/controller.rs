//! The garbage collector's shell: an informer over every discovered resource
//! that can be listed, watched and deleted feeds the [`Graph`]; a queue of
//! uids the graph says to look at; workers that act on [`Graph::decide`].
//!
//! Before deleting an object for its absent owners, or removing a reference
//! to an absent owner, each such owner is read live (by name, in the
//! dependent's namespace when the owner's kind is namespaced) and counts as
//! absent only when it is not found or has another uid: the caches of
//! different resources fill at different moments. Writes are guarded by
//! the uid (deletes) or the resourceVersion (patches) the graph saw.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::json;
use skiff_client::{
    Api, ApiResource, DeleteParams, Discovery, GroupVersionKind, Patch, PatchParams, Preconditions,
    PropagationPolicy, QueueConfig, ResourceExt, WorkQueue,
};

use super::{Action, Graph, Object, Propagation};
use crate::context::{Context, Runner};
use crate::error::Error;
use crate::informers::Informers;
use crate::metadata::ObjectMetadata;
use crate::worker;
use crate::writes::{self, lock};

/// Resources not watched, as Kubernetes' garbage collector's default
/// ignored resources: events are many and never own anything.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

/// The verbs a resource needs for its objects to be collected.
const NEEDED_VERBS: &[&str] = &["list", "watch", "delete", "patch"];

struct Controller {
    ctx: Context,
    discovery: Discovery,
    graph: Arc<Mutex<Graph>>,
}

/// The resources the garbage collector watches.
fn collectable(discovery: &Discovery) -> Vec<ApiResource> {
    discovery
        .resources()
        .iter()
        .filter(|served| {
            NEEDED_VERBS
                .iter()
                .all(|v| served.capabilities.operations.iter().any(|o| o == v))
        })
        .map(|served| served.resource.clone())
        .filter(|r| !IGNORED.contains(&(r.group.as_str(), r.plural.as_str())))
        .collect()
}

/// The graph's view of one object.
fn object_of(resource: &ApiResource, object: &ObjectMetadata) -> Object {
    let meta = &object.metadata;
    Object {
        uid: meta.uid.clone().unwrap_or_default(),
        api_version: resource.api_version.clone(),
        kind: resource.kind.clone(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        owners: meta.owner_references.clone().unwrap_or_default(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
        deleting: meta.deletion_timestamp.is_some(),
        resource_version: meta.resource_version.clone().unwrap_or_default(),
    }
}

/// Registers an informer per collectable resource; the runner starts the workers.
pub(crate) fn register(ctx: &Context, informers: &mut Informers) -> Result<Runner, Error> {
    let queue = WorkQueue::<String>::new(QueueConfig::default());
    let graph: Arc<Mutex<Graph>> = Arc::default();
    let discovery = informers.discovery().clone();
    for resource in collectable(&discovery) {
        let slot = informers.metadata(&resource);
        let (q, g, r) = (queue.clone(), graph.clone(), resource.clone());
        slot.on_add(move |o| upsert(&g, &q, object_of(&r, o)));
        let (q, g, r) = (queue.clone(), graph.clone(), resource.clone());
        slot.on_update(move |_, o| upsert(&g, &q, object_of(&r, o)));
        let (q, g) = (queue.clone(), graph.clone());
        slot.on_delete(move |o| {
            let uid = o.uid().unwrap_or_default();
            for touched in lock(&g).remove(&uid) {
                q.add(touched);
            }
        });
    }
    let controller = Controller {
        ctx: ctx.clone(),
        discovery,
        graph,
    };
    Ok(worker::runner(
        "garbagecollector",
        queue,
        ctx.config.workers,
        controller,
    ))
}

fn upsert(graph: &Mutex<Graph>, queue: &WorkQueue<String>, object: Object) {
    if object.uid.is_empty() {
        return;
    }
    for touched in lock(graph).upsert(object) {
        queue.add(touched);
    }
}

impl worker::Reconciler for Controller {
    type Key = String;

    async fn sync(&self, uid: &String) -> Result<Option<Duration>, Error> {
        let actions = lock(&self.graph).decide(uid);
        for action in actions {
            self.act(action).await?;
        }
        Ok(None)
    }
}

impl Controller {
    async fn act(&self, action: Action) -> Result<(), Error> {
        let uid = match &action {
            Action::Delete(uid, _) | Action::RemoveOwners(uid, _) => uid,
            Action::RemoveFinalizer(uid, _) => uid,
        };
        let Some(object) = lock(&self.graph).get(uid).cloned() else {
            return Ok(()); // Gone meanwhile.
        };
        let Some(api) = self.api_of(&object) else {
            return Ok(());
        };
        match action {
            Action::Delete(_, propagation) => {
                if !self.owners_absent(&object, None).await? {
                    return Ok(());
                }
                tracing::info!(object = %describe(&object), ?propagation, "deleting a dependent");
                let params = DeleteParams {
                    propagation_policy: Some(match propagation {
                        Propagation::Background => PropagationPolicy::Background,
                        Propagation::Foreground => PropagationPolicy::Foreground,
                    }),
                    preconditions: Some(Preconditions {
                        uid: Some(object.uid.clone()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                Ok(writes::delete(&api, &object.name, &params).await?)
            }
            Action::RemoveOwners(_, owners) => {
                if !self.owners_absent(&object, Some(&owners)).await? {
                    return Ok(());
                }
                let kept: Vec<&OwnerReference> = object
                    .owners
                    .iter()
                    .filter(|r| !owners.contains(&r.uid))
                    .collect();
                tracing::info!(object = %describe(&object), ?owners, "removing owner references");
                self.patch(&api, &object, json!({ "ownerReferences": kept }))
                    .await
            }
            Action::RemoveFinalizer(_, finalizer) => {
                let kept: Vec<&String> = object
                    .finalizers
                    .iter()
                    .filter(|f| *f != finalizer)
                    .collect();
                tracing::info!(object = %describe(&object), finalizer, "removing the finalizer");
                self.patch(&api, &object, json!({ "finalizers": kept }))
                    .await
            }
        }
    }

    /// Merges `metadata` into the object, guarded by the resourceVersion the
    /// graph saw (a Conflict retries the uid with what the cache shows then).
    async fn patch(
        &self,
        api: &Api<ObjectMetadata>,
        object: &Object,
        mut metadata: serde_json::Value,
    ) -> Result<(), Error> {
        if !object.resource_version.is_empty() {
            metadata["resourceVersion"] = json!(object.resource_version);
        }
        let patch = Patch::Merge(json!({ "metadata": metadata }));
        let result = api
            .patch(&object.name, &PatchParams::default(), &patch)
            .await
            .map(|_| ());
        Ok(writes::ignore_not_found(result)?)
    }

    /// Whether every owner of `object` that the graph does not hold (only
    /// those in `only`, when given) is confirmed absent by a live read.
    /// Owners the graph holds are present, and none of the concern here.
    async fn owners_absent(&self, object: &Object, only: Option<&[String]>) -> Result<bool, Error> {
        let missing: Vec<OwnerReference> = {
            let graph = lock(&self.graph);
            object
                .owners
                .iter()
                .filter(|r| only.is_none_or(|o| o.contains(&r.uid)))
                .filter(|r| !graph.contains(&r.uid))
                .cloned()
                .collect()
        };
        for owner in &missing {
            if self.owner_exists(object, owner).await? {
                tracing::debug!(object = %describe(object), owner = %owner.name, "owner still exists");
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A live read of `owner`: found with the same uid.
    async fn owner_exists(&self, object: &Object, owner: &OwnerReference) -> Result<bool, Error> {
        let (group, version) = match owner.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", owner.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &owner.kind);
        let Some((resource, capabilities)) = self.discovery.resolve_gvk(&gvk) else {
            // An owner of a kind the server does not serve cannot be read;
            // Kubernetes retries such items rather than deleting them.
            tracing::warn!(object = %describe(object), kind = %owner.kind, "owner of an unknown kind");
            return Ok(true);
        };
        let api: Api<ObjectMetadata> =
            if capabilities.scope == skiff_client::kube_core::discovery::Scope::Namespaced {
                if object.namespace.is_empty() {
                    return Ok(false); // A cluster-scoped object cannot have a namespaced owner.
                }
                Api::namespaced_with(self.ctx.client.clone(), &object.namespace, &resource)
            } else {
                Api::all_with(self.ctx.client.clone(), &resource)
            };
        let found = api.get_opt(&owner.name).await?;
        Ok(found.is_some_and(|o| o.metadata.uid.as_deref() == Some(owner.uid.as_str())))
    }

    /// The API of the resource `object` belongs to.
    fn api_of(&self, object: &Object) -> Option<Api<ObjectMetadata>> {
        let (group, version) = match object.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", object.api_version.as_str()),
        };
        let gvk = GroupVersionKind::gvk(group, version, &object.kind);
        let (resource, _) = self.discovery.resolve_gvk(&gvk)?;
        Some(if object.namespace.is_empty() {
            Api::all_with(self.ctx.client.clone(), &resource)
        } else {
            Api::namespaced_with(self.ctx.client.clone(), &object.namespace, &resource)
        })
    }
}

fn describe(object: &Object) -> String {
    if object.namespace.is_empty() {
        format!("{} {}", object.kind, object.name)
    } else {
        format!("{} {}/{}", object.kind, object.namespace, object.name)
    }
}
