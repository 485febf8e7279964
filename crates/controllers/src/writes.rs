//! Writes the controllers share: adopting and releasing through owner
//! references, deleting that tolerates "already gone", and collecting the
//! results of many writes made at once.

use std::sync::{Arc, Mutex, MutexGuard};

use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::{Metadata, Resource};
use skiff_client::{Api, DeleteParams, Object, ObjectKey, Patch, PatchParams};

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
