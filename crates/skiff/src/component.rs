//! What the component subcommands (`kubelet`, `scheduler`,
//! `controller-manager`) share: the API server they talk to, and Kubernetes'
//! leader-election flags as skiff-client's `LeaderElectionConfig`.
//!
//! The server is found as the client commands find it: `--server` (or
//! `SKIFF_SERVER`), else `server` in `~/.skiff/config`, else
//! `http://127.0.0.1:6443`.
//!
//! # Caveats
//! The connection is made lazily, so a component may start before its API
//! server; it retries as its informers do.

use std::path::PathBuf;

use anyhow::Context;
use skiff_client::{Client, LeaderElectionConfig};
use tonic::transport::Endpoint;

use crate::cli::LeaderElectionArgs;

/// A client of the API server named by `flag`, or the configured one.
pub(crate) fn client(flag: Option<&str>) -> anyhow::Result<Client> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let url = crate::kubectl::server::server_url(flag, home.as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(server = %url, "API server");
    let endpoint =
        Endpoint::from_shared(url.clone()).with_context(|| format!("{url:?} is not a URL"))?;
    Ok(Client::new(endpoint.connect_lazy()))
}

/// The Lease named `lease_name` with the flags' timings; the identity is the
/// host name and the process id, unique among candidates as client-go's
/// host name + uid is.
pub(crate) fn leader_election(args: &LeaderElectionArgs, lease_name: &str) -> LeaderElectionConfig {
    LeaderElectionConfig {
        namespace: args.leader_elect_resource_namespace.clone(),
        lease_name: lease_name.to_string(),
        identity: format!("{}_{}", host_name(), std::process::id()),
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
        release_on_cancel: true,
    }
}

/// This host's name as a Node name (lower case), or `localhost`.
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
