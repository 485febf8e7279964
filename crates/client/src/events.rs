//! [`Recorder`]: Events about objects, as client-go's `EventRecorder` writes
//! them — how a component tells a user what it did or why it could not
//! (`skiff describe` shows them).
//!
//! An Event is a core/v1 object in the involved object's namespace, named
//! `<object>.<unix nanoseconds in hex>` as Kubernetes names them. Like
//! client-go's `EventCorrelator`, a recorder folds repeats: the same reason
//! and message about the same object (and container) from the same recorder
//! raises the first Event's `count` and `lastTimestamp` instead of writing
//! a new one.
//!
//! # Where to start
//! [`Recorder::publish`] writes and waits; [`Recorder::record`] writes in the
//! background, for callers on a hot path.
//!
//! # Caveats
//! Repeats are folded only within one recorder's memory (the last
//! [`REMEMBERED`] distinct events); a restarted component starts new Events.
//! A failed write is logged, not returned: Events are advice, and the next
//! occurrence writes again. No spam filter limits how often one object gets
//! Events.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::{Metadata, Resource};
use kube_core::params::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Api, Client};

/// How many distinct events a recorder remembers to fold repeats into.
pub const REMEMBERED: usize = 4096;

/// Events written so far by this process, to keep names of one nanosecond apart.
static WRITTEN: AtomicU64 = AtomicU64::new(0);

/// Who reports: `source.component` and `source.host` (kubelets), and
/// `reportingComponent`/`reportingInstance`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reporter {
    /// The component, such as `default-scheduler` or `kubelet`.
    pub component: String,
    /// The instance: a kubelet's node name; `None` for control-plane components.
    pub instance: Option<String>,
}

/// `Normal` or `Warning`, Kubernetes' two event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something happened as it should.
    Normal,
    /// Something went wrong, or may.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// One occurrence to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence<'a> {
    /// Normal or Warning.
    pub type_: EventType,
    /// A short CamelCase reason, such as `FailedScheduling`.
    pub reason: &'a str,
    /// What happened, for people.
    pub message: &'a str,
    /// The part of the object it is about, such as `spec.containers{app}`.
    pub field_path: Option<String>,
}

/// What identifies repeats: the object's uid, type, reason, message and field path.
type Key = (String, EventType, String, String, Option<String>);

/// An Event already written: its namespace, name and count.
#[derive(Clone, Debug)]
struct Written {
    namespace: String,
    name: String,
    count: i32,
}

#[derive(Default)]
struct Memory {
    events: HashMap<Key, Written>,
    order: VecDeque<Key>,
}

impl Memory {
    fn remember(&mut self, key: Key, written: Written) {
        if self.events.insert(key.clone(), written).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.events.remove(&oldest);
            }
        }
    }
}

/// Records Events for one component. Clones share what was recorded.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    memory: Arc<Mutex<Memory>>,
}

