//! `skiff bench controllers`: the controllers at scale, through the real
//! scheduler and kubelets, in one process.
//!
//! A whole cluster starts in-process (skiff-testing's `TestCluster`: the
//! store, the API server, the scheduler, the controller manager and
//! `--nodes` hollow kubelets, whose containers run nothing and report
//! Running at once), then two timings:
//! 1. **scale-up**: a ReplicaSet created with no replicas is scaled to
//!    `--pods`; the time until every one of its pods is Running — creation
//!    by the ReplicaSet controller, binding by the scheduler, status by the
//!    kubelets.
//! 2. **rollout**: a Deployment of `--rollout-pods` pods is created and
//!    waited for (not measured), then its image changes; the time until the
//!    rollout is complete as `skiff rollout status` judges it.
//!
//! The scale-up's pods are followed with an informer (a list, then a watch)
//! rather than repeated lists, so that watching does not load the server
//! more than the work measured; its cache is looked at every `POLL`, and the
//! report also says when every pod had been created and when every one was
//! bound, so the time can be told apart by component.
//!
//! # Caveats
//! The load generator, the control plane and the kubelets share one
//! process and its cores; hollow kubelets start no containers, so this
//! measures the control plane only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use skiff_client::{
    Api, Client, Informer, InformerConfig, ListParams, Patch, PatchParams, PostParams,
};
use skiff_testing::workloads::{selector, template};
use skiff_testing::{Runtime, TestCluster};
use tokio_util::sync::CancellationToken;

use super::common::BenchError;

/// How often progress is looked at.
const POLL: Duration = Duration::from_millis(100);
/// The namespace of the benchmark's objects.
const NAMESPACE: &str = "default";

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Hollow nodes.
    pub nodes: usize,
    /// Pods of the ReplicaSet scaled up.
    pub pods: i32,
    /// Pods of the Deployment rolled out.
    pub rollout_pods: i32,
    /// Give up on a phase after this long.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nodes: 100,
            pods: 10_000,
            rollout_pods: 1_000,
            timeout: Duration::from_secs(600),
        }
    }
}

impl Config {
    /// Refuses what cannot run.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.nodes == 0 || self.pods < 1 || self.rollout_pods < 1 {
            return Err(BenchError::InvalidConfig(
                "--nodes, --pods and --rollout-pods must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// The scale-up's phases: when, counted from the scale, every pod had been
/// created, bound to a node, and reported Running (each as first seen at a
/// [`POLL`]).
#[derive(Debug, Default)]
pub struct ScaleUp {
    created: Option<Duration>,
    bound: Option<Duration>,
    running: Duration,
}

impl ScaleUp {
    /// Records the phases `pods` show `elapsed` after the scale; true once
    /// `wanted` pods are Running.
    fn observe(&mut self, pods: &[Arc<Pod>], wanted: usize, elapsed: Duration) -> bool {
        let bound = pods.iter().filter(|p| node_name(p).is_some()).count();
        let running = pods.iter().filter(|p| phase(p) == Some("Running")).count();
        if pods.len() >= wanted {
            self.created.get_or_insert(elapsed);
        }
        if bound >= wanted {
            self.bound.get_or_insert(elapsed);
        }
        self.running = elapsed;
        running >= wanted
    }
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref().and_then(|s| s.phase.as_deref())
}

/// The timings of one run.
#[derive(Debug)]
pub struct Report {
    config: Config,
    scale_up: ScaleUp,
    rollout: Duration,
}

impl Report {
    /// The report as printed.
    pub fn render(&self) -> String {
        let seconds = |d: Option<Duration>| d.unwrap_or(self.scale_up.running).as_secs_f64();
        format!(
            "nodes: {}\nscale-up: {} pods Running in {:.2} s (all created at {:.2} s, all bound at {:.2} s)\nrollout: {} pods rolled out in {:.2} s\n",
            self.config.nodes,
            self.config.pods,
            self.scale_up.running.as_secs_f64(),
            seconds(self.scale_up.created),
            seconds(self.scale_up.bound),
            self.config.rollout_pods,
            self.rollout.as_secs_f64(),
        )
    }
}

fn failed(phase: &str) -> impl Fn(String) -> BenchError + '_ {
    move |reason| BenchError::ApiSetup {
        workload: format!("controllers {phase}"),
        reason,
    }
}

/// Starts the cluster, runs both phases, and tears the cluster down.
pub async fn run(config: &Config) -> Result<Report, BenchError> {
    let cluster = TestCluster::builder()
        .nodes(config.nodes)
        .runtime(Runtime::Hollow)
        .start()
        .await
        .map_err(|e| failed("cluster")(e.to_string()))?;
    let client = cluster
        .client()
        .await
        .map_err(|e| failed("cluster")(e.to_string()))?;
    let scale_up = scale_up(&client, config)
        .await
        .map_err(failed("scale-up"))?;
    let rollout = rollout(&client, config).await.map_err(failed("rollout"))?;
    cluster.stop().await;
    Ok(Report {
        config: config.clone(),
        scale_up,
        rollout,
    })
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NAMESPACE.into()),
        ..Default::default()
    }
}

