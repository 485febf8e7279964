use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Container, Node, NodeCondition, NodeStatus, Pod, PodSpec, PodTemplateSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, MicroTime, ObjectMeta};
use skiff_client::{Api, Client, ListParams, PostParams};
use skiff_controllers::Config;
use tokio_util::sync::CancellationToken;

use crate::common::{eventually, kubelet, Cluster, Manager, Outcome};

fn now() -> k8s_openapi::jiff::Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Microseconds, as a MicroTime keeps them, so each renewal differs.
    k8s_openapi::jiff::Timestamp::new(
        since.as_secs() as i64,
        (since.subsec_micros() * 1000) as i32,
    )
    .unwrap()
}

/// Plays the kubelets' Lease renewals for the nodes in `alive`, every 100 ms.
fn heartbeats(client: Client, alive: Arc<Mutex<BTreeSet<String>>>, stop: CancellationToken) {
    tokio::spawn(async move {
        let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
        while !stop.is_cancelled() {
            let names: Vec<String> = alive.lock().unwrap().iter().cloned().collect();
            for name in names {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some("kube-node-lease".into()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(name.clone()),
                        lease_duration_seconds: Some(40),
                        renew_time: Some(MicroTime(now())),
                        ..Default::default()
                    }),
                };
                match leases.get_opt(&name).await {
                    Ok(Some(mut current)) => {
                        current.spec = lease.spec;
                        let _ = leases
                            .replace(
                                &current.metadata.name.clone().unwrap_or_default(),
                                &PostParams::default(),
                                &current,
                            )
                            .await;
                    }
                    Ok(None) => {
                        let _ = leases.create(&PostParams::default(), &lease).await;
                    }
                    Err(_) => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

async fn ready_node(nodes: &Api<Node>, name: &str) {
    let node = Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut node = nodes.create(&PostParams::default(), &node).await.unwrap();
    node.status = Some(NodeStatus {
        conditions: Some(vec![NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            reason: Some("KubeletReady".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    nodes
        .replace_status(
            &node.metadata.name.clone().unwrap_or_default(),
            &PostParams::default(),
            &node,
        )
        .await
        .unwrap();
}

fn node_ready(node: &Node) -> &str {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map_or("Unknown", |c| c.status.as_str())
}

fn web_template() -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some("nginx".into()),
                ..Default::default()
            }],
            // Evicted one second after the taint (the default is 300 s).
            tolerations: Some(vec![Toleration {
                key: Some("node.kubernetes.io/unreachable".into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(1),
                value: None,
            }]),
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_heartbeating_is_tainted_and_its_pods_replaced() {
    let cluster = Cluster::new().await;
    let client = cluster.client().await;
    let config = || Config {
        leader_election: None,
        node_monitor_grace_period: Duration::from_secs(1),
        node_monitor_period: Duration::from_millis(100),
        ..Default::default()
    };
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["n1", "n2"] {
        ready_node(&nodes, name).await;
    }
    let alive = Arc::new(Mutex::new(BTreeSet::from([
        "n1".to_string(),
        "n2".to_string(),
    ])));
    let stop = CancellationToken::new();
    heartbeats(client.clone(), alive.clone(), stop.clone());
    // Two pods already running, one on each node; the ReplicaSet adopts them.
    for (name, node) in [("web-a", "n1"), ("web-b", "n2")] {
        let template = web_template();
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..template.metadata.unwrap()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                ..template.spec.unwrap()
            }),
            status: None,
        };
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let _kubelet = kubelet(client.clone(), Outcome::Ready, stop.clone());
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(2),
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                ..Default::default()
            },
            template: Some(web_template()),
            min_ready_seconds: None,
        }),
        status: None,
    };
    sets.create(&PostParams::default(), &rs).await.unwrap();
    let manager = Manager::start_with(&cluster, config()).await;
    eventually("both pods adopted", || async {
        let list = pods.list(&ListParams::default()).await.unwrap().items;
        list.len() == 2 && list.iter().all(|p| p.metadata.owner_references.is_some())
    })
    .await;
    alive.lock().unwrap().remove("n2");
    eventually("n2 is Unknown and tainted unreachable", || async {
        let node = nodes.get("n2").await.unwrap();
        let unknown = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Ready" && c.status == "Unknown")
            });
        let tainted = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|t| {
                t.iter()
                    .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute")
            });
        unknown && tainted
    })
    .await;
    // The manager dies and comes back in the middle of the failure.
    manager.stop().await;
    let manager = Manager::start_with(&cluster, config()).await;
    eventually("the pod on n2 is evicted and replaced", || async {
        let list = pods.list(&ListParams::default()).await.unwrap().items;
        let active: Vec<&Pod> = list
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let on_n2 = active
            .iter()
            .any(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some("n2"));
        active.len() == 2 && !on_n2
    })
    .await;
    assert!(
        nodes
            .get("n1")
            .await
            .unwrap()
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .is_empty(),
        "n1 is untouched"
    );
    // Heartbeats resume and the kubelet posts Ready again: the taint goes.
    // Like a kubelet, the test posts Ready until it sticks: a monitor pass
    // that has not seen the renewed Lease yet may write Unknown once more.
    alive.lock().unwrap().insert("n2".into());
    eventually("n2 is cleaned up", || async {
        let mut node = nodes.get("n2").await.unwrap();
        let untainted = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_none_or(|t| t.is_empty());
        if node_ready(&node) != "True" {
            node.status.get_or_insert_with(Default::default).conditions =
                Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]);
            let name = node.metadata.name.clone().unwrap_or_default();
            let _ = nodes
                .replace_status(&name, &PostParams::default(), &node)
                .await;
        }
        untainted && node_ready(&node) == "True"
    })
    .await;
    stop.cancel();
    manager.stop().await;
}
