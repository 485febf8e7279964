//! Strategic merge patches through the registry: lists merged by their
//! keys, the result defaulted and validated as an update.

use serde_json::{json, Value};
use skiff_api::status::{ApiError, Reason};

use super::fixture::{scenarios, Backend};
use super::{pod, r, Fixture};
use crate::registry::write::PatchType;
use crate::registry::WriteOptions;

scenarios!(
    strategic_patch_merges_a_pods_containers_by_name,
    strategic_patch_changes_one_container_of_a_deployment_template,
    strategic_patch_merges_service_ports_by_port,
    a_malformed_strategic_patch_is_a_bad_request_and_stores_nothing,
);

pub(crate) fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [
                    {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                    {"name": "log", "image": "busybox"},
                ]},
            },
        },
    })
}

pub(crate) async fn patch(
    f: &Fixture,
    resource: &str,
    name: &str,
    patch_type: PatchType,
    body: &Value,
    options: &WriteOptions,
) -> Result<Value, ApiError> {
    let body = serde_json::to_vec(body).expect("a Value encodes");
    f.registry
        .patch(r(resource), "default", name, "", patch_type, &body, options)
        .await
        .map(|reply| reply.object)
}

async fn strategic_patch_merges_a_pods_containers_by_name(backend: Backend) {
    let f = Fixture::on(backend).await;
    let mut two = pod("web");
    two["spec"]["containers"] =
        json!([{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis"}]);
    f.create("pods", "default", two).await;
    let body = json!({"spec": {"containers": [{"name": "b", "image": "redis:7"}]}});
    let patched = patch(
        &f,
        "pods",
        "web",
        PatchType::StrategicMerge,
        &body,
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let containers = &patched["spec"]["containers"];
    assert_eq!(
        containers[0]["image"], "nginx",
        "the other container is kept"
    );
    assert_eq!(containers[1]["image"], "redis:7");
    assert_eq!(
        containers[1]["imagePullPolicy"], "Always",
        "the live container's defaulted fields are kept"
    );
    // A merge patch of the same body replaces the whole list, which drops a
    // container: a pod's containers are immutable but for their images.
    let err = patch(
        &f,
        "pods",
        "web",
        PatchType::Merge,
        &body,
        &WriteOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason, Reason::Invalid);
}

async fn strategic_patch_changes_one_container_of_a_deployment_template(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = f.create("deployments", "default", deployment("d")).await;
    let body = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]},
        {"name": "log", "$patch": "delete"},
    ]}}}});
    let patched = patch(
        &f,
        "deployments",
        "d",
        PatchType::StrategicMerge,
        &body,
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let containers = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "log was deleted: {containers:?}");
    assert_eq!(containers[0]["image"], "nginx:2");
    assert_eq!(
        containers[0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
    );
    assert_eq!(patched["metadata"]["generation"], 2);
    assert_eq!(created["metadata"]["generation"], 1);
}

async fn strategic_patch_merges_service_ports_by_port(backend: Backend) {
    let f = Fixture::on(backend).await;
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}});
    let created = f.create("services", "default", service).await;
    let body = json!({"spec": {"ports": [{"name": "https", "port": 443}]}});
    let patched = patch(
        &f,
        "services",
        "s",
        PatchType::StrategicMerge,
        &body,
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let ports: Vec<_> = patched["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].clone())
        .collect();
    assert_eq!(ports, vec![json!(80), json!(443)]);
    assert_eq!(patched["spec"]["clusterIP"], created["spec"]["clusterIP"]);
}

async fn a_malformed_strategic_patch_is_a_bad_request_and_stores_nothing(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = f.create("pods", "default", pod("web")).await;
    let body = json!({"spec": {"containers": [{"image": "no-name"}]}});
    let err = patch(
        &f,
        "pods",
        "web",
        PatchType::StrategicMerge,
        &body,
        &WriteOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason, Reason::BadRequest);
    assert_eq!(
        err.message,
        "the strategic merge patch could not be applied: spec.containers[0]: the item does not contain declared merge key: name"
    );
    assert_eq!(f.get("pods", "default", "web").await.unwrap(), created);
}
