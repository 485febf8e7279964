//! skiff-store through the real `etcdctl` (etcd 3.4's v3 command line):
//! each test starts a `skiff store` process and checks what `etcdctl` prints.
//!
//! `etcdctl` comes from Debian's `etcd-client` package. Where it is missing
//! the tests print why they skip, except on CI (`CI=true`), which installs it
//! and where a missing `etcdctl` is a failure.
//!
//! Every `etcdctl` run is bounded by [`COMMAND_TIMEOUT`], and every child
//! process is killed by its own pid when its guard drops, also when an
//! assertion fails half-way.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use skiff_e2e::StoreProcess;

/// The longest one `etcdctl` invocation may take; its own timeouts are shorter.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest a watch may take to print an expected line.
const WATCH_LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `etcdctl` can be run; panics on CI, where it must be.
fn etcdctl_available() -> bool {
    match Command::new("etcdctl").arg("version").output() {
        Ok(out) if out.status.success() => true,
        found => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "etcdctl is required on CI (install Debian's etcd-client package): {found:?}"
                );
            }
            eprintln!(
                "skipping: etcdctl is not installed (Debian: apt-get install etcd-client): {found:?}"
            );
            false
        }
    }
}

/// A child process that is killed (SIGKILL, by its own pid) when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one `etcdctl` run printed.
#[derive(Debug)]
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// `etcdctl` pointed at one store.
struct Etcdctl {
    endpoint: String,
}

impl Etcdctl {
    /// `etcdctl` for `store`, addressed as `http://127.0.0.1:PORT`.
    fn new(store: &StoreProcess) -> Etcdctl {
        Etcdctl {
            endpoint: store.endpoint(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("etcdctl");
        command
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(&self.endpoint)
            .args(args);
        command
    }

    /// Runs `etcdctl ARGS` with `stdin` as its input, within [`COMMAND_TIMEOUT`].
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("etcdctl can be started");
        let mut child = ChildGuard(child);
        let mut input = child.0.stdin.take().expect("a piped stdin");
        input
            .write_all(stdin.as_bytes())
            .expect("etcdctl reads its input");
        drop(input);
        let stdout = read_in_background(child.0.stdout.take().expect("a piped stdout"));
        let stderr = read_in_background(child.0.stderr.take().expect("a piped stderr"));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.0.try_wait().expect("etcdctl can be waited for") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "etcdctl {args:?} did not finish within {COMMAND_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Output {
            status,
            stdout: stdout.join().expect("the stdout reader ends"),
            stderr: stderr.join().expect("the stderr reader ends"),
        }
    }

    /// Runs `etcdctl ARGS`, which must succeed, and returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with_input(args, "")
    }

    /// Runs `etcdctl ARGS` with `stdin`, which must succeed, and returns its stdout.
    fn ok_with_input(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(out.status.success(), "etcdctl {args:?} failed: {out:?}");
        out.stdout
    }

    /// Runs `etcdctl ARGS`, which must fail, and returns its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args, "");
        assert!(!out.status.success(), "etcdctl {args:?} succeeded: {out:?}");
        out.stderr
    }

    /// Runs `etcdctl ARGS -w json` and parses what it prints.
    fn json(&self, args: &[&str]) -> Value {
        let args = [args, &["-w", "json"]].concat();
        let stdout = self.ok(&args);
        serde_json::from_str(&stdout)
            .unwrap_or_else(|err| panic!("etcdctl {args:?} printed no JSON ({err}): {stdout}"))
    }
}

fn read_in_background(mut from: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = from.read_to_string(&mut text);
        text
    })
}

/// The integer at `pointer` (as `/header/revision`) of `json`.
fn int(json: &Value, pointer: &str) -> u64 {
    json.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no integer at {pointer} in {json}"))
}

/// A fresh store and `etcdctl` for it, or `None` when the test should skip.
fn store_and_etcdctl() -> Option<(StoreProcess, Etcdctl)> {
    if !etcdctl_available() {
        return None;
    }
    let store = StoreProcess::start();
    let ctl = Etcdctl::new(&store);
    Some((store, ctl))
}

