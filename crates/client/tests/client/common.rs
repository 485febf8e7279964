//! A cluster for one test: a store in a temporary directory, a registry over
//! it, and the gRPC API service reached through in-memory links that
//! [`Cluster::cut`] breaks and [`Cluster::heal`] allows again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skiff_apiserver::{LocalStorage, Registry, RegistryConfig};
use skiff_client::Client;
use skiff_store::{Store, StoreConfig};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

pub struct Cluster {
    pub registry: Arc<Registry>,
    links: Arc<Links>,
    _dir: tempfile::TempDir,
}

/// The connections between clients and the service.
struct Links {
    up: AtomicBool,
    open: Mutex<Vec<AbortHandle>>,
    incoming: mpsc::UnboundedSender<DuplexStream>,
}

impl Cluster {
    pub async fn new() -> Cluster {
        Cluster::with_config(RegistryConfig::default()).await
    }

    pub async fn with_config(config: RegistryConfig) -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Store::open(StoreConfig {
            data_dir: dir.path().join("data"),
            ..Default::default()
        })
        .await
        .expect("the store opens");
        let registry = Arc::new(Registry::new(
            Arc::new(LocalStorage::new(store)),
            RegistryConfig {
                seed: Some(1),
                ..config
            },
        ));
        registry.bootstrap().await.expect("the registry bootstraps");

        // The service takes each new link's far end as an incoming connection.
        let (incoming, accepted) = mpsc::unbounded_channel::<DuplexStream>();
        let accepted = futures::stream::unfold(accepted, |mut rx| async move {
            rx.recv().await.map(|io| (Ok::<_, std::io::Error>(io), rx))
        });
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_routes(skiff_apiserver::grpc::routes(registry.clone()))
                .serve_with_incoming(accepted),
        );
        Cluster {
            registry,
            links: Arc::new(Links {
                up: AtomicBool::new(true),
                open: Mutex::new(Vec::new()),
                incoming,
            }),
            _dir: dir,
        }
    }

    /// A client whose connections go through the links [`Cluster::cut`] breaks.
    pub fn client(&self) -> Client {
        let links = self.links.clone();
        let channel = tonic::transport::Endpoint::from_static("http://cluster.invalid")
            .connect_with_connector_lazy(tower::service_fn(move |_: tonic::transport::Uri| {
                let links = links.clone();
                async move { links.connect().map(hyper_util::rt::TokioIo::new) }
            }));
        Client::new(channel)
    }

    /// A client over the API server's own in-process channel, never cut.
    pub async fn direct_client(&self) -> Client {
        let channel = skiff_apiserver::grpc::in_process_channel(self.registry.clone())
            .await
            .expect("the in-process channel opens");
        Client::new(channel)
    }

    /// Breaks every open link and refuses new ones until [`Cluster::heal`].
    pub fn cut(&self) {
        self.links.up.store(false, Ordering::SeqCst);
        for link in self.links.open.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    /// Lets clients connect again.
    pub fn heal(&self) {
        self.links.up.store(true, Ordering::SeqCst);
    }
}

impl Links {
    /// A new link: the client's end, relayed to an end the service accepts.
    fn connect(&self) -> std::io::Result<DuplexStream> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the test cut the link to the API server",
            ));
        }
        let (client_end, mut relay_client) = tokio::io::duplex(1 << 20);
        let (mut relay_server, server_end) = tokio::io::duplex(1 << 20);
        self.incoming
            .send(server_end)
            .map_err(|_| std::io::Error::other("the API service stopped"))?;
        let relay = tokio::spawn(async move {
            let _ = tokio::io::copy_bidirectional(&mut relay_client, &mut relay_server).await;
        });
        self.open.lock().unwrap().push(relay.abort_handle());
        Ok(client_end)
    }
}

/// Polls `check` every 20 ms until it holds; panics with `what` after a
/// generous bound (the machine may be slow; the bound only stops a hung test).
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never happened: {what}");
}
