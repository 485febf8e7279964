//! `skiff lab` as a user drives it: `lab up` with three servers, the short
//! commands against its control socket, and the cluster surviving the loss
//! of its store leader and a node, and a partitioned store member falling
//! behind and catching up. Kubelets run the hollow runtime, so no root.
//!
//! Every process the lab starts is killed by pid when a test ends, passed or
//! failed (the pids are in `lab.json`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use etcd_client::{Client, GetOptions};
use serde_json::Value;
use skiff_e2e::skiff_binary;

/// One lab at a time: each is fifteen processes on the same loopback
/// addresses, and two starting at once on a small machine slow each other
/// past the short grace periods.
static ONE_LAB: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running `skiff lab up`, its directory a temporary one (also `$HOME`).
struct Lab {
    supervisor: Child,
    home: tempfile::TempDir,
}

impl Lab {
    /// Starts a lab with short grace periods, and waits for its banner.
    async fn start(nodes: usize) -> Lab {
        let home = tempfile::tempdir().expect("a temporary directory");
        let supervisor = Command::new(skiff_binary())
            .env("HOME", home.path())
            .args(["lab", "up", "--servers", "3", "--runtime", "hollow"])
            .args(["--nodes", &nodes.to_string()])
            .arg("--dir")
            .arg(home.path().join("lab"))
            // Short grace periods so a dead node's pods move within seconds.
            .args(["--node-monitor-grace-period", "6s"])
            .args(["--node-lease-duration-seconds", "2"])
            .args(["--leader-elect-lease-duration", "6s"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(home.path().join("up.out")).unwrap())
            .stderr(std::fs::File::create(home.path().join("up.log")).unwrap())
            .spawn()
            .expect("skiff lab up starts");
        let mut lab = Lab { supervisor, home };
        lab.eventually("the lab printing its banner", |lab| {
            let out = std::fs::read_to_string(lab.home.path().join("up.out")).unwrap_or_default();
            out.contains("The skiff lab is up.")
                .then_some(())
                .ok_or("no banner yet".into())
        })
        .await;
        if let Ok(Some(status)) = lab.supervisor.try_wait() {
            panic!("skiff lab up exited with {status}:\n{}", lab.log());
        }
        lab
    }

    fn dir(&self) -> PathBuf {
        self.home.path().join("lab")
    }

    /// `skiff ARGS` with the lab's client config.
    fn skiff(&self, args: &[&str]) -> Output {
        Command::new(skiff_binary())
            .env("HOME", self.home.path())
            .args(args)
            .output()
            .expect("skiff runs")
    }

    /// `skiff lab VERB [NAME] --dir DIR`, which must succeed; its stdout.
    fn lab(&self, args: &[&str]) -> String {
        let mut all = vec!["lab"];
        all.extend_from_slice(args);
        let dir = self.dir();
        all.extend(["--dir", dir.to_str().unwrap()]);
        let out = self.skiff(&all);
        assert!(
            out.status.success(),
            "skiff {all:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `skiff get … -o json`, parsed, or `None` while it fails.
    fn get_json(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "json"]);
        let out = self.skiff(&all);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// `lab.json`.
    fn state(&self) -> Value {
        let text = std::fs::read_to_string(self.dir().join("lab.json")).expect("lab.json exists");
        serde_json::from_str(&text).expect("lab.json parses")
    }

    /// The client URL of store member `name`.
    fn store_endpoint(&self, name: &str) -> String {
        let state = self.state();
        let process = state["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {state}"));
        format!("http://{}", process["address"].as_str().unwrap())
    }

    /// The STATE of process `name` in `lab.json`.
    fn process_state(&self, name: &str) -> String {
        let state = self.state();
        let process = state["processes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name);
        process.map_or(String::new(), |p| p["state"].as_str().unwrap_or("").into())
    }

    /// The last lines of process `name`'s log.
    fn process_log(&self, name: &str) -> String {
        let log = self.dir().join("logs").join(format!("{name}.log"));
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The store leader `lab status` names.
    fn store_leader(&self) -> Option<String> {
        let status = self.lab(&["status"]);
        let leader = status
            .lines()
            .find_map(|l| l.strip_prefix("store leader: "))?;
        leader.starts_with("store-").then(|| leader.to_string())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("up.log")).unwrap_or_default()
    }

    /// Polls `check` a bounded number of times, 200 ms apart.
    /// The store leader, once the members agree on one.
    async fn wait_for_leader(&self) -> String {
        let mut leader = None;
        self.eventually("a store leader", |lab| {
            leader = lab.store_leader();
            leader.is_some().then_some(()).ok_or("none".into())
        })
        .await;
        leader.expect("eventually saw a leader")
    }

    async fn eventually(&self, what: &str, mut check: impl FnMut(&Lab) -> Result<(), String>) {
        let mut last = String::new();
        for _ in 0..600 {
            match check(self) {
                Ok(()) => return,
                Err(seen) => last = seen,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let dir = self.dir();
        let status = self.skiff(&["lab", "status", "--dir", dir.to_str().unwrap()]);
        let state: Value = std::fs::read_to_string(self.dir().join("lab.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let exited: Vec<String> = state["processes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["state"] == "exited")
            .filter_map(|p| p["name"].as_str())
            .map(|name| format!("{name}'s log:\n{}", self.process_log(name)))
            .collect();
        panic!(
            "{what} never happened; last seen: {last}\nlab status:\n{}\n{}\nthe supervisor's log:\n{}",
            String::from_utf8_lossy(&status.stdout),
            exited.join("\n"),
            self.log()
        );
    }

    /// `skiff lab down`; the supervisor exits cleanly and no pid of the lab runs.
    fn down(mut self) {
        let pids = self.pids();
        let said = self.lab(&["down"]);
        assert!(said.contains("is stopped"), "{said}");
        let status = self
            .supervisor
            .wait()
            .expect("the supervisor is waited for");
        assert!(status.success(), "skiff lab up exited with {status}");
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
                "pid {pid} still runs after lab down"
            );
        }
    }

    /// Every pid `lab.json` names.
    fn pids(&self) -> Vec<u64> {
        let Ok(text) = std::fs::read_to_string(self.dir().join("lab.json")) else {
            return Vec::new();
        };
        let Ok(state) = serde_json::from_str::<Value>(&text) else {
            return Vec::new();
        };
        state["processes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["pid"].as_u64())
            .collect()
    }
}

fn is_zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.split_whitespace().nth(2) == Some("Z"))
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The supervisor first, so it starts nothing more; then every process it started.
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
        for pid in self.pids() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// A Deployment of three hollow replicas. Its pods tolerate the unreachable
/// taint only with a value the node lifecycle controller never sets: that
/// keeps the API server from adding its five-minute default toleration, so a
/// pod leaves a dead node as soon as the node is tainted, and the scheduler
/// keeps replacements off it.
const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      tolerations:
        - {key: node.kubernetes.io/unreachable, operator: Equal, value: lab-test, effect: NoExecute}
        - {key: node.kubernetes.io/not-ready, operator: Equal, value: lab-test, effect: NoExecute}
      containers:
        - name: web
          image: busybox
          resources:
            requests: {cpu: 10m, memory: 16Mi}
"#;

/// Names of the nodes running a ready, not terminating `web` pod, one per pod.
fn ready_pod_nodes(lab: &Lab) -> Result<Vec<String>, String> {
    let pods = lab
        .get_json(&["pods", "-l", "app=web"])
        .ok_or("no pod list")?;
    let mut nodes = Vec::new();
    for pod in pods["items"].as_array().ok_or("not a list")? {
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if ready && pod["metadata"]["deletionTimestamp"].is_null() {
            nodes.push(pod["spec"]["nodeName"].as_str().unwrap_or("").to_string());
        }
    }
    Ok(nodes)
}

fn nodes_ready(lab: &Lab, expected: usize) -> Result<(), String> {
    let nodes = lab.get_json(&["nodes"]).ok_or("no node list")?;
    let ready = nodes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .count();
    (ready == expected)
        .then_some(())
        .ok_or(format!("{ready} of {expected} nodes Ready"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_recovers_from_losing_the_store_leader_and_a_node() {
    let _one = ONE_LAB.lock().await;
    let lab = Lab::start(3).await;
    lab.eventually("three Ready nodes", |lab| nodes_ready(lab, 3))
        .await;
    let status = lab.lab(&["status"]);
    for row in ["store-3", "apiserver-2", "controller-manager-1", "node-3"] {
        assert!(status.contains(row), "{row} in\n{status}");
    }

    let manifest = lab.home.path().join("web.yaml");
    std::fs::write(&manifest, DEPLOYMENT).unwrap();
    let applied = lab.skiff(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(applied.status.success(), "{applied:?}");
    let mut placed = Vec::new();
    lab.eventually("the Deployment becoming available", |lab| {
        placed = ready_pod_nodes(lab)?;
        (placed.len() == 3)
            .then_some(())
            .ok_or(format!("{placed:?}"))
    })
    .await;

    // Kill the store leader and a node under the Deployment.
    let leader = lab.wait_for_leader().await;
    let dead_node = placed[0].clone();
    let dead_name = dead_node
        .strip_prefix("lab-")
        .expect("lab-node-K")
        .to_string();
    lab.lab(&["kill", &leader]);
    lab.lab(&["kill", &dead_name]);
    let status = lab.lab(&["status"]);
    for name in [&leader, &dead_name] {
        let row = status
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        assert!(row.contains(" killed "), "{row}");
    }

    // The workload is whole again, without the dead node.
    lab.eventually("three ready replicas off the dead node", |lab| {
        let nodes = ready_pod_nodes(lab)?;
        let off = nodes.iter().filter(|n| **n != dead_node).count();
        (off == 3 && nodes.len() == 3)
            .then_some(())
            .ok_or(format!("{nodes:?}"))
    })
    .await;
    lab.eventually("a new store leader", |lab| match lab.store_leader() {
        Some(new) if new != leader => Ok(()),
        other => Err(format!("{other:?}")),
    })
    .await;

    // Both come back with the same flags and data: the store member first,
    // caught up with what was written while it was down.
    lab.lab(&["restart", &leader]);
    let restarted = Client::connect([lab.store_endpoint(&leader)], None).await;
    let mut restarted = restarted.expect("the restarted member's endpoint");
    let deployment = "/registry/deployments/default/web";
    let mut found = 0;
    for _ in 0..300 {
        let serializable = GetOptions::new().with_serializable();
        if let Ok(got) = restarted.get(deployment, Some(serializable)).await {
            found = got.count();
            if found == 1 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(found, 1, "the restarted member has the Deployment");
    lab.lab(&["restart", &dead_name]);
    let mut restarts = 1;
    lab.eventually("the restarted node Ready again", |lab| {
        // A kubelet gives up when its first registration fails (as while
        // its API server's store members settle); start it again, and show why.
        if lab.process_state(&dead_name) == "exited" && restarts < 3 {
            eprintln!(
                "{dead_name} exited after a restart:\n{}",
                lab.process_log(&dead_name)
            );
            lab.lab(&["restart", &dead_name]);
            restarts += 1;
        }
        nodes_ready(lab, 3)
    })
    .await;
    lab.down();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_store_member_falls_behind_and_catches_up_when_healed() {
    let _one = ONE_LAB.lock().await;
    let lab = Lab::start(0).await;
    let leader = lab.wait_for_leader().await;
    let cut = ["store-1", "store-2", "store-3"]
        .into_iter()
        .find(|m| *m != leader)
        .unwrap();
    let said = lab.lab(&["partition", cut]);
    assert!(said.contains(&format!("partitioned {cut}")), "{said}");
    let status = lab.lab(&["status"]);
    let row = status
        .lines()
        .find(|l| l.starts_with(&format!("{cut} ")))
        .unwrap();
    assert!(row.contains(" partitioned "), "{row}");

    // Writes through the leader commit without the partitioned member …
    let mut majority = Client::connect([lab.store_endpoint(&leader)], None)
        .await
        .expect("the leader's endpoint");
    for i in 0..20 {
        majority
            .put(format!("/lab/key-{i}"), "v", None)
            .await
            .expect("a majority commits");
    }
    // … and it has none of them: it fell behind, though clients still reach it.
    let mut isolated = Client::connect([lab.store_endpoint(cut)], None)
        .await
        .expect("the partitioned member's endpoint");
    let serializable = || Some(GetOptions::new().with_serializable().with_prefix());
    let seen = isolated
        .get("/lab/", serializable())
        .await
        .expect("a partitioned member still serves serializable reads");
    assert_eq!(seen.count(), 0, "the partitioned member saw no write");
    let linearizable = isolated.get("/lab/key-0", None).await;
    assert!(
        linearizable.is_err(),
        "a linearizable read needs the leader: {linearizable:?}"
    );

    lab.lab(&["heal", cut]);
    let mut caught_up = 0;
    for _ in 0..300 {
        if let Ok(got) = isolated.get("/lab/", serializable()).await {
            caught_up = got.count();
            if caught_up == 20 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(caught_up, 20, "the healed member caught up");
    lab.down();
}

#[tokio::test]
async fn the_short_commands_say_when_no_lab_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(skiff_binary())
        .args(["lab", "status", "--dir"])
        .arg(dir.path())
        .output()
        .expect("skiff runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("no lab is running in {}", dir.path().display())),
        "{stderr}"
    );
}