#[test]
fn put_and_get_print_keys_values_and_revisions() {
    let Some((_store, ctl)) = store_and_etcdctl() else {
        return;
    };
    assert_eq!(ctl.ok(&["put", "/k/a", "1"]), "OK\n");
    assert_eq!(ctl.ok(&["put", "/k/b", "2"]), "OK\n");
    assert_eq!(ctl.ok(&["put", "/other", "x"]), "OK\n");
    assert_eq!(ctl.ok(&["get", "/k/a"]), "/k/a\n1\n");
    assert_eq!(ctl.ok(&["get", "/k/", "--prefix"]), "/k/a\n1\n/k/b\n2\n");
    assert_eq!(
        ctl.ok(&["get", "/k/", "--prefix", "--print-value-only"]),
        "1\n2\n"
    );
    assert_eq!(
        ctl.ok(&["get", "/missing"]),
        "",
        "a missing key prints nothing"
    );

    let json = ctl.json(&["get", "/k/a"]);
    assert_eq!(
        int(&json, "/header/revision"),
        4,
        "three puts on a store at revision 1"
    );
    assert_eq!(json["kvs"][0]["key"], "L2svYQ==", "base64 of /k/a");
    assert_eq!(json["kvs"][0]["value"], "MQ==", "base64 of 1");
    assert_eq!(int(&json, "/kvs/0/create_revision"), 2);
    assert_eq!(int(&json, "/kvs/0/mod_revision"), 2);
    assert_eq!(int(&json, "/kvs/0/version"), 1);
    assert_eq!(int(&json, "/count"), 1);

    let put = ctl.json(&["put", "/k/a", "1b"]);
    assert_eq!(int(&put, "/header/revision"), 5);
    let json = ctl.json(&["get", "/k/a"]);
    assert_eq!(
        (
            int(&json, "/kvs/0/create_revision"),
            int(&json, "/kvs/0/mod_revision"),
            int(&json, "/kvs/0/version")
        ),
        (2, 5, 2)
    );
    assert_eq!(ctl.ok(&["get", "/k/a", "--rev=2"]), "/k/a\n1\n");
    assert_eq!(ctl.ok(&["get", "/k/a", "--rev=5"]), "/k/a\n1b\n");
    assert_eq!(
        ctl.ok(&["get", "/k/", "--prefix", "--rev=2"]),
        "/k/a\n1\n",
        "/k/b did not exist yet at revision 2"
    );
}

#[test]
fn del_prefix_prints_how_many_keys_it_deleted() {
    let Some((_store, ctl)) = store_and_etcdctl() else {
        return;
    };
    for key in ["/d/1", "/d/2", "/d/3", "/e"] {
        ctl.ok(&["put", key, "v"]);
    }
    assert_eq!(ctl.ok(&["del", "/d/", "--prefix"]), "3\n");
    assert_eq!(ctl.ok(&["get", "/d/", "--prefix"]), "");
    assert_eq!(ctl.ok(&["del", "/nothing"]), "0\n");
    assert_eq!(ctl.ok(&["get", "/e"]), "/e\nv\n", "outside the prefix");
    assert_eq!(ctl.ok(&["del", "/e", "--prev-kv"]), "1\n/e\nv\n");
    let json = ctl.json(&["get", "/e"]);
    assert_eq!(
        int(&json, "/header/revision"),
        7,
        "four puts and two deletes, each one revision; deleting nothing is none"
    );
}

