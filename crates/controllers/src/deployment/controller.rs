//! The Deployment controller's shell: informers on Deployments and
//! ReplicaSets, a queue of Deployment keys, workers applying
//! [`super::reconcile`]'s plan.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use serde_json::json;
use skiff_client::{
    Api, DeleteParams, ObjectKey, Patch, PatchParams, PostParams, PropagationPolicy, QueueConfig,
    Store, WorkQueue,
};

use crate::clock::now;
use crate::context::{Context, Runner};
use crate::error::Error;
use crate::informers::{controller_key, Informers, BY_NAMESPACE};
use crate::worker;
use crate::{meta, writes};

struct Controller {
    ctx: Context,
    deployments: Store<Deployment>,
    sets: Store<ReplicaSet>,
}

/// The Deployment controlling `rs`, or else those whose selector matches it.
fn deployments_of(deployments: &Store<Deployment>, rs: &ReplicaSet) -> Vec<ObjectKey> {
    if let Some(key) = controller_key(&rs.metadata, "Deployment") {
        return vec![key];
    }
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    let labels = meta::labels(&rs.metadata);
    deployments
        .by_index(BY_NAMESPACE, &namespace)
        .into_iter()
        .filter(|d| {
            let selector = d
                .spec
                .as_ref()
                .and_then(|s| meta::selector(Some(&s.selector)).ok());
            selector.is_some_and(|s| !s.is_empty() && s.matches(labels))
        })
        .map(|d| ObjectKey::of(d.as_ref()))
        .collect()
}

/// Registers the controller's handlers; the runner starts its workers.
pub(crate) fn register(ctx: &Context, informers: &mut Informers) -> Result<Runner, Error> {
    let queue = WorkQueue::<ObjectKey>::new(QueueConfig::default());
    let deployments = informers.reconciled::<Deployment>(&queue)?;
    let d = deployments.clone();
    let sets = informers.related(&queue, move |rs: &ReplicaSet| deployments_of(&d, rs))?;
    let controller = Controller {
        ctx: ctx.clone(),
        deployments,
        sets,
    };
    Ok(worker::runner(
        "deployment",
        queue,
        ctx.config.workers,
        controller,
    ))
}

impl worker::Reconciler for Controller {
    type Key = ObjectKey;

    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>, Error> {
        let Some(deployment) = self.deployments.get_key(key) else {
            return Ok(None);
        };
        let sets = self.sets.by_index(BY_NAMESPACE, &key.namespace);
        let refs: Vec<&ReplicaSet> = sets.iter().map(|rs| rs.as_ref()).collect();
        let plan = super::reconcile(&deployment, &refs, now());
        let events = &self.ctx.events;
        let Some(plan) = events
            .plan_or_warn(deployment.as_ref(), "InvalidDeployment", plan)
            .await
        else {
            return Ok(None);
        };
        let api: Api<ReplicaSet> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let claims = (&plan.adopt[..], &plan.release[..]);
        writes::claim(&api, &sets, deployment.as_ref(), claims).await?;
        if let Some(rs) = &plan.create {
            match api.create(&PostParams::default(), rs).await {
                Ok(_) => {}
                // Made by an earlier run whose write the cache has not shown yet.
                Err(e) if e.is_already_exists() => return Ok(Some(Duration::from_millis(100))),
                Err(e) => return Err(e.into()),
            }
        }
        let scales = plan.scale.iter().map(|scale| {
            let annotations: serde_json::Map<String, serde_json::Value> = scale
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let patch = json!({
                "metadata": { "annotations": annotations },
                "spec": { "replicas": scale.replicas },
            });
            let api = api.clone();
            async move {
                api.patch(&scale.name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(|_| ())
            }
        });
        writes::all("ReplicaSet scalings", scales.collect()).await?;
        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        let deletes = plan.delete.iter().map(|name| {
            let (api, params) = (api.clone(), background.clone());
            async move { writes::delete(&api, name, &params).await }
        });
        writes::all("ReplicaSet deletions", deletes.collect()).await?;
        writes::status(&self.ctx.client, deployment.as_ref(), plan.status).await?;
        Ok(plan.requeue_after)
    }
}
