//! The Job controller's shell: informers on Jobs and Pods, a queue of Job
//! keys, workers applying [`super::reconcile`]'s plan in the order that makes
//! counting exactly-once: status first, then finalizers, then pods.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use skiff_client::{
    Api, DeleteParams, ObjectKey, Patch, PatchParams, Preconditions, PropagationPolicy,
    QueueConfig, Store, WorkQueue,
};

use super::TRACKING_FINALIZER;
use crate::clock::now;
use crate::context::{Context, Runner};
use crate::error::Error;
use crate::expectations::Expectations;
use crate::informers::{controller_key, owned_or_orphans, Informers, BY_NAMESPACE};
use crate::worker;
use crate::writes::{self, lock};

struct Controller {
    ctx: Context,
    jobs: Store<Job>,
    pods: Store<Pod>,
    expectations: Arc<Mutex<Expectations<ObjectKey>>>,
}

/// Registers the controller's handlers; the runner starts its workers.
pub(crate) fn register(ctx: &Context, informers: &mut Informers) -> Result<Runner, Error> {
    let queue = WorkQueue::<ObjectKey>::new(QueueConfig::default());
    let expectations: Arc<Mutex<Expectations<ObjectKey>>> = Arc::default();
    let jobs = informers.reconciled::<Job>(&queue)?;
    let slot = informers.get::<Pod>()?;
    let pods = slot.store();
    let (q, e) = (queue.clone(), expectations.clone());
    slot.on_add(move |pod| {
        if let Some(key) = controller_key(&pod.metadata, "Job") {
            lock(&e).creation_observed(&key);
            q.add(key);
        }
    });
    let (q, e) = (queue.clone(), expectations.clone());
    slot.on_update(move |old, new| {
        if let Some(key) = controller_key(&new.metadata, "Job") {
            if old.metadata.deletion_timestamp.is_none()
                && new.metadata.deletion_timestamp.is_some()
            {
                lock(&e).deletion_observed(&key);
            }
            q.add(key);
        }
    });
    let (q, e) = (queue.clone(), expectations.clone());
    slot.on_delete(move |pod| {
        if let Some(key) = controller_key(&pod.metadata, "Job") {
            if pod.metadata.deletion_timestamp.is_none() {
                lock(&e).deletion_observed(&key);
            }
            q.add(key);
        }
    });
    let controller = Controller {
        ctx: ctx.clone(),
        jobs,
        pods,
        expectations,
    };
    Ok(worker::runner("job", queue, ctx.config.workers, controller))
}

impl worker::Reconciler for Controller {
    type Key = ObjectKey;

    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>, Error> {
        let pod_api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let Some(job) = self.jobs.get_key(key) else {
            lock(&self.expectations).forget(key);
            let namespace_pods = self.pods.by_index(BY_NAMESPACE, &key.namespace);
            return self.release_orphans(key, &pod_api, &namespace_pods).await;
        };
        let now = now();
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let candidates = owned_or_orphans(&self.pods, &key.namespace, &uid);
        let refs: Vec<&Pod> = candidates.iter().map(|p| p.as_ref()).collect();
        let may_manage = lock(&self.expectations).satisfied(key, now);
        let plan = super::reconcile(&job, &refs, may_manage, now);
        let events = &self.ctx.events;
        let Some(plan) = events.plan_or_warn(job.as_ref(), "InvalidJob", plan).await else {
            return Ok(None);
        };
        let claims = (&plan.adopt[..], &plan.release[..]);
        writes::claim(&pod_api, &candidates, job.as_ref(), claims).await?;
        let by_name = |name: &String| {
            candidates
                .iter()
                .find(|p| p.metadata.name.as_ref() == Some(name))
                .cloned()
        };
        // 1. Status first: the uids about to lose their finalizer are recorded.
        writes::status(&self.ctx.client, job.as_ref(), plan.status.clone()).await?;
        // 2. Then the finalizers go.
        let finalizers: Vec<_> = plan.remove_finalizers.iter().filter_map(by_name).collect();
        remove_finalizers(&pod_api, &finalizers).await?;
        // 3. Then pods are created and deleted.
        let creates = plan
            .create
            .iter()
            .map(|i| super::new_pod(&job, *i))
            .collect();
        writes::create_expected(&self.expectations, key, &pod_api, creates, now).await?;
        writes::delete_expected(&self.expectations, key, &pod_api, &plan.delete, now).await?;
        if plan.delete_job {
            let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                preconditions: Some(Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..Default::default()
            };
            writes::delete(&api, &key.name, &params).await?;
        }
        Ok(plan.requeue_after)
    }
}

impl Controller {
    /// A Job that is gone leaves its pods' finalizers behind: remove them, so
    /// the pods can go too.
    async fn release_orphans(
        &self,
        key: &ObjectKey,
        api: &Api<Pod>,
        pods: &[Arc<Pod>],
    ) -> Result<Option<Duration>, Error> {
        let orphans: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| controller_key(&p.metadata, "Job").as_ref() == Some(key))
            .filter(|p| {
                p.metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .any(|f| f == TRACKING_FINALIZER)
            })
            .cloned()
            .collect();
        remove_finalizers(api, &orphans).await?;
        Ok(None)
    }
}

/// Removes the tracking finalizer from `pods`, each guarded by its resourceVersion.
async fn remove_finalizers(api: &Api<Pod>, pods: &[Arc<Pod>]) -> Result<(), Error> {
    let patches = pods.iter().map(|pod| {
        let remaining: Vec<&String> = pod
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != TRACKING_FINALIZER)
            .collect();
        let patch = json!({ "metadata": {
            "finalizers": remaining,
            "resourceVersion": pod.metadata.resource_version,
        }});
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api = api.clone();
        async move {
            writes::ignore_not_found(
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(|_| ()),
            )
        }
    });
    writes::all("finalizer removals", patches.collect()).await
}