#[test]
fn txn_from_stdin_runs_the_success_or_the_failure_ops() {
    let Some((_store, ctl)) = store_and_etcdctl() else {
        return;
    };
    ctl.ok(&["put", "/t/x", "1"]);
    // etcdctl reads compares, a blank line, success ops, a blank line, failure ops.
    let taken = ctl.ok_with_input(
        &["txn"],
        "value(\"/t/x\") = \"1\"\n\nput /t/y yes\n\nput /t/y no\n\n",
    );
    assert_eq!(taken, "SUCCESS\n\nOK\n");
    assert_eq!(ctl.ok(&["get", "/t/y"]), "/t/y\nyes\n");

    let taken = ctl.ok_with_input(
        &["txn"],
        "value(\"/t/x\") = \"2\"\n\nput /t/z yes\n\nput /t/z no\nget /t/x\n\n",
    );
    assert_eq!(taken, "FAILURE\n\nOK\n\n/t/x\n1\n");
    assert_eq!(ctl.ok(&["get", "/t/z"]), "/t/z\nno\n");

    // /t/x was written at revision 2; a compare-and-swap on its mod revision.
    let json: Value = serde_json::from_str(&ctl.ok_with_input(
        &["txn", "-w", "json"],
        "mod(\"/t/x\") = \"2\"\n\nput /t/x 2\n\n\n",
    ))
    .expect("txn -w json prints JSON");
    assert_eq!(json["succeeded"], true, "{json}");
    assert_eq!(int(&json, "/header/revision"), 5);
    let again = ctl.ok_with_input(&["txn"], "mod(\"/t/x\") = \"2\"\n\nput /t/x 3\n\n\n");
    assert_eq!(again, "FAILURE\n", "the second swap from revision 2 loses");
    assert_eq!(ctl.ok(&["get", "/t/x"]), "/t/x\n2\n");
}

/// A running `etcdctl watch`, whose stdout lines arrive on a channel.
struct Watch {
    lines: mpsc::Receiver<String>,
    _child: ChildGuard,
}

impl Watch {
    fn start(ctl: &Etcdctl, args: &[&str]) -> Watch {
        let child = ctl
            .command(&[&["watch"], args].concat())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcdctl watch can be started");
        let mut child = ChildGuard(child);
        let stdout = child.0.stdout.take().expect("a piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            lines,
            _child: child,
        }
    }

    /// Waits for the next lines and checks they are `expected`.
    fn expect(&self, expected: &[&str]) {
        let mut got = Vec::new();
        for _ in expected {
            match self.lines.recv_timeout(WATCH_LINE_TIMEOUT) {
                Ok(line) => got.push(line),
                Err(err) => {
                    panic!("watch printed {got:?} and then nothing ({err}); expected {expected:?}")
                }
            }
        }
        assert_eq!(got, expected);
    }
}

#[test]
fn watch_prints_puts_and_deletes_under_a_prefix() {
    let Some((_store, ctl)) = store_and_etcdctl() else {
        return;
    };
    let start = int(&ctl.json(&["put", "/before", "x"]), "/header/revision") + 1;
    ctl.ok(&["put", "/w/1", "a"]);
    ctl.ok(&["put", "/w/2", "b"]);
    ctl.ok(&["del", "/w/1"]);
    // Watching from a revision replays what happened since, so these events
    // do not depend on when the watch is set up.
    let watch = Watch::start(&ctl, &["/w/", "--prefix", &format!("--rev={start}")]);
    watch.expect(&["PUT", "/w/1", "a", "PUT", "/w/2", "b", "DELETE", "/w/1", ""]);

    // The watch is live now: new events stream in, others are filtered out.
    ctl.ok(&["put", "/outside", "no"]);
    ctl.ok(&["put", "/w/3", "c"]);
    watch.expect(&["PUT", "/w/3", "c"]);
    assert_eq!(ctl.ok(&["del", "/w/", "--prefix"]), "2\n");
    watch.expect(&["DELETE", "/w/2", "", "DELETE", "/w/3", ""]);
}

/// The lease ID in etcdctl's "lease ID granted with TTL(60s)".
fn granted_lease(line: &str) -> String {
    let id = line
        .strip_prefix("lease ")
        .and_then(|rest| rest.strip_suffix(" granted with TTL(60s)\n"))
        .unwrap_or_else(|| panic!("not a lease grant: {line:?}"));
    assert!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit()),
        "lease IDs print in hex: {id:?}"
    );
    id.to_string()
}

