//! The verbs once more, with objects as the bytes the wire carries: what the
//! typed verbs of [`Api`] and the JSON ones of `raw` are built on, and what a
//! caller uses who passes objects through without reading them — a load
//! generator that must not spend its CPU parsing answers, or a proxy.
//!
//! Each verb sends one request and answers the server's bytes unparsed;
//! errors are decoded as everywhere else ([`Error`] with the Kubernetes
//! Status).
//!
//! # Caveats
//! Nothing is checked: what is sent is the caller's JSON as it is, and what
//! comes back is whatever the server answered.

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use kube_core::params::{DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchParams};
use serde::Serialize;
use skiff_proto::api::{CreateRequest, DeleteRequest, GetRequest, PatchRequest};

use super::Api;
use crate::error::Error;
use crate::params;

/// The two verbs that send a whole object.
#[derive(Clone, Copy, Debug)]
pub(super) enum Write {
    /// POST: a new object, or a subresource such as a pod's binding.
    Create,
    /// PUT: the object (or its status) replaced.
    Update,
}

/// One watch event as the wire carries it: its type (`ADDED`, `MODIFIED`,
/// `DELETED`, `BOOKMARK` or `ERROR`) and the object's (or Status's) JSON,
/// shared with the buffer it arrived in rather than copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// The event's type, as Kubernetes spells it.
    pub event_type: String,
    /// The object's JSON, unparsed.
    pub object: Bytes,
}

impl<K> Api<K> {
    /// The object named `name`, as JSON bytes.
    pub async fn get_bytes(&self, name: &str) -> Result<Vec<u8>, Error> {
        self.get_at(name, "").await
    }

    /// One page of the objects matching `params`, as the list's JSON bytes.
    pub async fn list_bytes(&self, params: &ListParams) -> Result<Vec<u8>, Error> {
        let request = params::list_request(self.reference("", ""), params);
        self.client.list(request).await
    }

    /// Creates the object whose JSON is `object`; answers the stored object.
    pub async fn create_bytes(
        &self,
        params: &PostParams,
        object: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        self.write_at(Write::Create, ("", ""), params, object).await
    }

    /// Replaces the object named `name` with the JSON `object`.
    pub async fn replace_bytes(
        &self,
        name: &str,
        params: &PostParams,
        object: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        self.write_at(Write::Update, (name, ""), params, object)
            .await
    }

    /// Patches the object named `name`; answers the patched object.
    pub async fn patch_bytes<P: Serialize>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Vec<u8>, Error> {
        self.patch_at(name, "", params, patch).await
    }

    /// Deletes the object named `name`: answers its state when it is being
    /// deleted, or the server's Success Status when it is gone.
    pub async fn delete_bytes(&self, name: &str, params: &DeleteParams) -> Result<Vec<u8>, Error> {
        self.client
            .delete(DeleteRequest {
                r#ref: Some(self.reference(name, "")),
                options: params::delete_options(params),
                dry_run: params.dry_run,
            })
            .await
    }

    /// Watches the objects matching `params` from `resource_version` (see
    /// [`Api::watch`]), each event's object as bytes.
    pub async fn watch_bytes(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<RawEvent, Error>>, Error> {
        let request = params::watch_request(self.reference("", ""), params, resource_version);
        let events = self.client.watch(request).await?;
        Ok(events
            .map(|event| {
                event.map(|e| RawEvent {
                    event_type: e.r#type,
                    object: e.object,
                })
            })
            .boxed())
    }

    pub(super) async fn get_at(&self, name: &str, subresource: &str) -> Result<Vec<u8>, Error> {
        self.client
            .get(GetRequest {
                r#ref: Some(self.reference(name, subresource)),
                ..GetRequest::default()
            })
            .await
    }

    /// Writes `object` to the object named `name` (or its `subresource`):
    /// a create (POST) or an update (PUT), which carry the same fields.
    pub(super) async fn write_at(
        &self,
        verb: Write,
        at: (&str, &str),
        params: &PostParams,
        object: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let request = CreateRequest {
            r#ref: Some(self.reference(at.0, at.1)),
            object,
            field_validation: self.post_validation(),
            dry_run: params.dry_run,
            field_manager: params.field_manager.clone().unwrap_or_default(),
        };
        match verb {
            Write::Create => self.client.create(request).await,
            Write::Update => self.client.update(request.into()).await,
        }
    }

    pub(super) async fn patch_at<P: Serialize>(
        &self,
        name: &str,
        subresource: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Vec<u8>, Error> {
        let (kind, body) = params::patch_body(patch)?;
        let field_validation = match params.field_validation {
            Some(_) => params::patch_validation(params),
            None => self.post_validation(),
        };
        self.client
            .patch(PatchRequest {
                r#ref: Some(self.reference(name, subresource)),
                r#type: kind as i32,
                patch: body,
                field_validation,
                dry_run: params.dry_run,
                field_manager: params.field_manager.clone().unwrap_or_default(),
                force: params.force,
            })
            .await
    }
}
