//! Bad input on the real runtime: each failure shows in the pod's status
//! and as Events with the kubelet's reasons, and the kubelet goes on
//! serving its other pods.

use k8s_openapi::api::core::v1::{ContainerStateWaiting, Event, Pod};
use serde_json::json;
use skiff_client::{Api, ListParams};
use skiff_kubelet::image::ImageStore;

use crate::common::eventually;
use crate::kubelet::{pod_log_containing, Kubelet};
use crate::node::Node;

/// A pod that runs happily beside the broken one.
fn healthy_pod() -> serde_json::Value {
    json!({
        "metadata": {"name": "healthy", "namespace": "default"},
        "spec": {"containers": [{
            "name": "app",
            "image": "busybox",
            "command": ["sh", "-c", "echo still serving; exec sleep 1000"],
        }]},
    })
}

/// A pod of one container `app` with `container` merged into its spec.
fn pod(name: &str, container: serde_json::Value) -> serde_json::Value {
    let mut app = json!({"name": "app", "image": "busybox"});
    if let (Some(app), Some(extra)) = (app.as_object_mut(), container.as_object()) {
        app.extend(extra.clone());
    }
    json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [app]},
    })
}

/// Waits until the container `app` of `pod` waits with `reason`.
async fn waiting_with(kubelet: &Kubelet, pod: &str, reason: &str) -> ContainerStateWaiting {
    let pods = kubelet.pods();
    eventually(&format!("{pod} waits with {reason}"), || async {
        let found: Pod = pods.get(pod).await.ok()?;
        let statuses = found.status?.container_statuses?;
        let waiting = statuses.first()?.state.clone()?.waiting?;
        (waiting.reason.as_deref() == Some(reason)).then_some(waiting)
    })
    .await
}

/// Waits for a Warning Event about `pod` with `reason` whose message holds
/// `needle`; returns the message.
async fn warning_event(kubelet: &Kubelet, pod: &str, reason: &str, needle: &str) -> String {
    let events: Api<Event> = Api::namespaced(kubelet.cluster.client.clone(), "default");
    eventually(&format!("a {reason} event about {pod}"), || async {
        let listed = events.list(&ListParams::default()).await.ok()?;
        listed.items.into_iter().find_map(|event| {
            let about = event.involved_object.name.as_deref() == Some(pod);
            let message = event.message.unwrap_or_default();
            let matches = about
                && event.type_.as_deref() == Some("Warning")
                && event.reason.as_deref() == Some(reason)
                && message.contains(needle);
            matches.then_some(message)
        })
    })
    .await
}

/// The healthy pod runs and logs: the kubelet still serves its pods.
async fn still_serving(kubelet: &Kubelet) {
    kubelet.wait_ready("healthy").await;
    pod_log_containing(&kubelet.pods(), "healthy", "app", "still serving").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_err_image_never_pull_with_a_failed_event() {
    let mut kubelet = Kubelet::start().await;
    kubelet
        .create(pod(
            "no-image",
            json!({"image": "nginx:1.27", "command": ["nginx"]}),
        ))
        .await;
    kubelet.create(healthy_pod()).await;
    let waiting = waiting_with(&kubelet, "no-image", "ErrImageNeverPull").await;
    let message = waiting.message.unwrap_or_default();
    assert!(
        message.contains("\"nginx:1.27\" is not present with pull policy of Never"),
        "{message}"
    );
    warning_event(&kubelet, "no-image", "Failed", "ErrImageNeverPull").await;
    still_serving(&kubelet).await;
    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_does_not_exist_is_a_run_container_error_with_a_failed_event() {
    let mut kubelet = Kubelet::start().await;
    kubelet
        .create(pod("typo", json!({"command": ["/bin/no-such-program"]})))
        .await;
    kubelet.create(healthy_pod()).await;
    let waiting = waiting_with(&kubelet, "typo", "RunContainerError").await;
    let message = waiting.message.unwrap_or_default();
    assert!(message.contains("no-such-program"), "{message}");
    warning_event(&kubelet, "typo", "Failed", "no-such-program").await;
    still_serving(&kubelet).await;
    kubelet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_hangs_is_unhealthy_with_a_timeout_and_the_pod_not_ready() {
    let mut kubelet = Kubelet::start().await;
    let hanging = json!({
        "command": ["sleep", "1000"],
        "readinessProbe": {
            "exec": {"command": ["sleep", "1000"]},
            "timeoutSeconds": 1,
            "periodSeconds": 1,
        },
    });
    kubelet.create(pod("hangs", hanging)).await;
    kubelet.create(healthy_pod()).await;
    let message = warning_event(&kubelet, "hangs", "Unhealthy", "timed out").await;
    assert!(message.starts_with("Readiness probe failed"), "{message}");
    still_serving(&kubelet).await;
    let pods = kubelet.pods();
    let hangs = pods.get("hangs").await.expect("the pod");
    let status = hangs.status.expect("a status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let ready = status.container_statuses.expect("statuses")[0].ready;
    assert!(!ready, "a container whose probe times out is not ready");
    kubelet.stop().await;
}

#[tokio::test]
async fn an_image_tarball_that_is_not_an_oci_layout_is_refused_with_a_clear_error() {
    let node = Node::start().await;
    node.runtime().await; // containerd answers
                          // As `skiff image import` connects.
    let images = ImageStore::connect(&node.config.socket, &node.config.namespace)
        .await
        .expect("containerd is reachable");
    let garbage = node.dir.path().join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tarball at all").expect("write");
    let error = images.import_file(&garbage).await.expect_err("refused");
    assert!(error.to_string().contains("OCI image layout"), "{error}");

    let mut archive = tar::Builder::new(Vec::new());
    let manifest = b"[]";
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    archive
        .append_data(&mut header, "manifest.json", &manifest[..])
        .expect("a tar entry");
    let docker = node.dir.path().join("docker.tar");
    std::fs::write(&docker, archive.into_inner().expect("a tarball")).expect("write");
    let error = images.import_file(&docker).await.expect_err("refused");
    assert!(error.to_string().contains("docker-archive"), "{error}");

    let missing = images
        .resolve("busybox")
        .await
        .expect_err("nothing imported");
    assert!(missing.to_string().contains("not present"), "{missing}");
}
