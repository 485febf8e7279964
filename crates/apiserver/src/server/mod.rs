//! `skiff apiserver`: the API on one TCP port — gRPC and Kubernetes' REST
//! API, over TLS or plain TCP — over a remote etcd (or `skiff store`).
//!
//! [`run`] connects to the store and serves until `shutdown` is cancelled;
//! [`serve`] serves a registry the caller built (in-process store in
//! `skiff up`, port 0 in tests).
//!
//! # Layout
//! - `mod.rs`: configuration, [`run`] and [`serve`].
//! - `connection.rs`: the accept loop; TLS or plain by the first byte; each
//!   request to gRPC or REST by its content type; draining on shutdown.
//! - [`tls`]: the rustls configuration from kube-apiserver's TLS flags.
//! - [`pki`]: the cluster CA and serving certificate `skiff up` keeps.

mod connection;
pub mod pki;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::registry::{Registry, RegistryConfig};
use crate::storage::{EtcdStorage, StorageError};
pub use tls::{TlsError, TlsFiles};

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
    /// TLS and plain-HTTP settings.
    pub serve: ServeOptions,
}

/// How the port is served besides the registry behind it.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// `--tls-cert-file`, `--tls-private-key-file`, `--client-ca-file`: serve
    /// TLS (REST needs it unless `insecure`).
    pub tls: Option<TlsFiles>,
    /// `--insecure`: serve the REST API over plain HTTP too.
    pub insecure: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            etcd_servers: vec!["http://127.0.0.1:2379".into()],
            listen: SocketAddr::from(([127, 0, 0, 1], 6443)),
            registry: RegistryConfig::default(),
            serve: ServeOptions::default(),
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
    /// The TLS files could not be used.
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
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
    serve(listener, registry, &config.serve, shutdown).await
}

/// Serves the API — gRPC (with reflection) and REST — for `registry` on
/// `listener` until `shutdown`, then drains open requests for at most
/// [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    options: &ServeOptions,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let tls = match &options.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(files)?)),
        None => None,
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = tls.is_some(), insecure = options.insecure, "serving the skiff API (gRPC and REST)");
    }
    let front = connection::Front {
        grpc: crate::grpc::routes(registry.clone()),
        rest: crate::rest::Rest::new(registry),
        tls,
        insecure: options.insecure,
        max_buffered: MAX_BUFFERED,
    };
    connection::accept(listener, Arc::new(front), shutdown, SHUTDOWN_GRACE).await;
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
