//! A whole skiff control plane inside a test process: start a [`TestCluster`],
//! point a client at it, and tear it down when the test ends.
//!
//! This is for people testing their own controllers the way Go projects use
//! envtest, without its etcd and kube-apiserver binaries: the store, the API
//! server and (as they are enabled) the scheduler, controllers and kubelets run
//! as tasks of the test's own tokio runtime, and clients reach the API server
//! through an in-memory connection — no ports, no processes, no files outside a
//! temporary directory. Many clusters run side by side in one test binary.
//!
//! ```no_run
//! use skiff_testing::{Runtime, TestCluster};
//!
//! # async fn example() -> Result<(), skiff_testing::Error> {
//! let cluster = TestCluster::builder()
//!     .nodes(3)
//!     .runtime(Runtime::Hollow)
//!     .start()
//!     .await?;
//! let client = cluster.client().await?;
//! // … create objects through `client`, run your controller against it …
//! drop(cluster); // stops everything and removes the data directory
//! # Ok(())
//! # }
//! ```
//!
//! By default a cluster runs the scheduler and the controller manager (no
//! leader election: each is the only one) and no nodes; [`Builder::nodes`]
//! adds kubelets named `node-1` … `node-N`, with hollow containers (they run
//! nothing, and report Running at once) unless [`Builder::runtime`] says
//! otherwise. [`Builder::api_only`] leaves out everything but the store and
//! the API server, for testing a controller of your own alone.
//!
//! # Layout
//! - [`TestCluster`] and its [`Builder`]: start, hand out clients, stop.
//! - [`eventually`]: poll until the cluster reaches a state.
//! - [`workloads`]: the pod templates and selectors tests and benchmarks use.
//!
//! # Where to start
//! [`Builder::start`] shows what a cluster is made of, in the order it starts.
//!
//! # Caveats
//! One store member (no raft peers) per cluster; the store syncs its log to
//! the temporary directory's disk as a real one does. Kubelets serve no
//! logs or exec (no ports). A component that fails is logged, and the rest
//! go on.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod eventually;
pub mod workloads;

pub use eventually::{eventually, Observation};

use std::path::Path;
use std::sync::Arc;

use skiff_apiserver::{LocalStorage, Registry, RegistryConfig};
use skiff_client::Client;
use skiff_kubelet::runtime::hollow::HollowConfig;
use skiff_store::{Store, StoreConfig};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What starting a cluster or connecting to it can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The temporary data directory could not be made.
    #[error("cannot create the cluster's temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
    /// The store did not open.
    #[error("the cluster's store did not open: {0}")]
    Store(String),
    /// The API server could not create the system namespaces.
    #[error("the cluster's API server did not start: {0}")]
    Bootstrap(String),
    /// No in-process connection to the API server could be made.
    #[error("cannot connect to the cluster's API server: {0}")]
    Connect(String),
}

/// Which container runtime the cluster's kubelets use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Runtime {
    /// Simulated containers: nothing runs, pods report Running at once.
    #[default]
    Hollow,
    /// Plain child processes of the test (commands must exist on the host).
    Process,
}

/// How a [`TestCluster`] is set up; `TestCluster::builder()` makes one.
#[derive(Clone, Debug)]
pub struct Builder {
    registry: RegistryConfig,
    control_plane: bool,
    nodes: usize,
    runtime: Runtime,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            registry: RegistryConfig::default(),
            control_plane: true,
            nodes: 0,
            runtime: Runtime::default(),
        }
    }
}

impl Builder {
    /// Runs this many kubelets, named `node-1` … `node-N` (default none).
    pub fn nodes(mut self, nodes: usize) -> Builder {
        self.nodes = nodes;
        self
    }

    /// The kubelets' container runtime (default [`Runtime::Hollow`]).
    pub fn runtime(mut self, runtime: Runtime) -> Builder {
        self.runtime = runtime;
        self
    }

    /// Runs only the store and the API server: no scheduler, controllers
    /// or kubelets.
    pub fn api_only(mut self) -> Builder {
        self.control_plane = false;
        self.nodes = 0;
        self
    }

    /// Uses this registry configuration (watch cache sizes, service ranges, a
    /// seed for generated names).
    pub fn registry_config(mut self, config: RegistryConfig) -> Builder {
        self.registry = config;
        self
    }

