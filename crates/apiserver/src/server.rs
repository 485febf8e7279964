//! `skiff apiserver`: the gRPC API on TCP over a remote etcd (or `skiff store`).
//!
//! [`run`] connects to the store and serves until `shutdown` is cancelled;
//! [`serve`] serves a registry the caller built (in-process store in
//! `skiff up`, port 0 in tests).

use std::net::SocketAddr;
use std::sync::Arc;

use futures::StreamExt;
use skiff_proto::conn::Coalesce;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::registry::{Registry, RegistryConfig};
use crate::storage::{EtcdStorage, StorageError};

/// Bytes a connection gathers before a write must go out first. One change
/// fanned out to the hundred watch streams a client typically puts on one
/// connection is about a hundred DATA frames, each the size of the object;
/// four times the default lets them leave in one system call.
const MAX_BUFFERED: usize = 4 * skiff_proto::conn::DEFAULT_MAX_BUFFERED;

/// Everything `skiff apiserver` is configured with.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `--etcd-servers`: the store's client URLs.
    pub etcd_servers: Vec<String>,
    /// `--listen`: where to serve gRPC.
    pub listen: SocketAddr,
    /// The registry's settings.
    pub registry: RegistryConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            etcd_servers: vec!["http://127.0.0.1:2379".into()],
            listen: SocketAddr::from(([127, 0, 0, 1], 6443)),
            registry: RegistryConfig::default(),
        }
    }
}

/// Why the API server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be reached.
    #[error("cannot reach the store: {0}")]
    Storage(#[from] StorageError),
    /// The store answered the first requests with an error.
    #[error("preparing the API server failed: {0}")]
    Startup(String),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Connects to the etcd servers and serves the API on `config.listen` until `shutdown`.
pub async fn run(config: ServerConfig, shutdown: CancellationToken) -> Result<(), ServerError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
    let storage = EtcdStorage::connect(&config.etcd_servers)?;
    let registry = Arc::new(Registry::new(Arc::new(storage), config.registry));
    registry
        .bootstrap()
        .await
        .map_err(|e| ServerError::Startup(e.message))?;
    serve(listener, registry, shutdown).await
}

/// Serves the API (and reflection) for `registry` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving the skiff API (gRPC)");
    }
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        let conn = conn?;
        conn.set_nodelay(true)?;
        Ok::<_, std::io::Error>(Coalesce::with_max_buffered(conn, MAX_BUFFERED))
    });
    let server = tonic::transport::Server::builder()
        .add_routes(crate::grpc::routes(registry))
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    tokio::select! {
        result = server => result?,
        _ = drain_deadline(&shutdown) => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the shutdown grace period; closing them");
        }
    }
    Ok(())
}

/// How long open requests and watches may run on after shutdown starts: a
/// watch never ends by itself, so the server stops waiting for it.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves `SHUTDOWN_GRACE` after `shutdown` is cancelled.
pub async fn drain_deadline(shutdown: &CancellationToken) {
    shutdown.cancelled().await;
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}
