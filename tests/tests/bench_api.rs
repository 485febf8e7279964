//! `skiff bench api` against a real `skiff up`: every workload runs to the end with tiny
//! parameters and its report adds up (operations made, nothing failed, nothing missed,
//! the list holds every pod). Only counts are checked, never how fast anything was.

use std::process::Command;

use serde_json::Value;
use skiff_e2e::up::UpProcess;
use skiff_e2e::{free_port, skiff_binary};

/// `skiff up` with the store and the API server only: the benchmark measures
/// the API server alone, and nothing schedules or runs the pods it creates.
fn start() -> UpProcess {
    UpProcess::start(&["--disable", "scheduler,controller-manager,kubelet"])
}

/// Five watchers, a second of writes at 20 per second.
const WATCH: &[&str] = &[
    "--workload",
    "watch",
    "--watchers",
    "5",
    "--duration",
    "1s",
    "--rate",
    "20",
];

/// Runs `skiff bench api --output json` with `flags` and returns its report.
fn bench(up: &UpProcess, flags: &[&str]) -> Value {
    let output = Command::new(skiff_binary())
        .args(["bench", "api", "--server", &up.server, "--output", "json"])
        .args(flags)
        .output()
        .expect("skiff bench api runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "skiff bench api {flags:?} failed: {stderr}\nserver log:\n{}",
        up.log()
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("the report is not JSON ({err}): {stdout}"))
}

#[tokio::test]
async fn every_api_workload_reports_consistent_counts() {
    let up = start();

    // create: some pods were created, none failed; the namespace was made on the way.
    let create = bench(
        &up,
        &["--workload", "create", "--duration", "1s", "--clients", "2"],
    );
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
    let again = bench(
        &up,
        &["--workload", "create", "--duration", "1s", "--clients", "2"],
    );
    assert!(again["ops"].as_u64().unwrap() > 0, "{again}");
    assert_eq!(again["errors"], 0, "{again}");

    // watch: every watcher saw every write, with nothing missed.
    let watch = bench(&up, WATCH);
    let counts = &watch["watch"];
    let writes = counts["writes"].as_u64().unwrap();
    assert!(writes > 0, "{watch}");
    assert_eq!(counts["watchers"], 5);
    assert_eq!(counts["expected"].as_u64().unwrap(), writes * 5, "{watch}");
    assert_eq!(counts["missed"], 0, "{watch}");
    assert_eq!(watch["ops"].as_u64().unwrap(), writes * 5, "{watch}");
    assert_eq!(watch["errors"], 0, "{watch}");

    // A second watch run patches the pods the first one created: events still all arrive.
    let rewatch = bench(&up, WATCH);
    assert!(
        rewatch["watch"]["writes"].as_u64().unwrap() > 0,
        "{rewatch}"
    );
    assert_eq!(rewatch["watch"]["missed"], 0, "{rewatch}");
    assert_eq!(rewatch["errors"], 0, "{rewatch}");

    // list: every repetition returned exactly the pods made for it.
    let list = bench(
        &up,
        &[
            "--workload",
            "list",
            "--pods",
            "50",
            "--clients",
            "2",
            "--repetitions",
            "3",
        ],
    );
    assert_eq!(list["ops"], 3, "{list}");
    assert_eq!(list["errors"], 0, "{list}");
    assert_eq!(list["list"]["pods"], 50);
    assert_eq!(list["list"]["items"], 50, "{list}");

    // From the server's cache, too.
    let cached = bench(
        &up,
        &[
            "--workload",
            "list",
            "--pods",
            "50",
            "--repetitions",
            "2",
            "--resource-version",
            "0",
        ],
    );
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
