//! `skiff store`: runs one store member until Ctrl-C or SIGTERM.

use anyhow::Context;
use skiff_store::server::{self, ServerConfig};
use std::time::Duration;

use skiff_store::{ClusterState, StoreConfig};

use crate::cli::StoreArgs;
use crate::shutdown::cancel_on_signal;

/// Builds the server's configuration from the flags and serves.
pub fn run(args: StoreArgs) -> anyhow::Result<()> {
    let data_dir = args
        .data_dir
        .unwrap_or_else(|| format!("{}.skiff", args.name).into());
    let listen_peer_urls = if args.listen_peer_urls.is_empty() && !args.initial_cluster.is_empty() {
        args.initial_advertise_peer_urls.clone()
    } else {
        args.listen_peer_urls
    };
    let config = ServerConfig {
        store: StoreConfig {
            name: args.name,
            data_dir,
            max_request_bytes: args.max_request_bytes,
            max_txn_ops: args.max_txn_ops,
            initial_cluster: args.initial_cluster,
            initial_cluster_state: if args.initial_cluster_state == "existing" {
                ClusterState::Existing
            } else {
                ClusterState::New
            },
            initial_cluster_token: args.initial_cluster_token,
            initial_advertise_peer_urls: args.initial_advertise_peer_urls,
            heartbeat_interval: Duration::from_millis(args.heartbeat_interval.max(1)),
            election_timeout: Duration::from_millis(args.election_timeout.max(1)),
            snapshot_count: args.snapshot_count.max(1),
            snapshot_catch_up_entries: args.snapshot_catchup_entries,
            preallocate_wal_from_start: true,
            ..StoreConfig::default()
        },
        listen_client_urls: args.listen_client_urls,
        advertise_client_urls: args.advertise_client_urls,
        listen_peer_urls,
    };
    // Leave a core to the log and apply threads, which do not run on the runtime.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.saturating_sub(1).max(1))
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        server::run(config, cancel_on_signal())
            .await
            .context("skiff store")
    })
}
