//! `skiff get`, `apply`, `describe` and `delete` as real processes against a
//! real `skiff up`, checked against what kubectl prints.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::up::UpProcess;
use skiff_e2e::{free_port, skiff_binary};

/// A `skiff up` in which nothing schedules or runs pods: objects keep the
/// state they were written with, which is what these tests print.
struct Up(UpProcess);

impl std::ops::Deref for Up {
    type Target = UpProcess;
    fn deref(&self) -> &UpProcess {
        &self.0
    }
}

impl Up {
    fn start() -> Up {
        Up(UpProcess::start(&[
            "--disable",
            "scheduler,controller-manager,kubelet",
        ]))
    }

    /// A `skiff ARGS` command with this server's HOME and no server from the environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.0.command(skiff_binary());
        command.args(args);
        command
    }

    /// Runs `skiff ARGS --server URL`, which must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.skiff(args);
        assert!(out.status.success(), "skiff {args:?}: {out:?}");
        stdout(&out)
    }

    /// `skiff apply -f` of each manifest, written as `name` in `dir`; each
    /// must succeed.
    fn apply(&self, dir: &Path, manifests: &[(&str, &str)]) {
        for (name, text) in manifests {
            let file = write(dir, name, text);
            let out = self.skiff(&["apply", "-f", file.to_str().unwrap()]);
            assert!(out.status.success(), "applying {name}: {out:?}");
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The words of each line: the cells of a table whose cells have no spaces.
fn cells(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: c
    image: nginx
    ports: [{containerPort: 80}]
";

const BAD_AND_CONFIGMAP: &str = "---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: '1', b: '2'}
";

const SERVICE: &str = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
  "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}"#;

#[test]
fn apply_creates_then_leaves_unchanged_then_configures() {
    let up = Up::start();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a-pod.yaml", POD);
    write(dir.path(), "b-config.yml", BAD_AND_CONFIGMAP);
    write(dir.path(), "c-service.json", SERVICE);
    write(dir.path(), "notes.txt", "not a manifest");
    let dir_arg = dir.path().to_str().unwrap();

    // One bad document: the others are applied, the error names its file and
    // document, and the command fails at the end.
    let out = up.skiff(&["apply", "-f", dir_arg]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stdout(&out),
        "pod/web created\nconfigmap/cfg created\nservice/api created\n"
    );
    let err = stderr(&out);
    assert!(
        err.contains("b-config.yml\" (document 1): invalid YAML"),
        "{err}"
    );

    // The same manifests again change nothing.
    let pod_file = dir.path().join("a-pod.yaml");
    assert_eq!(
        up.ok(&["apply", "-f", pod_file.to_str().unwrap()]),
        "pod/web unchanged\n"
    );
    let service_file = dir.path().join("c-service.json");
    let out = up.skiff(&["apply", "-f", service_file.to_str().unwrap()]);
    assert_eq!(stdout(&out), "service/api unchanged\n");

    // A changed label is written; a dropped one is removed.
    write(
        dir.path(),
        "a-pod.yaml",
        &POD.replace("{app: web}", "{tier: front}"),
    );
    let out = up.skiff(&["apply", "-f", pod_file.to_str().unwrap()]);
    assert_eq!(stdout(&out), "pod/web configured\n", "{}", stderr(&out));
    let out = up.skiff(&["get", "pod", "web", "-o", "json"]);
    let pod: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        pod["metadata"]["labels"],
        serde_json::json!({"tier": "front"})
    );

    // A manifest from standard input.
    let mut child = up
        .command(&["apply", "-f", "-", "--server", &up.server])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(SERVICE.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "service/api unchanged\n");
}

#[test]
fn get_prints_kubectls_tables_and_objects() {
    let up = Up::start();
    let dir = tempfile::tempdir().unwrap();
    up.apply(dir.path(), &[("pod.yaml", POD), ("svc.json", SERVICE)]);

    let text = up.ok(&["get", "po"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "NAME   READY   STATUS    RESTARTS   AGE",
        "{text}"
    );
    let row = &cells(&text)[1];
    assert_eq!(row[..4], ["web", "0/1", "Pending", "0"], "{text}");
    assert!(row[4].ends_with('s'), "an age in seconds: {text}");

    let out = up.skiff(&["get", "pods", "-o", "wide"]);
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "NAME   READY   STATUS    RESTARTS   AGE   IP       NODE     NOMINATED NODE   READINESS GATES\n"
        ),
        "{text}"
    );

    let out = up.skiff(&["get", "svc", "-A"]);
    let table = cells(&stdout(&out));
    assert_eq!(
        table[0],
        [
            "NAMESPACE",
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert_eq!(table[1][..3], ["default", "api", "ClusterIP"]);
    assert!(table[1][3].starts_with("10."), "{table:?}");
    assert_eq!(table[1][4..6], ["<none>", "80/TCP"]);

    let out = up.skiff(&["get", "ns"]);
    let table = cells(&stdout(&out));
    assert_eq!(table[0], ["NAME", "STATUS", "AGE"]);
    assert!(
        table.iter().any(|r| r[..2] == ["default", "Active"]),
        "{table:?}"
    );

    // -o json of one object is the object; YAML says the same.
    let json = up.skiff(&["get", "pod", "web", "-o", "json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["kind"], "Pod");
    assert_eq!(json["apiVersion"], "v1");
    assert_eq!(json["metadata"]["name"], "web");
    let yaml = up.skiff(&["get", "po/web", "-o", "yaml"]);
    let yaml: Value = serde_yaml::from_slice(&yaml.stdout).unwrap();
    assert_eq!(yaml, json);
    // A listing is a List, its items with their kind.
    let list = up.skiff(&["get", "pods", "-o", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0], json);
    // The JSON round-trips through apply.
    let exported = write(dir.path(), "exported.json", &json.to_string());
    let out = up.skiff(&["apply", "-f", exported.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).starts_with("pod/web "), "{out:?}");

    let out = up.skiff(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(stdout(&out), "pod/web\n");
    let out = up.skiff(&["get", "pods", "-l", "app=db"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "No resources found in default namespace.\n");

    let out = up.skiff(&["get", "widgets"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: the server doesn't have a resource type \"widgets\"\n"
    );
}

#[test]
fn describe_and_delete_speak_as_kubectl() {
    let up = Up::start();
    let dir = tempfile::tempdir().unwrap();
    let pod = write(dir.path(), "pod.yaml", POD);
    let config = write(dir.path(), "cm.yaml", BAD_AND_CONFIGMAP);
    assert!(up
        .skiff(&["apply", "-f", pod.to_str().unwrap()])
        .status
        .success());
    up.skiff(&["apply", "-f", config.to_str().unwrap()]);

    let text = up.ok(&["describe", "pod", "web"]);
    for line in [
        "Name:             web\n",
        "Namespace:        default\n",
        "Labels:           app=web\n",
        "Status:           Pending\n",
        "  c:\n",
        "    Image:        nginx\n",
        "    Port:         80/TCP\n",
        "Events:           <none>\n",
    ] {
        assert!(text.contains(line), "no {line:?} in:\n{text}");
    }
    // kubectl's layout of a config map's data (in kubectl, the keys come in
    // any order).
    let out = up.skiff(&["describe", "cm", "cfg"]);
    assert!(
        stdout(&out).starts_with("Name:         cfg\nNamespace:    default\n"),
        "{out:?}"
    );
    assert!(
        stdout(&out).ends_with(
            "\nData\n====\na:\n----\n1\n\nb:\n----\n2\n\n\nBinaryData\n====\n\nEvents:  <none>\n"
        ),
        "{out:?}"
    );

    assert_eq!(up.ok(&["delete", "pod", "web"]), "pod \"web\" deleted\n");
    for args in [
        &["get", "pod", "web"][..],
        &["delete", "po", "web"][..],
        &["describe", "pods", "web"][..],
    ] {
        let out = up.skiff(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert_eq!(
            stderr(&out),
            "Error from server (NotFound): pods \"web\" not found\n",
            "{args:?}"
        );
    }
    let out = up.skiff(&["delete", "pod", "web", "--ignore-not-found"]);
    assert!(out.status.success(), "{out:?}");

    // Deleting by manifest reports the bad document and deletes the rest.
    let out = up.skiff(&["delete", "-f", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(&out), "configmap \"cfg\" deleted\n");
    assert!(stderr(&out).contains("(document 1)"), "{out:?}");
    let out = up.skiff(&["get", "configmaps"]);
    assert!(out.status.success());
    assert_eq!(stderr(&out), "No resources found in default namespace.\n");
}

#[test]
fn the_server_comes_from_the_flag_the_environment_or_the_config_file() {
    let up = Up::start();
    // The environment.
    let out = up
        .command(&["get", "ns", "default", "-o", "name"])
        .env("SKIFF_SERVER", &up.server)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "namespace/default\n", "{out:?}");
    // ~/.skiff/config, as `skiff up` writes it.
    std::fs::create_dir_all(up.home().join(".skiff")).unwrap();
    std::fs::write(
        up.home().join(".skiff/config"),
        format!("server = \"{}\"\n", up.server),
    )
    .unwrap();
    let out = up
        .command(&["get", "ns", "default", "-o", "name"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "namespace/default\n", "{out:?}");

    // Nothing listening: a clear message and exit code 1.
    let port = free_port();
    let out = up
        .command(&["get", "pods", "--server", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr(&out),
        format!("cannot reach the API server at http://127.0.0.1:{port}: is `skiff up` running?\n")
    );
}

#[test]
fn get_watch_prints_a_row_per_change() {
    let up = Up::start();
    let dir = tempfile::tempdir().unwrap();
    let pod = write(dir.path(), "pod.yaml", POD);
    let mut watch = up
        .command(&["get", "pods", "-w", "--server", &up.server])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let reader = BufReader::new(watch.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // The watch may start after the pod is created; the listed table or the
    // first event shows it either way.
    assert!(up
        .skiff(&["apply", "-f", pod.to_str().unwrap()])
        .status
        .success());
    let mut seen = Vec::new();
    for _ in 0..600 {
        if let Ok(line) = received.recv_timeout(Duration::from_millis(100)) {
            seen.push(line);
            if seen.iter().any(|l| l.starts_with("web ")) {
                break;
            }
        }
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("NAME   READY   STATUS    RESTARTS   AGE"),
        "{seen:?}"
    );
    assert!(seen.iter().any(|l| l.starts_with("web ")), "{seen:?}");
    // A change arrives as a new row.
    assert!(up.skiff(&["delete", "pod", "web"]).status.success());
    let mut deleted = false;
    for _ in 0..600 {
        if let Ok(line) = received.recv_timeout(Duration::from_millis(100)) {
            if line.starts_with("web ") {
                deleted = true;
                break;
            }
        }
    }
    assert!(deleted, "no row for the deletion after {seen:?}");
    let _ = watch.kill();
    let _ = watch.wait();
}

/// The path of kubectl, when it is installed, to compare output with.
fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|p| p.is_file())
}

/// What kubectl prints for `object` (JSON) with `-o FORMAT`, without a
/// server: `label --local` with a no-op label removal.
fn kubectl_prints(kubectl: &Path, object: &[u8], format: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(kubectl)
        .args(["label", "--local", "-f", "-", "never-set-", "-o", format])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(object).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kubectl failed: {out:?}");
    stdout(&out)
}

#[test]
fn get_several_types_prints_a_table_each_and_lists_them_together() {
    let up = Up::start();
    let dir = tempfile::tempdir().unwrap();
    up.apply(dir.path(), &[("pod.yaml", POD), ("svc.json", SERVICE)]);

    // One table per type, a blank line between, names with their type.
    let text = up.ok(&["get", "po,svc"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "NAME      READY   STATUS    RESTARTS   AGE",
        "{text}"
    );
    assert_eq!(cells(lines[1])[0][..4], ["pod/web", "0/1", "Pending", "0"]);
    assert_eq!(lines[2], "", "{text}");
    assert_eq!(
        cells(lines[3])[0],
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert!(
        lines[4..].iter().any(|l| l.starts_with("service/api ")),
        "{text}"
    );
    // TYPE/NAME arguments, and no headers: no blank line either.
    let out = up.skiff(&["get", "po/web", "svc/api", "--no-headers"]);
    let table = cells(&stdout(&out));
    assert_eq!(table.len(), 2, "{out:?}");
    assert_eq!(
        (table[0][0].as_str(), table[1][0].as_str()),
        ("pod/web", "service/api")
    );
    let out = up.skiff(&["get", "po/web", "svc/api", "-o", "name"]);
    assert_eq!(stdout(&out), "pod/web\nservice/api\n");

    // Several objects in YAML are a List; one named object is itself.
    let out = up.skiff(&["get", "po/web", "svc/api", "-o", "yaml"]);
    let yaml = stdout(&out);
    assert!(
        yaml.starts_with("apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n"),
        "{yaml}"
    );
    assert!(
        yaml.ends_with("kind: List\nmetadata:\n  resourceVersion: \"\"\n"),
        "{yaml}"
    );
    let list: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(list["items"][1]["kind"], "Service");
    let yaml = stdout(&up.skiff(&["get", "pod", "web", "-o", "yaml"]));
    assert!(
        yaml.starts_with("apiVersion: v1\nkind: Pod\nmetadata:\n"),
        "{yaml}"
    );
    // Timestamps are quoted; lists sit under their key.
    assert!(yaml.contains("\n  creationTimestamp: \"20"), "{yaml}");
    assert!(
        yaml.contains("\n  - image: nginx\n") && yaml.contains("\n    - containerPort: 80\n"),
        "{yaml}"
    );

    // Byte for byte what kubectl prints for the same object, when kubectl
    // is installed here. (`kubectl label --local` prints a List's items one
    // by one, so the comparison is of one labelled object.)
    match kubectl() {
        Some(kubectl) => {
            let json = up.skiff(&["get", "po/web", "-o", "json"]).stdout;
            let out = up.skiff(&["get", "po/web", "-o", "yaml"]);
            for (format, ours) in [("yaml", stdout(&out)), ("json", stdout_of(&json))] {
                let theirs = kubectl_prints(&kubectl, &json, format);
                assert_eq!(ours, theirs, "-o {format}");
            }
        }
        None => eprintln!("kubectl is not installed: skipping the comparison with it"),
    }

    // JSONPath, custom columns, label columns.
    let out = up.skiff(&["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert_eq!(stdout(&out), "web");
    let out = up.skiff(&[
        "get",
        "pods",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}{"\t"}{.spec.containers[0].image}{"\n"}{end}"#,
    ]);
    assert_eq!(stdout(&out), "web\tnginx\n");
    let out = up.skiff(&[
        "get",
        "pods",
        "-o",
        "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[*].image,NODE:.spec.nodeName",
    ]);
    assert_eq!(stdout(&out), "NAME   IMAGE   NODE\nweb    nginx   <none>\n");
    let out = up.skiff(&["get", "pods", "-L", "app,tier", "--show-labels"]);
    let table = cells(&stdout(&out));
    assert_eq!(table[0][5..], ["APP", "TIER", "LABELS"], "{out:?}");
    assert_eq!(table[1][5..], ["web", "app=web"], "{out:?}");

    // A missing object among several: the rest print, the command fails,
    // unless missing objects are to be ignored.
    let out = up.skiff(&["get", "pods", "web", "nope", "-o", "name"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "pod/web\n");
    assert_eq!(
        stderr(&out),
        "Error from server (NotFound): pods \"nope\" not found\n"
    );
    for format in ["wide", "yaml", "name"] {
        let out = up.skiff(&["get", "pods", "nope", "--ignore-not-found", "-o", format]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("", ""));
    }

    // Errors worded as kubectl's.
    let out = up.skiff(&["get", "po/web", "svc"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: there is no need to specify a resource type as a separate argument when passing \
         arguments in resource/name form (e.g. 'skiff get resource/<resource_name>' instead of \
         'skiff get resource resource/<resource_name>'\n"
    );
    let out = up.skiff(&["get", "po,svc", "-w"]);
    assert_eq!(
        stderr(&out),
        "error: watch is only supported on individual resources and resource collections, but 2 \
         resources were found\n"
    );

    // describe and delete take several types too.
    let text = up.ok(&["describe", "po/web", "svc/api"]);
    assert!(text.starts_with("Name:             web\n"), "{text}");
    assert!(text.contains("\n\nName:"), "{text}");
    let out = up.skiff(&["delete", "po/web", "svc/api"]);
    assert_eq!(
        stdout(&out),
        "pod \"web\" deleted\nservice \"api\" deleted\n",
        "{out:?}"
    );
    let out = up.skiff(&["get", "po,svc"]);
    assert_eq!(stderr(&out), "No resources found in default namespace.\n");
}

fn stdout_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn get_sorts_by_a_field_and_delete_takes_a_selector_or_all() {
    let up = Up::start();
    let dir = tempfile::tempdir().unwrap();
    for (name, tier) in [("web-10", "front"), ("web-2", "front"), ("db", "back")] {
        let manifest = POD
            .replace("name: web\n", &format!("name: {name}\n"))
            .replace("{app: web}", &format!("{{tier: {tier}}}"));
        up.apply(dir.path(), &[(&format!("{name}.yaml"), &manifest)]);
    }
    // Names in natural order; kubectl's default order is the server's.
    let out = up.skiff(&["get", "pods", "--sort-by", ".metadata.name", "-o", "name"]);
    assert_eq!(stdout(&out), "pod/db\npod/web-2\npod/web-10\n", "{out:?}");
    let out = up.skiff(&[
        "get",
        "pods",
        "--sort-by={.metadata.labels.tier}",
        "--no-headers",
        "-o",
        "custom-columns=N:.metadata.name",
    ]);
    assert_eq!(stdout(&out), "db\nweb-10\nweb-2\n", "{out:?}");

    let out = up.skiff(&["delete", "pods", "-l", "tier=front"]);
    assert!(out.status.success(), "{out:?}");
    let mut lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    lines.sort();
    assert_eq!(lines, ["pod \"web-10\" deleted", "pod \"web-2\" deleted"]);
    assert_eq!(
        up.ok(&["delete", "pods", "-l", "tier=front"]),
        "No resources found\n"
    );
    let out = up.skiff(&["delete", "pods", "--all"]);
    assert_eq!(stdout(&out), "pod \"db\" deleted\n", "{out:?}");
    let out = up.skiff(&["delete", "pods", "db", "--all"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: name cannot be provided when a selector is specified\n"
    );
}
