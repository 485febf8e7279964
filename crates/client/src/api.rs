//! [`Api<K>`]: the verbs of one resource, typed by its k8s-openapi kind.
//!
//! `Api::<Pod>::namespaced(client, "default")` addresses
//! `/api/v1/namespaces/default/pods`; `Api::<Pod>::all(client)` every
//! namespace (lists and watches) and `Api::<Node>::all(client)` a
//! cluster-scoped resource. The kind's apiVersion and kind name the served
//! resource through `skiff_api::resources`, so a kind skiff does not serve is
//! an error when the handle is made, not on every call.
//!
//! # Caveats
//! No server-side apply and no strategic merge patch (skiff serves neither);
//! warnings the server returns are logged, not handed back.

use std::marker::PhantomData;

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use skiff_api::resources::{self, Resource};
use skiff_api::status::ApiError;
use skiff_proto::api::{
    CreateRequest, DeleteRequest, GetRequest, ListRequest, PatchRequest, ResourceRef,
    UpdateRequest, WatchRequest,
};

use crate::error::Error;
use crate::params::{DeleteParams, ListParams, Patch, PostParams, WatchParams};
use crate::Client;

/// A Kubernetes object kind this client can handle: any k8s-openapi resource
/// type with standard object metadata.
pub trait Object:
    k8s_openapi::Resource
    + k8s_openapi::Metadata<Ty = ObjectMeta>
    + Clone
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Object for K where
    K: k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = ObjectMeta>
        + Clone
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ObjectList<K> {
    /// The objects.
    pub items: Vec<K>,
    /// The resourceVersion the list was read at: watch from here.
    pub resource_version: String,
    /// Set when more pages follow: pass it as [`ListParams::continue_token`].
    pub continue_token: Option<String>,
}

/// What a delete did.
#[derive(Clone, Debug, PartialEq)]
pub enum DeleteOutcome<K> {
    /// The object is gone.
    Deleted,
    /// The object is being deleted (finalizers or a grace period remain); this
    /// is its state, with `deletionTimestamp` set.
    Deleting(K),
}

/// One event of a watch.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<K> {
    /// An object was created (or, for a watch without a resourceVersion, existed).
    Added(K),
    /// An object changed.
    Modified(K),
    /// An object was deleted; this is its last state.
    Deleted(K),
    /// Nothing changed, but the watch is now at this resourceVersion.
    Bookmark {
        /// The resourceVersion reached.
        resource_version: String,
    },
    /// The watch failed (410 Expired when its start is compacted); nothing follows.
    Error(ApiError),
}

/// The typed verbs of one resource, in one namespace or across all.
pub struct Api<K> {
    client: Client,
    resource: &'static Resource,
    namespace: String,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            client: self.client.clone(),
            resource: self.resource,
            namespace: self.namespace.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("resource", &self.resource.qualified_name())
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl<K: Object> Api<K> {
    /// `K`'s served resource, or [`Error::UnservedKind`].
    pub fn resource() -> Result<&'static Resource, Error> {
        resources::by_kind(K::API_VERSION, K::KIND).ok_or(Error::UnservedKind {
            api_version: K::API_VERSION,
            kind: K::KIND,
        })
    }

    /// The objects in `namespace`.
    pub fn namespaced(client: Client, namespace: &str) -> Result<Api<K>, Error> {
        Ok(Api {
            client,
            resource: Self::resource()?,
            namespace: namespace.to_string(),
            kind: PhantomData,
        })
    }

    /// Every namespace's objects, or a cluster-scoped resource's. Gets and
    /// writes of a namespaced kind need [`Api::namespaced`].
    pub fn all(client: Client) -> Result<Api<K>, Error> {
        Api::namespaced(client, "")
    }

