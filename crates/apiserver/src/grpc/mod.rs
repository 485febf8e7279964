//! The `skiff.api.v1.Api` gRPC service over the [`Registry`].
//!
//! Each RPC resolves its `ResourceRef` to a served resource, calls the
//! registry and encodes the answer as Kubernetes JSON. Errors become gRPC
//! statuses in one place (`skiff_api::status::grpc::to_status`): the code follows the Kubernetes
//! reason (NotFound → NOT_FOUND, Conflict → ABORTED, Expired → OUT_OF_RANGE, …)
//! and the status `details` carry the Kubernetes `Status` object as JSON, so a
//! client recovers the exact reason and causes.
//!
//! With `as_table`, Get, List and Watch answer a meta.k8s.io/v1 Table built
//! by `skiff_api::printers` instead of the objects, as kube-apiserver answers
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! `Logs` and `Exec` (pods/log and pods/exec) are proxied to the pod's
//! kubelet by `node_proxy`.
//!
//! # Caveats
//! No authentication or authorization; `Get` of `pods/log` answers
//! MethodNotAllowed (logs come through the `Logs` RPC).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use skiff_api::printers::{self, IncludeObject};

use futures::stream::BoxStream;
use futures::StreamExt;
use skiff_api::resources::{self, Resource, VERBS};
use skiff_api::status::grpc::to_status;
use skiff_api::status::{ApiError, Reason};
use skiff_proto::api::api_server::{Api, ApiServer};
use skiff_proto::api::{
    ApiResource, CreateRequest, DeleteRequest, DiscoveryRequest, DiscoveryResponse, ExecRequest,
    ExecResponse, GetRequest, ListRequest, ListResponse, LogChunk, LogRequest, ObjectResponse,
    PatchRequest, ResourceRef, UpdateRequest, WatchEvent, WatchRequest,
};
use tonic::{Request, Response, Status, Streaming};

use crate::node_proxy::{self, PodRef};
use crate::registry::write::PatchType;
use crate::registry::{DeleteOptions, ListOptions, Registry, Reply, WatchOptions, WriteOptions};
use crate::watch_rpc::{ApiWithWatch, OpenWatch, OpenWatches};
use crate::FieldValidation;

/// How long a watch stays open when the client names no timeout (Kubernetes'
/// `--min-request-timeout`).
pub(crate) const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The largest gRPC message accepted: an object of the largest size plus framing.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The gRPC service; wrap it with [`routes`] to serve it.
#[derive(Clone)]
pub(crate) struct ApiService {
    registry: Arc<Registry>,
}

impl ApiService {
    /// A service answering from `registry`.
    pub(crate) fn new(registry: Arc<Registry>) -> ApiService {
        ApiService { registry }
    }
}

