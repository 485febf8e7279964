//! The namespace controller's shell: an informer on Namespaces, a queue of
//! the Terminating ones, and a round per namespace over every discovered
//! namespaced resource — list, [`super::reconcile`], delete what is left,
//! report the conditions, and finalize once nothing remains.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceStatus};
use skiff_client::{
    Api, ApiResource, DeleteParams, Discovery, DynamicObject, ListParams, ObjectKey, PostParams,
    QueueConfig, Store, WorkQueue,
};

use crate::clock::now;
use crate::context::{Context, Runner};
use crate::error::Error;
use crate::informers::Informers;
use crate::{meta, worker, writes};

struct Controller {
    ctx: Context,
    namespaces: Store<Namespace>,
    /// Every namespaced resource that can be listed and deleted.
    resources: Vec<ApiResource>,
}

/// The namespaced resources a namespace's deletion empties.
fn deletable(discovery: &Discovery) -> Vec<ApiResource> {
    discovery
        .resources()
        .iter()
        .filter(|served| served.namespaced())
        .filter(|served| {
            let verbs = &served.capabilities.operations;
            ["list", "delete"]
                .iter()
                .all(|v| verbs.iter().any(|o| o == v))
        })
        .map(|served| served.resource.clone())
        .collect()
}

/// How a resource is named in conditions: `pods`, `replicasets.apps`.
fn qualified(resource: &ApiResource) -> String {
    if resource.group.is_empty() {
        resource.plural.clone()
    } else {
        format!("{}.{}", resource.plural, resource.group)
    }
}

/// Registers the controller's handlers; the runner starts its workers.
pub(crate) fn register(ctx: &Context, informers: &mut Informers) -> Result<Runner, Error> {
    let queue = WorkQueue::<ObjectKey>::new(QueueConfig::default());
    let resources = deletable(informers.discovery());
    let slot = informers.get::<Namespace>()?;
    let namespaces = slot.store();
    let q = queue.clone();
    slot.on_add(move |ns| {
        if ns.metadata.deletion_timestamp.is_some() {
            q.add(ObjectKey::of(ns.as_ref()));
        }
    });
    let q = queue.clone();
    slot.on_update(move |_, ns| {
        if ns.metadata.deletion_timestamp.is_some() {
            q.add(ObjectKey::of(ns.as_ref()));
        }
    });
    let controller = Controller {
        ctx: ctx.clone(),
        namespaces,
        resources,
    };
    Ok(worker::runner(
        "namespace",
        queue,
        ctx.config.workers,
        controller,
    ))
}

impl worker::Reconciler for Controller {
    type Key = ObjectKey;

    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>, Error> {
        let Some(namespace) = self.namespaces.get_key(key) else {
            return Ok(None);
        };
        if namespace.metadata.deletion_timestamp.is_none() {
            return Ok(None);
        }
        let (contents, mut failures) = self.list_contents(&key.name).await;
        let remaining: BTreeMap<String, usize> = contents
            .iter()
            .map(|(resource, objects)| (qualified(resource), objects.len()))
            .collect();
        let now = now();
        let plan = super::reconcile(&namespace, &remaining, now);
        for (resource, objects) in &contents {
            if plan.delete.contains(&qualified(resource)) {
                if let Err(error) = self.delete_all(&key.name, resource, objects).await {
                    failures.push(format!("{}: {error}", qualified(resource)));
                }
            }
        }
        let mut updates: Vec<_> = plan.condition.into_iter().collect();
        updates.push(super::content_failure(&failures, now));
        self.report(&namespace, updates).await?;
        if plan.finalize && failures.is_empty() {
            return self.finalize(&namespace).await;
        }
        Ok(Some(super::RESYNC))
    }
}

impl Controller {
    /// Every object of every deletable resource in `namespace`; a resource
    /// that cannot be listed is named in the failures instead.
    async fn list_contents(
        &self,
        namespace: &str,
    ) -> (Vec<(ApiResource, Vec<DynamicObject>)>, Vec<String>) {
        let mut contents = Vec::new();
        let mut failures = Vec::new();
        for resource in &self.resources {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.ctx.client.clone(), namespace, resource);
            match api.list_all(&ListParams::default()).await {
                Ok(list) => contents.push((resource.clone(), list.items)),
                Err(error) => failures.push(format!("{}: {error}", qualified(resource))),
            }
        }
        (contents, failures)
    }

    /// Deletes the objects not already being deleted (their grace periods
    /// and finalizers decide when those go).
    async fn delete_all(
        &self,
        namespace: &str,
        resource: &ApiResource,
        objects: &[DynamicObject],
    ) -> Result<(), Error> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.ctx.client.clone(), namespace, resource);
        let deletes = objects
            .iter()
            .filter(|o| o.metadata.deletion_timestamp.is_none())
            .filter_map(|o| o.metadata.name.clone())
            .map(|name| {
                let api = api.clone();
                async move { writes::delete(&api, &name, &DeleteParams::default()).await }
            });
        writes::all("namespace content deletions", deletes.collect()).await
    }

    /// Writes the conditions into the namespace's status when they changed.
    async fn report(
        &self,
        namespace: &Namespace,
        updates: Vec<k8s_openapi::api::core::v1::NamespaceCondition>,
    ) -> Result<(), Error> {
        let status = namespace.status.clone().unwrap_or_default();
        let existing = status.conditions.clone().unwrap_or_default();
        let merged = super::merge_conditions(&existing, updates);
        if meta::same(&existing, &merged) {
            return Ok(());
        }
        let mut next = namespace.clone();
        next.status = Some(NamespaceStatus {
            conditions: Some(merged),
            ..status
        });
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        let name = namespace.metadata.name.clone().unwrap_or_default();
        let written = api
            .replace_status(&name, &PostParams::default(), &next)
            .await;
        Ok(writes::ignore_not_found(written.map(|_| ()))?)
    }

    /// Removes [`super::FINALIZER`] through the `finalize` subresource; a
    /// Conflict means content the caches did not show yet, looked at again.
    async fn finalize(&self, namespace: &Namespace) -> Result<Option<Duration>, Error> {
        let mut next = namespace.clone();
        if let Some(spec) = next.spec.as_mut() {
            if let Some(finalizers) = spec.finalizers.as_mut() {
                finalizers.retain(|f| f != super::FINALIZER);
            }
        }
        next.metadata.resource_version = None;
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        let name = namespace.metadata.name.clone().unwrap_or_default();
        match api.finalize(&name, &PostParams::default(), &next).await {
            Ok(_) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) if e.is_conflict() => Ok(Some(super::RESYNC)),
            Err(e) => Err(e.into()),
        }
    }
}
