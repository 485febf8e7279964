//! An API server for one test: skiff-testing's TestCluster with the store and
//! the API server only, so each test runs its own kubelet; and an exec
//! driven by hand against a runtime ([`ExecSession`]).

use std::sync::Arc;

use skiff_client::Client;
use skiff_kubelet::runtime::{ExecChunk, ExecRequest, ExecStreams, Runtime, TerminalSize};
use skiff_testing::TestCluster;
use tokio::sync::mpsc;

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

/// An exec running beside a test, driven as the kubelet's server drives
/// one: typing, resizing, reading the output as it comes, ending stdin.
pub struct ExecSession {
    stdin: Option<mpsc::Sender<Vec<u8>>>,
    pub resize: mpsc::Sender<TerminalSize>,
    output: Option<mpsc::Receiver<ExecChunk>>,
    stdout: String,
    stderr: String,
    exit: tokio::task::JoinHandle<skiff_kubelet::runtime::Result<i32>>,
}

impl ExecSession {
    /// Starts `command` in the container `id`, with stdin, on a terminal
    /// when `tty`.
    pub fn start(runtime: Arc<dyn Runtime>, id: &str, command: &[&str], tty: bool) -> ExecSession {
        let (stdin, stdin_rx) = mpsc::channel(4);
        let (resize, resize_rx) = mpsc::channel(4);
        let (output_tx, output) = mpsc::channel(4);
        let request = ExecRequest {
            command: command.iter().map(|s| s.to_string()).collect(),
            tty,
            stdin: true,
            timeout: None,
        };
        let streams = ExecStreams {
            stdin: stdin_rx,
            resize: resize_rx,
            output: output_tx,
        };
        let id = id.to_string();
        let exit = tokio::spawn(async move { runtime.exec(&id, &request, streams).await });
        ExecSession {
            stdin: Some(stdin),
            resize,
            output: Some(output),
            stdout: String::new(),
            stderr: String::new(),
            exit,
        }
    }

    pub async fn type_in(&self, text: &str) {
        let stdin = self.stdin.as_ref().expect("stdin is open");
        stdin.send(text.as_bytes().to_vec()).await.expect("typed");
    }

    fn take(&mut self, chunk: ExecChunk) {
        match chunk {
            ExecChunk::Stdout(data) => self.stdout.push_str(&String::from_utf8_lossy(&data)),
            ExecChunk::Stderr(data) => self.stderr.push_str(&String::from_utf8_lossy(&data)),
        }
    }

    /// Reads output until stdout holds `text`; returns stdout so far.
    pub async fn read_until(&mut self, text: &str) -> String {
        while !self.stdout.contains(text) {
            let output = self.output.as_mut().expect("still reading");
            match output.recv().await {
                Some(chunk) => self.take(chunk),
                None => panic!("the output ended before {text:?}: {:?}", self.stdout),
            }
        }
        self.stdout.clone()
    }

    /// Ends stdin, reads the rest; (exit code, stdout, stderr).
    pub async fn finish(mut self) -> (i32, String, String) {
        drop(self.stdin.take());
        let mut output = self.output.take().expect("still reading");
        while let Some(chunk) = output.recv().await {
            self.take(chunk);
        }
        let code = self
            .exit
            .await
            .expect("the exec task")
            .expect("the command ran");
        (code, self.stdout, self.stderr)
    }

    /// Stops reading, as a caller that has gone; how the exec ended.
    pub async fn hang_up(mut self) -> skiff_kubelet::runtime::Result<i32> {
        drop(self.output.take());
        self.exit.await.expect("the exec task")
    }
}
