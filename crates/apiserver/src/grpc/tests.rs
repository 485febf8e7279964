//! The gRPC service end to end: a served fixture and its clients.

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
fn start_server(storage: Arc<dyn crate::storage::Storage>) -> (String, tokio::runtime::Runtime) {
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
