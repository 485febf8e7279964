//! Named network namespaces, as `ip netns` makes them: a namespace kept alive
//! by a bind mount at `/var/run/netns/<name>`, so it outlives any process and
//! the kubelet, and a container joins it by path.

use std::path::PathBuf;

use crate::runtime::{Result, RuntimeError};

/// Where `ip netns` keeps its bind mounts.
const NETNS_DIR: &str = "/var/run/netns";

/// The name of a sandbox's network namespace.
pub fn name_for(sandbox_id: &str) -> String {
    format!("skiff-{}", &sandbox_id[..sandbox_id.len().min(16)])
}

/// The path a container joins the namespace by.
pub fn path_of(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

/// Creates the namespace (`ip netns add`).
pub async fn add(name: &str) -> Result<()> {
    ip(&["netns", "add", name]).await
}

/// Deletes the namespace (`ip netns delete`); a missing one is already gone.
pub async fn delete(name: &str) -> Result<()> {
    if !path_of(name).exists() {
        return Ok(());
    }
    ip(&["netns", "delete", name]).await
}

async fn ip(args: &[&str]) -> Result<()> {
    let output = tokio::process::Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|error| RuntimeError::CreateSandbox(format!("cannot run ip: {error}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(RuntimeError::CreateSandbox(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}
