//! A cluster for one test — skiff-testing's TestCluster with the store and the
//! API server only, so each test runs its own manager — and a stand-in
//! for kubelets that writes pod status directly.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use skiff_client::{Api, Client, ListParams, PostParams};
use skiff_controllers::Config;
use skiff_testing::TestCluster;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use skiff_testing::eventually;

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
}

/// A controller manager running in the test, to be stopped (killed) and started again.
pub struct Manager {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Manager {
    /// Starts a manager with every controller and no leader election.
    pub async fn start(cluster: &Cluster) -> Manager {
        Manager::start_with(
            cluster,
            Config {
                leader_election: None,
                ..Default::default()
            },
        )
        .await
    }

    pub async fn start_with(cluster: &Cluster, config: Config) -> Manager {
        let client = cluster.client().await;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            skiff_controllers::run(config, client, token)
                .await
                .expect("the manager runs");
        });
        Manager { shutdown, task }
    }

    /// Stops the manager and waits until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// What the stand-in kubelet does with a pod.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Running and Ready, with an IP.
    Ready,
    /// Succeeded.
    Succeed,
}

/// Plays every node's kubelet: each pod without a phase beyond Pending is
/// moved to `outcome` by writing its status. Runs until `shutdown`.
pub fn kubelet(client: Client, outcome: Outcome, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::all(client.clone());
        let mut ip = 1u32;
        while !shutdown.is_cancelled() {
            let list = match pods.list(&ListParams::default()).await {
                Ok(list) => list,
                Err(_) => continue,
            };
            for pod in list.items {
                let phase = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default();
                if phase != "Pending" && !phase.is_empty()
                    || pod.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                let namespace = pod.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
                let mut next = pod.clone();
                next.status = Some(status(outcome, ip));
                ip += 1;
                let _ = api
                    .replace_status(
                        &next.metadata.name.clone().unwrap_or_default(),
                        &PostParams::default(),
                        &next,
                    )
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
}

fn status(outcome: Outcome, ip: u32) -> PodStatus {
    let now = Time(
        k8s_openapi::jiff::Timestamp::from_second(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
        )
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    );
    let (phase, ready) = match outcome {
        Outcome::Ready => ("Running", "True"),
        Outcome::Succeed => ("Succeeded", "False"),
    };
    PodStatus {
        phase: Some(phase.into()),
        pod_ip: Some(format!(
            "10.{}.{}.{}",
            ip / 65536 % 256,
            ip / 256 % 256,
            ip % 256
        )),
        conditions: Some(vec![PodCondition {
            type_: "Ready".into(),
            status: ready.into(),
            last_transition_time: Some(now),
            ..Default::default()
        }]),
        ..Default::default()
    }
}
