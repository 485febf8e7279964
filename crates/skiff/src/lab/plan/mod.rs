//! Which processes a lab runs, with their names, addresses and flags: a pure
//! function of the settings and a source of free ports, so the layout is
//! tested without starting anything.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a lab process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Role {
    /// `skiff store`, a raft member.
    Store,
    /// `skiff apiserver`.
    Apiserver,
    /// `skiff scheduler`.
    Scheduler,
    /// `skiff controller-manager`.
    ControllerManager,
    /// `skiff kubelet`.
    Kubelet,
}

impl Role {
    /// The role as `lab status` shows it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Store => "store",
            Role::Apiserver => "apiserver",
            Role::Scheduler => "scheduler",
            Role::ControllerManager => "controller-manager",
            Role::Kubelet => "kubelet",
        }
    }
}

/// One process of the lab: how it is started and where it listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessSpec {
    /// Its name in the lab (`store-1`, `node-2`, …).
    pub name: String,
    /// What it is.
    pub role: Role,
    /// Where it serves, or the API server it talks to.
    pub address: String,
    /// The arguments after `skiff`.
    pub args: Vec<String>,
}

/// A peer relay: a store member's advertised peer address, forwarded to the
/// address it really listens on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RelaySpec {
    /// The store member behind it.
    pub member: String,
    /// The advertised peer address (the relay listens here).
    pub listen: SocketAddr,
    /// The member's own peer listener.
    pub target: SocketAddr,
}

/// What `lab up` was asked for.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Servers: store member, API server, scheduler and controller manager each.
    pub servers: usize,
    /// Kubelets.
    pub nodes: usize,
    /// The kubelets' `--runtime` value.
    pub runtime: String,
    /// The lab's directory.
    pub dir: PathBuf,
    /// The controller managers' `--node-monitor-grace-period`.
    pub node_monitor_grace_period: Duration,
    /// The kubelets' `--node-lease-duration-seconds`.
    pub node_lease_duration_seconds: i32,
    /// The Lease duration of leader election.
    pub leader_elect_lease_duration: Duration,
}

/// A lab's processes and relays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Layout {
    /// Stores first, then API servers, schedulers, controller managers, nodes:
    /// the order they start in.
    pub processes: Vec<ProcessSpec>,
    /// One per store member.
    pub relays: Vec<RelaySpec>,
    /// The API servers' URLs.
    pub api_servers: Vec<String>,
    /// The store members' client URLs.
    pub store_clients: Vec<String>,
}

/// Server `i`'s (1-based) address.
pub(crate) fn server_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, i as u8)
}

/// Node `k`'s (1-based) address.
pub(crate) fn node_ip(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 10 + k as u8)
}

/// Node `k`'s zone: `lab-zone-a`, `-b`, `-c`, round-robin.
pub(crate) fn zone(k: usize) -> String {
    let letter = (b'a' + ((k - 1) % 3) as u8) as char;
    format!("lab-zone-{letter}")
}

/// The largest lab: addresses stay within 127.0.0.1-10 and 127.0.0.11-254.
pub(crate) const MAX_SERVERS: usize = 9;
/// See [`MAX_SERVERS`].
pub(crate) const MAX_NODES: usize = 240;

/// The lab's layout; `port(ip)` answers a free port on `ip`.
pub(crate) fn layout(settings: &Settings, mut port: impl FnMut(Ipv4Addr) -> u16) -> Layout {
    let (mut processes, relays) = stores(settings, &mut port);
    let store_clients: Vec<String> = processes
        .iter()
        .map(|p| format!("http://{}", p.address))
        .collect();
    let (apiservers, api_servers) = apiservers(settings, &store_clients, &mut port);
    processes.extend(apiservers);
    processes.extend(components(settings, &api_servers));
    processes.extend((1..=settings.nodes).map(|k| kubelet(settings, k, &api_servers, &mut port)));
    Layout {
        processes,
        relays,
        api_servers,
        store_clients,
    }
}

