//! The verbs again, answering the server's JSON as it came: for callers
//! that show objects rather than work with them, such as `skiff get -o
//! yaml`, which must print every field, in the server's order, exactly as
//! stored — a round trip through a typed object (or a
//! [`kube_core::DynamicObject`], whose metadata is k8s-openapi's
//! `ObjectMeta`) would reorder keys, re-format timestamps and drop empty
//! fields.
//!
//! # Caveats
//! The JSON is not checked against the kind: it is whatever the server sent,
//! parsed.

use futures::stream::BoxStream;
use futures::StreamExt;
use kube_core::params::{ListParams, PostParams, WatchParams};
use kube_core::WatchEvent;
use serde_json::Value;

use super::{decode_event, Api};
use crate::error::Error;

impl<K> Api<K> {
    /// [`Api::get`], as the server's JSON.
    pub async fn get_raw(&self, name: &str) -> Result<Value, Error> {
        self.parse(&self.get_bytes(name).await?, "")
    }

    /// [`Api::list`], as the server's JSON: the whole list, its `metadata`
    /// and `items`.
    pub async fn list_raw(&self, params: &ListParams) -> Result<Value, Error> {
        self.parse(&self.list_bytes(params).await?, " list")
    }

    /// [`Api::create`] of JSON, answering the stored object's JSON.
    pub async fn create_raw(&self, params: &PostParams, object: &Value) -> Result<Value, Error> {
        let bytes = self.create_bytes(params, self.serialize(object)?).await?;
        self.parse(&bytes, "")
    }

    /// [`Api::replace`] with JSON, answering the stored object's JSON.
    pub async fn replace_raw(
        &self,
        name: &str,
        params: &PostParams,
        object: &Value,
    ) -> Result<Value, Error> {
        let bytes = self
            .replace_bytes(name, params, self.serialize(object)?)
            .await?;
        self.parse(&bytes, "")
    }

    /// [`Api::watch`], each event's object as the server's JSON.
    pub async fn watch_raw(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<Value>, Error>>, Error> {
        let events = self.watch_bytes(params, resource_version).await?;
        let kind = self.resource.kind.clone();
        Ok(events
            .map(move |event| event.and_then(|e| decode_event(&kind, &e.event_type, &e.object)))
            .boxed())
    }

    fn parse(&self, bytes: &[u8], what: &str) -> Result<Value, Error> {
        let kind = &self.resource.kind;
        serde_json::from_slice(bytes)
            .map_err(|e| Error::json(format!("the server's {kind}{what} is not JSON"), e))
    }

    fn serialize(&self, object: &Value) -> Result<Vec<u8>, Error> {
        let kind = &self.resource.kind;
        serde_json::to_vec(object).map_err(|e| Error::json(format!("{kind} does not encode"), e))
    }
}
