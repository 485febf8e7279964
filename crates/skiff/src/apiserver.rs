//! `skiff apiserver`: the API server over a remote etcd-compatible store, until
//! Ctrl-C or SIGTERM.

use anyhow::Context;
use skiff_apiserver::registry::{RegistryConfig, ServiceRanges};
use skiff_apiserver::server::{self, ServeOptions, ServerConfig, TlsFiles};

use crate::cli::{ApiserverArgs, ServiceRangeArgs};
use crate::shutdown::cancel_on_signal;

/// Builds the server's configuration from the flags and serves.
pub fn run(args: ApiserverArgs) -> anyhow::Result<()> {
    let config = ServerConfig {
        etcd_servers: args.etcd_servers,
        listen: args.listen,
        registry: registry_config(&args.ranges)?,
        serve: ServeOptions {
            tls: args
                .tls_cert_file
                .zip(args.tls_private_key_file)
                .map(|(cert_file, key_file)| TlsFiles {
                    cert_file,
                    key_file,
                    client_ca_file: args.client_ca_file,
                }),
            insecure: args.insecure,
        },
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        server::run(config, cancel_on_signal())
            .await
            .context("skiff apiserver")
    })
}

/// The registry settings the service-range flags describe.
pub fn registry_config(ranges: &ServiceRangeArgs) -> anyhow::Result<RegistryConfig> {
    let (network, prefix) = ServiceRanges::parse_cidr(&ranges.service_cluster_ip_range)
        .map_err(|e| anyhow::anyhow!("--service-cluster-ip-range: {e}"))?;
    let (low, high) = ranges
        .service_node_port_range
        .split_once('-')
        .and_then(|(l, h)| Some((l.trim().parse::<u16>().ok()?, h.trim().parse::<u16>().ok()?)))
        .filter(|(l, h)| l <= h)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--service-node-port-range {:?}: expected LOW-HIGH, such as 30000-32767",
                ranges.service_node_port_range
            )
        })?;
    Ok(RegistryConfig {
        service_ranges: ServiceRanges {
            cluster_ip_network: network,
            cluster_ip_prefix: prefix,
            node_ports: low..=high,
        },
        ..RegistryConfig::default()
    })
}