    /// The namespace this handle addresses; empty for all.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn reference(&self, name: &str, subresource: &str) -> Option<ResourceRef> {
        Some(ResourceRef {
            group: self.resource.group.to_string(),
            version: self.resource.version.to_string(),
            resource: self.resource.resource.to_string(),
            namespace: self.namespace.clone(),
            name: name.to_string(),
            subresource: subresource.to_string(),
        })
    }

    fn decode(&self, bytes: &[u8]) -> Result<K, Error> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::json(format!("the server's {} does not decode", K::KIND), e))
    }

    fn encode(object: &K) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(object)
            .map_err(|e| Error::json(format!("{} does not encode", K::KIND), e))
    }

    fn name_of(object: &K) -> Result<&str, Error> {
        object
            .metadata()
            .name
            .as_deref()
            .ok_or(Error::MissingName { kind: K::KIND })
    }

    /// The object named `name`, as it is now.
    pub async fn get(&self, name: &str) -> Result<K, Error> {
        let bytes = self
            .client
            .get(GetRequest {
                r#ref: self.reference(name, ""),
                resource_version: String::new(),
            })
            .await?;
        self.decode(&bytes)
    }

    /// The object named `name`, or `None` when it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>, Error> {
        match self.get(name).await {
            Ok(object) => Ok(Some(object)),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// One page of the objects matching `params`.
    pub async fn list(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        let bytes = self
            .client
            .list(ListRequest {
                r#ref: self.reference("", ""),
                label_selector: params.label_selector.clone(),
                field_selector: params.field_selector.clone(),
                limit: params.limit,
                r#continue: params.continue_token.clone(),
                resource_version: params.resource_version.clone(),
                resource_version_match: String::new(),
            })
            .await?;
        let mut list: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::json(format!("the server's {} list does not decode", K::KIND), e)
        })?;
        let text = |field: &str| {
            list["metadata"][field]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let resource_version = text("resourceVersion").unwrap_or_default();
        let continue_token = text("continue");
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let items = items
            .into_iter()
            .map(|item| {
                serde_json::from_value(item).map_err(|e| {
                    Error::json(format!("an item of the server's {} list", K::KIND), e)
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ObjectList {
            items,
            resource_version,
            continue_token,
        })
    }

    /// Every object matching `params`, following continue tokens page by page.
    /// The resourceVersion is the first page's: every page is read at it.
    pub async fn list_all(&self, params: &ListParams) -> Result<ObjectList<K>, Error> {
        let mut page = self.list(params).await?;
        let mut items = std::mem::take(&mut page.items);
        let resource_version = page.resource_version.clone();
        while let Some(token) = page.continue_token.take() {
            page = self.list(&params.clone().continue_token(&token)).await?;
            items.append(&mut page.items);
        }
        Ok(ObjectList {
            items,
            resource_version,
            continue_token: None,
        })
    }

    /// Creates `object` and answers it as stored.
    pub async fn create(&self, params: &PostParams, object: &K) -> Result<K, Error> {
        let bytes = self
            .client
            .create(CreateRequest {
                r#ref: self.reference("", ""),
                object: Self::encode(object)?,
                field_validation: params.field_validation.to_proto(),
                dry_run: params.dry_run,
            })
            .await?;
        self.decode(&bytes)
    }

    /// Replaces the object named as `object` is (an update). When `object`
    /// carries a resourceVersion, the write succeeds only if the stored one
    /// still has it; otherwise the error is a Conflict.
    pub async fn replace(&self, params: &PostParams, object: &K) -> Result<K, Error> {
        self.update("", params, object).await
    }

    /// Replaces the status of the object named as `object` is: only `status`
    /// is written (the `status` subresource).
    pub async fn replace_status(&self, params: &PostParams, object: &K) -> Result<K, Error> {
        self.update("status", params, object).await
    }

    async fn update(&self, subresource: &str, params: &PostParams, object: &K) -> Result<K, Error> {
        let name = Self::name_of(object)?;
        let bytes = self
            .client
            .update(UpdateRequest {
                r#ref: self.reference(name, subresource),
                object: Self::encode(object)?,
                field_validation: params.field_validation.to_proto(),
                dry_run: params.dry_run,
            })
            .await?;
        self.decode(&bytes)
    }

    /// Patches the object named `name`.
    pub async fn patch(&self, name: &str, params: &PostParams, patch: &Patch) -> Result<K, Error> {
        self.patch_subresource(name, "", params, patch).await
    }

    /// Patches the status of the object named `name`.
    pub async fn patch_status(
        &self,
        name: &str,
        params: &PostParams,
        patch: &Patch,
    ) -> Result<K, Error> {
        self.patch_subresource(name, "status", params, patch).await
    }

    async fn patch_subresource(
        &self,
        name: &str,
        subresource: &str,
        params: &PostParams,
        patch: &Patch,
    ) -> Result<K, Error> {
        use skiff_proto::api::PatchType;
        let (kind, body) = match patch {
            Patch::Merge(body) => (PatchType::Merge, body),
            Patch::Json(body) => (PatchType::Json, body),
        };
        let bytes = self
            .client
            .patch(PatchRequest {
                r#ref: self.reference(name, subresource),
                r#type: kind as i32,
                patch: serde_json::to_vec(body).expect("a Value always encodes"),
                field_validation: params.field_validation.to_proto(),
                dry_run: params.dry_run,
            })
            .await?;
        self.decode(&bytes)
    }

    /// Deletes the object named `name`.
    pub async fn delete(
        &self,
        name: &str,
        params: &DeleteParams,
    ) -> Result<DeleteOutcome<K>, Error> {
        let bytes = self
            .client
            .delete(DeleteRequest {
                r#ref: self.reference(name, ""),
                options: params.to_json(),
                dry_run: params.dry_run,
            })
            .await?;
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::json("the server's answer to a delete does not decode", e))?;
        if answer["kind"] == "Status" {
            return Ok(DeleteOutcome::Deleted);
        }
        let object = serde_json::from_value(answer)
            .map_err(|e| Error::json(format!("the server's {} does not decode", K::KIND), e))?;
        Ok(DeleteOutcome::Deleting(object))
    }

    /// Watches the objects matching `params`. With an empty `resource_version`
    /// the stream starts with an ADDED event per existing object; otherwise
    /// it carries every change after that resourceVersion. The stream ends
    /// when the server closes the watch (its timeout) or the connection breaks.
    pub async fn watch(
        &self,
        params: &WatchParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<K>, Error>>, Error> {
        let events = self
            .client
            .watch(WatchRequest {
                r#ref: self.reference("", ""),
                resource_version: resource_version.to_string(),
                label_selector: params.label_selector.clone(),
                field_selector: params.field_selector.clone(),
                allow_watch_bookmarks: params.bookmarks,
                timeout_seconds: params.timeout_seconds,
            })
            .await?;
        Ok(events
            .map(|event| event.and_then(|e| decode_event(&e.r#type, &e.object)))
            .boxed())
    }
}

/// One watch event from the wire.
fn decode_event<K: Object>(kind: &str, object: &[u8]) -> Result<WatchEvent<K>, Error> {
    let decode = |what: &str| {
        serde_json::from_slice::<K>(object)
            .map_err(|e| Error::json(format!("the object of a {what} {} event", K::KIND), e))
    };
    Ok(match kind {
        "ADDED" => WatchEvent::Added(decode(kind)?),
        "MODIFIED" => WatchEvent::Modified(decode(kind)?),
        "DELETED" => WatchEvent::Deleted(decode(kind)?),
        "BOOKMARK" => {
            let value: Value = serde_json::from_slice(object)
                .map_err(|e| Error::json("the object of a BOOKMARK event", e))?;
            WatchEvent::Bookmark {
                resource_version: value["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }
        }
        "ERROR" => {
            let value: Value = serde_json::from_slice(object)
                .map_err(|e| Error::json("the Status of an ERROR event", e))?;
            WatchEvent::Error(ApiError::from_json(&value).unwrap_or_else(ApiError::internal))
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
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use serde_json::json;

    use super::*;

    #[test]
    fn kinds_map_to_their_served_resources() {
        assert_eq!(Api::<Pod>::resource().unwrap().resource, "pods");
        assert_eq!(
            Api::<k8s_openapi::api::coordination::v1::Lease>::resource()
                .unwrap()
                .group,
            "coordination.k8s.io"
        );
        let err = Api::<k8s_openapi::api::rbac::v1::Role>::resource().unwrap_err();
        assert_eq!(
            err.to_string(),
            "rbac.authorization.k8s.io/v1 Role is not a resource the API server serves"
        );
    }

    #[test]
    fn watch_events_decode_by_type() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "4"}});
        let bytes = serde_json::to_vec(&cm).unwrap();
        let WatchEvent::Added(added) = decode_event::<ConfigMap>("ADDED", &bytes).unwrap() else {
            panic!("not ADDED");
        };
        assert_eq!(added.metadata.name.as_deref(), Some("a"));
        let bookmark = decode_event::<ConfigMap>("BOOKMARK", &bytes).unwrap();
        assert_eq!(
            bookmark,
            WatchEvent::Bookmark {
                resource_version: "4".into()
            }
        );
        let expired = serde_json::to_vec(&ApiError::expired(1, 5).to_json()).unwrap();
        let WatchEvent::Error(status) = decode_event::<ConfigMap>("ERROR", &expired).unwrap()
        else {
            panic!("not ERROR");
        };
        assert_eq!(status.code, 410);
        assert!(decode_event::<ConfigMap>("SOMETHING", &bytes).is_err());
    }
}