/// One store member per server: it listens for peers behind its relay,
/// whose address it advertises.
fn stores(
    settings: &Settings,
    port: &mut impl FnMut(Ipv4Addr) -> u16,
) -> (Vec<ProcessSpec>, Vec<RelaySpec>) {
    let mut members = Vec::new();
    for i in 1..=settings.servers {
        let ip = server_ip(i);
        let relay = SocketAddr::new(ip.into(), port(ip));
        let peer = SocketAddr::new(ip.into(), port(ip));
        let client = SocketAddr::new(ip.into(), port(ip));
        members.push((format!("store-{i}"), client, peer, relay));
    }
    let initial_cluster: Vec<String> = members
        .iter()
        .map(|(name, _, _, relay)| format!("{name}=http://{relay}"))
        .collect();
    let mut processes = Vec::new();
    let mut relays = Vec::new();
    for (name, client, peer, relay) in members {
        processes.push(ProcessSpec {
            name: name.clone(),
            role: Role::Store,
            address: client.to_string(),
            args: strings(&[
                "store",
                "--name",
                &name,
                "--data-dir",
                &path(&settings.dir.join(&name)),
                "--listen-client-urls",
                &format!("http://{client}"),
                "--initial-advertise-peer-urls",
                &format!("http://{relay}"),
                "--listen-peer-urls",
                &format!("http://{peer}"),
                "--initial-cluster",
                &initial_cluster.join(","),
                "--initial-cluster-token",
                "skiff-lab",
            ]),
        });
        relays.push(RelaySpec {
            member: name,
            listen: relay,
            target: peer,
        });
    }
    (processes, relays)
}

/// One API server per server, on all store members (its own first); answers
/// the processes and their URLs.
fn apiservers(
    settings: &Settings,
    store_clients: &[String],
    port: &mut impl FnMut(Ipv4Addr) -> u16,
) -> (Vec<ProcessSpec>, Vec<String>) {
    let mut processes = Vec::new();
    let mut urls = Vec::new();
    for i in 1..=settings.servers {
        let ip = server_ip(i);
        let listen = SocketAddr::new(ip.into(), port(ip));
        let own = &store_clients[i - 1];
        let mut etcd = vec![own.clone()];
        etcd.extend(store_clients.iter().filter(|u| *u != own).cloned());
        processes.push(ProcessSpec {
            name: format!("apiserver-{i}"),
            role: Role::Apiserver,
            address: listen.to_string(),
            args: strings(&[
                "apiserver",
                "--etcd-servers",
                &etcd.join(","),
                "--listen",
                &listen.to_string(),
            ]),
        });
        urls.push(format!("http://{listen}"));
    }
    (processes, urls)
}

/// A scheduler and a controller manager per server, on its API server,
/// electing leaders.
fn components(settings: &Settings, api_servers: &[String]) -> Vec<ProcessSpec> {
    let election = leader_election_flags(settings.leader_elect_lease_duration);
    let mut processes = Vec::new();
    for (role, command) in [
        (Role::Scheduler, "scheduler"),
        (Role::ControllerManager, "controller-manager"),
    ] {
        for (i, server) in api_servers.iter().enumerate() {
            let mut args = strings(&[command, "--server", server]);
            args.extend(election.iter().cloned());
            if role == Role::ControllerManager {
                args.push("--node-monitor-grace-period".into());
                args.push(millis(settings.node_monitor_grace_period));
            }
            processes.push(ProcessSpec {
                name: format!("{command}-{}", i + 1),
                role,
                address: format!("→ {server}"),
                args,
            });
        }
    }
    processes
}

/// Node `k`'s kubelet, on API server ((k-1) mod servers)+1.
fn kubelet(
    settings: &Settings,
    k: usize,
    api_servers: &[String],
    port: &mut impl FnMut(Ipv4Addr) -> u16,
) -> ProcessSpec {
    let ip = node_ip(k);
    let kubelet_port = port(ip);
    let server = &api_servers[(k - 1) % api_servers.len()];
    ProcessSpec {
        name: format!("node-{k}"),
        role: Role::Kubelet,
        address: format!("{ip}:{kubelet_port}"),
        args: strings(&[
            "kubelet",
            "--node-name",
            &format!("lab-node-{k}"),
            "--runtime",
            &settings.runtime,
            "--root-dir",
            &path(&settings.dir.join(format!("node-{k}"))),
            "--node-ip",
            &ip.to_string(),
            "--address",
            &ip.to_string(),
            "--port",
            &kubelet_port.to_string(),
            "--zone",
            &zone(k),
            "--node-lease-duration-seconds",
            &settings.node_lease_duration_seconds.to_string(),
            "--server",
            server,
        ]),
    }
}

/// Leader election scaled from the Lease duration as Kubernetes' defaults
/// are (15 s lease, 10 s renew deadline, 2 s retry period).
fn leader_election_flags(lease: Duration) -> Vec<String> {
    vec![
        "--leader-elect-lease-duration".into(),
        millis(lease),
        "--leader-elect-renew-deadline".into(),
        millis(lease * 2 / 3),
        "--leader-elect-retry-period".into(),
        millis(lease * 2 / 15),
    ]
}

fn millis(duration: Duration) -> String {
    format!("{}ms", duration.as_millis().max(1))
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests;
