//! `skiff bench api` against a real `skiff up`: every workload runs to the end with tiny
//! parameters and its report adds up (operations made, nothing failed, nothing missed,
//! the list holds every pod). Only counts are checked, never how fast anything was.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{free_port, skiff_binary};
use skiff_proto::api::api_client::ApiClient;
use skiff_proto::api::{GetRequest, ResourceRef};

/// A `skiff up` process on free ports, killed when dropped.
struct Up {
    child: Child,
    log: std::path::PathBuf,
    api: String,
}

impl Up {
    fn start(dir: &Path) -> Up {
        let (api_port, store_port) = (free_port(), free_port());
        let log = dir.join("up.log");
        let child = Command::new(skiff_binary())
            .arg("up")
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--listen", &format!("127.0.0.1:{api_port}")])
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{store_port}"),
            ])
            // The benchmark measures the API server alone: nothing schedules or
            // runs the pods it creates.
            .args(["--disable", "scheduler,controller-manager,kubelet"])
            .env("HOME", dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("skiff up starts");
        Up {
            child,
            log,
            api: format!("http://127.0.0.1:{api_port}"),
        }
    }

    /// Waits, a bounded number of times, until the API server answers Get for the
    /// default namespace (bootstrap done).
    async fn wait_ready(&mut self) {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("skiff up exited with {status}; its log:\n{}", self.log());
            }
            if let Ok(mut client) = ApiClient::connect(self.api.clone()).await {
                let default = GetRequest {
                    r#ref: Some(ResourceRef {
                        version: "v1".into(),
                        resource: "namespaces".into(),
                        name: "default".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                if client.get(default).await.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "skiff up at {} never answered; its log:\n{}",
            self.api,
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `skiff bench api --output json` with `flags` and returns its report.
    fn bench(&self, flags: &[&str]) -> Value {
        let output = Command::new(skiff_binary())
            .args(["bench", "api", "--server", &self.api, "--output", "json"])
            .args(flags)
            .output()
            .expect("skiff bench api runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "skiff bench api {flags:?} failed: {stderr}\nserver log:\n{}",
            self.log()
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|err| panic!("the report is not JSON ({err}): {stdout}"))
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn every_api_workload_reports_consistent_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut up = Up::start(dir.path());
    up.wait_ready().await;

    // create: some pods were created, none failed; the namespace was made on the way.
    let create = up.bench(&["--workload", "create", "--duration", "1s", "--clients", "2"]);
    assert_eq!(create["workload"], "create");
    assert_eq!(create["namespace"], "bench-create");
    assert_eq!(create["clients"], 2);
    assert!(create["ops"].as_u64().unwrap() > 0, "{create}");
    assert_eq!(create["errors"], 0, "{create}");
    assert!(
        create["latency"]["max_us"].as_u64().unwrap() > 0,
        "{create}"
    );

    // A second run finds the namespace there and still creates distinct pods.
    let again = up.bench(&["--workload", "create", "--duration", "1s", "--clients", "2"]);
    assert!(again["ops"].as_u64().unwrap() > 0, "{again}");
    assert_eq!(again["errors"], 0, "{again}");

    // watch: every watcher saw every write, with nothing missed.
    let watch = up.bench(&[
        "--workload",
        "watch",
        "--watchers",
        "5",
        "--duration",
        "1s",
        "--rate",
        "20",
    ]);
    let counts = &watch["watch"];
    let writes = counts["writes"].as_u64().unwrap();
    assert!(writes > 0, "{watch}");
    assert_eq!(counts["watchers"], 5);
    assert_eq!(counts["expected"].as_u64().unwrap(), writes * 5, "{watch}");
    assert_eq!(counts["missed"], 0, "{watch}");
    assert_eq!(watch["ops"].as_u64().unwrap(), writes * 5, "{watch}");
    assert_eq!(watch["errors"], 0, "{watch}");

    // A second watch run patches the pods the first one created: events still all arrive.
    let rewatch = up.bench(&[
        "--workload",
        "watch",
        "--watchers",
        "5",
        "--duration",
        "1s",
        "--rate",
        "20",
    ]);
    assert!(
        rewatch["watch"]["writes"].as_u64().unwrap() > 0,
        "{rewatch}"
    );
    assert_eq!(rewatch["watch"]["missed"], 0, "{rewatch}");
    assert_eq!(rewatch["errors"], 0, "{rewatch}");

    // list: every repetition returned exactly the pods made for it.
    let list = up.bench(&[
        "--workload",
        "list",
        "--pods",
        "50",
        "--clients",
        "2",
        "--repetitions",
        "3",
    ]);
    assert_eq!(list["ops"], 3, "{list}");
    assert_eq!(list["errors"], 0, "{list}");
    assert_eq!(list["list"]["pods"], 50);
    assert_eq!(list["list"]["items"], 50, "{list}");

    // From the server's cache, too.
    let cached = up.bench(&[
        "--workload",
        "list",
        "--pods",
        "50",
        "--repetitions",
        "2",
        "--resource-version",
        "0",
    ]);
    assert_eq!(cached["ops"], 2, "{cached}");
    assert_eq!(cached["list"]["items"], 50, "{cached}");
}

#[test]
fn an_unreachable_server_is_named_in_the_error() {
    let port = free_port();
    let output = Command::new(skiff_binary())
        .args(["bench", "api", "--workload", "create", "--duration", "1s"])
        .args(["--server", &format!("127.0.0.1:{port}")])
        .output()
        .expect("skiff bench api runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to http://127.0.0.1:{port}")),
        "{stderr}"
    );
}
