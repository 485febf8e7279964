//! Preemption through a real API server: PodDisruptionBudgets are served and
//! validated, preemption spares the pods a budget protects, and the
//! preemptor's nomination is written to its status and holds the room.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::json;
use skiff_client::{Api, DeleteParams, Patch, PatchParams, PostParams};
use skiff_scheduler::scheduler::Config;

use crate::common::{eventually, pod, Cluster};

/// A pod of `app` with `priority`, asking for `cpu`, already on `node`, and Ready.
async fn running(cluster: &Cluster, name: &str, app: &str, priority: i32, cpu: &str, node: &str) {
    let mut running = pod(name, cpu);
    running["metadata"]["labels"] = json!({"app": app});
    running["spec"]["priority"] = json!(priority);
    running["spec"]["nodeName"] = json!(node);
    cluster.add_pod(running).await;
    let api: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(ready))
        .await
        .expect("the status is written");
}

fn budget(name: &str, spec: serde_json::Value) -> PodDisruptionBudget {
    serde_json::from_value(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .expect("a valid budget object")
}

async fn terminating(cluster: &Cluster, name: &str) -> bool {
    let api: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    api.get_opt(name)
        .await
        .expect("answers")
        .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemption_spares_budgeted_pods_and_the_nomination_holds_the_room() {
    let cluster = Cluster::new().await;
    cluster.add_node("a", "2", json!({})).await;
    cluster.add_node("b", "2", json!({})).await;
    running(&cluster, "guarded", "db", 1, "1500m", "a").await;
    running(&cluster, "free", "web", 5, "1500m", "b").await;

    let budgets: Api<PodDisruptionBudget> = Api::namespaced(cluster.client().await, "default");
    let both = budget("both", json!({"minAvailable": 1, "maxUnavailable": 1}));
    let refused = budgets
        .create(&PostParams::default(), &both)
        .await
        .expect_err("minAvailable and maxUnavailable together are refused");
    assert!(
        refused
            .to_string()
            .contains("minAvailable and maxUnavailable cannot be both set"),
        "{refused}"
    );
    // One db pod must stay: guarded is the only one, so it may not go.
    let db = budget(
        "db",
        json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}),
    );
    budgets
        .create(&PostParams::default(), &db)
        .await
        .expect("the budget is created");

    let (shutdown, _task) = cluster.scheduler(Config::default()).await;
    let mut urgent = pod("urgent", "1500m");
    urgent["spec"]["priority"] = json!(10);
    cluster.add_pod(urgent).await;
    // Without the budget, guarded (priority 1) would be the cheaper victim.
    eventually("urgent nominated to b", || async {
        let pod = cluster.pod("urgent").await;
        pod.status.and_then(|s| s.nominated_node_name).as_deref() == Some("b")
    })
    .await;
    eventually("free preempted", || terminating(&cluster, "free")).await;
    assert!(!terminating(&cluster, "guarded").await, "the budget holds");

    // A less important pod that b would take were the room not held (and
    // that may preempt nobody: no pod has a lower priority).
    let mut sneaky = pod("sneaky", "1");
    sneaky["spec"]["priority"] = json!(1);
    cluster.add_pod(sneaky).await;
    // A kubelet would finish the deletion; none runs here.
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::default()
    };
    let _ = pods.delete("free", &now).await;
    eventually("urgent bound", || async {
        cluster.node_of("urgent").await.is_some()
    })
    .await;
    assert_eq!(cluster.node_of("urgent").await.as_deref(), Some("b"));
    assert_eq!(cluster.node_of("sneaky").await, None, "no room left for it");
    assert!(!terminating(&cluster, "urgent").await);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nomination_is_cleared_when_the_pod_binds_elsewhere() {
    let cluster = Cluster::new().await;
    cluster.add_node("a", "2", json!({})).await;
    running(&cluster, "low", "web", 1, "1500m", "a").await;
    let (shutdown, _task) = cluster.scheduler(Config::default()).await;
    let mut urgent = pod("urgent", "1500m");
    urgent["spec"]["priority"] = json!(10);
    cluster.add_pod(urgent).await;
    let nominated = || async {
        let pod = cluster.pod("urgent").await;
        pod.status.and_then(|s| s.nominated_node_name)
    };
    eventually("urgent nominated to a", || async {
        nominated().await.as_deref() == Some("a")
    })
    .await;
    // Before low is gone, a roomier node joins: urgent goes there instead.
    cluster.add_node("c", "4", json!({})).await;
    eventually("urgent bound", || async {
        cluster.node_of("urgent").await.is_some()
    })
    .await;
    assert_eq!(cluster.node_of("urgent").await.as_deref(), Some("c"));
    eventually("the stale nomination cleared", || async {
        nominated().await.is_none()
    })
    .await;
    shutdown.cancel();
}
