//! An API server for one test: a store in a temporary directory and a
//! registry over it, reached through the API server's in-process channel.

use std::sync::Arc;
use std::time::Duration;

use skiff_apiserver::{LocalStorage, Registry, RegistryConfig};
use skiff_client::Client;
use skiff_store::{Store, StoreConfig};

pub struct Cluster {
    pub client: Client,
    _registry: Arc<Registry>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn new() -> Cluster {
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
                ..RegistryConfig::default()
            },
        ));
        registry.bootstrap().await.expect("the registry bootstraps");
        let channel = skiff_apiserver::grpc::in_process_channel(registry.clone())
            .await
            .expect("the in-process channel opens");
        Cluster {
            client: Client::new(channel),
            _registry: registry,
            _dir: dir,
        }
    }
}

/// Polls `check` every 50 ms until it returns `Some`; panics with `what`
/// after a generous bound (the bound only stops a hung test).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..1200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

/// One plain HTTP/1.1 request (`Connection: close`); the status code and body.
pub async fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the kubelet server accepts");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: kubelet\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("the response is read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (code, body.to_string())
}
