//! Writes the controllers share: adopting and releasing through owner
//! references, deleting that tolerates "already gone", creating and
//! deleting pods under expectations, writing a status only when it
//! changed, and collecting the results of many writes made at once.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::{Metadata, Resource};
use skiff_client::kube_core::NamespaceResourceScope;
use skiff_client::{Api, Client, DeleteParams, Object, ObjectKey, Patch, PatchParams, PostParams};

use crate::error::Error;
use crate::expectations::Expectations;

/// How many writes of one reconcile are in flight at once.
pub(crate) const CONCURRENT_WRITES: usize = 16;

/// Runs `writes` concurrently; the first failure (of all) is the error.
pub(crate) async fn all<F>(what: &'static str, writes: Vec<F>) -> Result<(), Error>
where
    F: std::future::Future<Output = Result<(), skiff_client::Error>>,
{
    let attempted = writes.len();
    let results: Vec<Result<(), skiff_client::Error>> = stream::iter(writes)
        .buffer_unordered(CONCURRENT_WRITES)
        .collect()
        .await;
    let mut failures = results.into_iter().filter_map(Result::err);
    match failures.next() {
        None => Ok(()),
        Some(first) => Err(Error::Partial {
            what,
            failed: 1 + failures.count(),
            attempted,
            first,
        }),
    }
}

/// Sets `owner` as the controller of the object named `name`, guarded by the
/// resourceVersion the cache showed.
pub(crate) async fn adopt<K: Object>(
    api: &Api<K>,
    object: &K,
    owner: OwnerReference,
) -> Result<(), skiff_client::Error> {
    let patch = crate::meta::adopt_patch(object.meta(), owner);
    let name = object.meta().name.clone().unwrap_or_default();
    api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
}

/// Applies the claims of a reconcile, as Kubernetes' ControllerRefManager:
/// of `objects`, those named in `adopted` get `owner` as their controller,
/// and those named in `released` lose their reference to it.
pub(crate) async fn claim<K, O>(
    api: &Api<K>,
    objects: &[Arc<K>],
    owner: &O,
    (adopted, released): (&[String], &[String]),
) -> Result<(), Error>
where
    K: Object,
    O: Resource + Metadata<Ty = ObjectMeta>,
{
    let by_name = |name: &String| {
        objects
            .iter()
            .find(|o| o.meta().name.as_ref() == Some(name))
            .cloned()
    };
    let reference = crate::meta::controller_ref(owner);
    let uid = owner.metadata().uid.clone().unwrap_or_default();
    let adoptions = adopted.iter().filter_map(by_name).map(|object| {
        let (api, reference) = (api.clone(), reference.clone());
        async move { adopt(&api, object.as_ref(), reference).await }
    });
    all("adoptions", adoptions.collect()).await?;
    let releases = released.iter().filter_map(by_name).map(|object| {
        let (api, uid) = (api.clone(), uid.clone());
        async move { release(&api, object.as_ref(), &uid).await }
    });
    all("releases", releases.collect()).await
}

/// Removes the reference to `owner_uid` from `object`.
pub(crate) async fn release<K: Object>(
    api: &Api<K>,
    object: &K,
    owner_uid: &str,
) -> Result<(), skiff_client::Error> {
    let patch = crate::meta::release_patch(object.meta(), owner_uid);
    let name = object.meta().name.clone().unwrap_or_default();
    ignore_not_found(
        api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map(|_| ()),
    )
}

/// Deletes `name`; an object already gone is not an error.
pub(crate) async fn delete<K: Object>(
    api: &Api<K>,
    name: &str,
    params: &DeleteParams,
) -> Result<(), skiff_client::Error> {
    ignore_not_found(api.delete(name, params).await.map(|_| ()))
}

/// `Ok` for NotFound: what was to be removed is gone.
pub(crate) fn ignore_not_found(
    result: Result<(), skiff_client::Error>,
) -> Result<(), skiff_client::Error> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// Locks state shared with informer handlers; a handler that panicked
/// leaves it as it was, still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates `pods` for the controller `key` (a ReplicaSet, a Job),
/// expecting their creations first, in slow-start batches of 1, 2, 4, …
/// ([`slow_start_batches`]): a failing batch stops the
/// rest, so a template that cannot be created fails once rather than for
/// every pod, and the pods never created are no longer expected.
pub(crate) async fn create_expected(
    expectations: &Arc<Mutex<Expectations<ObjectKey>>>,
    key: &ObjectKey,
    api: &Api<Pod>,
    pods: Vec<Pod>,
    now: Timestamp,
) -> Result<(), Error> {
    if pods.is_empty() {
        return Ok(());
    }
    lock(expectations).expect(key, pods.len(), 0, now);
    let mut remaining = pods.len();
    let mut pods = pods.into_iter();
    for batch in slow_start_batches(remaining) {
        let creates = pods
            .by_ref()
            .take(batch)
            .map(|pod| async move { api.create(&PostParams::default(), &pod).await.map(|_| ()) });
        let result = all("pod creations", creates.collect()).await;
        remaining -= batch;
        if let Err(error) = result {
            let failed = match &error {
                Error::Partial { failed, .. } => *failed,
                _ => batch,
            };
            let mut e = lock(expectations);
            for _ in 0..failed + remaining {
                e.creation_observed(key);
            }
            return Err(error);
        }
    }
    Ok(())
}

/// Deletes the pods `names` of the controller `key` (a ReplicaSet, a Job),
/// expecting their deletions first; a delete that fails is no longer expected.
pub(crate) async fn delete_expected(
    expectations: &Arc<Mutex<Expectations<ObjectKey>>>,
    key: &ObjectKey,
    api: &Api<Pod>,
    names: &[String],
    now: Timestamp,
) -> Result<(), Error> {
    if names.is_empty() {
        return Ok(());
    }
    lock(expectations).expect(key, 0, names.len(), now);
    let deletes = names.iter().map(|name| async move {
        let result = delete(api, name, &DeleteParams::default()).await;
        if result.is_err() {
            lock(expectations).deletion_observed(key);
        }
        result
    });
    all("pod deletions", deletes.collect()).await
}

/// A kind whose controller writes its `status` through the status subresource.
pub(crate) trait HasStatus: Object + Metadata<Ty = ObjectMeta> {
    /// The kind's status type.
    type Status: serde::Serialize;
    /// The status the object carries.
    fn status(&self) -> Option<&Self::Status>;
    /// Replaces the status.
    fn set_status(&mut self, status: Self::Status);
}

macro_rules! has_status {
    ($($kind:ty => $status:ty),* $(,)?) => {$(
        impl HasStatus for $kind {
            type Status = $status;
            fn status(&self) -> Option<&$status> {
                self.status.as_ref()
            }
            fn set_status(&mut self, status: $status) {
                self.status = Some(status);
            }
        }
    )*};
}

has_status!(
    k8s_openapi::api::apps::v1::ReplicaSet => k8s_openapi::api::apps::v1::ReplicaSetStatus,
    k8s_openapi::api::apps::v1::Deployment => k8s_openapi::api::apps::v1::DeploymentStatus,
    k8s_openapi::api::batch::v1::Job => k8s_openapi::api::batch::v1::JobStatus,
    k8s_openapi::api::batch::v1::CronJob => k8s_openapi::api::batch::v1::CronJobStatus,
);

/// Writes `status` into `object` through its status subresource, guarded by
/// the resourceVersion the cache showed — unless it says what the object's
/// status already says ([`crate::meta::same`]): a sync that changed nothing
/// writes nothing.
pub(crate) async fn status<K>(client: &Client, object: &K, status: K::Status) -> Result<(), Error>
where
    K: HasStatus + skiff_client::Resource<DynamicType = (), Scope = NamespaceResourceScope>,
{
    if crate::meta::same(&object.status(), &Some(&status)) {
        return Ok(());
    }
    let mut next = object.clone();
    next.set_status(status);
    let meta = object.metadata();
    let api: Api<K> = Api::namespaced(client.clone(), meta.namespace.as_deref().unwrap_or(""));
    let name = meta.name.as_deref().unwrap_or("");
    api.replace_status(name, &PostParams::default(), &next)
        .await?;
    Ok(())
}

/// Batch sizes for creating `count` pods: 1, 2, 4, … (Kubernetes'
/// `slowStartBatch` with `SlowStartInitialBatchSize` 1), the last one what remains.
pub fn slow_start_batches(count: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let (mut remaining, mut size) = (count, 1);
    while remaining > 0 {
        let batch = size.min(remaining);
        batches.push(batch);
        remaining -= batch;
        size *= 2;
    }
    batches
}