#[test]
fn lease_grant_attach_keep_alive_and_revoke() {
    let Some((_store, ctl)) = store_and_etcdctl() else {
        return;
    };
    let id = granted_lease(&ctl.ok(&["lease", "grant", "60"]));
    assert_eq!(
        ctl.ok(&["put", "/l/k", "v", &format!("--lease={id}")]),
        "OK\n"
    );
    let ttl = ctl.ok(&["lease", "timetolive", &id, "--keys"]);
    assert!(
        ttl.starts_with(&format!("lease {id} granted with TTL(60s), remaining(")),
        "{ttl}"
    );
    assert!(ttl.ends_with(", attached keys([/l/k])\n"), "{ttl}");
    let json = ctl.json(&["get", "/l/k"]);
    assert_eq!(
        format!("{:x}", int(&json, "/kvs/0/lease")),
        id.trim_start_matches('0'),
        "{json}"
    );
    assert_eq!(
        ctl.ok(&["lease", "list"]),
        format!("found 1 leases\n{id}\n")
    );
    assert_eq!(
        ctl.ok(&["lease", "keep-alive", "--once", &id]),
        format!("lease {id} keepalived with TTL(60)\n")
    );
    assert_eq!(
        ctl.ok(&["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(ctl.ok(&["get", "/l/k"]), "", "revoking deletes the key");
    assert_eq!(
        ctl.ok(&["lease", "timetolive", &id]),
        format!("lease {id} already expired\n")
    );
    assert_eq!(ctl.ok(&["lease", "list"]), "found 0 leases\n");
}

#[test]
fn compaction_makes_older_revisions_unreadable() {
    let Some((_store, ctl)) = store_and_etcdctl() else {
        return;
    };
    for value in ["1", "2", "3", "4"] {
        ctl.ok(&["put", "/c", value]); // revisions 2, 3, 4 and 5
    }
    assert_eq!(ctl.ok(&["compaction", "4"]), "compacted revision 4\n");
    let err = ctl.fails(&["get", "/c", "--rev=3"]);
    assert!(
        err.contains("Error: etcdserver: mvcc: required revision has been compacted"),
        "{err}"
    );
    assert_eq!(ctl.ok(&["get", "/c", "--rev=4"]), "/c\n3\n");
    assert_eq!(ctl.ok(&["get", "/c"]), "/c\n4\n");
    let err = ctl.fails(&["compaction", "4"]);
    assert!(
        err.contains("required revision has been compacted"),
        "compacting again at the same revision: {err}"
    );
}

/// `etcdctl endpoint status` addressed as `127.0.0.1:PORT`, without a scheme
/// (the `http://` form is covered by
/// [`endpoint_status_accepts_an_http_url_endpoint`]).
fn status_etcdctl(store: &StoreProcess) -> Etcdctl {
    Etcdctl {
        endpoint: store.address(),
    }
}

#[test]
fn endpoint_status_reports_this_member_as_leader() {
    let Some((store, ctl)) = store_and_etcdctl() else {
        return;
    };
    ctl.ok(&["put", "/s", "1"]);
    let status_ctl = status_etcdctl(&store);
    let json = status_ctl.json(&["endpoint", "status"]);
    let status = &json[0]["Status"];
    assert_eq!(json[0]["Endpoint"], store.address());
    let member = int(status, "/header/member_id");
    assert_eq!(int(status, "/leader"), member, "a single member leads");
    assert!(int(status, "/raftIndex") > 0, "{json}");
    assert!(int(status, "/raftTerm") > 0, "{json}");
    assert_eq!(int(status, "/header/revision"), 2);

    let text = status_ctl.ok(&["endpoint", "status"]);
    let fields: Vec<&str> = text.trim_end().split(", ").collect();
    assert_eq!(fields[0], store.address(), "{text}");
    assert_eq!(fields[1], format!("{member:x}"), "member ID in hex: {text}");
    assert_eq!(fields[4], "true", "IS LEADER: {text}");
}

/// etcdctl 3.4 dials `endpoint status` with a passthrough target, so the
/// HTTP/2 `:authority` it sends is the whole URL, `http://127.0.0.1:PORT`.
/// etcd's Go server accepts that; so does the store, which rewrites such an
/// authority to `127.0.0.1:PORT` before its HTTP/2 layer (h2) would reject
/// the headers as malformed.
#[test]
fn endpoint_status_accepts_an_http_url_endpoint() {
    let Some((store, ctl)) = store_and_etcdctl() else {
        return;
    };
    ctl.ok(&["put", "/s", "1"]);
    let json = ctl.json(&["endpoint", "status"]);
    assert_eq!(json[0]["Endpoint"], store.endpoint());
    let status = &json[0]["Status"];
    assert_eq!(int(status, "/header/revision"), 2, "{json}");
    assert_eq!(
        int(status, "/leader"),
        int(status, "/header/member_id"),
        "{json}"
    );

    let text = ctl.ok(&["endpoint", "status", "--cluster"]);
    let fields: Vec<&str> = text.trim_end().split(", ").collect();
    assert_eq!(fields[0], store.endpoint(), "{text}");
    assert_eq!(fields[4], "true", "IS LEADER: {text}");
}

#[test]
fn endpoint_health_and_member_list_describe_the_single_member() {
    let Some((store, ctl)) = store_and_etcdctl() else {
        return;
    };
    // Depending on the version etcdctl prints the health line on stdout or
    // stderr; either will do.
    let out = ctl.run(&["endpoint", "health"], "");
    assert!(out.status.success(), "{out:?}");
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(
        printed.contains(&format!(
            "{} is healthy: successfully committed proposal",
            store.endpoint()
        )),
        "{printed}"
    );
    let json = ctl.json(&["endpoint", "health"]);
    assert_eq!(json[0]["health"], true, "{json}");

    let members = ctl.json(&["member", "list"]);
    let id = int(&members, "/header/member_id");
    assert_eq!(int(&members, "/members/0/ID"), id);
    assert_eq!(members["members"][0]["name"], "default");
    assert_eq!(
        members["members"][0]["clientURLs"],
        serde_json::json!([store.endpoint()])
    );
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(1),
        "{members}"
    );
    assert_eq!(
        ctl.ok(&["member", "list"]),
        format!(
            "{id:x}, started, default, http://localhost:2380, {}, false\n",
            store.endpoint()
        )
    );
}

#[test]
fn bad_requests_fail_with_etcds_messages_and_the_store_keeps_serving() {
    let Some((_store, ctl)) = store_and_etcdctl() else {
        return;
    };
    ctl.ok(&["put", "/a", "1"]);
    let err = ctl.fails(&["put", "", "v"]);
    assert!(
        err.contains("Error: etcdserver: key is not provided"),
        "{err}"
    );
    let err = ctl.fails(&["get", "/a", "--rev=100"]);
    assert!(
        err.contains("Error: etcdserver: mvcc: required revision is a future revision"),
        "{err}"
    );
    let err = ctl.fails(&["lease", "revoke", "1234"]);
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );
    let out = ctl.run(&["txn"], "\nput /dup 1\nput /dup 2\n\n\n");
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr
            .contains("etcdserver: duplicate key given in txn request"),
        "{out:?}"
    );
    let err = ctl.fails(&["put", "/l", "v", "--lease=1234"]);
    assert!(
        err.contains("etcdserver: requested lease not found"),
        "{err}"
    );

    assert_eq!(ctl.ok(&["put", "/after", "2"]), "OK\n");
    assert_eq!(ctl.ok(&["get", "/a"]), "/a\n1\n");
    let json = ctl.json(&["get", "/after"]);
    assert_eq!(
        int(&json, "/header/revision"),
        3,
        "the rejected requests wrote nothing"
    );
}
