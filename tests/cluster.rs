//! A replicated store as real processes: N `skiff store` members, member `i`
//! on 127.0.0.`i+1`, each with its own data directory, client port and peer
//! port. Members can be killed (SIGKILL, their own pid), restarted on the same
//! data, and new members can be started to join after `member add`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions};

use crate::netns::TestNet;
use crate::{free_port, skiff_binary};

/// How long a member gets to open its data and serve.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const SERVING_LOG_LINE: &str = "serving etcd v3 API";

/// Raft timing and snapshot settings for a test cluster.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// `--heartbeat-interval` in milliseconds.
    pub heartbeat_ms: u64,
    /// `--election-timeout` in milliseconds.
    pub election_ms: u64,
    /// `--snapshot-count`.
    pub snapshot_count: u64,
    /// `--snapshot-catchup-entries`.
    pub catch_up_entries: u64,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            heartbeat_ms: 50,
            election_ms: 500,
            snapshot_count: 100_000,
            catch_up_entries: 5_000,
        }
    }
}

/// One member's addresses, data and process.
pub struct Member {
    /// The member's name, `m1`, `m2`, ….
    pub name: String,
    ip: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    starts: u32,
    /// `new` for a founding member, `existing` for one that joins later.
    state: &'static str,
    /// The network namespace it runs in, if any.
    namespace: Option<String>,
}

impl Member {
    /// The client URL.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.ip, self.client_port)
    }

    /// The peer URL.
    pub fn peer_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.peer_port)
    }

    /// Whether its process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A cluster of `skiff store` processes; dropping it kills every member.
pub struct StoreCluster {
    /// The members, founding ones first, in start order.
    pub members: Vec<Member>,
    options: ClusterOptions,
    /// Dropped after the members are killed (fields drop after `Drop::drop`).
    net: Option<TestNet>,
    dir: tempfile::TempDir,
}

impl StoreCluster {
    /// Starts `n` founding members and waits until each serves clients.
    pub fn start(n: usize, options: ClusterOptions) -> StoreCluster {
        Self::start_on(n, options, None)
    }

    /// Starts `n` founding members, each in its own network namespace of
    /// `net`, so that [`StoreCluster::isolate`] can partition them.
    pub fn start_in_namespaces(n: usize, options: ClusterOptions, net: TestNet) -> StoreCluster {
        Self::start_on(n, options, Some(net))
    }

