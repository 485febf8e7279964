//! End-to-end tests of skiff: real `skiff` processes driven by real clients.
//!
//! The tests live in `tests/tests/`; this library holds what they share.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of the `skiff` binary from this workspace, built on first use.
///
/// Cargo only builds a package's binaries for that package's own integration
/// tests, so the end-to-end suite builds `skiff` itself (once per test process,
/// with the same profile as the tests) unless it is already there.
pub fn skiff_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_skiff).clone()
}

fn build_skiff() -> PathBuf {
    let mut dir = std::env::current_exe().expect("the test executable has a path");
    dir.pop(); // the test executable itself
    if dir.ends_with("deps") {
        dir.pop();
    }
    let release = dir.ends_with("release");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet", "--package", "skiff", "--bin", "skiff"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        cargo.arg("--release");
    }
    let status = cargo.status().expect("cargo can be started to build skiff");
    assert!(
        status.success(),
        "building the skiff binary failed: {status}"
    );
    let binary = dir.join("skiff");
    assert!(binary.exists(), "no skiff binary at {}", binary.display());
    binary
}
