//! Warning Events: how a controller tells a user why it cannot act on an
//! object (`skiff describe` shows them), through skiff-client's
//! [`skiff_client::Recorder`].
//!
//! # Caveats
//! A warning repeated on every sync of an object raises one Event's count
//! rather than writing new ones (see [`skiff_client::events`]).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};
use skiff_client::{Client, Reporter};

/// Records Events about objects for one component.
#[derive(Clone)]
pub struct Recorder {
    inner: skiff_client::Recorder,
}

impl Recorder {
    /// A recorder whose events name `component` as their source.
    pub fn new(client: Client, component: &str) -> Recorder {
        let reporter = Reporter {
            component: component.to_string(),
            instance: None,
        };
        Recorder {
            inner: skiff_client::Recorder::new(client, reporter),
        }
    }

    /// Records a Warning about `object`: `reason` in CamelCase, `message` saying why.
    pub async fn warning<K>(&self, object: &K, reason: &str, message: &str)
    where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        let meta = object.metadata();
        tracing::warn!(object = %crate::meta::key_of(meta), kind = K::KIND, reason, message, "warning event");
        let occurrence = skiff_client::Recorder::warning(reason, message);
        self.inner.publish(object, occurrence).await;
    }

    /// What a controller does with a reconcile's answer: a plan goes on to
    /// be applied; an object that cannot be acted on gets a Warning Event
    /// with `reason` naming its kind (`InvalidReplicaSet`) and the message
    /// saying why, and `None` tells the caller to go on with the others
    /// (nothing is retried until the object changes).
    pub async fn plan_or_warn<K, P>(
        &self,
        object: &K,
        reason: &str,
        plan: Result<P, String>,
    ) -> Option<P>
    where
        K: Resource + Metadata<Ty = ObjectMeta>,
    {
        match plan {
            Ok(plan) => Some(plan),
            Err(message) => {
                self.warning(object, reason, &message).await;
                None
            }
        }
    }
}