    fn start_on(n: usize, options: ClusterOptions, net: Option<TestNet>) -> StoreCluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut cluster = StoreCluster {
            members: Vec::new(),
            options,
            net,
            dir,
        };
        for i in 0..n {
            let member = cluster.new_member(i, "new");
            cluster.members.push(member);
        }
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_until_serving(i);
        }
        cluster
    }

    fn new_member(&self, i: usize, state: &'static str) -> Member {
        let (ip, namespace) = match &self.net {
            Some(net) => (net.address(i), Some(net.namespace(i))),
            None => (format!("127.0.0.{}", i + 1), None),
        };
        Member {
            name: format!("m{}", i + 1),
            ip,
            // Each member has its own address, so fixed ports cannot clash
            // inside namespaces; on loopback they must be free ones.
            client_port: if namespace.is_some() {
                2379
            } else {
                free_port()
            },
            peer_port: if namespace.is_some() {
                2380
            } else {
                free_port()
            },
            child: None,
            starts: 0,
            state,
            namespace,
        }
    }

    /// Cuts member `i` off from the others (both ways); clients still reach it.
    pub fn isolate(&mut self, i: usize) {
        let net = self
            .net
            .as_mut()
            .expect("isolate needs a cluster in namespaces");
        net.isolate(i).expect("the partition is set up");
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        let net = self
            .net
            .as_mut()
            .expect("heal needs a cluster in namespaces");
        net.heal().expect("the partition is removed");
    }

    /// The client URLs of the running members.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.is_running())
            .map(Member::endpoint)
            .collect()
    }

    /// Prepares (but does not start) a member that will join with
    /// `--initial-cluster-state existing`; returns its index. Add it with
    /// MemberAdd using its peer URL, then [`StoreCluster::spawn_and_wait`].
    pub fn prepare_joining_member(&mut self) -> usize {
        let i = self.members.len();
        let member = self.new_member(i, "existing");
        self.members.push(member);
        i
    }

    /// Prepares member `i`, which no longer runs (removed from the cluster),
    /// to be replaced by a new member on the same addresses, as one replaces
    /// a failed host: its data directory is emptied and it will start with
    /// `--initial-cluster-state existing`. Add its peer URL with MemberAdd,
    /// then [`StoreCluster::spawn_and_wait`].
    pub fn prepare_replacement(&mut self, i: usize) {
        assert!(
            !self.members[i].is_running(),
            "member {} still runs",
            self.members[i].name
        );
        let data_dir = self.data_dir(i);
        if data_dir.exists() {
            std::fs::remove_dir_all(&data_dir).expect("the old data directory is removed");
        }
        self.members[i].state = "existing";
    }

    /// Starts member `i` and waits until it serves.
    pub fn spawn_and_wait(&mut self, i: usize) {
        self.spawn(i);
        self.wait_until_serving(i);
    }

    /// SIGKILLs member `i` (a power cut).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits (up to [`PATIENCE`]) for member `i`'s process to exit by itself,
    /// as a removed member's does; panics with its log if it never does.
    pub async fn wait_for_exit(&mut self, i: usize) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let member = &mut self.members[i];
            let Some(child) = member.child.as_mut() else {
                panic!("member {} is not running", member.name);
            };
            if let Some(status) = child.try_wait().expect("the member's status can be read") {
                self.members[i].child = None;
                return status;
            }
            if Instant::now() > deadline {
                panic!(
                    "member {} did not exit by itself within {PATIENCE:?}:\n{}",
                    self.members[i].name,
                    self.log(i)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills member `i` if it runs, then starts it again on the same data.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn_and_wait(i);
    }

    /// Member `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.members[i].name)
    }

    /// Everything member `i`'s current process logged.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i, self.members[i].starts)).unwrap_or_default()
    }

    /// Every member's logs, for failure messages.
    pub fn logs(&self) -> String {
        (0..self.members.len())
            .map(|i| format!("--- {} ---\n{}", self.members[i].name, self.log(i)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn log_path(&self, i: usize, start: u32) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}-{start}.log", self.members[i].name))
    }

    /// `--initial-cluster` for member `i`: the founding members, or for a
    /// joining member the running ones and itself (as etcd asks for).
    fn initial_cluster(&self, i: usize) -> String {
        let joining = self.members[i].state == "existing";
        self.members
            .iter()
            .enumerate()
            .filter(|(j, m)| {
                if joining {
                    *j == i || m.is_running()
                } else {
                    m.state == "new"
                }
            })
            .map(|(_, m)| m)
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) {
        self.members[i].starts += 1;
        let log_path = self.log_path(i, self.members[i].starts);
        let log = std::fs::File::create(&log_path).expect("a log file");
        let member = &self.members[i];
        let o = &self.options;
        let mut command = match &member.namespace {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(skiff_binary());
                c
            }
            None => Command::new(skiff_binary()),
        };
        let child = command
            .arg("store")
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(self.data_dir(i))
            .args(["--listen-client-urls", &member.endpoint()])
            .args(["--advertise-client-urls", &member.endpoint()])
            .args(["--listen-peer-urls", &member.peer_url()])
            .args(["--initial-advertise-peer-urls", &member.peer_url()])
            .args(["--initial-cluster", &self.initial_cluster(i)])
            .args(["--initial-cluster-state", member.state])
            .args(["--initial-cluster-token", "skiff-test"])
            .args(["--heartbeat-interval", &o.heartbeat_ms.to_string()])
            .args(["--election-timeout", &o.election_ms.to_string()])
            .args(["--snapshot-count", &o.snapshot_count.to_string()])
            .args([
                "--snapshot-catchup-entries",
                &o.catch_up_entries.to_string(),
            ])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("skiff store can be started");
        self.members[i].child = Some(child);
    }

    fn wait_until_serving(&mut self, i: usize) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.log(i).contains(SERVING_LOG_LINE) {
                return;
            }
            let exited = self.members[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.members[i].child = None;
                panic!(
                    "member {} exited before serving ({status}):\n{}",
                    self.members[i].name,
                    self.log(i)
                );
            }
            if Instant::now() > deadline {
                self.kill(i);
                panic!(
                    "member {} did not serve within {START_TIMEOUT:?}:\n{}",
                    self.members[i].name,
                    self.log(i)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for StoreCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

// Client-side helpers, through the etcd-client crate.

/// How long anything that should happen "soon" may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A client of `endpoints` with short connect and request timeouts.
pub async fn connect(endpoints: &[String]) -> Client {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5));
    Client::connect(endpoints, Some(options))
        .await
        .expect("connects")
}