/// The API service and gRPC server reflection (so `grpcurl` can list and call
/// it), ready for a tonic server.
pub fn routes(registry: Arc<Registry>) -> tonic::service::Routes {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(skiff_proto::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the compiled-in descriptor set is valid");
    let api = ApiServer::new(ApiService::new(registry.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(usize::MAX);
    tonic::service::Routes::new(ApiWithWatch::new(
        api,
        ApiService::new(registry),
        MAX_MESSAGE_BYTES,
    ))
    .add_service(reflection)
}

impl OpenWatches for ApiService {
    async fn open_watch(&self, request: WatchRequest) -> Result<OpenWatch, Status> {
        open_watch(&self.registry, request).await
    }
}

/// Opens the watch `req` asks for.
async fn open_watch(registry: &Registry, req: WatchRequest) -> Result<OpenWatch, Status> {
    let (resource, r) = resolve(&req.r#ref)?;
    let options = WatchOptions {
        resource_version: req.resource_version,
        label_selector: req.label_selector,
        field_selector: req.field_selector,
        allow_watch_bookmarks: req.allow_watch_bookmarks,
    };
    let stream = registry
        .watch(resource, &r.namespace, &options)
        .await
        .map_err(|e| to_status(&e))?;
    let timeout = match req.timeout_seconds {
        s if s > 0 => Duration::from_secs(s as u64),
        _ => DEFAULT_WATCH_TIMEOUT,
    };
    let as_table = req.as_table.then(|| (registry.clock(), req.include_object));
    // Checked before the stream starts, so a bad value fails the call.
    if let Some((_, include)) = &as_table {
        include_object(include).map_err(|e| to_status(&e))?;
    }
    let events = futures::stream::unfold(stream, move |mut stream| {
        let as_table = as_table.clone();
        async move {
            let event = stream.next().await?;
            let kind = event.kind.as_str();
            // The cache's encoding, shared with every other watcher.
            let mut object = event.object.json().clone();
            if let (Some((clock, include)), "ADDED" | "MODIFIED" | "DELETED") = (&as_table, kind) {
                object = event_table(
                    resource,
                    &object,
                    include,
                    crate::clock::unix_seconds(&**clock),
                );
            }
            let message = WatchEvent {
                r#type: kind.to_string(),
                object,
            };
            Some((message, stream))
        }
    });
    Ok(OpenWatch {
        events: events.boxed(),
        timeout,
    })
}

/// A gRPC channel to an API service running in this process over an
/// in-memory pipe: real gRPC clients (`ApiClient`) with no socket, as a test
/// or an embedded control plane wants. The service runs until the channel and
/// its clones are dropped.
pub async fn in_process_channel(
    registry: Arc<Registry>,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let incoming = tokio_stream::once(Ok::<_, std::io::Error>(server_io));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(routes(registry))
            .serve_with_incoming(incoming),
    );
    // The endpoint's address is never dialled: the connector hands over the pipe.
    let mut client_io = Some(client_io);
    tonic::transport::Endpoint::from_static("http://in-process.invalid")
        .connect_with_connector(tower::service_fn(move |_| {
            let io = client_io.take();
            async move {
                io.map(hyper_util::rt::TokioIo::new).ok_or_else(|| {
                    std::io::Error::other("the in-process API connection cannot be reopened")
                })
            }
        }))
        .await
}

/// What the `Discovery` call answers: every served resource with its verbs
/// and subresources. Public so that clients' tests can build a discovery
/// answer without a server.
pub fn discovery_resources() -> Vec<ApiResource> {
    resources::RESOURCES
        .iter()
        .map(|r| ApiResource {
            group: r.group.into(),
            version: r.version.into(),
            resource: r.resource.into(),
            kind: r.kind.into(),
            namespaced: r.namespaced,
            short_names: r.short_names.iter().map(|s| s.to_string()).collect(),
            verbs: VERBS.iter().map(|s| s.to_string()).collect(),
            subresources: r.subresources.iter().map(|s| s.to_string()).collect(),
        })
        .collect()
}

fn resolve(reference: &Option<ResourceRef>) -> Result<(&'static Resource, ResourceRef), Status> {
    let reference = reference.clone().unwrap_or_default();
    let found = resources::by_gvr(&reference.group, &reference.version, &reference.resource)
        .or_else(|| {
            // A reference without a version may use any name a CLI user types.
            reference
                .version
                .is_empty()
                .then(|| resources::lookup(&reference.resource))
                .flatten()
        });
    match found {
        Some(resource) => Ok((resource, reference)),
        None => Err(to_status(&ApiError::new(
            Reason::NotFound,
            format!(
                "the server could not find the requested resource ({}/{}/{})",
                reference.group, reference.version, reference.resource
            ),
        ))),
    }
}

/// Seconds since the Unix epoch on `clock`, for a Table's ages.
/// `includeObject` as the request spells it.
fn include_object(text: &str) -> Result<IncludeObject, ApiError> {
    IncludeObject::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "includeObject: Unsupported value: \"{text}\": supported values: \"None\", \"Metadata\", \"Object\""
        ))
    })
}

/// `objects` of `resource` as a meta.k8s.io/v1 Table with `metadata`.
fn table(
    resource: &Resource,
    objects: &[Value],
    include: &str,
    metadata: Value,
    now: i64,
) -> Result<Value, ApiError> {
    let include = include_object(include)?;
    let mut table = printers::table(resource.kind, objects, include, now);
    table["metadata"] = metadata;
    Ok(table)
}

