//! The real kubectl against [`Rest::handle`], served over plain HTTP/1.1 on
//! 127.0.0.1:0 by a small hyper server in the test: kubectl's own requests
//! (discovery, Tables, client-side apply, patches, watches) are the specification.
//!
//! kubectl must be installed (on PATH or at /usr/local/bin/kubectl); the
//! test fails, not skips, without it.

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::{config_map, Server};
use crate::rest::Rest;

const MANIFEST: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  mode: blue
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
"#;

fn kubectl_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubectl"))
            .find(|candidate| candidate.is_file())
    });
    on_path
        .or_else(|| {
            let local = PathBuf::from("/usr/local/bin/kubectl");
            local.is_file().then_some(local)
        })
        .expect("kubectl 1.32 must be installed (on PATH or /usr/local/bin) for the REST API's kubectl test")
}

/// Serves `rest` over HTTP/1.1 on a free port; answers its address.
async fn serve(rest: Rest) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let rest = rest.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let rest = rest.clone();
                    async move { Ok::<_, Infallible>(rest.handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// kubectl pointed at one server, with its own empty config and cache.
struct Kubectl {
    binary: PathBuf,
    server: String,
    home: tempfile::TempDir,
}

impl Kubectl {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("KUBECONFIG", self.home.path().join("config"))
            .env("HOME", self.home.path())
            .arg(format!("--server={}", self.server))
            .arg(format!(
                "--cache-dir={}",
                self.home.path().join("cache").display()
            ))
            .args(args);
        command
    }

    /// Runs kubectl to the end; its stdout, or a panic with what it printed.
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut command = self.command(args);
        let stdin = stdin.map(str::to_string);
        let label = args.join(" ");
        tokio::task::spawn_blocking(move || {
            command
                .stdin(if stdin.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = command.spawn().expect("kubectl starts");
            if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
                use std::io::Write;
                pipe.write_all(text.as_bytes())
                    .expect("kubectl reads its stdin");
            }
            let out = child.wait_with_output().expect("kubectl runs");
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "kubectl {label} failed ({}):\nstdout: {stdout}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        })
        .await
        .expect("the kubectl thread finishes")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_rest_api() {
    let s = Server::new().await;
    let addr = serve(s.rest.clone()).await;
    let k = Kubectl {
        binary: kubectl_binary(),
        server: format!("http://{addr}"),
        home: tempfile::tempdir().expect("a temporary directory"),
    };
    std::fs::write(k.home.path().join("config"), "").expect("an empty kubeconfig");

    let version = k.run(&["version"], None).await;
    assert!(
        version.contains("Server Version: v1.33.0-skiff"),
        "{version}"
    );

    let applied = k
        .run(&["apply", "--validate=false", "-f", "-"], Some(MANIFEST))
        .await;
    for line in [
        "configmap/app-config created",
        "deployment.apps/web created",
        "service/web created",
    ] {
        assert!(applied.contains(line), "{applied}");
    }

    let wide = k.run(&["get", "deployments", "-o", "wide"], None).await;
    assert!(wide.starts_with("NAME"), "{wide}");
    assert!(wide.contains("web"), "{wide}");
    let yaml = k
        .run(&["get", "configmap", "app-config", "-o", "yaml"], None)
        .await;
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("mode: blue"),
        "{yaml}"
    );
    let json: Value =
        serde_json::from_str(&k.run(&["get", "svc", "web", "-o", "json"], None).await)
            .expect("kubectl prints JSON");
    assert!(json["spec"]["clusterIP"].is_string(), "{json}");
    let replicas = k
        .run(
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
            None,
        )
        .await;
    assert_eq!(replicas, "2");

    let all = k.run(&["get", "all"], None).await;
    assert!(
        all.contains("deployment.apps/web") && all.contains("service/web"),
        "{all}"
    );

    let described = k.run(&["describe", "deployment", "web"], None).await;
    assert!(
        described.contains("Name:") && described.contains("web"),
        "{described}"
    );

    let labeled = k
        .run(&["label", "configmap", "app-config", "tier=frontend"], None)
        .await;
    assert!(
        labeled.contains("configmap/app-config labeled"),
        "{labeled}"
    );
    let selected = k
        .run(
            &["get", "configmaps", "-l", "tier=frontend", "-o", "name"],
            None,
        )
        .await;
    assert_eq!(selected.trim(), "configmap/app-config");
    let annotated = k
        .run(
            &["annotate", "configmap", "app-config", "owner=team-a"],
            None,
        )
        .await;
    assert!(annotated.contains("annotated"), "{annotated}");

    let scaled = k
        .run(&["scale", "deployment", "web", "--replicas=3"], None)
        .await;
    assert!(scaled.contains("deployment.apps/web scaled"), "{scaled}");
    let replicas = k
        .run(
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
            None,
        )
        .await;
    assert_eq!(replicas, "3");

    let merged = k
        .run(
            &[
                "patch",
                "configmap",
                "app-config",
                "--type",
                "merge",
                "-p",
                r#"{"data":{"mode":"green"}}"#,
            ],
            None,
        )
        .await;
    assert!(merged.contains("patched"), "{merged}");
    let patched = k
        .run(
            &[
                "patch",
                "configmap",
                "app-config",
                "--type",
                "json",
                "-p",
                r#"[{"op":"add","path":"/data/extra","value":"1"}]"#,
            ],
            None,
        )
        .await;
    assert!(patched.contains("patched"), "{patched}");
    let data = k
        .run(
            &[
                "get",
                "configmap",
                "app-config",
                "-o",
                "jsonpath={.data.mode},{.data.extra}",
            ],
            None,
        )
        .await;
    assert_eq!(data, "green,1");

    watch_prints_existing_and_new_objects(&s, &k).await;

    let resources = k.run(&["api-resources"], None).await;
    let deployments = resources
        .lines()
        .find(|l| l.starts_with("deployments "))
        .unwrap_or_else(|| panic!("no deployments in:\n{resources}"));
    assert!(
        deployments.contains("deploy") && deployments.contains("apps/v1"),
        "{deployments}"
    );

    let deleted = k.run(&["delete", "configmap", "app-config"], None).await;
    assert!(
        deleted.contains("configmap \"app-config\" deleted"),
        "{deleted}"
    );
    let left = k.run(&["get", "configmaps", "-o", "name"], None).await;
    assert!(!left.contains("app-config"), "{left}");
}

/// `kubectl get -w` prints the current objects, then each change as it comes.
async fn watch_prints_existing_and_new_objects(s: &Server, k: &Kubectl) {
    let mut command = k.command(&["get", "configmaps", "-w", "--request-timeout=60s"]);
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    let mut child = command.spawn().expect("kubectl starts");
    let stdout = child.stdout.take().expect("a piped stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let lines = std::sync::Arc::new(std::sync::Mutex::new(lines_rx));
    let wait_for = |needle: &'static str| {
        let lines = lines.clone();
        tokio::task::spawn_blocking(move || {
            let lines = lines.lock().expect("one reader at a time");
            let mut seen = Vec::new();
            loop {
                match lines.recv() {
                    Ok(line) if line.contains(needle) => return line,
                    Ok(line) => seen.push(line),
                    Err(_) => {
                        panic!("kubectl get -w ended before printing {needle}; it printed {seen:?}")
                    }
                }
            }
        })
    };
    let first = wait_for("app-config").await.expect("the watch reader");
    assert!(first.starts_with("app-config"), "{first}");
    let created = s
        .write(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            &config_map("later", json!({})),
        )
        .await;
    assert_eq!(created.status, 201);
    let later = wait_for("later").await.expect("the watch reader");
    assert!(later.starts_with("later"), "{later}");
    let _ = child.kill();
    let _ = child.wait();
    drop(lines);
    let _ = reader.join();
}
