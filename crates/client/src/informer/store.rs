//! [`Store<K>`]: the informer's local cache of one resource, with indexes.
//!
//! As client-go's `cache.Indexer`: objects keyed by `namespace/name`, plus any
//! number of named indexes, each a function from an object to the values it is
//! filed under ("by node name": a pod's `spec.nodeName`). Readers share the
//! objects as `Arc<K>`; only the informer writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};

use crate::api::Object;

/// Where an object lives: its namespace (empty when cluster-scoped) and name.
/// Written `namespace/name`, or just `name`, as client-go's
/// `MetaNamespaceKeyFunc`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// The namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl ObjectKey {
    /// The key of `name` in `namespace`.
    pub fn new(namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The key of `object`, from its metadata.
    pub fn of<K: Object>(object: &K) -> ObjectKey {
        let meta = object.meta();
        ObjectKey::new(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// An index function: the values an object is filed under (none, one or many).
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

struct Cache<K> {
    objects: BTreeMap<ObjectKey, Arc<K>>,
    indexers: BTreeMap<String, IndexFn<K>>,
    /// index name → value → keys filed under it.
    indices: HashMap<String, HashMap<String, BTreeSet<ObjectKey>>>,
}

impl<K> Cache<K> {
    fn file(&mut self, key: &ObjectKey, object: &K) {
        for (index, function) in &self.indexers {
            let values = self.indices.entry(index.clone()).or_default();
            for value in function(object) {
                values.entry(value).or_default().insert(key.clone());
            }
        }
    }

    fn unfile(&mut self, key: &ObjectKey, object: &K) {
        for (index, function) in &self.indexers {
            let Some(values) = self.indices.get_mut(index) else {
                continue;
            };
            for value in function(object) {
                if let Some(keys) = values.get_mut(&value) {
                    keys.remove(key);
                    if keys.is_empty() {
                        values.remove(&value);
                    }
                }
            }
        }
    }
}

/// A read handle on an informer's cache. Clones share the cache.
pub struct Store<K> {
    cache: Arc<RwLock<Cache<K>>>,
    synced: tokio::sync::watch::Sender<bool>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store {
            cache: self.cache.clone(),
            synced: self.synced.clone(),
        }
    }
}

impl<K: Object> Store<K> {
    pub(crate) fn new(indexers: BTreeMap<String, IndexFn<K>>) -> Store<K> {
        Store {
            cache: Arc::new(RwLock::new(Cache {
                objects: BTreeMap::new(),
                indexers,
                indices: HashMap::new(),
            })),
            synced: tokio::sync::watch::Sender::new(false),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache<K>> {
        // A panic while holding the lock leaves consistent data: every write
        // below finishes its map updates before anything can panic.
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cache<K>> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The object `name` in `namespace` (empty for cluster-scoped objects).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.get_key(&ObjectKey::new(namespace, name))
    }

    /// The object at `key`.
    pub fn get_key(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.read().objects.get(key).cloned()
    }

    /// Every cached object, in key order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().objects.values().cloned().collect()
    }

    /// Every cached key, in order.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.read().objects.keys().cloned().collect()
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The objects the index `index` files under `value`, in key order; none
    /// when there is no such index.
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<K>> {
        let cache = self.read();
        let Some(keys) = cache.indices.get(index).and_then(|v| v.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|key| cache.objects.get(key).cloned())
            .collect()
    }

    /// Whether the first list has been stored: before it, an empty cache
    /// means nothing.
    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first list has been stored.
    pub async fn wait_for_sync(&self) {
        let mut synced = self.synced.subscribe();
        // The sender lives as long as this store, so this cannot fail.
        let _ = synced.wait_for(|s| *s).await;
    }

    pub(crate) fn mark_synced(&self) {
        self.synced.send_replace(true);
    }

    /// Stores `object`, answering what it replaced.
    pub(crate) fn insert(&self, object: Arc<K>) -> Option<Arc<K>> {
        let key = ObjectKey::of(object.as_ref());
        let mut cache = self.write();
        let old = cache.objects.insert(key.clone(), object.clone());
        if let Some(old) = &old {
            cache.unfile(&key, old);
        }
        cache.file(&key, &object);
        old
    }

    /// Removes the object at `key`, answering it.
    pub(crate) fn remove(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let mut cache = self.write();
        let old = cache.objects.remove(key);
        if let Some(old) = &old {
            cache.unfile(key, old);
        }
        old
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Pod, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn pod(name: &str, node: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn by_node() -> BTreeMap<String, IndexFn<Pod>> {
        let f: IndexFn<Pod> = Arc::new(|p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .into_iter()
                .collect()
        });
        BTreeMap::from([("node".to_string(), f)])
    }

    fn names(pods: Vec<Arc<Pod>>) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    }

    #[test]
    fn indexes_follow_updates_and_removals() {
        let store = Store::new(by_node());
        store.insert(pod("a", "n1"));
        store.insert(pod("b", "n1"));
        store.insert(pod("c", "n2"));
        assert_eq!(names(store.by_index("node", "n1")), ["a", "b"]);
        let old = store.insert(pod("b", "n2")).expect("b was cached");
        assert_eq!(old.spec.as_ref().unwrap().node_name.as_deref(), Some("n1"));
        assert_eq!(names(store.by_index("node", "n1")), ["a"]);
        assert_eq!(names(store.by_index("node", "n2")), ["b", "c"]);
        store.remove(&ObjectKey::new("default", "c"));
        assert_eq!(names(store.by_index("node", "n2")), ["b"]);
        assert!(store.by_index("nope", "n2").is_empty());
        assert_eq!(
            store.get("default", "a").unwrap().metadata.name.as_deref(),
            Some("a")
        );
        assert_eq!(store.len(), 2);
        assert_eq!(ObjectKey::new("default", "a").to_string(), "default/a");
        assert_eq!(ObjectKey::new("", "node-1").to_string(), "node-1");
    }
}
