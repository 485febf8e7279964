//! The ServiceAccount controller's shell: informers on Namespaces and
//! ServiceAccounts, a queue of namespace names.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use skiff_client::{Api, ObjectKey, PostParams, QueueConfig, Store, WorkQueue};

use crate::context::{Context, Runner};
use crate::error::Error;
use crate::informers::{Informers, BY_NAMESPACE};
use crate::worker;

struct Controller {
    ctx: Context,
    namespaces: Store<Namespace>,
    accounts: Store<ServiceAccount>,
}

/// Registers the controller's handlers; the runner starts its workers.
pub(crate) fn register(ctx: &Context, informers: &mut Informers) -> Result<Runner, Error> {
    let queue = WorkQueue::<ObjectKey>::new(QueueConfig::default());
    let slot = informers.get::<Namespace>()?;
    let namespaces = slot.store();
    let q = queue.clone();
    slot.on_add(move |ns| q.add(ObjectKey::of(ns.as_ref())));
    let q = queue.clone();
    slot.on_update(move |_, ns| q.add(ObjectKey::of(ns.as_ref())));
    let slot = informers.get::<ServiceAccount>()?;
    let accounts = slot.store();
    let q = queue.clone();
    slot.on_delete(move |sa| {
        q.add(ObjectKey::new(
            "",
            sa.metadata.namespace.as_deref().unwrap_or(""),
        ))
    });
    let controller = Controller {
        ctx: ctx.clone(),
        namespaces,
        accounts,
    };
    Ok(worker::runner("serviceaccount", queue, 1, controller))
}

impl worker::Reconciler for Controller {
    type Key = ObjectKey;

    async fn sync(&self, key: &ObjectKey) -> Result<Option<Duration>, Error> {
        let Some(namespace) = self.namespaces.get_key(key) else {
            return Ok(None);
        };
        let accounts = self.accounts.by_index(BY_NAMESPACE, &key.name);
        let refs: Vec<&ServiceAccount> = accounts.iter().map(|a| a.as_ref()).collect();
        let Some(account) = super::reconcile(&namespace, &refs) else {
            return Ok(None);
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.ctx.client.clone(), &key.name);
        match api.create(&PostParams::default(), &account).await {
            Err(e) if e.is_already_exists() => Ok(None),
            // A namespace that started terminating meanwhile refuses new objects.
            Err(e) if e.reason() == Some(skiff_api::status::Reason::Forbidden) => Ok(None),
            other => other.map(|_| None).map_err(Error::from),
        }
    }
}
