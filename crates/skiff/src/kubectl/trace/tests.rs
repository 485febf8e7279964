//! `skiff trace pod` against a whole in-process cluster: a ReplicaSet's pod
//! is stored, bound by the scheduler and run by a hollow kubelet, and its
//! trace shows those steps in that order.

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use skiff_client::{Api, PostParams};
use skiff_testing::eventually;

use crate::kubectl::fixtures::{cluster, fails, ok, pods, replica_set};

fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The line of `table` whose step contains `what`, as its index.
fn line_of(table: &str, what: &str) -> usize {
    table
        .lines()
        .position(|l| l.contains(what))
        .unwrap_or_else(|| panic!("no step {what:?} in\n{table}"))
}

#[tokio::test]
async fn a_pod_s_trace_shows_the_api_server_the_scheduler_and_its_kubelet_in_order() {
    let (_cluster, session) = cluster(1).await;
    let sets: Api<ReplicaSet> = Api::namespaced(session.client.clone(), "default");
    sets.create(&PostParams::default(), &replica_set("web", 1, "busybox"))
        .await
        .expect("the ReplicaSet is created");
    let pod = eventually("the ReplicaSet's pod is Ready", || async {
        pods(&session, "web").await.into_iter().find(is_ready)
    })
    .await;
    let name = pod.metadata.name.clone().unwrap_or_default();
    let node = pod.spec.and_then(|s| s.node_name).unwrap_or_default();

    let table = ok(&session, &["trace", "pod", &name]).await;
    assert!(
        table.starts_with(&format!("Pod default/{name} on {node}: Running\n")),
        "{table}"
    );
    assert!(table.contains(&format!("Stored at /registry/pods/default/{name}, ")));
    assert!(table.contains("Controlled by ReplicaSet web."));
    let order = [
        format!("pod {name} stored"),
        format!("Scheduled: Successfully assigned default/{name} to {node}"),
        "container main running".to_string(),
        "condition Ready=True".to_string(),
    ];
    let lines: Vec<usize> = order.iter().map(|what| line_of(&table, what)).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "steps out of order:\n{table}");
    let scheduled = table.lines().nth(lines[1]).unwrap_or_default();
    assert!(scheduled.contains("default-scheduler"), "{table}");
    let running = table.lines().nth(lines[2]).unwrap_or_default();
    assert!(running.contains(&format!("kubelet ({node})")), "{table}");
}

#[tokio::test]
async fn tracing_a_pod_that_is_not_there_says_so() {
    let (_cluster, session) = cluster(0).await;
    let err = fails(&session, &["trace", "pod", "nope"]).await;
    assert_eq!(err, "Error from server (NotFound): pods \"nope\" not found");
    let err = fails(&session, &["trace", "pod", "deploy/web"]).await;
    assert!(err.contains("only pods are supported"), "{err}");
}
