//! The registry's test fixture: a [`Registry`] over either backend the API
//! server supports — an in-process [`skiff_store::Store`] ([`LocalStorage`]) or
//! a real etcd 3.4 process ([`EtcdStorage`]) — so one set of scenarios checks
//! that both behave the same.
//!
//! [`scenarios!`] makes two tests of each `async fn name(backend: Backend)`,
//! `local::name` and `etcd::name`. The etcd ones start `etcd` (from `$PATH` or
//! `/usr/bin/etcd`) on free 127.0.0.1 ports with a temporary data directory,
//! and kill it by pid when the fixture is dropped, also when a test panics.
//! Without an etcd binary they are skipped with a message, unless `CI=true`,
//! where a missing etcd fails them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use skiff_api::resources::{lookup, Resource};
use skiff_api::status::ApiError;
use skiff_proto::etcdserverpb::kv_client::KvClient;
use skiff_proto::etcdserverpb::{CompactionRequest, RangeRequest, TxnRequest, TxnResponse};
use skiff_store::{Store, StoreConfig};

use crate::registry::{Registry, RegistryConfig, Reply, WriteOptions};
use crate::storage::{EtcdStorage, LocalStorage, Storage};

/// Which store a scenario runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    /// skiff's own store, in this process.
    Local,
    /// A real etcd process, over its gRPC API.
    Etcd,
}

/// Makes two tests of each scenario `async fn name(backend: Backend)` named:
/// `local::name` over the in-process store and `etcd::name` over real etcd.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::registry::tests::fixture::Backend::Local).await
                }
            )*
        }

        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::registry::tests::fixture::etcd_binary().is_some() {
                        super::$name($crate::registry::tests::fixture::Backend::Etcd).await
                    }
                }
            )*
        }
    };
}
pub(crate) use scenarios;

/// The etcd binary, if there is one. Without one, a test under `CI=true`
/// fails here; otherwise it says it is skipped.
pub(crate) fn etcd_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|candidate| candidate.is_file())
    });
    let found = on_path.or_else(|| {
        let debian = PathBuf::from("/usr/bin/etcd");
        debian.is_file().then_some(debian)
    });
    let ci = std::env::var("CI").ok();
    match etcd_or_skip(found, ci.as_deref()) {
        Ok(Some(binary)) => Some(binary),
        Ok(None) => {
            eprintln!("skipped: no etcd binary on PATH or at /usr/bin/etcd");
            None
        }
        Err(why) => panic!("{why}"),
    }
}

/// What to do about the etcd binary `found`: use it, skip (`Ok(None)`), or
/// fail when CI (`CI=true`) must run the etcd tests.
fn etcd_or_skip(found: Option<PathBuf>, ci: Option<&str>) -> Result<Option<PathBuf>, String> {
    match (found, ci) {
        (Some(binary), _) => Ok(Some(binary)),
        (None, Some("true")) => Err("etcd is required for the registry's etcd tests (CI=true), but no etcd binary is on PATH or at /usr/bin/etcd".into()),
        (None, _) => Ok(None),
    }
}

/// A free port on 127.0.0.1 (free when asked; etcd start is retried if taken since).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// A real etcd process with its data in a temporary directory.
pub(crate) struct EtcdProcess {
    child: Option<Child>,
    binary: PathBuf,
    client_port: u16,
    peer_port: u16,
    dir: tempfile::TempDir,
}

impl EtcdProcess {
    /// Starts etcd on free ports and waits until it answers.
    pub(crate) async fn start() -> EtcdProcess {
        let binary = etcd_binary().expect("etcd is installed");
        for _attempt in 0..5 {
            let mut etcd = EtcdProcess {
                child: None,
                binary: binary.clone(),
                client_port: free_port(),
                peer_port: free_port(),
                dir: tempfile::tempdir().expect("a temporary directory"),
            };
            if etcd.spawn().await {
                return etcd;
            }
            // A port was taken meanwhile: try others, in a fresh directory.
        }
        panic!("etcd exited at startup five times; are 127.0.0.1 ports available?")
    }

