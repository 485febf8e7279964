//! List: every object of a resource (in a namespace) matching the selectors.
//!
//! Kubernetes' list has three flavours, by `resourceVersion`:
//! - unset: a *consistent* read, which must show every write made before it.
//!   As the Kubernetes API server since 1.31 ("consistent list from cache"),
//!   skiff reads the store's current revision with a cheap linearizable read,
//!   waits for the resource's watch cache to be current to at least that
//!   revision, and answers from the cache. If the cache does not get there in
//!   time ([`RegistryConfig::consistent_list_wait`]), or the store cannot
//!   report progress, the list is read from the store.
//! - `"0"`: any state: the watch cache as it is.
//! - a number: the state at exactly that revision, read from the store.
//!
//! A list with `limit` or `continue` is paged, and always read from the store
//! at one revision (the first page's), as Kubernetes does without the cache.
//!
//! A list served from the cache is written by joining the items' shared JSON
//! encodings ([`EncodedObject::json`]); nothing is parsed or encoded per item.
//!
//! # Caveats
//! Paged lists are not served from the cache (Kubernetes serves some of them
//! from it since 1.33).
//!
//! [`RegistryConfig::consistent_list_wait`]: super::RegistryConfig::consistent_list_wait

use base64::Engine;
use serde_json::{json, Value};
use skiff_api::fields::FieldSelector;
use skiff_api::labels::LabelSelector;
use skiff_api::resources::Resource;
use skiff_api::status::ApiError;
use skiff_proto::etcdserverpb::RangeRequest;

use super::{storage_error, ListOptions, Registry};
use crate::object::{from_stored, parse_resource_version, EncodedObject};
use crate::storage::{prefix_end, StorageError};
use crate::watch_cache::{Filter, WatchCache};

/// A list, as read: a JSON value from the store, or the cache's encoded items.
pub(crate) enum ListBody {
    /// Read from the store (or built for a page).
    Value(Value),
    /// Served from the watch cache.
    Cached {
        resource: &'static Resource,
        items: Vec<EncodedObject>,
        revision: i64,
    },
}

impl ListBody {
    /// The list as a JSON value.
    pub(crate) fn into_value(self) -> Value {
        match self {
            ListBody::Value(value) => value,
            ListBody::Cached {
                resource,
                items,
                revision,
            } => {
                let items = items.into_iter().map(EncodedObject::into_value).collect();
                list_object(resource, items, revision, None)
            }
        }
    }

    /// The list as JSON bytes. A cached list is the items' own encodings
    /// joined into the list's envelope.
    pub(crate) fn into_json(self) -> Vec<u8> {
        let (resource, items, revision) = match self {
            ListBody::Value(value) => {
                return serde_json::to_vec(&value).expect("a Value always encodes")
            }
            ListBody::Cached {
                resource,
                items,
                revision,
            } => (resource, items, revision),
        };
        let kind = Value::from(resource.list_kind());
        let api_version = Value::from(resource.api_version());
        let head = format!(
            r#"{{"kind":{kind},"apiVersion":{api_version},"metadata":{{"resourceVersion":"{revision}"}},"items":["#
        );
        let size = items.iter().map(|i| i.json().len() + 1).sum::<usize>();
        let mut out = Vec::with_capacity(head.len() + size + 2);
        out.extend_from_slice(head.as_bytes());
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item.json());
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// Why a page could not be read.
enum ListError {
    /// The revision asked for is compacted (to this revision, when known).
    Compacted(i64),
    Api(ApiError),
}

impl Registry {
    /// Lists objects: one page of at most `limit` matching items, all at one
    /// revision; `metadata.continue` fetches the next page at that same revision.
    pub async fn list(
        &self,
        resource: &'static Resource,
        namespace: &str,
        options: &ListOptions,
    ) -> Result<Value, ApiError> {
        Ok(self
            .list_body(resource, namespace, options)
            .await?
            .into_value())
    }

    /// [`Registry::list`], encoded as JSON: what a client is sent. A list
    /// served from the watch cache is not decoded and encoded again.
    pub async fn list_json(
        &self,
        resource: &'static Resource,
        namespace: &str,
        options: &ListOptions,
    ) -> Result<Vec<u8>, ApiError> {
        Ok(self
            .list_body(resource, namespace, options)
            .await?
            .into_json())
    }

    async fn list_body(
        &self,
        resource: &'static Resource,
        namespace: &str,
        options: &ListOptions,
    ) -> Result<ListBody, ApiError> {
        let labels =
            LabelSelector::parse(&options.label_selector).map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(resource.kind, &options.field_selector)
            .map_err(ApiError::bad_request)?;
        let filter = Filter::new(resource.namespace_prefix(namespace), labels, fields);
        // The cache starts before the store is read, so a watch from this
        // list's revision never lands before the cache's first revision.
        let cache = self.cache(resource).await?;
        let rv = parse_resource_version(&options.resource_version)?;
        let whole = options.continue_token.is_empty() && options.limit <= 0;
        if whole && rv == Some(0) {
            let (objects, revision) = cache.snapshot(&filter.prefix);
            return Ok(cached_list(resource, &filter, objects, revision));
        }
        if whole && rv.is_none() {
            if let Some(list) = self
                .consistent_from_cache(resource, &cache, &filter)
                .await?
            {
                return Ok(list);
            }
        }
        let continued = !options.continue_token.is_empty();
        let (start, revision) = if continued {
            decode_continue(&options.continue_token, &filter.prefix)?
        } else {
            (filter.prefix.clone(), rv.filter(|&r| r > 0).unwrap_or(0))
        };
        self.list_pages(resource, &filter, start, revision, options.limit)
            .await
            .map(ListBody::Value)
            .map_err(|err| match err {
                ListError::Compacted(_) if continued => ApiError::new(
                    skiff_api::status::Reason::Expired,
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ),
                ListError::Compacted(compacted) => ApiError::expired(revision, compacted),
                ListError::Api(err) => err,
            })
    }

