//! The real kubectl against `skiff up`, as the README's user meets it: the
//! kubeconfig `skiff up` writes (the cluster CA and the admin's client
//! certificate), TLS on the API server's one port, and the REST API behind it.
//! Plain HTTP to the same port is refused for REST; the certificates survive
//! a restart, so the kubeconfig keeps working.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::up::UpProcess;

/// `skiff up` with hollow containers: only the API is under test.
fn start() -> UpProcess {
    UpProcess::start(&["--runtime", "hollow", "--node-name", "kubectl-node"])
}

fn kubeconfig(up: &UpProcess) -> PathBuf {
    up.home().join(".skiff").join("kubeconfig")
}

/// `kubectl ARGS` with the kubeconfig `skiff up` wrote.
fn kubectl(up: &UpProcess, args: &[&str]) -> Output {
    up.command("kubectl")
        .env("KUBECONFIG", kubeconfig(up))
        .args(args)
        .output()
        .expect("kubectl is installed (kubectl 1.32; .ci/run checks for it)")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `kubectl ARGS` until it succeeds and `check` accepts its standard
/// output, a bounded number of times.
async fn eventually(up: &UpProcess, args: &[&str], check: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..300 {
        let out = kubectl(up, args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && check(&stdout) {
            return stdout;
        }
        last = text(&out);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "kubectl {args:?} never gave what was expected; last:\n{last}\nskiff up's log:\n{}",
        up.log()
    );
}

/// A plain HTTP/1.1 GET of `path` on the server at `url` (`http://HOST:PORT`):
/// the whole answer as text.
fn plain_http_get(url: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("the API server's port answers");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_works_against_skiff_up_with_the_kubeconfig_it_writes() {
    let mut up = start();
    let config = std::fs::read_to_string(kubeconfig(&up)).expect("skiff up wrote a kubeconfig");
    assert!(config.contains("server: \"https://127.0.0.1:"), "{config}");
    assert!(
        up.banner()
            .contains(&format!("export KUBECONFIG={}", kubeconfig(&up).display())),
        "{}",
        up.banner()
    );

    let version = kubectl(&up, &["version", "-o", "json"]);
    assert!(version.status.success(), "{}", text(&version));
    let version: Value = serde_json::from_slice(&version.stdout).unwrap();
    assert!(
        version["serverVersion"]["gitVersion"].is_string(),
        "{version}"
    );

    eventually(&up, &["get", "nodes"], |out| {
        out.lines()
            .any(|l| l.starts_with("kubectl-node ") && l.contains(" Ready "))
    })
    .await;

    let applied = kubectl(
        &up,
        // No OpenAPI documents are served yet, which kubectl's default
        // validation reads first.
        &[
            "apply",
            "--validate=false",
            "-f",
            example("deployment.yaml").to_str().unwrap(),
        ],
    );
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(
        String::from_utf8_lossy(&applied.stdout).contains("deployment.apps/clock created"),
        "{}",
        text(&applied)
    );
    eventually(
        &up,
        &[
            "get",
            "deployment",
            "clock",
            "-o",
            "jsonpath={.status.availableReplicas}",
        ],
        |out| out.trim() == "2",
    )
    .await;
    let pods = eventually(
        &up,
        &["get", "pods", "-l", "app=clock", "-o", "wide"],
        |out| out.lines().filter(|l| l.contains(" Running ")).count() == 2,
    )
    .await;
    let header = pods.lines().next().unwrap_or_default();
    for column in ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"] {
        assert!(header.contains(column), "{column} in {header:?}");
    }

    // REST over plain HTTP on the same port is refused, as an HTTPS server refuses it.
    let answer = plain_http_get(&up.server, "/api/v1/nodes");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("Client sent an HTTP request to an HTTPS server."),
        "{answer}"
    );

    // The same kubeconfig works after a restart: the CA and certificates are kept.
    up.stop("TERM");
    up.restart();
    assert_eq!(
        std::fs::read_to_string(kubeconfig(&up)).unwrap(),
        config,
        "the kubeconfig is the same after a restart"
    );
    eventually(&up, &["get", "deployments"], |out| out.contains("clock")).await;
}
