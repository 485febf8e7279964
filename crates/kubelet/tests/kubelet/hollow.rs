//! The hollow runtime under the whole kubelet.

use k8s_openapi::api::core::v1::{Event, Pod};
use serde_json::json;
use skiff_client::{Api, ListParams, PostParams};
use skiff_kubelet::runtime::hollow::HollowConfig;
use skiff_kubelet::{Config, RuntimeChoice};
use tokio_util::sync::CancellationToken;

use crate::common::{eventually, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hollow_pods_run_succeed_and_fail_as_their_annotations_say() {
    let cluster = Cluster::new().await;
    let dir = tempfile::tempdir().unwrap();
    let shutdown = CancellationToken::new();
    let config = Config {
        node_name: "hollow-1".into(),
        runtime: RuntimeChoice::Hollow(HollowConfig::default()),
        root_dir: dir.path().to_path_buf(),
        relist_period: std::time::Duration::from_millis(100),
        ..Config::default()
    };
    let kubelet = tokio::spawn(skiff_kubelet::run(
        config,
        cluster.client.clone(),
        shutdown.clone(),
    ));
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let cases = [
        ("server", json!({}), "Always", "Running"),
        (
            "job",
            json!({"hollow.skiff.dev/run-seconds": "0"}),
            "Never",
            "Succeeded",
        ),
        (
            "crash",
            json!({"hollow.skiff.dev/run-seconds": "0", "hollow.skiff.dev/exit-code": "2"}),
            "Never",
            "Failed",
        ),
        (
            "unready",
            json!({"hollow.skiff.dev/ready": "false"}),
            "Always",
            "Running",
        ),
    ];
    for (name, annotations, policy, _) in &cases {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "annotations": annotations},
            "spec": {"nodeName": "hollow-1", "restartPolicy": policy,
                     "containers": [{"name": "app", "image": "busybox",
                        "readinessProbe": {"exec": {"command": ["check"]}, "periodSeconds": 1}}]},
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    for (name, _, _, expected) in cases {
        eventually(&format!("{name} reaches {expected}"), || async {
            let pod = pods.get(name).await.ok()?;
            (pod.status?.phase.as_deref() == Some(expected)).then_some(())
        })
        .await;
    }
    let ready = |pod: Pod| {
        let conditions = pod.status?.conditions?;
        let ready = conditions.into_iter().find(|c| c.type_ == "Ready")?;
        Some(ready.status)
    };
    eventually("the server is ready once its probe passes", || async {
        let pod = pods.get("server").await.ok()?;
        (ready(pod)? == "True").then_some(())
    })
    .await;
    let unready = pods.get("unready").await.unwrap();
    assert_eq!(
        ready(unready).as_deref(),
        Some("False"),
        "its readiness probe fails"
    );
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), "default");
    eventually("an Unhealthy event names the unready pod", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("Unhealthy")
                && e.involved_object.name.as_deref() == Some("unready")
        })
    })
    .await;
    let server = pods.get("server").await.unwrap().status.unwrap();
    assert!(server.pod_ip.unwrap().starts_with("10.244."));
    shutdown.cancel();
    kubelet.await.unwrap().unwrap();
}
