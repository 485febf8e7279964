//! One informer per kind, shared by every controller that needs it: each
//! registers its handlers, then all start together and the controllers wait
//! for their caches to fill (a small shared informer factory).

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_client::{
    Api, ApiResource, Client, Discovery, Informer, InformerConfig, Object, ObjectKey, Resource,
    Store, WorkQueue,
};
use tokio_util::sync::CancellationToken;

use crate::metadata::ObjectMetadata;

/// The index every cache carries: objects by namespace.
pub(crate) const BY_NAMESPACE: &str = "namespace";

/// The index every cache carries: objects by the uid of their controller,
/// those with none under [`orphans_of`] their namespace — Kubernetes'
/// `controllerUIDIndex`, so that a sync reads its own objects and the
/// candidates for adoption, not the whole namespace.
const BY_CONTROLLER: &str = "controller";

/// The [`BY_CONTROLLER`] value of a namespace's objects without a controller
/// (no uid contains a `/`).
fn orphans_of(namespace: &str) -> String {
    format!("orphan/{namespace}")
}

fn controller_index(meta: &ObjectMeta) -> Vec<String> {
    match crate::meta::controller_of(meta) {
        Some(reference) => vec![reference.uid.clone()],
        None => vec![orphans_of(meta.namespace.as_deref().unwrap_or(""))],
    }
}

/// The objects of `store` that the controller with `uid` controls, then the
/// orphans of its `namespace` it might adopt: everything a claim can act on.
pub(crate) fn owned_or_orphans<K: Object>(
    store: &Store<K>,
    namespace: &str,
    uid: &str,
) -> Vec<Arc<K>> {
    let mut candidates = store.by_index(BY_CONTROLLER, uid);
    candidates.retain(|o| o.meta().namespace.as_deref().unwrap_or("") == namespace);
    candidates.extend(store.by_index(BY_CONTROLLER, &orphans_of(namespace)));
    candidates
}

/// One kind's informer, before it runs.
pub(crate) struct Slot<K: Object> {
    informer: Option<Informer<K>>,
    store: Store<K>,
}

impl<K: Object> Slot<K> {
    fn new(api: Api<K>) -> Slot<K> {
        let mut informer = Informer::new(api, InformerConfig::default())
            .with_index(BY_NAMESPACE, |o: &K| {
                vec![o.meta().namespace.clone().unwrap_or_default()]
            })
            .with_index(BY_CONTROLLER, |o: &K| controller_index(o.meta()));
        let store = informer.store();
        Slot {
            informer: Some(informer),
            store,
        }
    }

    fn take(&mut self) -> Informer<K> {
        self.informer.take().expect("an informer runs once")
    }

    /// The cache this informer fills.
    pub(crate) fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Calls `handler` for each object added.
    pub(crate) fn on_add(&mut self, handler: impl Fn(&Arc<K>) + Send + Sync + 'static) {
        let informer = self.take().on_add(handler);
        self.informer = Some(informer);
    }

    /// Calls `handler(old, new)` for each object changed.
    pub(crate) fn on_update(&mut self, handler: impl Fn(&Arc<K>, &Arc<K>) + Send + Sync + 'static) {
        let informer = self.take().on_update(handler);
        self.informer = Some(informer);
    }

    /// Calls `handler` for each object removed.
    pub(crate) fn on_delete(&mut self, handler: impl Fn(&Arc<K>) + Send + Sync + 'static) {
        let informer = self.take().on_delete(handler);
        self.informer = Some(informer);
    }

    /// Calls `handler` with the object on every add, update (new state) and delete.
    pub(crate) fn on_any(&mut self, handler: impl Fn(&Arc<K>) + Send + Sync + Clone + 'static) {
        let (add, update) = (handler.clone(), handler.clone());
        self.on_add(add);
        self.on_update(move |_, new| update(new));
        self.on_delete(handler);
    }

    /// Queues each object's own key whenever it is added, changed or
    /// removed: the informer of the kind a controller reconciles.
    pub(crate) fn queue_keys(&mut self, queue: &WorkQueue<ObjectKey>) {
        let queue = queue.clone();
        self.on_any(move |object| queue.add(ObjectKey::of(object.as_ref())));
    }

    /// Queues the keys `related` names for each object added, changed
    /// (before and after the change) or removed: the informer of a kind
    /// whose objects point at the reconciled ones (owned pods, selected
    /// ReplicaSets).
    pub(crate) fn queue_related(
        &mut self,
        queue: &WorkQueue<ObjectKey>,
        related: impl Fn(&K) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) {
        let related = Arc::new(related);
        let (q, r) = (queue.clone(), related.clone());
        self.on_add(move |object| r(object).into_iter().for_each(|key| q.add(key)));
        let (q, r) = (queue.clone(), related.clone());
        self.on_update(move |old, new| {
            r(old).into_iter().for_each(|key| q.add(key.clone()));
            r(new).into_iter().for_each(|key| q.add(key));
        });
        let q = queue.clone();
        self.on_delete(move |object| related(object).into_iter().for_each(|key| q.add(key)));
    }
}

