//! 10,000 pods onto 1,000 simulated nodes, in-process and without an API:
//! the queue, the cache and two profiles (Kubernetes' default plugins and an
//! ECS profile) schedule every pod, binding is simulated by confirming the
//! assumption, and every placement is then checked against the constraints
//! the pod asked for.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;
use skiff_scheduler::cache::Cache;
use skiff_scheduler::framework::{pod_key, Framework, PodInfo, Snapshot};
use skiff_scheduler::profile::SchedulerConfiguration;
use skiff_scheduler::queue::{interest_of, QueueConfig, SchedulingQueue};

const NODES: usize = 1_000;
const PODS: usize = 10_000;
const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];
const TYPES: [&str; 3] = ["t2.micro", "m5.large", "c5.xlarge"];

fn node(i: usize) -> Node {
    let name = format!("node-{i:04}");
    let mut taints = Vec::new();
    if i.is_multiple_of(10) {
        taints.push(json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}));
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": ZONES[i % 3],
            "node.kubernetes.io/instance-type": TYPES[(i / 3) % 3],
        }},
        "spec": {"taints": taints},
        "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}},
    }))
    .expect("a valid node")
}

/// Pod kinds, by index: most ask for resources only; some spread over zones,
/// some keep one per host, some want gpu nodes, and some are placed by ECS.
fn pod(i: usize) -> Pod {
    let name = format!("pod-{i:05}");
    let mut spec = json!({"containers": [{"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]});
    let mut labels = json!({"app": "plain"});
    let mut annotations = json!({});
    match i % 10 {
        0 | 1 => {
            labels = json!({"app": "spread"});
            spec["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "spread"}}}]);
        }
        2 if i % 100 == 2 => {
            labels = json!({"app": "solo"});
            spec["affinity"] = json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "solo"}}, "topologyKey": "kubernetes.io/hostname"}]}});
        }
        3 => {
            labels = json!({"app": "gpu"});
            spec["nodeSelector"] = json!({"topology.kubernetes.io/zone": "zone-a"});
            spec["tolerations"] = json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
        }
        4 => {
            labels = json!({"app": "ecs"});
            spec["schedulerName"] = json!("ecs");
            annotations = json!({
                "ecs.skiff.dev/group": format!("svc-{}", i % 7),
                "ecs.skiff.dev/placement-constraints": json!([
                    {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ (m5|c5).*"}]).to_string(),
            });
            if i % 40 == 4 {
                annotations["ecs.skiff.dev/placement-constraints"] =
                    json!(json!([{"type": "distinctInstance"}]).to_string());
                annotations["ecs.skiff.dev/group"] = json!("distinct");
            }
        }
        _ => {}
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": labels, "annotations": annotations},
        "spec": spec,
    }))
    .expect("a valid pod")
}

fn frameworks() -> HashMap<String, Arc<Framework>> {
    let config = SchedulerConfiguration::parse(
        "profiles:
- schedulerName: default-scheduler
- schedulerName: ecs
  plugins:
    score:
      disabled: [{name: '*'}]
    multiPoint:
      enabled: [{name: EcsPlacement}]
  pluginConfig:
  - name: EcsPlacement
    args:
      placementStrategy:
      - {type: spread, field: 'attribute:topology.kubernetes.io/zone'}
      - {type: binpack, field: memory}
",
        "simulation.yaml",
    )
    .expect("parses");
    config
        .build("simulation.yaml", 42)
        .expect("valid")
        .into_iter()
        .map(|f| (f.scheduler_name().to_string(), Arc::new(f)))
        .collect()
}

