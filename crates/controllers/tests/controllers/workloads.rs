use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Endpoints, Event, Pod, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::json;
use skiff_client::{Api, ListParams, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

use crate::common::{eventually, kubelet, Cluster, Manager, Outcome};

pub(crate) use skiff_testing::workloads::{labels, template};

/// A ReplicaSet of `replicas` nginx pods labelled `app: <name>`.
pub(crate) fn replica_set(name: &str, replicas: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: meta(name),
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels(name)),
                ..Default::default()
            },
            template: Some(template(name, "nginx")),
            min_ready_seconds: None,
        }),
        status: None,
    }
}

pub(crate) fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("default".into()),
        ..Default::default()
    }
}

pub(crate) async fn active_pods(pods: &Api<Pod>, app: &str) -> Vec<Pod> {
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("pods list");
    list.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_set_keeps_its_replicas_across_a_manager_restart() {
    let cluster = Cluster::new().await;
    let client = cluster.client().await;
    let manager = Manager::start(&cluster).await;
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let rs = replica_set("web", 5);
    sets.create(&PostParams::default(), &rs).await.unwrap();
    eventually("five pods", || async {
        active_pods(&pods, "web").await.len() == 5
    })
    .await;
    // The manager dies and a new one starts: nothing is created twice.
    manager.stop().await;
    let manager = Manager::start(&cluster).await;
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    eventually("two pods", || async {
        active_pods(&pods, "web").await.len() == 2
    })
    .await;
    let stop = CancellationToken::new();
    let _kubelet = kubelet(client.clone(), Outcome::Ready, stop.clone());
    eventually("ready replicas in status", || async {
        let rs = sets.get("web").await.unwrap();
        rs.status.and_then(|s| s.ready_replicas) == Some(2)
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        active_pods(&pods, "web").await.len(),
        2,
        "no more, no fewer"
    );
    stop.cancel();
    manager.stop().await;
}

pub(crate) fn deployment(replicas: i32, image: &str) -> Deployment {
    Deployment {
        metadata: meta("api"),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels("api")),
                ..Default::default()
            },
            template: template("api", image),
            ..Default::default()
        }),
        status: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_rollout_keeps_surge_and_availability_at_every_observed_moment() {
    let cluster = Cluster::new().await;
    let client = cluster.client().await;
    let stop = CancellationToken::new();
    let _kubelet = kubelet(client.clone(), Outcome::Ready, stop.clone());
    let manager = Manager::start(&cluster).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut d = deployment(4, "v1");
    d.metadata.annotations = Some(BTreeMap::from([
        (
            "ecs.skiff.io/minimum-healthy-percent".to_string(),
            "75".to_string(),
        ),
        (
            "ecs.skiff.io/maximum-percent".to_string(),
            "125".to_string(),
        ),
    ]));
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let done = |image: &'static str| {
        let (deployments, pods) = (deployments.clone(), pods.clone());
        async move {
            let d = deployments.get("api").await.unwrap();
            let status = d.status.clone().unwrap_or_default();
            let pods = active_pods(&pods, "api").await;
            let all_new = pods
                .iter()
                .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some(image));
            status.updated_replicas == Some(4)
                && status.available_replicas == Some(4)
                && pods.len() == 4
                && all_new
        }
    };
    eventually("the first rollout", || done("v1")).await;
    deployments
        .patch("api", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "v2"}]}}}})))
        .await
        .unwrap();
    // maxSurge = 125% - 100% of 4 = 1; maxUnavailable = 100% - 75% of 4 = 1.
    let mut restarted = false;
    let mut manager = Some(manager);
    for step in 0..3000 {
        let list = sets.list(&ListParams::default()).await.unwrap();
        let wanted: i32 = list
            .items
            .iter()
            .map(|rs| rs.spec.as_ref().unwrap().replicas.unwrap_or(0))
            .sum();
        assert!(
            wanted <= 5,
            "step {step}: ReplicaSets want {wanted} pods, above 4 + maxSurge 1"
        );
        let ready = active_pods(&pods, "api")
            .await
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        assert!(
            ready >= 3 || step < 2,
            "step {step}: {ready} pods ready, below 4 - maxUnavailable 1"
        );
        let new_size = list
            .items
            .iter()
            .filter(|rs| {
                rs.spec
                    .as_ref()
                    .unwrap()
                    .template
                    .as_ref()
                    .unwrap()
                    .spec
                    .as_ref()
                    .unwrap()
                    .containers[0]
                    .image
                    .as_deref()
                    == Some("v2")
            })
            .map(|rs| rs.spec.as_ref().unwrap().replicas.unwrap_or(0))
            .sum::<i32>();
        if !restarted && new_size >= 2 {
            // Kill the manager in the middle of the rollout; a new one carries on.
            manager.take().unwrap().stop().await;
            manager = Some(Manager::start(&cluster).await);
            restarted = true;
        }
        if done("v2").await {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(restarted, "the manager was restarted mid-rollout");
    eventually("the second rollout", || done("v2")).await;
    let list = sets.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 2, "one ReplicaSet per template");
    stop.cancel();
    manager.unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_counts_each_completion_once_across_a_manager_restart() {
    let cluster = Cluster::new().await;
    let client = cluster.client().await;
    let manager = Manager::start(&cluster).await;
    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut pod_template = template("pi", "perl");
    pod_template.spec.as_mut().unwrap().restart_policy = Some("Never".into());
    let job = Job {
        metadata: meta("pi"),
        spec: Some(JobSpec {
            completions: Some(4),
            parallelism: Some(2),
            template: pod_template,
            ..Default::default()
        }),
        status: None,
    };
    jobs.create(&PostParams::default(), &job).await.unwrap();
    eventually("two pods running in parallel", || async {
        active_pods(&pods, "pi").await.len() == 2
    })
    .await;
    manager.stop().await;
    let stop = CancellationToken::new();
    let _kubelet = kubelet(client.clone(), Outcome::Succeed, stop.clone());
    let manager = Manager::start(&cluster).await;
    eventually("the job completes", || async {
        let job = jobs.get("pi").await.unwrap();
        job.status.and_then(|s| s.conditions).is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Complete" && c.status == "True")
        })
    })
    .await;
    let job = jobs.get("pi").await.unwrap();
    let status = job.status.unwrap();
    assert_eq!(status.succeeded, Some(4), "each completion counted once");
    let all = pods
        .list(&ListParams::default().labels("app=pi"))
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 4, "no pod created twice");
    eventually("finalizers removed", || async {
        let all = pods
            .list(&ListParams::default().labels("app=pi"))
            .await
            .unwrap()
            .items;
        all.iter()
            .all(|p| p.metadata.finalizers.as_ref().is_none_or(|f| f.is_empty()))
    })
    .await;
    stop.cancel();
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_follow_ready_pods_of_a_service() {
    let cluster = Cluster::new().await;
    let client = cluster.client().await;
    let manager = Manager::start(&cluster).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let service = Service {
        metadata: meta("db"),
        spec: Some(ServiceSpec {
            selector: Some(labels("db")),
            ports: Some(vec![ServicePort {
                port: 5432,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    for name in ["db-0", "db-1"] {
        let pod = Pod {
            metadata: ObjectMeta {
                labels: Some(labels("db")),
                ..meta(name)
            },
            spec: template("db", "postgres").spec,
            status: None,
        };
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let stop = CancellationToken::new();
    let _kubelet = kubelet(client.clone(), Outcome::Ready, stop.clone());
    eventually("two ready addresses", || async {
        let Ok(Some(e)) = endpoints.get_opt("db").await else {
            return false;
        };
        let subsets = e.subsets.unwrap_or_default();
        subsets.len() == 1 && subsets[0].addresses.as_ref().map_or(0, |a| a.len()) == 2
    })
    .await;
    pods.delete("db-0", &Default::default()).await.unwrap();
    eventually("one address left", || async {
        let e = endpoints.get("db").await.unwrap();
        e.subsets
            .unwrap_or_default()
            .iter()
            .map(|s| s.addresses.as_ref().map_or(0, |a| a.len()))
            .sum::<usize>()
            == 1
    })
    .await;
    stop.cancel();
    manager.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_it_cannot_act_on_gets_a_warning_event_and_the_rest_go_on() {
    let cluster = Cluster::new().await;
    let client = cluster.client().await;
    let manager = Manager::start(&cluster).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let mut bad = deployment(2, "v1");
    bad.metadata.annotations = Some(BTreeMap::from([(
        "ecs.skiff.io/maximum-percent".to_string(),
        "50".to_string(),
    )]));
    deployments
        .create(&PostParams::default(), &bad)
        .await
        .unwrap();
    eventually("a warning naming why", || async {
        let list = events.list(&ListParams::default()).await.unwrap();
        list.items.iter().any(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.contains("at least 100"))
        })
    })
    .await;
    let mut good = deployment(1, "v1");
    good.metadata.name = Some("good".into());
    deployments
        .create(&PostParams::default(), &good)
        .await
        .unwrap();
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    eventually("the good one still rolls out", || async {
        sets.list(&ListParams::default()).await.unwrap().items.len() == 1
    })
    .await;
    manager.stop().await;
}
