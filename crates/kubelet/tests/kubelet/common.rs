//! An API server for one test: skiff-testing's TestCluster with the store and
//! the API server only, so each test runs its own kubelet.

use skiff_client::Client;
use skiff_testing::TestCluster;

pub use skiff_testing::eventually;

pub struct Cluster {
    pub client: Client,
    _inner: TestCluster,
}

impl Cluster {
    pub async fn new() -> Cluster {
        let inner = TestCluster::api_for_tests().await;
        Cluster {
            client: inner.test_client().await,
            _inner: inner,
        }
    }
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
