//! A cluster for one test: a store in a temporary directory, a registry over
//! it, and clients over the API server's in-process channel; and a scheduler
//! running on it until the test ends.

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;
use skiff_client::{Api, Client, PostParams};
use skiff_scheduler::scheduler::{run, Config};
use skiff_testing::TestCluster;
use tokio_util::sync::CancellationToken;

pub use skiff_testing::eventually;

/// The store and the API server only: each test starts its own scheduler.
pub struct Cluster {
    inner: TestCluster,
}

impl Cluster {
    pub async fn new() -> Cluster {
        Cluster {
            inner: TestCluster::api_for_tests().await,
        }
    }

    pub async fn client(&self) -> Client {
        self.inner.test_client().await
    }

    /// Starts a scheduler; it stops when the returned token is cancelled.
    pub async fn scheduler(
        &self,
        config: Config,
    ) -> (
        CancellationToken,
        tokio::task::JoinHandle<Result<(), skiff_scheduler::Error>>,
    ) {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(config, self.client().await, shutdown.clone()));
        (shutdown, task)
    }

    pub async fn add_node(&self, name: &str, cpu: &str, labels: serde_json::Value) {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "status": {"allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"},
                       "capacity": {"cpu": cpu, "memory": "16Gi", "pods": "110"}},
        }))
        .expect("a valid node");
        let api: Api<Node> = Api::all(self.client().await);
        api.create(&PostParams::default(), &node)
            .await
            .expect("the node is created");
    }

    pub async fn add_pod(&self, pod: serde_json::Value) {
        let pod: Pod = serde_json::from_value(pod).expect("a valid pod");
        let api: Api<Pod> = Api::namespaced(self.client().await, "default");
        api.create(&PostParams::default(), &pod)
            .await
            .expect("the pod is created");
    }

    pub async fn pod(&self, name: &str) -> Pod {
        let api: Api<Pod> = Api::namespaced(self.client().await, "default");
        api.get(name).await.expect("the pod exists")
    }

    pub async fn node_of(&self, name: &str) -> Option<String> {
        let api: Api<Pod> = Api::namespaced(self.client().await, "default");
        let pod = api.get_opt(name).await.expect("the get answers")?;
        pod.spec?.node_name
    }
}

/// A pod asking for `cpu`.
pub fn pod(name: &str, cpu: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "pause", "resources": {"requests": {"cpu": cpu}}}]},
    })
}
