//! The CNI protocol as a plugin sees it, checked with stand-in plugins:
//! shell scripts that record their environment and stdin and print a result.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;

/// Writes a plugin named `name` that records what it was given under
/// `<dir>/<name>.<CNI_COMMAND>.{env,stdin}` and prints `stdout`, exiting `code`.
fn fake_plugin(dir: &Path, name: &str, stdout: &str, code: i32) {
    let script = format!(
        "#!/bin/sh\n\
         env | grep ^CNI_ | sort > {dir}/{name}.$CNI_COMMAND.env\n\
         cat > {dir}/{name}.$CNI_COMMAND.stdin\n\
         printf '%s' '{stdout}'\n\
         exit {code}\n",
        dir = dir.display()
    );
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn cni(dir: &Path) -> Cni {
    Cni::new(NetworkConfig {
        plugin_dir: dir.to_path_buf(),
        pod_cidr: "10.244.7.0/24".into(),
        ..NetworkConfig::default()
    })
}

const RESULT: &str = r#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.244.7.9/24"}]}"#;

#[tokio::test]
async fn add_runs_loopback_then_bridge_with_the_cni_environment_and_returns_the_ip() {
    let dir = tempfile::tempdir().unwrap();
    fake_plugin(dir.path(), "loopback", "{}", 0);
    fake_plugin(dir.path(), "bridge", RESULT, 0);
    let ip = cni(dir.path())
        .add("sandbox-1", Path::new("/var/run/netns/skiff-1"))
        .await
        .unwrap();
    assert_eq!(ip, "10.244.7.9".parse::<IpAddr>().unwrap());

    let env = std::fs::read_to_string(dir.path().join("bridge.ADD.env")).unwrap();
    let expected = format!(
        "CNI_COMMAND=ADD\nCNI_CONTAINERID=sandbox-1\nCNI_IFNAME=eth0\n\
         CNI_NETNS=/var/run/netns/skiff-1\nCNI_PATH={}\n",
        dir.path().display()
    );
    assert_eq!(env, expected);
    let loopback = std::fs::read_to_string(dir.path().join("loopback.ADD.env")).unwrap();
    assert!(loopback.contains("CNI_IFNAME=lo\n"), "{loopback}");

    let stdin = std::fs::read(dir.path().join("bridge.ADD.stdin")).unwrap();
    let config: Value = serde_json::from_slice(&stdin).unwrap();
    assert_eq!(config["type"], "bridge");
    assert_eq!(config["ipam"]["ranges"][0][0]["subnet"], "10.244.7.0/24");
}

#[tokio::test]
async fn del_runs_both_plugins_with_del() {
    let dir = tempfile::tempdir().unwrap();
    fake_plugin(dir.path(), "loopback", "", 0);
    fake_plugin(dir.path(), "bridge", "", 0);
    cni(dir.path())
        .del("sandbox-1", Path::new("/var/run/netns/gone"))
        .await
        .unwrap();
    for plugin in ["bridge", "loopback"] {
        let env = std::fs::read_to_string(dir.path().join(format!("{plugin}.DEL.env"))).unwrap();
        assert!(env.contains("CNI_COMMAND=DEL\n"), "{env}");
    }
}

#[tokio::test]
async fn a_failing_plugin_reports_its_error_document() {
    let dir = tempfile::tempdir().unwrap();
    fake_plugin(dir.path(), "loopback", "{}", 0);
    let error_document = r#"{"cniVersion":"0.4.0","code":11,"msg":"no IP addresses available"}"#;
    fake_plugin(dir.path(), "bridge", error_document, 1);
    let error = cni(dir.path())
        .add("sandbox-1", Path::new("/var/run/netns/x"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "CNI plugin bridge ADD failed: no IP addresses available (code 11)"
    );
}

#[tokio::test]
async fn a_missing_plugin_is_a_spawn_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let error = cni(dir.path())
        .add("sandbox-1", Path::new("/var/run/netns/x"))
        .await
        .unwrap_err();
    assert!(matches!(error, CniError::Spawn { .. }), "{error}");
    assert!(error.to_string().contains("loopback"), "{error}");
}