    /// The client URL.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Spawns etcd; true once it answers, false if it exited first.
    async fn spawn(&mut self) -> bool {
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).expect("a log file");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let client = self.endpoint();
        let child = Command::new(&self.binary)
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--logger=zap")
            .arg("--log-level=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd starts");
        self.child = Some(child);
        let storage = EtcdStorage::connect(&[client]).expect("a valid URL");
        for _ in 0..400 {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return false;
            }
            let probe = storage.range(RangeRequest {
                key: b"/".to_vec(),
                ..Default::default()
            });
            if probe.await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("etcd did not answer; its log:\n{}", self.log())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// Kills etcd (by its pid) and waits for it to go.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills etcd and starts it again on the same data and ports.
    pub(crate) async fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn().await,
            "etcd did not come back on its ports; its log:\n{}",
            self.log()
        );
    }

    /// Compacts etcd's history up to `revision`.
    pub(crate) async fn compact(&self, revision: i64) {
        let mut kv = KvClient::connect(self.endpoint())
            .await
            .expect("etcd answers");
        kv.compact(CompactionRequest {
            revision,
            physical: true,
        })
        .await
        .expect("etcd compacts");
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The store under a fixture's registry.
pub(crate) enum TestStore {
    Local {
        store: Store,
        dir: tempfile::TempDir,
    },
    Etcd(EtcdProcess),
}

/// Opens the store in `dir` (a store just closed there may still hold sled's
/// lock for a moment; `Store::open` waits for it).
pub(crate) async fn open_store(dir: &Path) -> Store {
    let config = StoreConfig {
        data_dir: dir.join("data"),
        ..Default::default()
    };
    Store::open(config)
        .await
        .unwrap_or_else(|err| panic!("the store does not open: {err}"))
}

impl TestStore {
    async fn start(backend: Backend) -> TestStore {
        match backend {
            Backend::Local => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let store = open_store(dir.path()).await;
                TestStore::Local { store, dir }
            }
            Backend::Etcd => TestStore::Etcd(EtcdProcess::start().await),
        }
    }

    /// A new storage handle on this store, as a newly started API server makes.
    pub(crate) fn storage(&self) -> Arc<dyn Storage> {
        match self {
            TestStore::Local { store, .. } => Arc::new(LocalStorage::new(store.clone())),
            TestStore::Etcd(etcd) => {
                Arc::new(EtcdStorage::connect(&[etcd.endpoint()]).expect("a valid URL"))
            }
        }
    }

    /// Stops the store and starts it again on the same data.
    async fn restart(self) -> TestStore {
        match self {
            TestStore::Local { store, dir } => {
                store.close().await;
                drop(store);
                let store = open_store(dir.path()).await;
                TestStore::Local { store, dir }
            }
            TestStore::Etcd(mut etcd) => {
                etcd.restart().await;
                TestStore::Etcd(etcd)
            }
        }
    }
}

pub(crate) struct Fixture {
    pub(crate) registry: Arc<Registry>,
    pub(crate) store: TestStore,
    config: RegistryConfig,
}

impl Fixture {
    /// A bootstrapped registry over an in-process store.
    pub(crate) async fn new() -> Fixture {
        Fixture::on(Backend::Local).await
    }

    /// A bootstrapped registry over `backend`.
    pub(crate) async fn on(backend: Backend) -> Fixture {
        Fixture::with_config(backend, RegistryConfig::default()).await
    }

    /// A bootstrapped registry over `backend` set up with `config` (seed 1).
    pub(crate) async fn with_config(backend: Backend, config: RegistryConfig) -> Fixture {
        let store = TestStore::start(backend).await;
        let config = RegistryConfig {
            seed: Some(1),
            ..config
        };
        let registry = Arc::new(Registry::new(store.storage(), config.clone()));
        registry.bootstrap().await.unwrap();
        Fixture {
            registry,
            store,
            config,
        }
    }

