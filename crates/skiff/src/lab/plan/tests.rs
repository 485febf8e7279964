//! The lab's plan: names, addresses and each process's flags, checked
//! against the command line that will read them.

use super::*;
use crate::cli::{Cli, Command};
use clap::Parser;

fn settings() -> Settings {
    Settings {
        servers: 3,
        nodes: 4,
        runtime: "hollow".into(),
        dir: PathBuf::from("/lab"),
        node_monitor_grace_period: Duration::from_secs(40),
        node_lease_duration_seconds: 40,
        leader_elect_lease_duration: Duration::from_secs(15),
    }
}

fn counting_ports() -> impl FnMut(Ipv4Addr) -> u16 {
    let mut next = 20000;
    move |_| {
        next += 1;
        next
    }
}

#[test]
fn a_lab_has_a_store_apiserver_scheduler_and_controller_manager_per_server_and_a_kubelet_per_node()
{
    let layout = layout(&settings(), counting_ports());
    let names: Vec<&str> = layout.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "store-1",
            "store-2",
            "store-3",
            "apiserver-1",
            "apiserver-2",
            "apiserver-3",
            "scheduler-1",
            "scheduler-2",
            "scheduler-3",
            "controller-manager-1",
            "controller-manager-2",
            "controller-manager-3",
            "node-1",
            "node-2",
            "node-3",
            "node-4"
        ]
    );
    assert_eq!(layout.relays.len(), 3);
    assert_eq!(layout.api_servers.len(), 3);
}

#[test]
fn every_process_line_parses_as_the_command_it_names() {
    for process in layout(&settings(), counting_ports()).processes {
        let line = std::iter::once("skiff".to_string()).chain(process.args.clone());
        let parsed = Cli::try_parse_from(line)
            .unwrap_or_else(|e| panic!("{}: {e}", process.name))
            .command;
        let matches = match process.role {
            Role::Store => matches!(parsed, Command::Store(_)),
            Role::Apiserver => matches!(parsed, Command::Apiserver(_)),
            Role::Scheduler => matches!(parsed, Command::Scheduler(_)),
            Role::ControllerManager => matches!(parsed, Command::ControllerManager(_)),
            Role::Kubelet => matches!(parsed, Command::Kubelet(_)),
        };
        assert!(matches, "{} parses as {parsed:?}", process.name);
    }
}

#[test]
fn members_advertise_their_relay_and_listen_behind_it() {
    let layout = layout(&settings(), counting_ports());
    let relay = &layout.relays[1];
    assert_eq!(relay.member, "store-2");
    assert_eq!(relay.listen.ip(), server_ip(2));
    let store = &layout.processes[1];
    let Command::Store(args) =
        Cli::try_parse_from(std::iter::once("skiff".to_string()).chain(store.args.clone()))
            .unwrap()
            .command
    else {
        panic!("not a store")
    };
    assert_eq!(
        args.initial_advertise_peer_urls,
        [format!("http://{}", relay.listen)]
    );
    assert_eq!(args.listen_peer_urls, [format!("http://{}", relay.target)]);
    let cluster: Vec<String> = args
        .initial_cluster
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(cluster, ["store-1", "store-2", "store-3"]);
    assert!(args
        .initial_cluster
        .contains(&("store-2".into(), format!("http://{}", relay.listen))));
}

#[test]
fn nodes_get_their_own_names_zones_addresses_and_api_servers_round_robin() {
    let layout = layout(&settings(), counting_ports());
    let node4 = layout
        .processes
        .iter()
        .find(|p| p.name == "node-4")
        .unwrap();
    let Command::Kubelet(args) =
        Cli::try_parse_from(std::iter::once("skiff".to_string()).chain(node4.args.clone()))
            .unwrap()
            .command
    else {
        panic!("not a kubelet")
    };
    assert_eq!(args.node_name.as_deref(), Some("lab-node-4"));
    assert_eq!(args.zone.as_deref(), Some("lab-zone-a"));
    assert_eq!(args.node_ip.to_string(), "127.0.0.14");
    assert_eq!(
        args.server.server.as_deref(),
        Some(layout.api_servers[0].as_str())
    );
    assert_eq!(zone(2), "lab-zone-b");
    assert_eq!(zone(3), "lab-zone-c");
}

#[test]
fn leader_election_timings_scale_from_the_lease_as_kubernetes_defaults_do() {
    assert_eq!(
        leader_election_flags(Duration::from_secs(15))[1..]
            .iter()
            .step_by(2)
            .collect::<Vec<_>>(),
        ["15000ms", "10000ms", "2000ms"]
    );
}