/// Polls `done` until it holds or `timeout` passes.
async fn until<F, Fut>(what: &str, timeout: Duration, mut done: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, String>>,
{
    let start = Instant::now();
    while !done().await? {
        if start.elapsed() > timeout {
            return Err(format!("{what}: not done after {timeout:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

async fn scale_up(client: &Client, config: &Config) -> Result<ScaleUp, String> {
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), NAMESPACE);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let rs = ReplicaSet {
        metadata: meta("bench-scale"),
        spec: Some(ReplicaSetSpec {
            replicas: Some(0),
            selector: selector("bench-scale"),
            template: Some(template("bench-scale", "bench")),
            min_ready_seconds: None,
        }),
        status: None,
    };
    sets.create(&PostParams::default(), &rs)
        .await
        .map_err(|e| e.to_string())?;
    let config_list = InformerConfig {
        list: ListParams::default().labels("app=bench-scale"),
        ..InformerConfig::default()
    };
    let mut informer = Informer::new(pods, config_list);
    let cache = informer.store();
    let stop = CancellationToken::new();
    tokio::spawn(informer.run(stop.clone()));
    cache.wait_for_sync().await;
    let start = Instant::now();
    let scale = json!({"spec": {"replicas": config.pods}});
    sets.patch("bench-scale", &PatchParams::default(), &Patch::Merge(scale))
        .await
        .map_err(|e| e.to_string())?;
    let wanted = config.pods as usize;
    let phases = std::sync::Mutex::new(ScaleUp::default());
    let all_running = until("every pod Running", config.timeout, || async {
        let mut phases = phases.lock().map_err(|e| e.to_string())?;
        Ok(phases.observe(&cache.list(), wanted, start.elapsed()))
    })
    .await;
    stop.cancel();
    all_running?;
    phases.into_inner().map_err(|e| e.to_string())
}

async fn rollout(client: &Client, config: &Config) -> Result<Duration, String> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let deployment = Deployment {
        metadata: meta("bench-rollout"),
        spec: Some(DeploymentSpec {
            replicas: Some(config.rollout_pods),
            selector: selector("bench-rollout"),
            template: template("bench-rollout", "bench:v1"),
            ..Default::default()
        }),
        status: None,
    };
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .map_err(|e| e.to_string())?;
    let complete = || async {
        let d = deployments
            .get("bench-rollout")
            .await
            .map_err(|e| e.to_string())?;
        skiff_controllers::deployment::rollout_status(&d).map(|(_, done)| done)
    };
    until("the first rollout", config.timeout, complete).await?;
    let start = Instant::now();
    let image = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "bench:v2"}
    ]}}}});
    deployments
        .patch(
            "bench-rollout",
            &PatchParams::default(),
            &Patch::Merge(image),
        )
        .await
        .map_err(|e| e.to_string())?;
    until("the image rollout", config.timeout, complete).await?;
    Ok(start.elapsed())
}
