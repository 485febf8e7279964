//! `skiff up` as the README runs it: one process with a kubelet on the
//! process runtime; `skiff apply -f examples/deployment.yaml` → the
//! Deployment's pods run and it is available; scaled to zero its processes
//! stop; SIGTERM stops the cluster cleanly.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{free_port, skiff_binary};

struct Up {
    child: Child,
    dir: PathBuf,
    server: String,
}

impl Up {
    fn start(dir: &Path) -> Up {
        let (api, store, kubelet) = (free_port(), free_port(), free_port());
        let child = Command::new(skiff_binary())
            .env("HOME", dir)
            .arg("up")
            .arg("--data-dir")
            .arg(dir.join("skiff-data"))
            .args(["--listen", &format!("127.0.0.1:{api}")])
            .args(["--listen-client-urls", &format!("http://127.0.0.1:{store}")])
            .args(["--kubelet-port", &kubelet.to_string()])
            .args(["--runtime", "process", "--node-name", "up-node"])
            .stdout(std::fs::File::create(dir.join("up.out")).unwrap())
            .stderr(std::fs::File::create(dir.join("up.log")).unwrap())
            .spawn()
            .expect("skiff up starts");
        Up {
            child,
            dir: dir.to_path_buf(),
            server: format!("http://127.0.0.1:{api}"),
        }
    }

    fn skiff(&self, args: &[&str]) -> Output {
        Command::new(skiff_binary())
            .env("HOME", &self.dir)
            .args(args)
            .args(["--server", &self.server])
            .output()
            .expect("skiff runs")
    }

    /// `skiff get … -o json`, parsed, or `None` while it fails.
    fn get_json(&self, args: &[&str]) -> Option<Value> {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "json"]);
        let out = self.skiff(&all);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("up.log")).unwrap_or_default()
    }

    /// Polls `check` a bounded number of times, 200 ms apart.
    async fn eventually(&self, what: &str, mut check: impl FnMut(&Up) -> Result<(), String>) {
        let mut last = String::new();
        for _ in 0..450 {
            match check(self) {
                Ok(()) => return,
                Err(seen) => last = seen,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "{what} never happened; last seen: {last}\nskiff up's log:\n{}",
            self.log()
        );
    }

    /// Sends SIGTERM by pid and waits, a bounded number of times, for the exit.
    async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "skiff up did not stop after SIGTERM; its log:\n{}",
            self.log()
        );
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

fn field<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[key])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_a_deployment_on_the_process_runtime_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(dir.path());
    up.eventually("the node registering Ready", |up| {
        let node = up.get_json(&["nodes", "up-node"]).ok_or("no node yet")?;
        let conditions = field(&node, &["status", "conditions"]);
        let ready = conditions
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(()).ok_or(conditions.to_string())
    })
    .await;
    let banner = std::fs::read_to_string(dir.path().join("up.out")).unwrap();
    assert!(
        banner.contains(&format!("API server:     {}", up.server)),
        "{banner}"
    );
    assert!(banner.contains("skiff apply -f examples/"), "{banner}");
    assert!(
        !up.log().contains('\u{1b}'),
        "no colour codes in a log file"
    );

    let manifest = example("deployment.yaml");
    let applied = up.skiff(&["apply", "-f", manifest.to_str().unwrap()]);
    assert!(applied.status.success(), "{applied:?}");
    up.eventually("the Deployment becoming available", |up| {
        let d = up
            .get_json(&["deployment", "clock"])
            .ok_or("no deployment")?;
        let status = field(&d, &["status"]);
        (status["availableReplicas"] == 2 && status["readyReplicas"] == 2)
            .then_some(())
            .ok_or(status.to_string())
    })
    .await;
    let pods = up.get_json(&["pods", "-l", "app=clock"]).unwrap();
    let items = pods["items"].as_array().expect("a pod list");
    assert_eq!(items.len(), 2, "{pods}");
    for pod in items {
        assert_eq!(pod["spec"]["nodeName"], "up-node");
        assert_eq!(pod["status"]["phase"], "Running");
    }

    // Scaled to zero, the pods go and the kubelet stops their processes.
    let scaled = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("replicas: 2", "replicas: 0");
    let scaled_path = dir.path().join("clock-zero.yaml");
    std::fs::write(&scaled_path, scaled).unwrap();
    let applied = up.skiff(&["apply", "-f", scaled_path.to_str().unwrap()]);
    assert!(applied.status.success(), "{applied:?}");
    up.eventually("the pods going", |up| {
        let pods = up.get_json(&["pods", "-l", "app=clock"]).ok_or("no list")?;
        let left = pods["items"].as_array().map_or(0, Vec::len);
        (left == 0).then_some(()).ok_or(format!("{left} pods left"))
    })
    .await;

    let status = up.terminate().await;
    assert!(status.success(), "skiff up exited with {status}");
}
