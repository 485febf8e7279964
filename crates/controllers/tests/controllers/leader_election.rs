//! Two controller managers against one API server: one acts, the other
//! waits, and takes over when the first stops.

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use skiff_client::{Api, LeaderElectionConfig, Patch, PatchParams, PostParams};
use skiff_controllers::Config;

use crate::common::{eventually, Cluster, Manager};
use crate::workloads::{active_pods, replica_set};

/// A candidate with short timings; it does not give the Lease up on
/// shutdown, so stopping it is a crash as far as the other can tell.
fn candidate(identity: &str) -> Config {
    Config {
        leader_election: Some(LeaderElectionConfig {
            lease_name: "kube-controller-manager".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry_period: Duration::from_millis(200),
            release_on_cancel: false,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    let lease = leases.get_opt("kube-controller-manager").await.unwrap()?;
    lease.spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_manager_acts_and_the_other_takes_over_when_it_stops() {
    let cluster = Cluster::new().await;
    let client = cluster.client().await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let first = Manager::start_with(&cluster, candidate("first")).await;
    eventually("the first manager leads", || async {
        holder(&leases).await.as_deref() == Some("first")
    })
    .await;
    let second = Manager::start_with(&cluster, candidate("second")).await;
    let rs = replica_set("web", 1);
    sets.create(&PostParams::default(), &rs).await.unwrap();
    eventually("the leader acts", || async {
        active_pods(&pods, "web").await.len() == 1
    })
    .await;
    // Several of the second's retry periods later, the Lease has not moved.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(holder(&leases).await.as_deref(), Some("first"));
    let lease = leases.get("kube-controller-manager").await.unwrap();
    let transitions = lease.spec.and_then(|s| s.lease_transitions);

    first.stop().await;
    eventually(
        "the second takes the Lease over once it expires",
        || async { holder(&leases).await.as_deref() == Some("second") },
    )
    .await;
    let lease = leases.get("kube-controller-manager").await.unwrap();
    assert_eq!(
        lease.spec.and_then(|s| s.lease_transitions),
        transitions.map(|t| t + 1),
        "one take-over"
    );
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    eventually("the new leader acts", || async {
        active_pods(&pods, "web").await.len() == 3
    })
    .await;
    second.stop().await;
}
