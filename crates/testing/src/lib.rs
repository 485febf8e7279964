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
//! use skiff_testing::TestCluster;
//!
//! # async fn example() -> Result<(), skiff_testing::Error> {
//! let cluster = TestCluster::builder().start().await?;
//! let client = cluster.client().await?;
//! // … create objects through `client`, run your controller against it …
//! drop(cluster); // stops everything and removes the data directory
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`TestCluster`] and its [`Builder`]: start, hand out clients, stop.
//!
//! # Where to start
//! [`Builder::start`] shows what a cluster is made of, in the order it starts.
//!
//! # Caveats
//! One store member (no raft peers) per cluster; the store syncs its log to
//! the temporary directory's disk as a real one does.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::Path;
use std::sync::Arc;

use skiff_apiserver::{LocalStorage, Registry, RegistryConfig};
use skiff_client::Client;
use skiff_store::{Store, StoreConfig};
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

/// How a [`TestCluster`] is set up; `TestCluster::builder()` makes one.
#[derive(Clone, Debug, Default)]
pub struct Builder {
    registry: RegistryConfig,
}

impl Builder {
    /// Uses this registry configuration (watch cache sizes, service ranges, a
    /// seed for generated names).
    pub fn registry_config(mut self, config: RegistryConfig) -> Builder {
        self.registry = config;
        self
    }

    /// Starts the cluster: a store in a fresh temporary directory, then the
    /// API server's registry over it with the system namespaces created.
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
        Ok(TestCluster {
            registry,
            store: Some(store),
            shutdown: CancellationToken::new(),
            dir,
        })
    }
}

/// A running control plane. Dropping it stops every part and removes its
/// data; [`TestCluster::stop`] does the same and waits for the store to close.
pub struct TestCluster {
    registry: Arc<Registry>,
    store: Option<Store>,
    shutdown: CancellationToken,
    dir: tempfile::TempDir,
}

impl TestCluster {
    /// A builder with the defaults: Kubernetes' registry defaults.
    pub fn builder() -> Builder {
        Builder::default()
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

    /// Stops every part and closes the store, waiting for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(store) = self.store.take() {
            store.close().await;
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
