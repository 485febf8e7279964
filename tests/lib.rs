//! End-to-end tests of skiff: real `skiff` processes driven by real clients.
//!
//! The tests live in `tests/tests/`; this library holds what they share.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cluster;
pub mod linearizability;
pub mod netns;
pub mod up;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of the `skiff` binary from this workspace, built on first use.
///
/// Cargo only builds a package's binaries for that package's own integration
/// tests, so the end-to-end suite builds `skiff` itself (once per test process,
/// with the same profile as the tests) unless it is already there.
pub fn skiff_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_skiff).clone()
}

fn build_skiff() -> PathBuf {
    let mut dir = std::env::current_exe().expect("the test executable has a path");
    dir.pop(); // the test executable itself
    if dir.ends_with("deps") {
        dir.pop();
    }
    let release = dir.ends_with("release");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "--package", "skiff", "--bin", "skiff"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("cargo can be started to build skiff");
    assert!(
        status.success(),
        "building the skiff binary failed: {status}"
    );
    let binary = dir.join("skiff");
    assert!(binary.exists(), "no skiff binary at {}", binary.display());
    binary
}

/// A store serving etcd's API in this process, on a free port of 127.0.0.1,
/// with its data in a temporary directory. Dropping it stops the server.
pub struct InProcessStore {
    /// The client URL, as `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The store itself, for looking behind the API.
    pub store: skiff_store::Store,
    shutdown: tokio_util::sync::CancellationToken,
    _dir: tempfile::TempDir,
}

impl InProcessStore {
    /// Starts a store with the default configuration.
    pub async fn start() -> InProcessStore {
        Self::start_with(|_| {}).await
    }

    /// Starts a store after `tune` adjusted its configuration.
    pub async fn start_with(tune: impl FnOnce(&mut skiff_store::StoreConfig)) -> InProcessStore {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = skiff_store::StoreConfig {
            data_dir: dir.path().join("data"),
            ..Default::default()
        };
        tune(&mut config);
        let store = skiff_store::Store::open(config)
            .await
            .expect("the store opens");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let endpoint = format!("http://{}", listener.local_addr().expect("a bound address"));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let advertised = skiff_store::grpc::Advertised {
            client_urls: vec![endpoint.clone()],
            peer_urls: vec!["http://127.0.0.1:2380".into()],
        };
        tokio::spawn(skiff_store::server::serve(
            vec![listener],
            store.clone(),
            advertised,
            shutdown.clone(),
        ));
        InProcessStore {
            endpoint,
            store,
            shutdown,
            _dir: dir,
        }
    }
}

impl Drop for InProcessStore {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How long a `skiff store` process gets to open its data and start serving.
const STORE_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The line `skiff store` logs once its data is open and its listeners serve.
const SERVING_LOG_LINE: &str = "serving etcd v3 API";

/// A `skiff store` process on a free port of 127.0.0.1, with its data in a
/// temporary directory. Dropping it kills the process (its own pid, SIGKILL).
///
/// The process can be killed and started again on the same data directory and
/// port, which is how the crash tests play a power cut.
pub struct StoreProcess {
    child: Option<std::process::Child>,
    port: u16,
    starts: u32,
    dir: tempfile::TempDir,
    /// Flags added to every start, after the data directory and client URL.
    args: Vec<String>,
}

impl StoreProcess {
    /// Starts a store on a fresh data directory and waits until it serves.
    pub fn start() -> StoreProcess {
        StoreProcess::start_with_args(&[])
    }

    /// As [`StoreProcess::start`], with `args` added to the command line of
    /// this start and every restart.
    pub fn start_with_args(args: &[&str]) -> StoreProcess {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let mut store = StoreProcess {
            child: None,
            port,
            starts: 0,
            dir,
            args: args.iter().map(|arg| arg.to_string()).collect(),
        };
        store.spawn();
        store
    }

    /// The client URL, as `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The client address without a scheme, as `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The process id of the running store, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|child| child.id())
    }

    /// Kills the store with SIGKILL, as a power cut would: no shutdown path runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL to this child's own pid.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the store if it runs, then starts it again on the same data
    /// directory and port, and waits until it serves.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Everything the current (or last) process logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path(self.starts)).unwrap_or_default()
    }

    /// Everything every start of this store logged, oldest first.
    pub fn all_logs(&self) -> String {
        (1..=self.starts)
            .filter_map(|start| std::fs::read_to_string(self.log_path(start)).ok())
            .collect()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self, start: u32) -> PathBuf {
        self.dir.path().join(format!("store-{start}.log"))
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log_path = self.log_path(self.starts);
        let log = std::fs::File::create(&log_path).expect("a log file for the store");
        let child = Command::new(skiff_binary())
            .arg("store")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen-client-urls")
            .arg(self.endpoint())
            .args(&self.args)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("skiff store can be started");
        self.child = Some(child);
        self.wait_until_serving();
    }

    /// Polls the log for the serving line; panics with the log if the process
    /// exits or takes longer than [`STORE_START_TIMEOUT`].
    fn wait_until_serving(&mut self) {
        let deadline = std::time::Instant::now() + STORE_START_TIMEOUT;
        loop {
            if self.log().contains(SERVING_LOG_LINE) {
                return;
            }
            let child = self.child.as_mut().expect("the store was spawned");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                panic!(
                    "skiff store on port {} exited before serving ({status}):\n{}",
                    self.port,
                    self.log()
                );
            }
            if std::time::Instant::now() > deadline {
                self.kill();
                panic!(
                    "skiff store on port {} did not serve within {STORE_START_TIMEOUT:?}:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for StoreProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port of 127.0.0.1 that was free a moment ago: the OS picks it for a
/// listener that is closed at once, so the process under test can bind it.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("a bound address").port()
}