    /// A consistent list from the watch cache, or `None` when the cache does
    /// not catch up with the store's current revision in time.
    async fn consistent_from_cache(
        &self,
        resource: &'static Resource,
        cache: &WatchCache,
        filter: &Filter,
    ) -> Result<Option<ListBody>, ApiError> {
        let revision = self.store_revision(resource).await?;
        if !cache
            .wait_for_revision(revision, self.config.consistent_list_wait)
            .await
        {
            tracing::debug!(
                resource = resource.resource,
                revision,
                "watch cache is not current; listing from the store"
            );
            return Ok(None);
        }
        let (objects, current) = cache.current(&filter.prefix);
        Ok(Some(cached_list(resource, filter, objects, current)))
    }

    /// The store's current revision, by a linearizable read of one key (the
    /// resource's prefix itself, which holds no object): only the response
    /// header is used.
    async fn store_revision(&self, resource: &Resource) -> Result<i64, ApiError> {
        let resp = self
            .storage
            .range(RangeRequest {
                key: resource.prefix().into_bytes(),
                keys_only: true,
                ..Default::default()
            })
            .await
            .map_err(storage_error)?;
        resp.header
            .map(|h| h.revision)
            .ok_or_else(|| ApiError::internal("the store's answer has no header"))
    }

    async fn list_pages(
        &self,
        resource: &'static Resource,
        filter: &Filter,
        mut start: String,
        mut revision: i64,
        limit: i64,
    ) -> Result<Value, ListError> {
        let end = prefix_end(filter.prefix.as_bytes());
        let mut items = Vec::new();
        let mut last_key: Option<String> = None;
        loop {
            let resp = self
                .storage
                .range(RangeRequest {
                    key: start.as_bytes().to_vec(),
                    range_end: end.clone(),
                    revision,
                    limit: if limit > 0 {
                        limit - items.len() as i64
                    } else {
                        0
                    },
                    ..Default::default()
                })
                .await
                .map_err(|err| match err {
                    StorageError::Compacted { compact_revision } => {
                        ListError::Compacted(compact_revision)
                    }
                    StorageError::FutureRevision => ListError::Api(ApiError::new(
                        skiff_api::status::Reason::Timeout,
                        format!(
                            "Too large resource version: {revision}, current: {}",
                            self.cache_revision_hint(resource)
                        ),
                    )),
                    other => ListError::Api(storage_error(other)),
                })?;
            if revision == 0 {
                revision = resp.header.as_ref().map_or(0, |h| h.revision);
            }
            let more = resp.more;
            for kv in &resp.kvs {
                let object = from_stored(&kv.value, kv.mod_revision).map_err(ListError::Api)?;
                last_key = Some(String::from_utf8_lossy(&kv.key).into_owned());
                if filter.matches(&object) {
                    items.push(object);
                }
            }
            let full = limit > 0 && items.len() as i64 >= limit;
            match (&last_key, more) {
                (Some(last), true) if full => {
                    let token = encode_continue(revision, last, &filter.prefix);
                    return Ok(list_object(resource, items, revision, Some(token)));
                }
                (Some(last), true) => start = format!("{last}\0"),
                _ => return Ok(list_object(resource, items, revision, None)),
            }
        }
    }
}

/// The cached `objects` that `filter` selects, as a list at `revision`.
fn cached_list(
    resource: &'static Resource,
    filter: &Filter,
    objects: Vec<EncodedObject>,
    revision: i64,
) -> ListBody {
    let items = objects.into_iter().filter(|o| filter.matches(o)).collect();
    ListBody::Cached {
        resource,
        items,
        revision,
    }
}

fn list_object(
    resource: &Resource,
    items: Vec<Value>,
    revision: i64,
    continue_token: Option<String>,
) -> Value {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = Value::String(token);
    }
    json!({
        "kind": resource.list_kind(),
        "apiVersion": resource.api_version(),
        "metadata": metadata,
        "items": items,
    })
}

/// A continue token as Kubernetes makes it: base64 of
/// `{"v":"meta.k8s.io/v1","rv":<revision>,"start":"<key after the prefix>\u0000"}`.
fn encode_continue(revision: i64, last_key: &str, prefix: &str) -> String {
    let start = format!("{}\0", last_key.strip_prefix(prefix).unwrap_or(last_key));
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(String, i64), ApiError> {
    let invalid = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if value["v"] != "meta.k8s.io/v1" {
        return Err(invalid());
    }
    let revision = value["rv"]
        .as_i64()
        .filter(|&r| r > 0)
        .ok_or_else(invalid)?;
    let start = value["start"].as_str().ok_or_else(invalid)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(invalid());
    }
    Ok((format!("{prefix}{start}"), revision))
}
