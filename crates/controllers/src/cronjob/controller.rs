//! The CronJob controller's shell: informers on CronJobs and Jobs, a queue
//! of CronJob keys, workers applying [`super::reconcile`]'s plan.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use skiff_client::{
    Api, DeleteParams, ObjectKey, PostParams, PropagationPolicy, QueueConfig, Store, WorkQueue,
};

use crate::clock::now;
use crate::context::{Context, Runner};
use crate::error::Error;
use crate::informers::{controller_key, Informers, BY_NAMESPACE};
use crate::worker;
use crate::{meta, writes};

struct Controller {
    ctx: Context,
    cron_jobs: Store<CronJob>,
    jobs: Store<Job>,
}

/// Registers the controller's handlers; the runner starts its workers.
pub(crate) fn register(ctx: &Context, informers: &mut Informers) -> Result<Runner, Error> {
    let queue = WorkQueue::<ObjectKey>::new(QueueConfig::default());
    let cron_jobs = informers.reconciled::<CronJob>(&queue)?;
    let jobs = informers.related(&queue, |job: &Job| {
        controller_key(&job.metadata, "CronJob")
            .into_iter()
            .collect()
    })?;
    let controller = Controller {
        ctx: ctx.clone(),
        cron_jobs,
        jobs,
    };
    Ok(worker::runner(
        "cronjob",
        queue,
        ctx.config.workers,
        controller,
    ))
}

impl worker::Reconciler for Controller {
    type Key = ObjectKey;

    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>, Error> {
        let Some(cron_job) = self.cron_jobs.get_key(key) else {
            return Ok(None);
        };
        let uid = cron_job.metadata.uid.clone().unwrap_or_default();
        let jobs: Vec<Arc<Job>> = self
            .jobs
            .by_index(BY_NAMESPACE, &key.namespace)
            .into_iter()
            .filter(|j| meta::controller_of(&j.metadata).is_some_and(|r| r.uid == uid))
            .collect();
        let refs: Vec<&Job> = jobs.iter().map(|j| j.as_ref()).collect();
        let plan = super::reconcile(&cron_job, &refs, now());
        let events = &self.ctx.events;
        let Some(plan) = events
            .plan_or_warn(cron_job.as_ref(), "InvalidCronJob", plan)
            .await
        else {
            return Ok(None);
        };
        if let Some((reason, message)) = &plan.warning {
            self.ctx
                .events
                .warning(cron_job.as_ref(), reason, message)
                .await;
        }
        let api: Api<Job> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        let deletes = plan.delete.iter().map(|name| {
            let (api, params) = (api.clone(), background.clone());
            async move { writes::delete(&api, name, &params).await }
        });
        writes::all("Job deletions", deletes.collect()).await?;
        if let Some(job) = &plan.create {
            match api.create(&PostParams::default(), job).await {
                Err(e) if e.is_already_exists() => {}
                other => {
                    other?;
                }
            }
        }
        writes::status(&self.ctx.client, cron_job.as_ref(), plan.status).await?;
        Ok(plan.requeue_after)
    }
}
