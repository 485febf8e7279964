//! `skiff bench up` runs to its end with one run of each kind and reports
//! every measurement; only the report's shape is checked, never a time.

use std::process::Command;

use skiff_e2e::skiff_binary;

#[test]
fn bench_up_reports_both_starts_and_the_idle_memory() {
    let out = Command::new(skiff_binary())
        .args(["bench", "up", "--runs", "1", "--idle", "0s"])
        .output()
        .expect("skiff bench up runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("skiff up (--runtime process), start to a Ready node: median "),
        "{stdout}"
    );
    assert!(lines[0].ends_with(", 1 runs)"), "{stdout}");
    let rss: f64 = lines[1]
        .strip_prefix("skiff up, resident memory after 0ns idle: ")
        .and_then(|rest| rest.strip_suffix(" MiB"))
        .and_then(|mib| mib.parse().ok())
        .unwrap_or_else(|| panic!("no memory line in {stdout}"));
    assert!(rss > 0.0, "{stdout}");
    assert!(
        lines[2].starts_with("TestCluster (1 hollow node), start to a Ready node: median "),
        "{stdout}"
    );
}

#[test]
fn bench_up_refuses_zero_runs() {
    let out = Command::new(skiff_binary())
        .args(["bench", "up", "--runs", "0"])
        .output()
        .expect("skiff bench up runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--runs must be at least 1"), "{stderr}");
}
