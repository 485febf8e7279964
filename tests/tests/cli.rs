//! The `skiff` binary's command line, run as a real process.

use std::process::Command;

use skiff_e2e::skiff_binary;

#[test]
fn version_prints_the_package_version() {
    let out = Command::new(skiff_binary())
        .arg("version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("skiff version {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_the_subcommands() {
    let out = Command::new(skiff_binary()).arg("--help").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("version"), "{stdout}");
}

#[test]
fn unknown_subcommand_fails_with_usage_error() {
    let out = Command::new(skiff_binary())
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{stderr}"
    );
}