/// A list's JSON as a Table of its items, keeping its resourceVersion and
/// continue token.
fn list_table(
    resource: &Resource,
    list: &[u8],
    include: &str,
    now: i64,
) -> Result<Vec<u8>, ApiError> {
    let list: Value = serde_json::from_slice(list)
        .map_err(|e| ApiError::internal(format!("a stored list does not decode: {e}")))?;
    let items = list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let table = table(resource, items, include, list["metadata"].clone(), now)?;
    Ok(serde_json::to_vec(&table).expect("a Value always encodes"))
}

/// One watch event's object as a Table of one row; the object as it was if
/// it does not decode (the client then sees what the store holds).
fn event_table(resource: &Resource, object: &Bytes, include: &str, now: i64) -> Bytes {
    let Ok(decoded) = serde_json::from_slice::<Value>(object) else {
        return object.clone();
    };
    match table(resource, &[decoded], include, json!({}), now) {
        Ok(table) => Bytes::from(serde_json::to_vec(&table).expect("a Value always encodes")),
        Err(_) => object.clone(),
    }
}

/// A write's options as the request carries them.
fn write_options(
    field_validation_value: i32,
    dry_run: bool,
    field_manager: String,
) -> WriteOptions {
    WriteOptions {
        field_validation: field_validation(field_validation_value),
        dry_run,
        field_manager,
        force: false,
    }
}

fn field_validation(value: i32) -> FieldValidation {
    match skiff_proto::api::FieldValidation::try_from(value) {
        Ok(skiff_proto::api::FieldValidation::Ignore) => FieldValidation::Ignore,
        Ok(skiff_proto::api::FieldValidation::Strict) => FieldValidation::Strict,
        _ => FieldValidation::Warn,
    }
}

fn object_response(result: Result<Reply, ApiError>) -> Result<Response<ObjectResponse>, Status> {
    let reply = result.map_err(|e| to_status(&e))?;
    Ok(Response::new(ObjectResponse {
        object: serde_json::to_vec(&reply.object).expect("a Value always encodes"),
        warnings: reply.warnings,
    }))
}