impl Recorder {
    /// A recorder writing through `client` as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Recorder {
        Recorder {
            client,
            reporter,
            memory: Arc::default(),
        }
    }

    /// Records `occurrence` about `object` in the background.
    pub fn record<K>(&self, object: &K, occurrence: Occurrence<'_>)
    where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        let recorder = self.clone();
        let (reference, namespace) = reference_of(object);
        let key = key_of(&reference, &occurrence);
        let event = recorder.event(reference, &namespace, &occurrence);
        tokio::spawn(async move { recorder.write(key, namespace, event).await });
    }

    /// Records `occurrence` about `object` and waits for the write.
    pub async fn publish<K>(&self, object: &K, occurrence: Occurrence<'_>)
    where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        let (reference, namespace) = reference_of(object);
        let key = key_of(&reference, &occurrence);
        let event = self.event(reference, &namespace, &occurrence);
        self.write(key, namespace, event).await;
    }

    /// A Normal occurrence with no field path.
    pub fn normal<'a>(reason: &'a str, message: &'a str) -> Occurrence<'a> {
        Occurrence {
            type_: EventType::Normal,
            reason,
            message,
            field_path: None,
        }
    }

    /// A Warning occurrence with no field path.
    pub fn warning<'a>(reason: &'a str, message: &'a str) -> Occurrence<'a> {
        Occurrence {
            type_: EventType::Warning,
            ..Recorder::normal(reason, message)
        }
    }

    fn event(&self, reference: ObjectReference, namespace: &str, o: &Occurrence<'_>) -> Event {
        let now = Timestamp::now();
        let object = reference.name.clone().unwrap_or_default();
        let unique =
            now.as_nanosecond() as u128 + u128::from(WRITTEN.fetch_add(1, Ordering::Relaxed));
        let at = Some(Time(now));
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{object}.{unique:x}")),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                field_path: o.field_path.clone(),
                ..reference
            },
            reason: Some(o.reason.to_string()),
            message: Some(o.message.to_string()),
            type_: Some(o.type_.as_str().to_string()),
            source: Some(EventSource {
                component: Some(self.reporter.component.clone()),
                host: self.reporter.instance.clone(),
            }),
            first_timestamp: at.clone(),
            last_timestamp: at,
            // To the microsecond, where the timestamps above have whole seconds.
            event_time: Some(MicroTime(now)),
            count: Some(1),
            reporting_component: Some(self.reporter.component.clone()),
            reporting_instance: self.reporter.instance.clone(),
            ..Event::default()
        }
    }

    /// Raises the count of the Event `key` names if there is one, else
    /// creates `event`.
    async fn write(&self, key: Key, namespace: String, event: Event) {
        let earlier = self.lock().events.get(&key).cloned();
        if let Some(mut written) = earlier {
            written.count += 1;
            if self.bump(&written, &event).await {
                self.lock().remember(key, written);
                return;
            }
        }
        let events = Api::<Event>::namespaced(self.client.clone(), &namespace);
        match events.create(&PostParams::default(), &event).await {
            Ok(_) => {
                let name = event.metadata.name.unwrap_or_default();
                let written = Written {
                    namespace,
                    name,
                    count: 1,
                };
                self.lock().remember(key, written);
            }
            Err(error) => {
                let reason = event.reason.unwrap_or_default();
                tracing::warn!(%error, reason, "an event could not be recorded");
            }
        }
    }

    /// Patches the earlier Event's count and lastTimestamp; false when it is
    /// gone (Events expire) or the write failed.
    async fn bump(&self, written: &Written, event: &Event) -> bool {
        let events = Api::<Event>::namespaced(self.client.clone(), &written.namespace);
        let patch = Patch::Merge(json!({
            "count": written.count,
            "lastTimestamp": event.last_timestamp,
        }));
        events
            .patch(&written.name, &PatchParams::default(), &patch)
            .await
            .is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The reference an Event names, and the namespace it goes in (`default`
/// for a cluster-scoped object, as Kubernetes does).
fn reference_of<K>(object: &K) -> (ObjectReference, String)
where
    K: Resource + Metadata<Ty = ObjectMeta>,
{
    let meta = object.metadata();
    let reference = ObjectReference {
        api_version: Some(K::API_VERSION.to_string()),
        kind: Some(K::KIND.to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    };
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    (reference, namespace)
}

fn key_of(reference: &ObjectReference, o: &Occurrence<'_>) -> Key {
    (
        reference.uid.clone().unwrap_or_default(),
        o.type_,
        o.reason.to_string(),
        o.message.to_string(),
        o.field_path.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_forgets_the_oldest_beyond_its_bound() {
        let mut memory = Memory::default();
        let key = |i: usize| {
            (
                i.to_string(),
                EventType::Normal,
                String::new(),
                String::new(),
                None,
            )
        };
        let written = Written {
            namespace: "default".into(),
            name: "e".into(),
            count: 1,
        };
        for i in 0..=REMEMBERED {
            memory.remember(key(i), written.clone());
        }
        assert!(
            !memory.events.contains_key(&key(0)),
            "the oldest is forgotten"
        );
        assert!(memory.events.contains_key(&key(REMEMBERED)));
        memory.remember(key(REMEMBERED), written);
        assert_eq!(
            memory.order.len(),
            REMEMBERED,
            "a known key is not queued twice"
        );
    }
}
