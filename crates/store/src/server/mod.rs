//! `skiff store`: a store member serving etcd's v3 gRPC API on TCP.
//!
//! [`run`] opens the store and serves until `shutdown` is cancelled; [`serve`]
//! does the serving on listeners the caller bound (port 0 in tests). Client
//! connections go through the `authority` module, which repairs the malformed
//! `:authority` some etcdctl commands send; their writes are gathered by
//! skiff-proto's [`Coalesce`](skiff_proto::conn::Coalesce).

mod authority;

use std::net::SocketAddr;

use futures::StreamExt;
use skiff_proto::conn::Coalesce;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::grpc::{self, Advertised};
use crate::store::Store;

/// How long open streams may run on after a shutdown starts.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Everything `skiff store` is configured with; flags follow etcd's names.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The store itself.
    pub store: StoreConfig,
    /// `--listen-client-urls`: where to accept clients.
    pub listen_client_urls: Vec<String>,
    /// `--advertise-client-urls`: what MemberList tells clients; the listen URLs when empty.
    pub advertise_client_urls: Vec<String>,
    /// `--listen-peer-urls`: where to accept the other members; none for a lone member.
    pub listen_peer_urls: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            store: StoreConfig::default(),
            listen_client_urls: vec!["http://127.0.0.1:2379".into()],
            advertise_client_urls: Vec::new(),
            listen_peer_urls: Vec::new(),
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A URL flag that is not `http://host:port`.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The address could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Parses `http://host:port` (as etcd's URL flags) into a socket address.
pub fn parse_url(url: &str) -> Result<SocketAddr, ServerError> {
    crate::url::parse(url)
        .map_err(|crate::url::InvalidUrl { url, reason }| ServerError::InvalidUrl { url, reason })
}

/// Opens the store and serves etcd's API on every listen URL until `shutdown`.
pub async fn run(config: ServerConfig, shutdown: CancellationToken) -> Result<(), ServerError> {
    let addrs = config
        .listen_client_urls
        .iter()
        .map(|u| parse_url(u))
        .collect::<Result<Vec<_>, _>>()?;
    let mut listeners = Vec::new();
    for addr in addrs {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        listeners.push(listener);
    }
    let mut peer_listeners = Vec::new();
    for url in &config.listen_peer_urls {
        let addr = parse_url(url)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        peer_listeners.push(listener);
    }
    let advertised = Advertised {
        client_urls: if config.advertise_client_urls.is_empty() {
            config.listen_client_urls.clone()
        } else {
            config.advertise_client_urls.clone()
        },
        peer_urls: config.store.initial_advertise_peer_urls.clone(),
    };
    let mut store_config = config.store.clone();
    store_config.advertise_client_urls = advertised.client_urls.clone();
    let store = Store::open(store_config).await?;
    let peers = serve_peers(peer_listeners, store.clone(), shutdown.clone());
    // A store that stops on its own (removed from the cluster, log unwritable)
    // takes the server down with it, as etcd exits.
    {
        let (store, shutdown) = (store.clone(), shutdown.clone());
        tokio::spawn(async move {
            store.stopped().await;
            shutdown.cancel();
        });
    }
    for listener in &listeners {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "serving etcd v3 API");
        }
    }
    let served = serve(listeners, store.clone(), advertised, shutdown.clone());
    // Open client streams (watches, keep-alives) get a moment to finish after
    // the shutdown starts; then the process goes on without them.
    let result = tokio::select! {
        result = served => result,
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    };
    // Closing the store ends the peer streams this member serves, so the peer
    // listeners can finish (their graceful shutdown waits for open streams).
    store.close().await;
    for peer in peers {
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, peer).await;
    }
    result
}

/// Serves the raft peer service on `listeners` until `shutdown` is cancelled.
pub(crate) fn serve_peers(
    listeners: Vec<TcpListener>,
    store: Store,
    shutdown: CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    listeners
        .into_iter()
        .map(|listener| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "serving raft peers");
            }
            let service = store.peer_service();
            let shutdown = shutdown.clone();
            let incoming = TcpListenerStream::new(listener).map(|conn| {
                let conn = conn?;
                conn.set_nodelay(true)?;
                Ok::<_, std::io::Error>(conn)
            });
            tokio::spawn(async move {
                let result = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await;
                if let Err(err) = result {
                    tracing::error!(%err, "the peer listener failed");
                }
            })
        })
        .collect()
}

/// Serves etcd's API for `store` on `listeners` until `shutdown` is cancelled.
pub async fn serve(
    listeners: Vec<TcpListener>,
    store: Store,
    advertised: Advertised,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let mut servers = Vec::new();
    for listener in listeners {
        let routes = grpc::routes(store.clone(), advertised.clone());
        let shutdown = shutdown.clone();
        // Small request/response pairs must not wait on Nagle's algorithm and
        // delayed ACKs (tens of milliseconds per read otherwise).
        let incoming = TcpListenerStream::new(listener).map(|conn| {
            let conn = conn?;
            conn.set_nodelay(true)?;
            Ok::<_, std::io::Error>(Coalesce::new(authority::AuthorityStream::new(conn)))
        });
        servers.push(tokio::spawn(async move {
            tonic::transport::Server::builder()
                .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await
        }));
    }
    for server in servers {
        match server.await {
            Ok(result) => result?,
            Err(join) => tracing::error!(%join, "a listener task failed"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_like_etcds_flags() {
        assert_eq!(
            parse_url("http://127.0.0.1:2379").unwrap(),
            "127.0.0.1:2379".parse().unwrap()
        );
        assert_eq!(
            parse_url("http://localhost:2379/").unwrap(),
            "127.0.0.1:2379".parse().unwrap()
        );
        let err = parse_url("https://127.0.0.1:2379").unwrap_err().to_string();
        assert!(err.contains("TLS is not supported"), "{err}");
        assert!(parse_url("127.0.0.1:2379").is_err());
    }
}
