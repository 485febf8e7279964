//! The scheduler's shell: the API on one side, the pure core on the other.
//!
//! ```text
//!  Pod informer ─┐  handlers: pending pods → queue; bound pods → cache
//! Node informer ─┤            every change → queue.move_all_on_event
//!  PDB informer ─┘            budgets → cache (read by preemption)
//!                      │
//!        cycle loop:  pop ─► cache.update_snapshot ─► Framework::schedule
//!                      │ fits:   cache.assume_pod, Reserve, Permit,
//!                      │         spawn { PreBind, Bind (pods/binding) }
//!                      │           ok  → cache.finish_binding, queue.done
//!                      │           err → cache.forget_pod, queue backoff
//!                      │ no fit: PostFilter (preemption), queue.add_unschedulable,
//!                      │         spawn { PodScheduled=False, FailedScheduling Event }
//! ```
//!
//! [`run`] loads the profiles (a bad file stops it here, naming the file and
//! field), then, with leader election on, waits to hold the Lease, schedules
//! while it does, and stops scheduling as soon as it does not.
//!
//! # Layout
//! - `handlers`: informer events into the cache and the queue.
//! - `cycle`: the loop, one pod at a time.
//! - `binder`: `DefaultBinder`, the Bind plugin over `pods/binding`.
//! - `events`: PodScheduled conditions, Events and preemption's API calls.
//! - `metrics`: attempt and binding latencies, recorded when [`Config::metrics`] asks.
//!
//! # Caveats
//! One scheduling loop; no extenders; no metrics endpoint.

mod binder;
mod cycle;
mod events;
mod handlers;
mod metrics;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use skiff_client::{Api, Client, Informer, InformerConfig, LeaderElectionConfig, LeaderElector};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cache::{Cache, DEFAULT_ASSUMED_POD_TTL};
use crate::framework::Framework;
use crate::profile::{SchedulerConfiguration, DEFAULT_SCHEDULER_NAME};
use crate::queue::{interest_of, QueueConfig, SchedulingQueue};
use crate::Error;

pub use binder::DefaultBinder;
pub use metrics::{Metrics, Percentiles};

/// How the scheduler runs. `Default` gives the default profile, leader
/// election off, and kube-scheduler's queue timings.
#[derive(Clone, Debug)]
pub struct Config {
    /// A KubeSchedulerConfiguration YAML file with the profiles.
    pub config_file: Option<PathBuf>,
    /// Profiles given directly (used when `config_file` is `None`).
    pub configuration: SchedulerConfiguration,
    /// Elect one active scheduler among several through a Lease.
    pub leader_election: bool,
    /// The Lease (`kube-system/kube-scheduler` by default), this candidate's
    /// identity (unique per process by default) and the timings.
    pub leader_election_config: LeaderElectionConfig,
    /// Backoff and flush periods of the queue.
    pub queue: QueueConfig,
    /// How long an assumed pod waits for the informer after binding.
    pub assumed_pod_ttl: Duration,
    /// Seed of the random tie-breaking and ECS `random` strategy.
    pub seed: u64,
    /// Record a `Scheduled` Event for every bound pod, as kube-scheduler does.
    pub record_scheduled_events: bool,
    /// Where to record scheduling and binding latencies (benchmarks); none
    /// by default.
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            config_file: None,
            configuration: SchedulerConfiguration::default(),
            leader_election: false,
            leader_election_config: LeaderElectionConfig {
                lease_name: "kube-scheduler".into(),
                // Unique per process, so two schedulers never share an
                // identity; a binary may set its host name instead.
                identity: format!(
                    "skiff-scheduler-{}-{:08x}",
                    std::process::id(),
                    rand::random::<u32>()
                ),
                ..LeaderElectionConfig::default()
            },
            queue: QueueConfig::default(),
            assumed_pod_ttl: DEFAULT_ASSUMED_POD_TTL,
            seed: 0,
            record_scheduled_events: true,
            metrics: None,
        }
    }
}

/// The cache and the queue, behind one lock shared by handlers and the loop.
pub(crate) struct State {
    pub(crate) cache: Cache,
    pub(crate) queue: SchedulingQueue,
}

