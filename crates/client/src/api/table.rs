//! The verbs for printing: objects answered as a `meta.k8s.io/v1` Table,
//! whose columns and cells the server renders from one definition per kind
//! (`skiff_api::printers`), so every client prints the same table — as
//! kubectl asks for `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! # Caveats
//! The Table's JSON is handed back as the server sent it, not typed.

use futures::stream::BoxStream;
use futures::StreamExt;
use kube_core::params::{ListParams, WatchParams};
use kube_core::WatchEvent;
use serde_json::Value;
use skiff_api::printers::IncludeObject;
use skiff_proto::api::GetRequest;

use super::{decode_event, Api};
use crate::error::Error;
use crate::params;

impl<K> Api<K> {
    /// The object named `name` as a Table of one row, each row carrying
    /// the object as `include` says.
    pub async fn get_table(&self, name: &str, include: IncludeObject) -> Result<Value, Error> {
        let request = GetRequest {
            r#ref: Some(self.reference(name, "")),
            resource_version: String::new(),
            as_table: true,
            include_object: include.as_str().into(),
        };
        self.parse_table(&self.client.get(request).await?)
    }

    /// The objects matching `params` as a Table, with the list's
    /// resourceVersion and continue token in its metadata.
    pub async fn list_table(
        &self,
        params: &ListParams,
        include: IncludeObject,
    ) -> Result<Value, Error> {
        let mut request = params::list_request(self.reference("", ""), params);
        request.as_table = true;
        request.include_object = include.as_str().into();
        self.parse_table(&self.client.list(request).await?)
    }

    /// [`Api::watch_raw`], each object event's object a Table of one row.
    pub async fn watch_table(
        &self,
        params: &WatchParams,
        resource_version: &str,
        include: IncludeObject,
    ) -> Result<BoxStream<'static, Result<WatchEvent<Value>, Error>>, Error> {
        let mut request = params::watch_request(self.reference("", ""), params, resource_version);
        request.as_table = true;
        request.include_object = include.as_str().into();
        let events = self.client.watch(request).await?;
        Ok(events
            .map(|event| event.and_then(|e| decode_event("Table", &e.r#type, &e.object)))
            .boxed())
    }

    fn parse_table(&self, bytes: &[u8]) -> Result<Value, Error> {
        let kind = &self.resource.kind;
        serde_json::from_slice(bytes)
            .map_err(|e| Error::json(format!("the server's {kind} table is not JSON"), e))
    }
}
