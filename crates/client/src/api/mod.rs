//! [`Api<K>`]: the verbs of one resource, in kube-rs's words.
//!
//! `Api::<Pod>::namespaced(client, "default")` addresses
//! `/api/v1/namespaces/default/pods`; `Api::<Pod>::all(client)` every
//! namespace (lists and watches) and `Api::<Node>::all(client)` a
//! cluster-scoped resource. `K` is anything implementing kube-core's
//! [`Resource`] — every k8s-openapi type does — or a [`kube_core::DynamicObject`] over an
//! [`ApiResource`] found by [`crate::Discovery`], so code written against
//! kube-rs's `Api` ports with little change: the verbs take kube-core's
//! `ListParams`, `PostParams`, `PatchParams`/`Patch`, `DeleteParams` and
//! `WatchParams`, and answer `ObjectList<K>`, `WatchEvent<K>` and, for a
//! delete, `Either<K, Status>`. The `raw` verbs (`get_raw`, `list_raw`,
//! `create_raw`, `replace_raw`, `watch_raw`) answer the server's JSON as it
//! came, for callers that print it; the `bytes` verbs (`get_bytes`,
//! `list_bytes`, `create_bytes`, `replace_bytes`, `patch_bytes`,
//! `delete_bytes`, `watch_bytes`) send and answer JSON bytes unparsed, and
//! are what the others are built on; the `table` verbs (`get_table`,
//! `list_table`, `watch_table`) answer the server's Table for printing.
//!
//! A kind the server does not serve is refused by the server (404 NotFound)
//! on the first call, as with kube-rs.
//!
//! # Caveats
//! No server-side apply or strategic merge patch (see
//! [`crate::params`]); `replace_status` takes the object rather than raw
//! bytes; kube-core's `PostParams` has no `fieldValidation`, so a handle
//! carries it ([`Api::field_validation`]). Warnings the server returns are
//! dropped, not handed back.

use std::fmt::Debug;
use std::marker::PhantomData;

