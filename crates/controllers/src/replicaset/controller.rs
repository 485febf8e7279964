//! The ReplicaSet controller's shell: informers on ReplicaSets and Pods, a
//! work queue of ReplicaSet keys, and workers applying [`super::reconcile`]'s
//! plan through the client.
//!
//! Events after which the ReplicaSet may have to create or delete (its spec
//! changed, its expectations just met, an orphan it might adopt, a pod that
//! changed controller) queue it at once; the other events of its pods (a
//! status changing, mostly) and its own status written back queue it after
//! [`POD_EVENT_BATCH`], so that ten thousand pods turning Running are
//! counted in a few syncs, not ten thousand.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use skiff_client::{Api, ObjectKey, QueueConfig, Store, WorkQueue};

use super::POD_EVENT_BATCH;
use crate::clock::now;
use crate::context::{Context, Runner};
use crate::error::Error;
use crate::expectations::Expectations;
use crate::informers::{controller_key, owned_or_orphans, Informers, BY_NAMESPACE};
use crate::meta;
use crate::worker;
use crate::writes::{self, lock};

struct Controller {
    ctx: Context,
    sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    expectations: Arc<Mutex<Expectations<ObjectKey>>>,
}

/// Queues the ReplicaSets that a pod without a controller could belong to.
fn queue_matching(sets: &Store<ReplicaSet>, queue: &WorkQueue<ObjectKey>, pod: &Pod) {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let labels = meta::labels(&pod.metadata);
    for rs in sets.by_index(BY_NAMESPACE, &namespace) {
        let selector = rs
            .spec
            .as_ref()
            .and_then(|s| meta::selector(Some(&s.selector)).ok());
        if selector.is_some_and(|s| !s.is_empty() && s.matches(labels)) {
            queue.add(ObjectKey::of(rs.as_ref()));
        }
    }
}

/// Queues `key` at once when `expectations_met` (the ReplicaSet may create
/// or delete again), else after [`POD_EVENT_BATCH`].
fn queue_after_pod_event(queue: &WorkQueue<ObjectKey>, key: ObjectKey, expectations_met: bool) {
    if expectations_met {
        queue.add(key);
    } else {
        queue.add_after(key, POD_EVENT_BATCH);
    }
}

/// Whether a ReplicaSet changed in a way its reconcile acts on (not only
/// its status, which the controller itself writes).
pub(super) fn spec_changed(old: &ReplicaSet, new: &ReplicaSet) -> bool {
    old.spec != new.spec
        || old.metadata.uid != new.metadata.uid
        || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
}

/// Registers the controller's handlers; the runner starts its workers.
pub(crate) fn register(ctx: &Context, informers: &mut Informers) -> Result<Runner, Error> {
    let queue = WorkQueue::<ObjectKey>::new(QueueConfig::default());
    let expectations: Arc<Mutex<Expectations<ObjectKey>>> = Arc::default();
    let set_slot = informers.get::<ReplicaSet>()?;
    let sets = set_slot.store();
    let q = queue.clone();
    set_slot.on_add(move |rs| q.add(ObjectKey::of(rs.as_ref())));
    let q = queue.clone();
    set_slot.on_update(move |old, new| {
        let key = ObjectKey::of(new.as_ref());
        if spec_changed(old, new) {
            q.add(key);
        } else {
            q.add_after(key, POD_EVENT_BATCH);
        }
    });
    let q = queue.clone();
    set_slot.on_delete(move |rs| q.add(ObjectKey::of(rs.as_ref())));
    let pod_slot = informers.get::<Pod>()?;
    let pods_store = pod_slot.store();
    let (q, e, s) = (queue.clone(), expectations.clone(), sets.clone());
    pod_slot.on_add(
        move |pod| match controller_key(&pod.metadata, "ReplicaSet") {
            Some(key) => {
                let met = lock(&e).creation_observed(&key);
                queue_after_pod_event(&q, key, met);
            }
            None => queue_matching(&s, &q, pod),
        },
    );
    let (q, e, s) = (queue.clone(), expectations.clone(), sets.clone());
    pod_slot.on_update(move |old, new| {
        let owner = controller_key(&new.metadata, "ReplicaSet");
        let previous = controller_key(&old.metadata, "ReplicaSet");
        if let Some(key) = &owner {
            let met = old.metadata.deletion_timestamp.is_none()
                && new.metadata.deletion_timestamp.is_some()
                && lock(&e).deletion_observed(key);
            queue_after_pod_event(&q, key.clone(), met);
        }
        if previous.is_some() && previous != owner {
            previous.into_iter().for_each(|key| q.add(key));
        }
        if owner.is_none() {
            queue_matching(&s, &q, new);
        }
    });
    let (q, e) = (queue.clone(), expectations.clone());
    pod_slot.on_delete(move |pod| {
        if let Some(key) = controller_key(&pod.metadata, "ReplicaSet") {
            let met = pod.metadata.deletion_timestamp.is_none() && lock(&e).deletion_observed(&key);
            queue_after_pod_event(&q, key, met);
        }
    });
    let controller = Controller {
        ctx: ctx.clone(),
        sets,
        pods: pods_store,
        expectations,
    };
    Ok(worker::runner(
        "replicaset",
        queue,
        ctx.config.workers,
        controller,
    ))
}

impl worker::Reconciler for Controller {
    type Key = ObjectKey;

    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>, Error> {
        let Some(rs) = self.sets.get_key(key) else {
            lock(&self.expectations).forget(key);
            return Ok(None);
        };
        let now = now();
        let uid = rs.metadata.uid.as_deref().unwrap_or("");
        let candidates = owned_or_orphans(&self.pods, &key.namespace, uid);
        let refs: Vec<&Pod> = candidates.iter().map(|p| p.as_ref()).collect();
        let may_manage = lock(&self.expectations).satisfied(key, now);
        let plan = super::reconcile(&rs, &refs, may_manage, now);
        let events = &self.ctx.events;
        let Some(plan) = events
            .plan_or_warn(rs.as_ref(), "InvalidReplicaSet", plan)
            .await
        else {
            return Ok(None);
        };
        let pod_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let claims = (&plan.adopt[..], &plan.release[..]);
        writes::claim(&pod_api, &candidates, rs.as_ref(), claims).await?;
        let creates = vec![super::new_pod(&rs); plan.create];
        writes::create_expected(&self.expectations, key, &pod_api, creates, now).await?;
        writes::delete_expected(&self.expectations, key, &pod_api, &plan.delete, now).await?;
        writes::status(&self.ctx.client, rs.as_ref(), plan.status).await?;
        Ok(plan.requeue_after)
    }
}
