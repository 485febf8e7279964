//! The garbage collector: deleting a Deployment with each propagation policy,
//! as `kubectl delete deployment --cascade=background|orphan|foreground` does.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use skiff_client::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

use crate::common::{eventually, Cluster, Manager};
use crate::workloads::deployment;

/// A cluster running every controller, with Deployment `api` of two pods
/// rolled out (one ReplicaSet).
async fn rolled_out() -> (Cluster, Manager, Api<Deployment>, Api<ReplicaSet>, Api<Pod>) {
    let cluster = Cluster::new().await;
    let client = cluster.client().await;
    let manager = Manager::start(&cluster).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    deployments
        .create(&PostParams::default(), &deployment(2, "v1"))
        .await
        .unwrap();
    eventually("a ReplicaSet with two pods", || async {
        all(&sets).await.len() == 1 && all(&pods).await.len() == 2
    })
    .await;
    (cluster, manager, deployments, sets, pods)
}

async fn all<K: skiff_client::Object>(api: &Api<K>) -> Vec<K> {
    api.list(&ListParams::default()).await.unwrap().items
}

fn owners<K: skiff_client::Resource>(object: &K) -> usize {
    object.meta().owner_references.as_ref().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_removes_the_replica_sets_and_their_pods() {
    let (_cluster, manager, deployments, sets, pods) = rolled_out().await;
    deployments
        .delete("api", &DeleteParams::background())
        .await
        .unwrap();
    eventually("no ReplicaSet and no pod left", || async {
        all(&sets).await.is_empty() && all(&pods).await.is_empty()
    })
    .await;
    assert!(deployments.get_opt("api").await.unwrap().is_none());
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_keeps_the_replica_sets_without_owner_references() {
    let (_cluster, manager, deployments, sets, pods) = rolled_out().await;
    deployments
        .delete("api", &DeleteParams::orphan())
        .await
        .unwrap();
    eventually("the Deployment gone", || async {
        deployments.get_opt("api").await.unwrap().is_none()
    })
    .await;
    let left = all(&sets).await;
    assert_eq!(left.len(), 1, "the ReplicaSet stays");
    assert_eq!(owners(&left[0]), 0, "and no longer names the Deployment");
    let running = all(&pods).await;
    assert_eq!(running.len(), 2, "its pods stay too");
    assert!(
        running.iter().all(|p| owners(p) == 1),
        "still owned by their ReplicaSet: orphaning reaches direct dependents only"
    );
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_keeps_the_owner_until_its_dependents_are_gone() {
    let (_cluster, manager, deployments, sets, pods) = rolled_out().await;
    // One pod cannot go yet: another party holds it with a finalizer.
    let held = all(&pods).await[0].metadata.name.clone().unwrap();
    let hold = json!({"metadata": {"finalizers": ["example.com/hold"]}});
    pods.patch(&held, &PatchParams::default(), &Patch::Merge(hold))
        .await
        .unwrap();
    deployments
        .delete("api", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("only the held pod left, itself being deleted", || async {
        let left = all(&pods).await;
        left.len() == 1 && left[0].metadata.deletion_timestamp.is_some()
    })
    .await;
    let d = deployments.get("api").await.expect("the Deployment waits");
    assert!(d.metadata.deletion_timestamp.is_some());
    assert_eq!(
        d.metadata.finalizers.as_deref(),
        Some(&["foregroundDeletion".to_string()][..])
    );
    let rs = &all(&sets).await[0];
    assert!(
        rs.metadata.deletion_timestamp.is_some(),
        "the ReplicaSet goes in the foreground too, and waits for its pod"
    );

    let release = json!({"metadata": {"finalizers": null}});
    pods.patch(&held, &PatchParams::default(), &Patch::Merge(release))
        .await
        .unwrap();
    eventually("the Deployment gone after its dependents", || async {
        deployments.get_opt("api").await.unwrap().is_none()
    })
    .await;
    assert!(all(&sets).await.is_empty() && all(&pods).await.is_empty());
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_orphaned_while_no_manager_ran_are_collected_by_the_next() {
    let (cluster, manager, deployments, sets, pods) = rolled_out().await;
    manager.stop().await;
    // With no garbage collector running, the Deployment goes at once and its
    // ReplicaSet and pods are left pointing at nothing.
    deployments
        .delete("api", &DeleteParams::background())
        .await
        .unwrap();
    assert!(deployments.get_opt("api").await.unwrap().is_none());
    assert_eq!(all(&sets).await.len(), 1);
    let manager = Manager::start(&cluster).await;
    eventually("no ReplicaSet and no pod left", || async {
        all(&sets).await.is_empty() && all(&pods).await.is_empty()
    })
    .await;
    manager.stop().await;
}