/// What the handlers, the loop and the binding tasks share.
pub(crate) struct Context {
    /// The client and Event recorder of everything written besides Bindings.
    pub(crate) writer: events::Writer,
    pub(crate) profiles: HashMap<String, Arc<Framework>>,
    pub(crate) state: Mutex<State>,
    /// Woken when the queue may have a pod ready.
    pub(crate) wake: Notify,
    pub(crate) config: Config,
}

/// The time now on tokio's clock (paused in tests), as the queue and cache take it.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// The profile a pod asks for (`spec.schedulerName`, `default-scheduler` when unset).
pub(crate) fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or(DEFAULT_SCHEDULER_NAME)
}

impl Context {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Builds one framework per profile, each binding through `client`.
pub fn load_profiles(
    config: &Config,
    client: &Client,
) -> Result<HashMap<String, Arc<Framework>>, Error> {
    let (configuration, source) = match &config.config_file {
        Some(path) => (
            SchedulerConfiguration::read(path)?,
            path.display().to_string(),
        ),
        None => (config.configuration.clone(), "<inline>".to_string()),
    };
    let frameworks = configuration.build(&source, config.seed)?;
    Ok(frameworks
        .into_iter()
        .map(|f| {
            let f = f.with_binder(Arc::new(DefaultBinder::new(client.clone())));
            (f.scheduler_name().to_string(), Arc::new(f))
        })
        .collect())
}

/// Runs the scheduler until `shutdown`: profiles, leader election, informers
/// and the scheduling loop.
pub async fn run(config: Config, client: Client, shutdown: CancellationToken) -> Result<(), Error> {
    let profiles = load_profiles(&config, &client)?;
    if !config.leader_election {
        return schedule(config, client, profiles, shutdown).await;
    }
    let elector = LeaderElector::new(client.clone(), config.leader_election_config.clone())?;
    let mut leading = elector.leading();
    tokio::spawn(elector.run(shutdown.clone()));
    loop {
        // Wait to lead.
        while !*leading.borrow_and_update() {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                changed = leading.changed() => if changed.is_err() { return Ok(()) },
            }
        }
        tracing::info!("leading: scheduling starts");
        let term = shutdown.child_token();
        let lost = term.clone();
        let mut watch = leading.clone();
        tokio::spawn(async move {
            while *watch.borrow_and_update() {
                if watch.changed().await.is_err() {
                    break;
                }
            }
            lost.cancel();
        });
        schedule(config.clone(), client.clone(), profiles.clone(), term).await?;
        if shutdown.is_cancelled() {
            return Ok(());
        }
        tracing::warn!("lost the lease: scheduling stops until it is held again");
    }
}

/// Informers, handlers and the loop, until `shutdown`.
async fn schedule(
    config: Config,
    client: Client,
    profiles: HashMap<String, Arc<Framework>>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let interest = interest_of(profiles.values().flat_map(|f| f.plugins()));
    let context = Arc::new(Context {
        state: Mutex::new(State {
            cache: Cache::new(config.assumed_pod_ttl),
            queue: SchedulingQueue::new(config.queue.clone(), interest),
        }),
        wake: Notify::new(),
        writer: events::Writer::new(client.clone()),
        profiles,
        config,
    });
    let nodes = handlers::node_informer(
        Informer::new(Api::<Node>::all(client.clone()), InformerConfig::default()),
        &context,
    );
    let pods = handlers::pod_informer(
        Informer::new(Api::<Pod>::all(client.clone()), InformerConfig::default()),
        &context,
    );
    let budgets = handlers::pod_disruption_budget_informer(
        Informer::new(
            Api::<PodDisruptionBudget>::all(client),
            InformerConfig::default(),
        ),
        &context,
    );
    let (mut nodes, mut pods, mut budgets) = (nodes, pods, budgets);
    let stores = (nodes.store(), pods.store(), budgets.store());
    let tasks = [
        tokio::spawn(nodes.run(shutdown.clone())),
        tokio::spawn(pods.run(shutdown.clone())),
        tokio::spawn(budgets.run(shutdown.clone())),
    ];
    tokio::select! {
        _ = shutdown.cancelled() => {}
        // As kube-scheduler, start once every cache has listed.
        _ = async {
            stores.0.wait_for_sync().await;
            stores.1.wait_for_sync().await;
            stores.2.wait_for_sync().await;
        } => {
            tracing::info!("caches synced: scheduling");
            cycle::run_loop(context.clone(), shutdown.clone()).await;
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}
