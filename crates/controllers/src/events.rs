//! Warning Events: how a controller tells a user why it cannot act on an
//! object (`skiff describe` shows them), as client-go's `EventRecorder`.
//!
//! # Caveats
//! Each distinct warning about an object is recorded once per manager run
//! (Kubernetes aggregates repeats into a `count`); events are core/v1 Events.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::{Metadata, Resource};
use skiff_client::{Api, Client, PostParams};

use crate::manager::now;

/// Records Events about objects for one component.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    sent: Arc<Mutex<HashSet<(String, String, String)>>>,
}

impl Recorder {
    /// A recorder whose events name `component` as their source.
    pub fn new(client: Client, component: &str) -> Recorder {
        Recorder {
            client,
            component: component.to_string(),
            sent: Arc::default(),
        }
    }

    /// Records a Warning about `object`: `reason` in CamelCase, `message` saying why.
    pub async fn warning<K>(&self, object: &K, reason: &str, message: &str)
    where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        let meta = object.metadata();
        let uid = meta.uid.clone().unwrap_or_default();
        let fresh = self.sent.lock().unwrap_or_else(|e| e.into_inner()).insert((
            uid.clone(),
            reason.to_string(),
            message.to_string(),
        ));
        if !fresh {
            return;
        }
        tracing::warn!(object = %crate::meta::key_of(meta), kind = K::KIND, reason, message, "warning event");
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let name = meta.name.clone().unwrap_or_default();
        let now = now();
        let at = Some(Time(now));
        let event = Event {
            metadata: ObjectMeta {
                // As client-go names events: the object's name and the time in hex.
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: Some(namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::API_VERSION.into()),
                kind: Some(K::KIND.into()),
                name: Some(name),
                namespace: meta.namespace.clone(),
                uid: Some(uid),
                resource_version: meta.resource_version.clone(),
                field_path: None,
            },
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some("Warning".into()),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            first_timestamp: at.clone(),
            last_timestamp: at,
            count: Some(1),
            ..Default::default()
        };
        let api = Api::<Event>::namespaced(self.client.clone(), &namespace);
        let result = api.create(&PostParams::default(), &event).await.map(|_| ());
        if let Err(error) = result {
            tracing::warn!(%error, "the event could not be recorded");
        }
    }
}