    /// Starts the cluster: a store in a fresh temporary directory, then the
    /// API server's registry over it with the system namespaces created,
    /// then the scheduler, the controller manager and the kubelets.
    pub async fn start(self) -> Result<TestCluster, Error> {
        let dir = tempfile::Builder::new()
            .prefix("skiff-test-cluster-")
            .tempdir()
            .map_err(Error::TempDir)?;
        let store = Store::open(StoreConfig {
            data_dir: dir.path().join("store"),
            ..StoreConfig::default()
        })
        .await
        .map_err(|e| Error::Store(e.to_string()))?;
        let registry = Arc::new(Registry::new(
            Arc::new(LocalStorage::new(store.clone())),
            self.registry,
        ));
        registry
            .bootstrap()
            .await
            .map_err(|e| Error::Bootstrap(e.to_string()))?;
        let mut cluster = TestCluster {
            registry,
            store: Some(store),
            shutdown: CancellationToken::new(),
            components: JoinSet::new(),
            dir,
        };
        if self.control_plane {
            cluster.start_control_plane().await?;
        }
        for index in 1..=self.nodes {
            cluster.start_kubelet(index, self.runtime).await?;
        }
        Ok(cluster)
    }
}

/// A running control plane. Dropping it stops every part and removes its
/// data; [`TestCluster::stop`] does the same and waits for the store to close.
pub struct TestCluster {
    registry: Arc<Registry>,
    store: Option<Store>,
    shutdown: CancellationToken,
    components: JoinSet<()>,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// A builder with the defaults: Kubernetes' registry defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The store and the API server only, with generated names and
    /// allocations drawn from a fixed seed so that a test repeats itself:
    /// the cluster a component's own tests start, each running the component
    /// under test itself. Panics when it cannot start, as a test fixture does.
    pub async fn api_for_tests() -> TestCluster {
        TestCluster::builder()
            .api_only()
            .registry_config(RegistryConfig {
                seed: Some(1),
                ..RegistryConfig::default()
            })
            .start()
            .await
            .expect("the test cluster starts")
    }

    /// [`TestCluster::client`] for tests: panics when the in-process
    /// channel does not open.
    pub async fn test_client(&self) -> Client {
        self.client().await.expect("the in-process channel opens")
    }

    /// A new client of the cluster's API server, over a connection of its own.
    pub async fn client(&self) -> Result<Client, Error> {
        let channel = skiff_apiserver::grpc::in_process_channel(self.registry.clone())
            .await
            .map_err(|e| Error::Connect(e.to_string()))?;
        Ok(Client::new(channel))
    }

    /// The API server's registry, for tests that look below the API.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The cluster's data directory (removed when the cluster goes).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The token every part of the cluster stops on.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops every part and closes the store, waiting for them.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        while self.components.join_next().await.is_some() {}
        if let Some(store) = self.store.take() {
            store.close().await;
        }
    }
}

impl TestCluster {
    /// The scheduler and the controller manager, as tasks.
    async fn start_control_plane(&mut self) -> Result<(), Error> {
        let scheduler = skiff_scheduler::Config {
            leader_election: false,
            ..skiff_scheduler::Config::default()
        };
        let (client, token) = (self.client().await?, self.shutdown.clone());
        self.components.spawn(async move {
            if let Err(err) = skiff_scheduler::run(scheduler, client, token).await {
                tracing::error!("the scheduler stopped: {err}");
            }
        });
        let controllers = skiff_controllers::Config {
            leader_election: None,
            ..skiff_controllers::Config::default()
        };
        let (client, token) = (self.client().await?, self.shutdown.clone());
        self.components.spawn(async move {
            if let Err(err) = skiff_controllers::run(controllers, client, token).await {
                tracing::error!("the controller manager stopped: {err}");
            }
        });
        Ok(())
    }

    /// Kubelet `node-<index>`, as a task, its files under the data directory.
    async fn start_kubelet(&mut self, index: usize, runtime: Runtime) -> Result<(), Error> {
        let name = format!("node-{index}");
        let runtime = match runtime {
            Runtime::Process => skiff_kubelet::RuntimeChoice::Process,
            // Pod IPs of different nodes must not repeat: 10.244.<index>.x.
            Runtime::Hollow => skiff_kubelet::RuntimeChoice::Hollow(HollowConfig {
                pod_ip_base: std::net::Ipv4Addr::new(10, 244, (index % 256) as u8, 0),
                ..HollowConfig::default()
            }),
        };
        let config = skiff_kubelet::Config {
            node_name: name.clone(),
            runtime,
            root_dir: self.dir.path().join("kubelet").join(&name),
            listen: None,
            ..skiff_kubelet::Config::default()
        };
        let (client, token) = (self.client().await?, self.shutdown.clone());
        self.components.spawn(async move {
            if let Err(err) = skiff_kubelet::run(config, client, token).await {
                tracing::error!(node = %name, "the kubelet stopped: {err}");
            }
        });
        Ok(())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
