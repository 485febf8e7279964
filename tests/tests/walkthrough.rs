//! docs/walkthrough.md stays true: every command of its `sh` blocks runs, in
//! order, against a fresh `skiff up` on the process runtime, and its output
//! holds what the line's `# → text` says. A command is tried again (a bounded
//! number of times) until it does, as a reader would while the cluster
//! converges. `etcdctl` lines need Debian's etcd-client: on CI it must be
//! there; elsewhere those lines are skipped, and the test says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use skiff_e2e::skiff_binary;
use skiff_e2e::up::UpProcess;

/// One command of the walkthrough and what its output must hold.
#[derive(Debug, PartialEq)]
struct Step {
    words: Vec<String>,
    expect: Option<String>,
}

/// The commands of every ```sh block of `markdown`, one a line.
fn steps(markdown: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut in_sh = false;
    for line in markdown.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match fence {
            Some(info) if !in_sh => in_sh = info.trim() == "sh",
            Some(_) => in_sh = false,
            None if in_sh && !line.trim().is_empty() => {
                let (command, expect) = match line.split_once("# → ") {
                    Some((command, expect)) => (command, Some(expect.trim().to_string())),
                    None => (line, None),
                };
                let words = command.split_whitespace().map(str::to_string).collect();
                steps.push(Step { words, expect });
            }
            None => {}
        }
    }
    steps
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn etcdctl_available() -> bool {
    let found = Command::new("etcdctl").arg("version").output().is_ok();
    assert!(
        found || std::env::var("CI").as_deref() != Ok("true"),
        "CI must have etcdctl (Debian's etcd-client) for the walkthrough"
    );
    found
}

fn run(up: &UpProcess, step: &Step) -> Output {
    let (program, args) = step.words.split_first().expect("a command has a word");
    let mut command = match program.as_str() {
        "skiff" => up.command(skiff_binary()),
        other => up.command(other),
    };
    command
        .args(args)
        .current_dir(root())
        .env("ETCDCTL_API", "3")
        .env("ETCDCTL_ENDPOINTS", &up.store)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run: {e}"))
}

/// Runs `step` until it succeeds with what it must print; panics with the
/// last output after a bounded number of tries.
fn run_until_true(up: &UpProcess, step: &Step) {
    let mut last = None;
    for _ in 0..300 {
        let out = run(up, step);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let holds = step
            .expect
            .as_ref()
            .is_none_or(|e| stdout.contains(e.as_str()));
        if out.status.success() && holds {
            return;
        }
        last = Some(out);
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "walkthrough step {:?} never held; last run: {last:?}",
        step.words
    );
}

#[test]
fn the_walkthrough_s_commands_do_what_it_says() {
    let markdown = std::fs::read_to_string(root().join("docs/walkthrough.md"))
        .expect("docs/walkthrough.md is there");
    let steps = steps(&markdown);
    assert!(
        steps.len() >= 8,
        "the walkthrough lost its commands: {steps:?}"
    );
    let etcdctl = etcdctl_available();
    let up = UpProcess::start(&["--runtime", "process"]);
    for step in &steps {
        if step.words[0] == "etcdctl" && !etcdctl {
            eprintln!("skipping {:?}: etcdctl is not installed", step.words);
            continue;
        }
        run_until_true(&up, step);
    }
}

#[test]
fn commands_and_their_expectations_are_read_from_sh_blocks_only() {
    let markdown = "text\n```sh\nskiff get pods    # → hello\n\nskiff logs x\n```\n\
                    ```console\n$ not run\n```\n";
    assert_eq!(
        steps(markdown),
        [
            Step {
                words: vec!["skiff".into(), "get".into(), "pods".into()],
                expect: Some("hello".into()),
            },
            Step {
                words: vec!["skiff".into(), "logs".into(), "x".into()],
                expect: None,
            },
        ]
    );
}