/// The index of the member every running member names as leader.
pub async fn wait_for_leader(cluster: &StoreCluster) -> usize {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut views = Vec::new();
        for (i, member) in cluster.members.iter().enumerate() {
            if !member.is_running() {
                continue;
            }
            let mut client = connect(&[member.endpoint()]).await;
            if let Ok(status) = client.status().await {
                let own = status.header().map(|h| h.member_id()).unwrap_or(0);
                views.push((i, own, status.leader()));
            } else {
                views.push((i, 0, 0));
            }
        }
        let leader = views[0].2;
        if leader != 0 && views.iter().all(|v| v.2 == leader) {
            if let Some(&(i, _, _)) = views.iter().find(|v| v.1 == leader) {
                return i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader within {PATIENCE:?}: {views:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Keys written by background writers, and which were acknowledged.
pub struct Load {
    acked: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `writers` tasks putting unique keys under `prefix` through all `endpoints`.
    pub fn start(endpoints: Vec<String>, prefix: &str, writers: usize) -> Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..writers)
            .map(|w| {
                let (acked, stop, endpoints) = (acked.clone(), stop.clone(), endpoints.clone());
                let prefix = prefix.to_string();
                tokio::spawn(async move {
                    let mut client = connect(&endpoints).await;
                    // Bounded: a writer stops on request or after 100,000 attempts.
                    for n in 0..100_000u64 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let key = format!("{prefix}{w:02}-{n:06}");
                        match client.put(key.clone(), "v", None).await {
                            Ok(_) => acked.lock().unwrap().push(key),
                            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                })
            })
            .collect();
        Load { acked, stop, tasks }
    }

    /// How many writes were acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `more` further writes are acknowledged.
    pub async fn wait_for(&self, more: usize, cluster: &StoreCluster) {
        let target = self.acked() + more;
        let deadline = Instant::now() + PATIENCE;
        while self.acked() < target {
            assert!(
                Instant::now() < deadline,
                "writes stalled at {} (wanted {target})\n{}",
                self.acked(),
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the writers; returns every acknowledged key.
    pub async fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

/// Every acknowledged key is readable (linearizably) through `endpoint`.
pub async fn assert_all_present(endpoint: &str, prefix: &str, acked: &[String]) {
    let mut client = connect(&[endpoint.to_string()]).await;
    let got = client
        .get(
            prefix,
            Some(GetOptions::new().with_prefix().with_keys_only()),
        )
        .await
        .expect("a linearizable read");
    let present: BTreeSet<String> = got
        .kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|k| !present.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes are missing through {endpoint}, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// Waits until every running member serves the same revision with the same
/// key-space hash.
pub async fn wait_converged(cluster: &StoreCluster) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut seen = Vec::new();
        for ep in cluster.endpoints() {
            let mut client = connect(std::slice::from_ref(&ep)).await;
            let rev = client
                .get(
                    "/",
                    Some(GetOptions::new().with_serializable().with_count_only()),
                )
                .await
                .ok()
                .and_then(|r| r.header().map(|h| h.revision()));
            seen.push(rev);
        }
        let first = seen[0];
        if let Some(rev) = first.filter(|_| seen.iter().all(|r| *r == first)) {
            let mut hashes = Vec::new();
            for ep in cluster.endpoints() {
                let mut client = connect(&[ep]).await;
                hashes.push(client.hash_kv(rev).await.map(|h| h.hash()).ok());
            }
            if hashes[0].is_some() && hashes.iter().all(|h| *h == hashes[0]) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "members did not converge: revisions {seen:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
