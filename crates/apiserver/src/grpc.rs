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
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Value};
use skiff_api::clock::Clock;
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
                object = event_table(resource, &object, include, unix_now(&**clock));
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
fn unix_now(clock: &dyn Clock) -> i64 {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

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
        let now = unix_now(&*self.registry.clock());
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
            let now = unix_now(&*self.registry.clock());
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
mod tests {
    use serde_json::{json, Value};
    use skiff_proto::api::api_client::ApiClient;

    use super::*;
    use crate::registry::tests::Fixture;

    /// The Kubernetes Status a refused call carries; every refusal has one.
    fn from_status(status: &Status) -> ApiError {
        skiff_api::status::grpc::from_status(status).expect("a refusal carries a Status")
    }

    async fn serve_fixture() -> (
        Fixture,
        ApiClient<tonic::transport::Channel>,
        CancellationGuard,
    ) {
        let (fixture, client, guard, _) = serve_fixture_at().await;
        (fixture, client, guard)
    }

    async fn serve_fixture_at() -> (
        Fixture,
        ApiClient<tonic::transport::Channel>,
        CancellationGuard,
        std::net::SocketAddr,
    ) {
        let fixture = Fixture::new().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (fixture_registry, shutdown_token) = (fixture.registry.clone(), shutdown.clone());
        tokio::spawn(async move {
            crate::server::serve(
                listener,
                fixture_registry,
                &crate::server::ServeOptions::default(),
                shutdown_token,
            )
            .await
        });
        let client = ApiClient::connect(format!("http://{addr}")).await.unwrap();
        (fixture, client, CancellationGuard(shutdown), addr)
    }

    struct CancellationGuard(tokio_util::sync::CancellationToken);

    impl Drop for CancellationGuard {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }

    fn pods_ref(name: &str) -> Option<ResourceRef> {
        Some(ResourceRef {
            version: "v1".into(),
            resource: "pods".into(),
            namespace: "default".into(),
            name: name.into(),
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn objects_round_trip_and_errors_carry_the_kubernetes_status() {
        let (_fixture, mut client, _guard) = serve_fixture().await;
        let pod = serde_json::to_vec(&crate::registry::tests::pod("web")).unwrap();
        let created = client
            .create(CreateRequest {
                r#ref: pods_ref(""),
                object: pod.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let created: Value = serde_json::from_slice(&created.object).unwrap();
        let got = client
            .get(GetRequest {
                r#ref: pods_ref("web"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            serde_json::from_slice::<Value>(&got.object).unwrap(),
            created
        );

        let err = client
            .create(CreateRequest {
                r#ref: pods_ref(""),
                object: pod,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::AlreadyExists);
        let status = from_status(&err);
        assert_eq!(status.reason, Reason::AlreadyExists);
        assert_eq!(status.message, "pods \"web\" already exists");

        let err = client
            .get(GetRequest {
                r#ref: pods_ref("nope"),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
        assert_eq!(err.message(), "pods \"nope\" not found");

        let mut stale = created.clone();
        stale["metadata"]["resourceVersion"] = json!("1");
        let err = client
            .update(UpdateRequest {
                r#ref: pods_ref("web"),
                object: serde_json::to_vec(&stale).unwrap(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Aborted);
        assert_eq!(from_status(&err).reason, Reason::Conflict);

        let list = client
            .list(ListRequest {
                r#ref: pods_ref(""),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let list: Value = serde_json::from_slice(&list.list).unwrap();
        assert_eq!(list["items"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn get_list_and_watch_answer_tables_when_asked() {
        let (fixture, mut client, _guard) = serve_fixture().await;
        let mut events = client
            .watch(WatchRequest {
                r#ref: pods_ref(""),
                as_table: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        fixture
            .create("pods", "default", crate::registry::tests::pod("web"))
            .await;
        let table = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();
        let event = events.next().await.unwrap().unwrap();
        let watched = table(&event.object);
        assert_eq!(watched["kind"], "Table");
        assert_eq!(watched["rows"][0]["cells"][0], "web");

        let got = client
            .get(GetRequest {
                r#ref: pods_ref("web"),
                as_table: true,
                include_object: "None".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let got = table(&got.object);
        let names: Vec<&str> = got["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
        assert_eq!(
            got["rows"][0]["cells"].as_array().unwrap()[1..3],
            [json!("0/1"), json!("Pending")]
        );
        assert_eq!(got["rows"][0]["object"], Value::Null);

        let list = client
            .list(ListRequest {
                r#ref: pods_ref(""),
                as_table: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let list = table(&list.list);
        assert_eq!(list["rows"].as_array().unwrap().len(), 1);
        assert_eq!(list["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert!(list["metadata"]["resourceVersion"].as_str().is_some());

        let refused = client
            .list(ListRequest {
                r#ref: pods_ref(""),
                as_table: true,
                include_object: "Everything".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn watch_streams_events_and_discovery_lists_resources() {
        let (fixture, mut client, _guard) = serve_fixture().await;
        let mut events = client
            .watch(WatchRequest {
                r#ref: pods_ref(""),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        fixture
            .create("pods", "default", crate::registry::tests::pod("w"))
            .await;
        let event = events.next().await.unwrap().unwrap();
        assert_eq!(event.r#type, "ADDED");
        let object: Value = serde_json::from_slice(&event.object).unwrap();
        assert_eq!(object["metadata"]["name"], "w");

        let discovery = client
            .discovery(DiscoveryRequest {})
            .await
            .unwrap()
            .into_inner();
        let pods = discovery
            .resources
            .iter()
            .find(|r| r.resource == "pods")
            .unwrap();
        assert_eq!(pods.short_names, ["po"]);
        for subresource in ["status", "binding", "log", "exec"] {
            assert!(
                pods.subresources.contains(&subresource.to_string()),
                "pods/{subresource} is listed"
            );
        }
        assert_eq!(discovery.resources.len(), resources::RESOURCES.len());
    }

    /// An API server over `storage` on a fresh port, in a runtime of its own:
    /// shutting that runtime down kills the server, its connections and its
    /// registry's tasks at once, as killing the process would.
    fn start_server(
        storage: Arc<dyn crate::storage::Storage>,
    ) -> (String, tokio::runtime::Runtime) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let registry = Arc::new(Registry::new(storage, Default::default()));
            registry.bootstrap().await.unwrap();
            let shutdown = tokio_util::sync::CancellationToken::new();
            crate::server::serve(listener, registry, &Default::default(), shutdown).await
        });
        (url, runtime)
    }

    /// Connects once the server answers.
    async fn connect(url: &str) -> ApiClient<tonic::transport::Channel> {
        for _ in 0..600 {
            if let Ok(client) = ApiClient::connect(url.to_string()).await {
                return client;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the API server at {url} never answered")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_grpc_watch_resumes_after_the_api_server_is_killed_and_started_again() {
        // The fixture's registry stands for another API server taking writes.
        let fixture = Fixture::new().await;
        let write = |i: usize| {
            let fixture = &fixture;
            async move {
                let cm = crate::registry::tests::config_map(&format!("c{i:02}"), i as i64);
                let created = fixture.create("cm", "default", cm).await;
                created["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
        };
        let watch_from = |rv: String| WatchRequest {
            r#ref: Some(ResourceRef {
                version: "v1".into(),
                resource: "configmaps".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            resource_version: rv,
            ..Default::default()
        };
        let start = fixture.revision().await.to_string();
        let mut written = Vec::new();

        let (url, server) = start_server(fixture.store.storage());
        let mut client = connect(&url).await;
        let mut events = client.watch(watch_from(start)).await.unwrap().into_inner();
        for i in 0..10 {
            written.push(write(i).await);
        }
        let mut seen = Vec::new();
        while seen.len() < 5 {
            let event = events.next().await.unwrap().unwrap();
            let object: Value = serde_json::from_slice(&event.object).unwrap();
            assert_eq!(event.r#type, "ADDED");
            seen.push(
                object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        // The API server dies; the client's stream breaks.
        server.shutdown_background();
        let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(Ok(_)) = events.next().await {}
        })
        .await;
        assert!(ended.is_ok(), "the watch outlived its server");
        for i in 10..20 {
            written.push(write(i).await);
        }
        // It starts again (on a new port); the client resumes from what it saw last.
        let (url, server) = start_server(fixture.store.storage());
        let mut client = connect(&url).await;
        let last = seen.last().unwrap().clone();
        let mut events = client.watch(watch_from(last)).await.unwrap().into_inner();
        for i in 20..25 {
            written.push(write(i).await);
        }
        while seen.len() < written.len() {
            let event = events.next().await.unwrap().unwrap();
            assert_eq!(event.r#type, "ADDED");
            let object: Value = serde_json::from_slice(&event.object).unwrap();
            seen.push(
                object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert_eq!(seen, written, "every change once, in order");
        server.shutdown_background();
    }

    #[tokio::test]
    async fn a_refused_watch_is_a_kubernetes_status_and_a_timeout_ends_the_call_well() {
        let (fixture, mut client, _guard) = serve_fixture().await;
        let refused = client
            .watch(WatchRequest {
                r#ref: pods_ref(""),
                label_selector: "a in (".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert_eq!(from_status(&refused).reason, Reason::BadRequest);

        let mut unknown = pods_ref("").unwrap();
        unknown.resource = "pets".into();
        let unknown = client
            .watch(WatchRequest {
                r#ref: Some(unknown),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");

        fixture
            .create("pods", "default", crate::registry::tests::pod("t"))
            .await;
        let mut events = client
            .watch(WatchRequest {
                r#ref: pods_ref(""),
                timeout_seconds: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let first = events.message().await.unwrap().unwrap();
        assert_eq!(first.r#type, "ADDED");
        // The timeout ends the stream with an OK status, not an error.
        assert_eq!(events.message().await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_service_answers_over_an_in_process_channel() {
        let fixture = Fixture::new().await;
        let channel = in_process_channel(fixture.registry.clone()).await.unwrap();
        let mut client = ApiClient::new(channel);
        let pod = serde_json::to_vec(&crate::registry::tests::pod("mem")).unwrap();
        client
            .create(CreateRequest {
                r#ref: pods_ref(""),
                object: pod,
                ..Default::default()
            })
            .await
            .unwrap();
        let got = client
            .get(GetRequest {
                r#ref: pods_ref("mem"),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let got: Value = serde_json::from_slice(&got.object).unwrap();
        assert_eq!(got["metadata"]["name"], "mem");
    }

    #[tokio::test]
    async fn apply_and_strategic_patches_carry_their_field_manager_and_force() {
        let (_fixture, mut client, _guard) = serve_fixture().await;
        let intent = serde_json::to_vec(&crate::registry::tests::pod("sa")).unwrap();
        let apply = |manager: &str, force: bool| PatchRequest {
            r#ref: pods_ref("sa"),
            r#type: skiff_proto::api::PatchType::Apply as i32,
            patch: intent.clone(),
            field_manager: manager.into(),
            force,
            ..Default::default()
        };
        let created = client.patch(apply("m", false)).await.unwrap().into_inner();
        let created: Value = serde_json::from_slice(&created.object).unwrap();
        assert_eq!(created["metadata"]["managedFields"][0]["manager"], "m");
        assert_eq!(
            created["metadata"]["managedFields"][0]["operation"],
            "Apply"
        );

        let image = json!({"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}});
        client
            .patch(PatchRequest {
                r#ref: pods_ref("sa"),
                r#type: skiff_proto::api::PatchType::StrategicMerge as i32,
                patch: serde_json::to_vec(&image).unwrap(),
                field_manager: "kubectl-set".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let err = client.patch(apply("m", false)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Aborted);
        assert!(
            err.message().starts_with("Apply failed with 1 conflict"),
            "{}",
            err.message()
        );
        let forced = client.patch(apply("m", true)).await.unwrap().into_inner();
        let forced: Value = serde_json::from_slice(&forced.object).unwrap();
        assert_eq!(forced["spec"]["containers"][0]["image"], "nginx");
    }

    #[tokio::test]
    async fn reflection_lists_the_api_service() {
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1::ServerReflectionRequest;

        let (_fixture, _client, _guard, addr) = serve_fixture_at().await;
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut reflection = ServerReflectionClient::new(channel);
        let request = ServerReflectionRequest {
            message_request: Some(MessageRequest::ListServices(String::new())),
            ..Default::default()
        };
        let mut responses = reflection
            .server_reflection_info(futures::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = responses.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("not a service list: {response:?}");
        };
        let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"skiff.api.v1.Api"), "{names:?}");
    }
}
