//! The scheduler against a real in-process API server: pods bound through
//! `pods/binding`, failures reported on the pod and in Events, bad input,
//! preemption (with PodDisruptionBudgets and nominations, in `preemption`),
//! and leader election between two schedulers.

mod common;
mod preemption;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use serde_json::json;
use skiff_client::{Api, DeleteParams, ListParams};
use skiff_scheduler::scheduler::Config;
use skiff_scheduler::Error;

use common::{eventually, pod, Cluster};

async fn events_of(cluster: &Cluster, pod: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(cluster.client().await, "default");
    let list = api.list(&ListParams::default()).await.expect("events list");
    list.items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(pod))
        .collect()
}

fn condition_message(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    let scheduled = conditions.iter().find(|c| c.type_ == "PodScheduled")?;
    (scheduled.status == "False").then(|| scheduled.message.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_pods_are_bound_to_a_node_that_fits() {
    let cluster = Cluster::new().await;
    cluster.add_node("small", "1", json!({})).await;
    cluster.add_node("big", "16", json!({})).await;
    let (shutdown, _task) = cluster.scheduler(Config::default()).await;
    cluster.add_pod(pod("large", "4")).await;
    cluster.add_pod(pod("tiny", "100m")).await;
    eventually("both pods bound", || async {
        cluster.node_of("large").await.is_some() && cluster.node_of("tiny").await.is_some()
    })
    .await;
    assert_eq!(cluster.node_of("large").await.as_deref(), Some("big"));
    eventually("a Scheduled event", || async {
        events_of(&cluster, "large")
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("Scheduled"))
    })
    .await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_fits_nowhere_is_told_why_and_fits_when_a_node_joins() {
    let cluster = Cluster::new().await;
    cluster.add_node("small", "1", json!({})).await;
    let (shutdown, _task) = cluster.scheduler(Config::default()).await;
    cluster.add_pod(pod("huge", "8")).await;
    eventually("PodScheduled=False", || async {
        condition_message(&cluster.pod("huge").await).is_some()
    })
    .await;
    let message = condition_message(&cluster.pod("huge").await).unwrap_or_default();
    assert!(
        message.starts_with("0/1 nodes are available: 1 Insufficient cpu."),
        "{message}"
    );
    eventually("a FailedScheduling event", || async {
        events_of(&cluster, "huge")
            .await
            .iter()
            .any(|e| e.reason.as_deref() == Some("FailedScheduling"))
    })
    .await;
    cluster.add_node("roomy", "16", json!({})).await;
    eventually("bound after the node joined", || async {
        cluster.node_of("huge").await.is_some()
    })
    .await;
    assert_eq!(cluster.node_of("huge").await.as_deref(), Some("roomy"));
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_constraint_expression_fails_only_that_pod() {
    let cluster = Cluster::new().await;
    cluster
        .add_node(
            "n1",
            "4",
            json!({"node.kubernetes.io/instance-type": "t2.micro"}),
        )
        .await;
    let mut bad = pod("bad", "100m");
    bad["metadata"]["annotations"] = json!({"ecs.skiff.dev/placement-constraints":
        r#"[{"type":"memberOf","expression":"attribute:ecs.instance-type =="}]"#});
    let mut good = pod("good", "100m");
    good["metadata"]["annotations"] = json!({"ecs.skiff.dev/placement-constraints":
        r#"[{"type":"memberOf","expression":"attribute:ecs.instance-type =~ t2.*"}]"#});
    // The default profile does not run EcsPlacement: add it.
    let config = Config {
        configuration: skiff_scheduler::profile::SchedulerConfiguration::parse(
            "profiles:\n- plugins:\n    multiPoint:\n      enabled: [{name: EcsPlacement}]\n",
            "test",
        )
        .expect("parses"),
        ..Config::default()
    };
    let (shutdown, _task) = cluster.scheduler(config).await;
    cluster.add_pod(bad).await;
    cluster.add_pod(good).await;
    eventually("the good pod bound", || async {
        cluster.node_of("good").await.is_some()
    })
    .await;
    eventually("the bad pod's event names the position", || async {
        events_of(&cluster, "bad").await.iter().any(|e| {
            e.reason.as_deref() == Some("FailedScheduling")
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("at position 30"))
        })
    })
    .await;
    assert_eq!(cluster.node_of("bad").await, None);
    shutdown.cancel();
}

#[tokio::test]
async fn a_bad_profile_file_stops_the_scheduler_at_start_naming_file_and_field() {
    let cluster = Cluster::new().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("scheduler.yaml");
    std::fs::write(
        &path,
        "profiles:\n- plugins:\n    score:\n      enabled: [{name: NodeAffinity, weight: 1000}]\n",
    )
    .expect("written");
    let config = Config {
        config_file: Some(path.clone()),
        ..Config::default()
    };
    let (_shutdown, task) = cluster.scheduler(config).await;
    let result = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("stops at once")
        .expect("joins");
    match result {
        Err(Error::InvalidConfig {
            path: file, field, ..
        }) => {
            assert_eq!(file, path.display().to_string());
            assert_eq!(field, "profiles[0].plugins.score.enabled[0].weight");
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_priority_pod_preempts_a_lower_one() {
    let cluster = Cluster::new().await;
    cluster.add_node("only", "2", json!({})).await;
    let (shutdown, _task) = cluster.scheduler(Config::default()).await;
    let mut low = pod("low", "1500m");
    low["spec"]["priority"] = json!(1);
    cluster.add_pod(low).await;
    eventually("the low pod bound", || async {
        cluster.node_of("low").await.is_some()
    })
    .await;
    let mut high = pod("high", "1500m");
    high["spec"]["priority"] = json!(100);
    cluster.add_pod(high).await;
    eventually("the low pod preempted", || async {
        let api: Api<Pod> = Api::namespaced(cluster.client().await, "default");
        api.get_opt("low")
            .await
            .expect("answers")
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    // A kubelet would finish the deletion; none runs here.
    let api: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let _ = api
        .delete(
            "low",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await;
    eventually("the high pod bound", || async {
        cluster.node_of("high").await.is_some()
    })
    .await;
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_run_with_one_active() {
    let cluster = Cluster::new().await;
    cluster.add_node("n1", "8", json!({})).await;
    let elect = |identity: &str| {
        let mut config = Config {
            leader_election: true,
            ..Config::default()
        };
        config.leader_election_config.identity = identity.into();
        config.leader_election_config.lease_duration = Duration::from_secs(2);
        config.leader_election_config.renew_deadline = Duration::from_secs(1);
        config.leader_election_config.retry_period = Duration::from_millis(200);
        config
    };
    let (first, _a) = cluster.scheduler(elect("first")).await;
    eventually("first leads", || async {
        lease_holder(&cluster).await.as_deref() == Some("first")
    })
    .await;
    let (second, _b) = cluster.scheduler(elect("second")).await;
    cluster.add_pod(pod("p1", "100m")).await;
    eventually("p1 bound", || async {
        cluster.node_of("p1").await.is_some()
    })
    .await;
    assert_eq!(
        lease_holder(&cluster).await.as_deref(),
        Some("first"),
        "the second waits"
    );
    first.cancel();
    eventually("second leads", || async {
        lease_holder(&cluster).await.as_deref() == Some("second")
    })
    .await;
    cluster.add_pod(pod("p2", "100m")).await;
    eventually("p2 bound by the second", || async {
        cluster.node_of("p2").await.is_some()
    })
    .await;
    second.cancel();
}

async fn lease_holder(cluster: &Cluster) -> Option<String> {
    let api: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(cluster.client().await, "kube-system");
    api.get_opt("kube-scheduler")
        .await
        .ok()??
        .spec?
        .holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_workload_binds_every_pod_on_a_small_cluster() {
    let cluster = Cluster::new().await;
    let options = skiff_scheduler::bench::BenchOptions {
        nodes: 30,
        pods: 200,
        ..Default::default()
    };
    let report = skiff_scheduler::bench::bench(cluster.client().await, options)
        .await
        .expect("the bench runs");
    assert_eq!((report.nodes, report.pods), (30, 200));
    assert!(report.pods_per_second > 0.0);
}
