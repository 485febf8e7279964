//! The Endpoints and EndpointSlice controllers' shell: informers on
//! Services, Pods, Endpoints and EndpointSlices, a queue of Service keys.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_client::{Api, DeleteParams, ObjectKey, PostParams, QueueConfig, Store, WorkQueue};

use crate::context::{Context, Runner};
use crate::error::Error;
use crate::informers::{Informers, BY_NAMESPACE};
use crate::worker;
use crate::writes;

struct Controller {
    ctx: Context,
    services: Store<Service>,
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    slices: Store<EndpointSlice>,
}

/// Every Service in the pod's namespace whose selector matches it.
fn services_of(services: &Store<Service>, pod: &Pod) -> Vec<ObjectKey> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let labels = crate::meta::labels(&pod.metadata);
    services
        .by_index(BY_NAMESPACE, &namespace)
        .into_iter()
        .filter(|service| {
            let selector = service
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .filter(|s| !s.is_empty());
            selector.is_some_and(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
        })
        .map(|service| ObjectKey::of(service.as_ref()))
        .collect()
}

/// Registers the controller's handlers; the runner starts its workers.
pub(crate) fn register(ctx: &Context, informers: &mut Informers) -> Result<Runner, Error> {
    let queue = WorkQueue::<ObjectKey>::new(QueueConfig::default());
    let services = informers.reconciled::<Service>(&queue)?;
    let s = services.clone();
    let pods = informers.related(&queue, move |pod: &Pod| services_of(&s, pod))?;
    let endpoints = informers.get::<Endpoints>()?.store();
    let slot = informers.get::<EndpointSlice>()?;
    let slices = slot.store();
    let q = queue.clone();
    slot.on_delete(move |slice| {
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(super::SERVICE_NAME));
        if let Some(service) = service {
            q.add(ObjectKey::new(
                slice.metadata.namespace.as_deref().unwrap_or(""),
                service,
            ));
        }
    });
    let controller = Controller {
        ctx: ctx.clone(),
        services,
        pods,
        endpoints,
        slices,
    };
    Ok(worker::runner(
        "endpoints",
        queue,
        ctx.config.workers,
        controller,
    ))
}

impl worker::Reconciler for Controller {
    type Key = ObjectKey;

    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>, Error> {
        let endpoints_api: Api<Endpoints> =
            Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let slice_api: Api<EndpointSlice> =
            Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let existing = self.endpoints.get_key(key);
        let slices = self.slices.by_index(BY_NAMESPACE, &key.namespace);
        let Some(service) = self.services.get_key(key) else {
            // The Service is gone: so are its endpoints.
            if existing.is_some() {
                writes::delete(&endpoints_api, &key.name, &DeleteParams::default()).await?;
            }
            let managed = slices.iter().filter(|s| {
                let labels = s.metadata.labels.clone().unwrap_or_default();
                labels.get(super::SERVICE_NAME) == Some(&key.name)
                    && labels
                        .get(super::slices::MANAGED_BY_LABEL)
                        .map(String::as_str)
                        == Some(super::MANAGED_BY)
            });
            let deletes = managed.map(|s| {
                let (api, name) = (
                    slice_api.clone(),
                    s.metadata.name.clone().unwrap_or_default(),
                );
                async move { writes::delete(&api, &name, &DeleteParams::default()).await }
            });
            writes::all("EndpointSlice deletions", deletes.collect()).await?;
            return Ok(None);
        };
        let pods = self.pods.by_index(BY_NAMESPACE, &key.namespace);
        let pod_refs: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        let slice_refs: Vec<&EndpointSlice> = slices.iter().map(|s| s.as_ref()).collect();
        let Some(plan) = super::reconcile(&service, &pod_refs, &slice_refs) else {
            return Ok(None);
        };
        match existing {
            None => {
                match endpoints_api
                    .create(&PostParams::default(), &plan.endpoints)
                    .await
                {
                    Err(e) if e.is_already_exists() => return Ok(Some(Duration::from_millis(100))),
                    other => other?,
                };
            }
            Some(current) if !super::same_endpoints(&current, &plan.endpoints) => {
                let mut next = plan.endpoints.clone();
                next.metadata.resource_version = current.metadata.resource_version.clone();
                endpoints_api
                    .replace(
                        &next.metadata.name.clone().unwrap_or_default(),
                        &PostParams::default(),
                        &next,
                    )
                    .await?;
            }
            Some(_) => {}
        }
        let writes = plan.slices.iter().filter_map(|wanted| {
            let current = slices
                .iter()
                .find(|s| s.metadata.name == wanted.metadata.name);
            if current.is_some_and(|c| super::slices::same_slice(c, wanted)) {
                return None;
            }
            let mut next = wanted.clone();
            next.metadata.resource_version =
                current.and_then(|c| c.metadata.resource_version.clone());
            let (api, create) = (slice_api.clone(), current.is_none());
            Some(async move {
                let result = if create {
                    api.create(&PostParams::default(), &next).await
                } else {
                    api.replace(
                        &next.metadata.name.clone().unwrap_or_default(),
                        &PostParams::default(),
                        &next,
                    )
                    .await
                };
                result.map(|_| ())
            })
        });
        writes::all("EndpointSlice writes", writes.collect()).await?;
        let deletes = plan.delete_slices.iter().map(|name| {
            let api = slice_api.clone();
            async move { writes::delete(&api, name, &DeleteParams::default()).await }
        });
        writes::all("EndpointSlice deletions", deletes.collect()).await?;
        Ok(None)
    }
}
