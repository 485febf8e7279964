//! An in-memory stand-in for the MVCC store, for watch tests: it keeps every
//! event in a `Vec` as history and notifies the hub after each write.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use skiff_proto::mvccpb::event::EventType;
use skiff_proto::mvccpb::{Event, KeyValue};

use super::{HistoryError, WatchHistory, WatchHub, WatchOptions};
use crate::mvcc::in_range;

#[derive(Default)]
struct Inner {
    revision: i64,
    compact_revision: i64,
    live: HashMap<Vec<u8>, KeyValue>,
    history: Vec<Event>,
}

/// A toy store: `put`, `delete` and `compact`, with a hub attached.
pub(crate) struct MemStore {
    inner: Mutex<Inner>,
}

/// The history half of [`MemStore`], handed to the hub.
struct MemHistory(Arc<MemStore>);

impl MemStore {
    /// A store at revision 1 (nothing written yet) and a hub over it.
    pub(crate) fn with_hub(options: WatchOptions) -> (Arc<MemStore>, WatchHub) {
        let inner = Inner {
            revision: 1,
            ..Inner::default()
        };
        let store = Arc::new(MemStore {
            inner: Mutex::new(inner),
        });
        let history = Arc::new(MemHistory(Arc::clone(&store)));
        let hub = WatchHub::new(history, 1, options);
        (store, hub)
    }

    /// Writes `key = value` at the next revision and notifies `hub`; returns the revision.
    pub(crate) fn put(&self, hub: &WatchHub, key: &[u8], value: &[u8]) -> i64 {
        let mut inner = self.inner.lock().expect("mock store lock");
        let revision = inner.revision + 1;
        let prev = inner.live.get(key).cloned();
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
            mod_revision: revision,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            value: value.to_vec(),
            lease: 0,
        };
        inner.live.insert(key.to_vec(), kv.clone());
        Self::record(&mut inner, hub, revision, EventType::Put, kv, prev)
    }

    /// Deletes `key` at the next revision (which must exist) and notifies `hub`.
    pub(crate) fn delete(&self, hub: &WatchHub, key: &[u8]) -> i64 {
        let mut inner = self.inner.lock().expect("mock store lock");
        let revision = inner.revision + 1;
        let prev = inner.live.remove(key).expect("delete of a key that exists");
        let tombstone = KeyValue {
            key: key.to_vec(),
            mod_revision: revision,
            ..KeyValue::default()
        };
        Self::record(
            &mut inner,
            hub,
            revision,
            EventType::Delete,
            tombstone,
            Some(prev),
        )
    }

    /// The event recorded at `revision`, as the store keeps it (with `prev_kv`).
    pub(crate) fn history_at(&self, revision: i64) -> Event {
        let inner = self.inner.lock().expect("mock store lock");
        let at = |e: &&Event| e.kv.as_ref().is_some_and(|kv| kv.mod_revision == revision);
        inner
            .history
            .iter()
            .find(at)
            .cloned()
            .expect("an event at that revision")
    }

    /// Forgets history below `revision`.
    pub(crate) fn compact(&self, revision: i64) {
        let mut inner = self.inner.lock().expect("mock store lock");
        inner.compact_revision = revision;
        inner
            .history
            .retain(|e| e.kv.as_ref().is_some_and(|kv| kv.mod_revision >= revision));
    }

    fn record(
        inner: &mut Inner,
        hub: &WatchHub,
        revision: i64,
        kind: EventType,
        kv: KeyValue,
        prev_kv: Option<KeyValue>,
    ) -> i64 {
        let event = Event {
            r#type: kind as i32,
            kv: Some(kv),
            prev_kv,
        };
        inner.revision = revision;
        inner.history.push(event.clone());
        // Notify while still holding the store lock, as the apply loop applies
        // one revision at a time.
        hub.notify(revision, vec![event]);
        revision
    }
}

impl WatchHistory for MemHistory {
    fn events(
        &self,
        from: i64,
        to: i64,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<Vec<Event>, HistoryError> {
        let inner = self.0.inner.lock().expect("mock store lock");
        if from < inner.compact_revision {
            return Err(HistoryError::Compacted {
                compact_revision: inner.compact_revision,
            });
        }
        let wanted = |e: &&Event| {
            e.kv.as_ref().is_some_and(|kv| {
                (from..=to).contains(&kv.mod_revision) && in_range(&kv.key, key, range_end)
            })
        };
        Ok(inner.history.iter().filter(wanted).cloned().collect())
    }

    fn prev_kv(&self, key: &[u8], revision: i64) -> Option<KeyValue> {
        let inner = self.0.inner.lock().expect("mock store lock");
        let last = inner.history.iter().rev().find(|e| {
            e.kv.as_ref()
                .is_some_and(|kv| kv.key == key && kv.mod_revision < revision)
        })?;
        (last.r#type == EventType::Put as i32)
            .then(|| last.kv.clone())
            .flatten()
    }
}