/// A slot of any kind, as the manager holds it.
trait AnySlot: Send {
    fn as_any(&mut self) -> &mut dyn std::any::Any;
    fn run(&mut self, shutdown: CancellationToken) -> BoxFuture<'static, ()>;
}

impl<K: Object> AnySlot for Slot<K> {
    fn as_any(&mut self) -> &mut dyn std::any::Any {
        self
    }

    fn run(&mut self, shutdown: CancellationToken) -> BoxFuture<'static, ()> {
        Box::pin(self.take().run(shutdown))
    }
}

/// Which informer a slot is: a compiled-in type, or a discovered resource
/// (group and plural) seen as [`ObjectMetadata`].
#[derive(Clone, PartialEq, Eq)]
enum SlotId {
    Typed(std::any::TypeId),
    Metadata(String, String),
}

/// The informers of one manager run, by kind.
pub(crate) struct Informers {
    client: Client,
    discovery: Discovery,
    slots: Vec<(SlotId, Box<dyn AnySlot>)>,
    syncs: Vec<BoxFuture<'static, ()>>,
}

impl Informers {
    pub(crate) fn new(client: Client, discovery: Discovery) -> Informers {
        Informers {
            client,
            discovery,
            slots: Vec::new(),
            syncs: Vec::new(),
        }
    }

    /// What the API server serves, as discovered when this run started.
    pub(crate) fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The metadata informer of a discovered resource, made on first use.
    pub(crate) fn metadata(&mut self, resource: &ApiResource) -> &mut Slot<ObjectMetadata> {
        let id = SlotId::Metadata(resource.group.clone(), resource.plural.clone());
        let client = self.client.clone();
        self.slot(id, || Slot::new(Api::all_with(client, resource)))
    }

    /// The informer of kind `K`, made on first use.
    pub(crate) fn get<K: Object + Resource<DynamicType = ()>>(
        &mut self,
    ) -> Result<&mut Slot<K>, skiff_client::Error> {
        let id = SlotId::Typed(std::any::TypeId::of::<K>());
        let client = self.client.clone();
        Ok(self.slot(id, || Slot::new(Api::all(client))))
    }

    /// The cache of `K`, the kind a controller reconciles: each object's own
    /// key is queued whenever it is added, changed or removed.
    pub(crate) fn reconciled<K: Object + Resource<DynamicType = ()>>(
        &mut self,
        queue: &WorkQueue<ObjectKey>,
    ) -> Result<Store<K>, skiff_client::Error> {
        let slot = self.get::<K>()?;
        slot.queue_keys(queue);
        Ok(slot.store())
    }

    /// The cache of `K`, a kind whose objects point at the reconciled ones:
    /// the keys `related` names are queued (see [`Slot::queue_related`]).
    pub(crate) fn related<K: Object + Resource<DynamicType = ()>>(
        &mut self,
        queue: &WorkQueue<ObjectKey>,
        related: impl Fn(&K) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Result<Store<K>, skiff_client::Error> {
        let slot = self.get::<K>()?;
        slot.queue_related(queue, related);
        Ok(slot.store())
    }

    fn slot<K: Object>(&mut self, id: SlotId, make: impl FnOnce() -> Slot<K>) -> &mut Slot<K> {
        if !self.slots.iter().any(|(t, _)| *t == id) {
            let slot = make();
            let store = slot.store();
            self.syncs
                .push(Box::pin(async move { store.wait_for_sync().await }));
            self.slots.push((id.clone(), Box::new(slot)));
        }
        let (_, slot) = self
            .slots
            .iter_mut()
            .find(|(t, _)| *t == id)
            .expect("the slot was just made");
        slot.as_any()
            .downcast_mut::<Slot<K>>()
            .expect("slots are filed by their type")
    }

    /// Starts every informer and waits until all caches have listed once.
    pub(crate) async fn start(mut self, shutdown: &CancellationToken) {
        for (_, slot) in self.slots.iter_mut() {
            tokio::spawn(slot.run(shutdown.clone()));
        }
        tokio::select! {
            _ = futures::future::join_all(self.syncs) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

/// The key of the controller (of `kind`) that controls `meta`, if any.
pub(crate) fn controller_key(meta: &ObjectMeta, kind: &str) -> Option<ObjectKey> {
    let reference = crate::meta::controller_of(meta)?;
    (reference.kind == kind)
        .then(|| ObjectKey::new(meta.namespace.as_deref().unwrap_or(""), &reference.name))
}