use either::Either;
use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, Namespace, Pod};
use kube_core::params::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, ValidationDirective, WatchParams,
};
use kube_core::{
    ApiResource, DynamicResourceScope, NamespaceResourceScope, ObjectList, Resource, Status,
    WatchEvent,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use skiff_proto::api::ResourceRef;

use crate::error::Error;
use crate::params;
use crate::Client;

mod bytes;
mod raw;
mod table;

pub use bytes::RawEvent;
use bytes::Write;

/// What an [`Api<K>`] can carry: a kube-core [`Resource`] that travels as JSON.
/// Every k8s-openapi resource type and [`kube_core::DynamicObject`] is one.
pub trait Object:
    Resource + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<K> Object for K where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// The verbs of one resource, in one namespace or across all.
pub struct Api<K> {
    pub(crate) client: Client,
    resource: ApiResource,
    namespace: Option<String>,
    validation: Option<ValidationDirective>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            client: self.client.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            validation: self.validation.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("resource", &self.resource)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl<K: Resource> Api<K> {
    /// Every namespace's objects, or a cluster-scoped resource's. Gets and
    /// writes of a namespaced kind need [`Api::namespaced`].
    pub fn all(client: Client) -> Api<K>
    where
        K::DynamicType: Default,
    {
        Api::all_with(client, &K::DynamicType::default())
    }

    /// The objects in `namespace`.
    pub fn namespaced(client: Client, namespace: &str) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::in_namespace(client, Some(namespace), &K::DynamicType::default())
    }

    /// Every namespace's objects of the resource `dyntype` describes (an
    /// [`ApiResource`] for a [`kube_core::DynamicObject`]).
    pub fn all_with(client: Client, dyntype: &K::DynamicType) -> Api<K> {
        Api::in_namespace(client, None, dyntype)
    }

    /// The objects in `namespace` of the resource `dyntype` describes.
    pub fn namespaced_with(client: Client, namespace: &str, dyntype: &K::DynamicType) -> Api<K>
    where
        K: Resource<Scope = DynamicResourceScope>,
    {
        Api::in_namespace(client, Some(namespace), dyntype)
    }

    fn in_namespace(client: Client, namespace: Option<&str>, dyntype: &K::DynamicType) -> Api<K> {
        Api {
            client,
            resource: ApiResource::erase::<K>(dyntype),
            namespace: namespace.filter(|ns| !ns.is_empty()).map(str::to_string),
            validation: None,
            kind: PhantomData,
        }
    }
}

impl<K> Api<K> {
    /// The same handle, asking the server to treat unknown fields in
    /// creates and replaces (and patches that name no directive) as
    /// `directive` says; Kubernetes' default is Warn.
    pub fn field_validation(mut self, directive: ValidationDirective) -> Api<K> {
        self.validation = Some(directive);
        self
    }

    /// The namespace this handle addresses; `None` for all (or a
    /// cluster-scoped resource).
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The resource this handle addresses.
    pub fn resource(&self) -> &ApiResource {
        &self.resource
    }

    pub(crate) fn reference(&self, name: &str, subresource: &str) -> ResourceRef {
        ResourceRef {
            group: self.resource.group.clone(),
            version: self.resource.version.clone(),
            resource: self.resource.plural.clone(),
            namespace: self.namespace.clone().unwrap_or_default(),
            name: name.to_string(),
            subresource: subresource.to_string(),
        }
    }

    fn post_validation(&self) -> i32 {
        params::field_validation(self.validation.as_ref())
    }
}

impl<K: Object> Api<K> {
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, Error> {
        let kind = &self.resource.kind;
        serde_json::from_slice(bytes)
            .map_err(|e| Error::json(format!("the server's {kind} does not decode"), e))
    }

    fn encode(&self, object: &K) -> Result<Vec<u8>, Error> {
        let kind = &self.resource.kind;
        serde_json::to_vec(object).map_err(|e| Error::json(format!("{kind} does not encode"), e))
    }

    /// The object named `name`, as it is now.
    pub async fn get(&self, name: &str) -> Result<K, Error> {
        self.get_subresource(name, "").await
    }

    /// The object named `name`, read through its `status` subresource.
    pub async fn get_status(&self, name: &str) -> Result<K, Error> {
        self.get_subresource(name, "status").await
    }

    async fn get_subresource(&self, name: &str, subresource: &str) -> Result<K, Error> {
        self.decode(&self.get_at(name, subresource).await?)
    }

    /// The object named `name`, or `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>, Error> {
        match self.get(name).await {
            Ok(object) => Ok(Some(object)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// One page of the objects matching `params`: its `metadata` carries the
    /// resourceVersion to watch from and, when more pages follow, the
    /// continue token.
    pub async fn list(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        let bytes = self.list_bytes(params).await?;
        let kind = &self.resource.kind;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::json(format!("the server's {kind} list does not decode"), e))
    }

    /// Every object matching `params`, following continue tokens page by page.
    /// The list's metadata is the first page's: every page is read at its
    /// resourceVersion.
    pub async fn list_all(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        let mut list = self.list(params).await?;
        let mut token = list.metadata.continue_.take();
        while let Some(next) = token.filter(|t| !t.is_empty()) {
            let mut page = self.list(&params.clone().continue_token(&next)).await?;
            list.items.append(&mut page.items);
            token = page.metadata.continue_;
        }
        Ok(list)
    }

    /// Creates `object` and answers it as stored.
    pub async fn create(&self, params: &PostParams, object: &K) -> Result<K, Error> {
        let bytes = self.create_bytes(params, self.encode(object)?).await?;
        self.decode(&bytes)
    }

    /// POSTs `data` to the `subresource` of the object named `name` (such as
    /// a pod's `binding`) and answers what the server answered.
    pub async fn create_subresource<T: DeserializeOwned>(
        &self,
        subresource: &str,
        name: &str,
        params: &PostParams,
        data: Vec<u8>,
    ) -> Result<T, Error> {
        let bytes = self
            .write_at(Write::Create, (name, subresource), params, data)
            .await?;
        self.decode(&bytes)
    }

    /// Replaces the object named `name` with `object` (an update). When
    /// `object` carries a resourceVersion, the write succeeds only if the
    /// stored one still has it; otherwise the error is a Conflict.
    pub async fn replace(&self, name: &str, params: &PostParams, object: &K) -> Result<K, Error> {
        self.update(name, "", params, object).await
    }

    /// Replaces the status of the object named `name`: only `status` is
    /// written (the `status` subresource). Unlike kube-rs, which takes raw
    /// bytes, this takes the object.
    pub async fn replace_status(
        &self,
        name: &str,
        params: &PostParams,
        object: &K,
    ) -> Result<K, Error> {
        self.update(name, "status", params, object).await
    }

    async fn update(
        &self,
        name: &str,
        subresource: &str,
        params: &PostParams,
        object: &K,
    ) -> Result<K, Error> {
        let bytes = self
            .write_at(
                Write::Update,
                (name, subresource),
                params,
                self.encode(object)?,
            )
            .await?;
        self.decode(&bytes)
    }

    /// Patches the object named `name`.
    pub async fn patch<P: Serialize + Debug>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, Error> {
        self.patch_subresource(name, "", params, patch).await
    }

    /// Patches the status of the object named `name`.
    pub async fn patch_status<P: Serialize + Debug>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, Error> {
        self.patch_subresource(name, "status", params, patch).await
    }

    async fn patch_subresource<P: Serialize>(
        &self,
        name: &str,
        subresource: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K, Error> {
        self.decode(&self.patch_at(name, subresource, params, patch).await?)
    }

    /// Deletes the object named `name`: `Left` with its state when it is
    /// being deleted (finalizers or a grace period remain), `Right` with the
    /// server's Success Status when it is gone — as kube-rs answers.
    pub async fn delete(
        &self,
        name: &str,
        params: &DeleteParams,
    ) -> Result<Either<K, Status>, Error> {
        let bytes = self.delete_bytes(name, params).await?;
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::json("the server's answer to a delete does not decode", e))?;
        if answer["kind"] == "Status" {
            let status = serde_json::from_value(answer)
                .map_err(|e| Error::json("the server's Status does not decode", e))?;
            return Ok(Either::Right(status));
        }
        let kind = &self.resource.kind;
        let object = serde_json::from_value(answer)
            .map_err(|e| Error::json(format!("the server's {kind} does not decode"), e))?;
        Ok(Either::Left(object))
    }

    /// Watches the objects matching `params`. With an empty (or "0")
    /// `resource_version` the stream starts with an ADDED event per existing
    /// object; otherwise it carries every change after that resourceVersion.
    /// The stream ends when the server closes the watch (its timeout) or the
    /// connection breaks.
    pub async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<K>, Error>>, Error> {
        let events = self.watch_bytes(params, resource_version).await?;
        let kind = self.resource.kind.clone();
        Ok(events
            .map(move |event| event.and_then(|e| decode_event(&kind, &e.event_type, &e.object)))
            .boxed())
    }
}

impl Api<Pod> {
    /// Binds the pod named `name` to a node: creates its `binding`
    /// subresource, as the scheduler does. The server sets `spec.nodeName`.
    pub async fn bind(
        &self,
        name: &str,
        params: &PostParams,
        binding: &Binding,
    ) -> Result<(), Error> {
        let data = serde_json::to_vec(binding)
            .map_err(|e| Error::json("the Binding does not encode", e))?;
        self.create_subresource::<Value>("binding", name, params, data)
            .await?;
        Ok(())
    }
}

impl Api<Namespace> {
    /// Replaces the `spec.finalizers` of the namespace named `name` through
    /// its `finalize` subresource, as the namespace controller does once the
    /// namespace is empty: a Terminating namespace left with no finalizers
    /// is removed. Refused with a Conflict while the namespace holds objects.
    pub async fn finalize(
        &self,
        name: &str,
        params: &PostParams,
        namespace: &Namespace,
    ) -> Result<Namespace, Error> {
        self.update(name, "finalize", params, namespace).await
    }
}

/// One watch event from the wire, in kube-core's shape.
fn decode_event<K: DeserializeOwned>(
    kind: &str,
    event: &str,
    object: &[u8],
) -> Result<WatchEvent<K>, Error> {
    let decode = || {
        serde_json::from_slice::<K>(object)
            .map_err(|e| Error::json(format!("the object of a {event} {kind} event"), e))
    };
    Ok(match event {
        "ADDED" => WatchEvent::Added(decode()?),
        "MODIFIED" => WatchEvent::Modified(decode()?),
        "DELETED" => WatchEvent::Deleted(decode()?),
        "BOOKMARK" => WatchEvent::Bookmark(
            serde_json::from_slice(object)
                .map_err(|e| Error::json("the object of a BOOKMARK event", e))?,
        ),
        "ERROR" => {
            let status: Status = serde_json::from_slice(object)
                .map_err(|e| Error::json("the Status of an ERROR event", e))?;
            WatchEvent::Error(Box::new(status))
        }
        other => {
            return Err(Error::Rpc(tonic::Status::internal(format!(
                "a watch event of unknown type {other:?}"
            ))))
        }
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_openapi::api::core::v1::{ConfigMap, Node};
    use serde_json::json;
    use skiff_api::status::ApiError;

    use super::*;

    fn client() -> Client {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        Client::new(channel)
    }

    #[tokio::test]
    async fn handles_address_the_kinds_group_version_and_plural() {
        let pods = Api::<Pod>::namespaced(client(), "default").reference("web", "status");
        assert_eq!(
            (
                pods.group.as_str(),
                pods.version.as_str(),
                pods.resource.as_str()
            ),
            ("", "v1", "pods")
        );
        assert_eq!(
            (pods.namespace.as_str(), pods.name.as_str()),
            ("default", "web")
        );
        assert_eq!(pods.subresource, "status");
        let leases = Api::<Lease>::namespaced(client(), "kube-system").reference("", "");
        assert_eq!(leases.group, "coordination.k8s.io");
        let nodes = Api::<Node>::all(client());
        assert_eq!(nodes.namespace(), None);
        assert_eq!(nodes.reference("n1", "").namespace, "");
    }

    #[tokio::test]
    async fn a_dynamic_handle_addresses_its_api_resource() {
        let gvk = kube_core::GroupVersionKind::gvk("apps", "v1", "Deployment");
        let deployments = ApiResource::from_gvk_with_plural(&gvk, "deployments");
        let api = Api::<kube_core::DynamicObject>::namespaced_with(client(), "prod", &deployments);
        let target = api.reference("web", "");
        assert_eq!(
            (target.group.as_str(), target.resource.as_str()),
            ("apps", "deployments")
        );
        assert_eq!(api.resource().kind, "Deployment");
    }

    #[test]
    fn watch_events_decode_by_type() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "4"}});
        let bytes = serde_json::to_vec(&cm).unwrap();
        let decode =
            |event: &str, bytes: &[u8]| decode_event::<ConfigMap>("ConfigMap", event, bytes);
        let Ok(WatchEvent::Added(added)) = decode("ADDED", &bytes) else {
            panic!("not ADDED");
        };
        assert_eq!(added.metadata.name.as_deref(), Some("a"));
        let Ok(WatchEvent::Bookmark(bookmark)) = decode("BOOKMARK", &bytes) else {
            panic!("not BOOKMARK");
        };
        assert_eq!(bookmark.metadata.resource_version, "4");
        let expired = serde_json::to_vec(&ApiError::expired(1, 5).to_json()).unwrap();
        let Ok(WatchEvent::Error(status)) = decode("ERROR", &expired) else {
            panic!("not ERROR");
        };
        assert_eq!(status.code, 410);
        let err = crate::error::from_watch_status(&status);
        assert!(err.is_expired(), "{err}");
        assert!(decode("SOMETHING", &bytes).is_err());
    }
}