#[tonic::async_trait]
impl Api for ApiService {
    async fn create(
        &self,
        request: Request<CreateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let req = request.into_inner();
        let (resource, r) = resolve(&req.r#ref)?;
        let options = write_options(req.field_validation, req.dry_run, req.field_manager);
        let result = match r.subresource.as_str() {
            "" => {
                self.registry
                    .create(resource, &r.namespace, &req.object, &options)
                    .await
            }
            subresource => {
                self.registry
                    .create_subresource(
                        resource,
                        &r.namespace,
                        &r.name,
                        subresource,
                        &req.object,
                        &options,
                    )
                    .await
            }
        };
        object_response(result)
    }

    async fn get(&self, request: Request<GetRequest>) -> Result<Response<ObjectResponse>, Status> {
        let req = request.into_inner();
        let (resource, r) = resolve(&req.r#ref)?;
        let now = self.registry.unix_now();
        let result = match r.subresource.as_str() {
            "" | "status" => self
                .registry
                .get(resource, &r.namespace, &r.name, &req.resource_version)
                .await
                .and_then(|object| match req.as_table {
                    false => Ok(object),
                    true => table(resource, &[object], &req.include_object, json!({}), now),
                })
                .map(|object| Reply {
                    object,
                    warnings: Vec::new(),
                }),
            other => Err(ApiError::method_not_allowed(format!(
                "get is not served for {}/{other}: logs come through the Logs RPC",
                resource.resource
            ))),
        };
        object_response(result)
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let req = request.into_inner();
        let (resource, r) = resolve(&req.r#ref)?;
        let options = ListOptions {
            label_selector: req.label_selector,
            field_selector: req.field_selector,
            limit: req.limit,
            continue_token: req.r#continue,
            resource_version: req.resource_version,
        };
        let mut list = self
            .registry
            .list_json(resource, &r.namespace, &options)
            .await
            .map_err(|e| to_status(&e))?;
        if req.as_table {
            let now = self.registry.unix_now();
            list =
                list_table(resource, &list, &req.include_object, now).map_err(|e| to_status(&e))?;
        }
        Ok(Response::new(ListResponse {
            list,
            warnings: Vec::new(),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let req = request.into_inner();
        let (resource, r) = resolve(&req.r#ref)?;
        let options = write_options(req.field_validation, req.dry_run, req.field_manager);
        object_response(
            self.registry
                .update(
                    resource,
                    &r.namespace,
                    &r.name,
                    &r.subresource,
                    &req.object,
                    &options,
                )
                .await,
        )
    }

    async fn patch(
        &self,
        request: Request<PatchRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let req = request.into_inner();
        let (resource, r) = resolve(&req.r#ref)?;
        let mut options = write_options(req.field_validation, req.dry_run, req.field_manager);
        options.force = req.force;
        let patch_type = match skiff_proto::api::PatchType::try_from(req.r#type) {
            Ok(skiff_proto::api::PatchType::Json) => PatchType::Json,
            Ok(skiff_proto::api::PatchType::Merge) => PatchType::Merge,
            Ok(skiff_proto::api::PatchType::StrategicMerge) => PatchType::StrategicMerge,
            Ok(skiff_proto::api::PatchType::Apply) => PatchType::Apply,
            _ => {
                return Err(to_status(&ApiError::bad_request(
                    "a patch type is required: PATCH_TYPE_JSON, PATCH_TYPE_MERGE, PATCH_TYPE_STRATEGIC_MERGE or PATCH_TYPE_APPLY",
                )))
            }
        };
        object_response(
            self.registry
                .patch(
                    resource,
                    &r.namespace,
                    &r.name,
                    &r.subresource,
                    patch_type,
                    &req.patch,
                    &options,
                )
                .await,
        )
    }

    async fn delete(
        &self,
        request: Request<DeleteRequest>,
    ) -> Result<Response<ObjectResponse>, Status> {
        let req = request.into_inner();
        let (resource, r) = resolve(&req.r#ref)?;
        let mut options = DeleteOptions::from_json(&req.options).map_err(|e| to_status(&e))?;
        options.dry_run = req.dry_run;
        object_response(
            self.registry
                .delete(resource, &r.namespace, &r.name, &options)
                .await,
        )
    }

    type WatchStream = BoxStream<'static, Result<WatchEvent, Status>>;

    /// Served by [`crate::watch_rpc`] on a server made by [`routes`]; this
    /// generated path answers the same through any other tonic server.
    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let watch = open_watch(&self.registry, request.into_inner()).await?;
        // One timer for the whole watch, not one per event.
        let deadline = tokio::time::sleep(watch.timeout);
        Ok(Response::new(
            watch.events.map(Ok).take_until(deadline).boxed(),
        ))
    }

    async fn discovery(
        &self,
        _request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        Ok(Response::new(DiscoveryResponse {
            resources: discovery_resources(),
        }))
    }

    type LogsStream = BoxStream<'static, Result<LogChunk, Status>>;

    async fn logs(
        &self,
        request: Request<LogRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        let req = request.into_inner();
        let r = pod_reference(&req.r#ref)?;
        let pod = PodRef {
            namespace: &r.namespace,
            name: &r.name,
        };
        let chunks = node_proxy::logs(&self.registry, &pod, &req)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(chunks))
    }

    type ExecStream = BoxStream<'static, Result<ExecResponse, Status>>;

    async fn exec(
        &self,
        request: Request<Streaming<ExecRequest>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        let mut incoming = request.into_inner();
        let first = incoming.message().await?.ok_or_else(|| {
            to_status(&ApiError::bad_request(
                "an exec stream starts with the pod and the command",
            ))
        })?;
        let r = pod_reference(&first.r#ref)?;
        let pod = PodRef {
            namespace: &r.namespace,
            name: &r.name,
        };
        let answers = node_proxy::exec(&self.registry, &pod, first, incoming)
            .await
            .map_err(|e| to_status(&e))?;
        Ok(Response::new(answers))
    }
}

/// The pod a `Logs` or `Exec` reference names; only pods have logs and exec.
fn pod_reference(reference: &Option<ResourceRef>) -> Result<ResourceRef, Status> {
    let (resource, r) = resolve(reference)?;
    if resource.resource != "pods" || !resource.group.is_empty() {
        return Err(to_status(&ApiError::method_not_allowed(format!(
            "{} have no logs or exec; only pods do",
            resource.resource
        ))));
    }
    Ok(r)
}

#[cfg(test)]
mod tests;
