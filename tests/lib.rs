//! End-to-end tests of skiff: real `skiff` processes driven by real clients.
//!
//! The tests live in `tests/tests/`; this library holds what they share.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

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