    /// A second registry over the same store, as another API server would be.
    pub(crate) fn another_registry(&self) -> Registry {
        Registry::new(self.store.storage(), self.config.clone())
    }

    /// Stops the registry and the store, and starts both again on the same data.
    pub(crate) async fn restart(self) -> Fixture {
        let Fixture {
            registry,
            store,
            config,
        } = self;
        drop(registry);
        let store = store.restart().await;
        // The same seed: the same addresses are tried first.
        let registry = Arc::new(Registry::new(store.storage(), config.clone()));
        Fixture {
            registry,
            store,
            config,
        }
    }

    /// The store's current revision.
    pub(crate) async fn revision(&self) -> i64 {
        self.registry
            .storage()
            .range(RangeRequest {
                key: b"/".to_vec(),
                ..Default::default()
            })
            .await
            .expect("the store answers")
            .header
            .expect("a response header")
            .revision
    }

    /// Compacts the store's history up to `revision`.
    pub(crate) async fn compact(&self, revision: i64) {
        match &self.store {
            TestStore::Local { store, .. } => {
                store
                    .compact(CompactionRequest {
                        revision,
                        physical: false,
                    })
                    .await
                    .expect("the store compacts");
            }
            TestStore::Etcd(etcd) => etcd.compact(revision).await,
        }
    }

    /// Runs a raw txn on the store, as another writer would.
    pub(crate) async fn txn(&self, req: TxnRequest) -> TxnResponse {
        self.registry
            .storage()
            .txn(req)
            .await
            .expect("the store answers")
    }

    /// The `mod_revision` of `key` in the store.
    pub(crate) async fn mod_revision(&self, key: &str) -> Option<i64> {
        let resp = self
            .registry
            .storage()
            .range(RangeRequest {
                key: key.as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .expect("the store answers");
        resp.kvs.first().map(|kv| kv.mod_revision)
    }

    pub(crate) async fn try_create(
        &self,
        resource: &str,
        ns: &str,
        object: Value,
    ) -> Result<Reply, ApiError> {
        self.registry
            .create(
                r(resource),
                ns,
                &serde_json::to_vec(&object).unwrap(),
                &WriteOptions::default(),
            )
            .await
    }

    pub(crate) async fn create(&self, resource: &str, ns: &str, object: Value) -> Value {
        self.try_create(resource, ns, object)
            .await
            .expect("create succeeds")
            .object
    }

    pub(crate) async fn update(
        &self,
        resource: &str,
        ns: &str,
        object: &Value,
    ) -> Result<Value, ApiError> {
        self.update_sub(resource, ns, "", object).await
    }

    pub(crate) async fn update_sub(
        &self,
        resource: &str,
        ns: &str,
        subresource: &str,
        object: &Value,
    ) -> Result<Value, ApiError> {
        let name = object["metadata"]["name"].as_str().unwrap();
        self.registry
            .update(
                r(resource),
                ns,
                name,
                subresource,
                &serde_json::to_vec(object).unwrap(),
                &WriteOptions::default(),
            )
            .await
            .map(|reply| reply.object)
    }

    pub(crate) async fn get(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.registry.get(r(resource), ns, name, "").await
    }
}

pub(crate) fn r(name: &str) -> &'static Resource {
    lookup(name).unwrap_or_else(|| panic!("no resource {name}"))
}

pub(crate) fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

pub(crate) fn config_map(name: &str, count: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
           "data": {"count": count.to_string()}})
}

pub(crate) fn rv(object: &Value) -> i64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn without_etcd_ci_fails_and_elsewhere_skips() {
    let etcd = PathBuf::from("/usr/bin/etcd");
    assert_eq!(
        etcd_or_skip(Some(etcd.clone()), Some("true")),
        Ok(Some(etcd))
    );
    assert!(etcd_or_skip(None, Some("true"))
        .unwrap_err()
        .starts_with("etcd is required"));
    assert_eq!(etcd_or_skip(None, None), Ok(None));
    assert_eq!(etcd_or_skip(None, Some("false")), Ok(None));
}
