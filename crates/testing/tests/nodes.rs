//! TestCluster with its scheduler, controllers and hollow kubelets: nodes
//! register, and a Deployment's pods are scheduled, run and counted available.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_client::{Api, ListParams, PostParams};
use skiff_testing::{eventually, workloads, Runtime, TestCluster};

fn deployment(name: &str, replicas: i32) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: workloads::selector(name),
            template: workloads::template(name, "busybox"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_on_hollow_nodes_becomes_available() {
    let cluster = TestCluster::builder()
        .nodes(3)
        .runtime(Runtime::Hollow)
        .start()
        .await
        .unwrap();
    let client = cluster.client().await.unwrap();
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("three nodes registering", || async {
        let names: Vec<String> = nodes
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect();
        (names == ["node-1", "node-2", "node-3"])
            .then_some(())
            .ok_or(format!("{names:?}"))
    })
    .await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(&PostParams::default(), &deployment("web", 3))
        .await
        .unwrap();
    eventually("the Deployment becoming available", || async {
        let status = deployments
            .get("web")
            .await
            .map_err(|e| e.to_string())?
            .status
            .unwrap_or_default();
        (status.available_replicas == Some(3) && status.ready_replicas == Some(3))
            .then_some(())
            .ok_or(format!("{status:?}"))
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(client, "default");
    let listed = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 3, "one pod per replica");
    for pod in &listed {
        let spec = pod.spec.as_ref().expect("a pod has a spec");
        let node = spec.node_name.as_deref().unwrap_or_default();
        assert!(node.starts_with("node-"), "bound to a node: {node:?}");
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        assert_eq!(phase, Some("Running"), "{:?}", pod.metadata.name);
    }
    cluster.stop().await;
}