#[test]
fn ten_thousand_pods_onto_a_thousand_nodes_respect_every_constraint() {
    let frameworks = frameworks();
    let mut cache = Cache::default();
    let nodes: Vec<Node> = (0..NODES).map(node).collect();
    for n in &nodes {
        cache.add_node(Arc::new(n.clone()));
    }
    let interest = interest_of(frameworks.values().flat_map(|f| f.plugins()));
    let mut queue = SchedulingQueue::new(QueueConfig::default(), interest);
    let now = Instant::now();
    for i in 0..PODS {
        queue.add(Arc::new(PodInfo::new(Arc::new(pod(i)))), now);
    }
    let mut snapshot = Snapshot::default();
    let mut placed: BTreeMap<String, String> = BTreeMap::new();
    let mut failures = Vec::new();
    while let Some(queued) = queue.pop(now) {
        cache.update_snapshot(&mut snapshot);
        let scheduler = queued
            .pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.clone())
            .unwrap_or("default-scheduler".into());
        match frameworks[&scheduler].schedule(&queued.pod, &snapshot) {
            Ok(result) => {
                // Bind: the informer's copy of the pod now carries spec.nodeName.
                let mut bound = (*queued.pod.pod).clone();
                bound.spec.as_mut().expect("spec").node_name = Some(result.node_name.clone());
                cache
                    .assume_pod(queued.pod.clone(), &result.node_name)
                    .expect("assumed once");
                cache.add_pod(Arc::new(bound));
                queue.done(&queued.pod.key);
                placed.insert(queued.pod.key.clone(), result.node_name);
            }
            Err(error) => failures.push((queued.pod.key.clone(), error.message())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} pods failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(placed.len(), PODS);
    check_placements(&nodes, &placed);
}

fn label<'n>(node: &'n Node, key: &str) -> &'n str {
    node.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
        .unwrap_or("")
}

fn check_placements(nodes: &[Node], placed: &BTreeMap<String, String>) {
    let by_name: HashMap<&str, &Node> = nodes
        .iter()
        .map(|n| (n.metadata.name.as_deref().unwrap_or(""), n))
        .collect();
    let mut cpu: HashMap<&str, i64> = HashMap::new();
    let mut pods_on: HashMap<&str, usize> = HashMap::new();
    let mut spread_per_zone: HashMap<&str, i64> = HashMap::new();
    let mut solo_hosts: HashMap<&str, usize> = HashMap::new();
    let mut distinct_hosts: HashMap<&str, usize> = HashMap::new();
    for i in 0..PODS {
        let p = pod(i);
        let node = by_name[placed[&pod_key(&p)].as_str()];
        let name = node.metadata.name.as_deref().unwrap_or("");
        *cpu.entry(name).or_default() += 250;
        *pods_on.entry(name).or_default() += 1;
        let tainted = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .is_some_and(|t| !t.is_empty());
        let app = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .cloned()
            .unwrap_or_default();
        assert!(
            !tainted || app == "gpu",
            "{} landed on tainted {name}",
            pod_key(&p)
        );
        match app.as_str() {
            "spread" => {
                *spread_per_zone
                    .entry(label(node, "topology.kubernetes.io/zone"))
                    .or_default() += 1
            }
            "solo" => *solo_hosts.entry(name).or_default() += 1,
            "gpu" => assert_eq!(
                label(node, "topology.kubernetes.io/zone"),
                "zone-a",
                "nodeSelector of {}",
                pod_key(&p)
            ),
            "ecs" => {
                let group =
                    &p.metadata.annotations.as_ref().expect("annotations")["ecs.skiff.dev/group"];
                if group == "distinct" {
                    *distinct_hosts.entry(name).or_default() += 1;
                } else {
                    assert_ne!(
                        label(node, "node.kubernetes.io/instance-type"),
                        "t2.micro",
                        "memberOf of {}",
                        pod_key(&p)
                    );
                }
            }
            _ => {}
        }
    }
    assert!(
        cpu.values().all(|&c| c <= 8000),
        "a node's cpu was overcommitted"
    );
    assert!(
        pods_on.values().all(|&c| c <= 110),
        "a node took more than 110 pods"
    );
    let (min, max) = (
        spread_per_zone.values().min().copied().unwrap_or(0),
        spread_per_zone.values().max().copied().unwrap_or(0),
    );
    assert!(max - min <= 1, "zone skew {spread_per_zone:?}");
    assert!(
        solo_hosts.values().all(|&c| c == 1),
        "two anti-affine pods shared a host"
    );
    assert!(
        distinct_hosts.values().all(|&c| c == 1),
        "distinctInstance broken"
    );
}
