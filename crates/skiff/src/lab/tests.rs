//! `skiff lab`'s command line as the binary parses it.

use super::*;
use crate::cli::{Cli, Command};
use clap::Parser;
use std::path::Path;

#[test]
fn lab_up_defaults_to_three_servers_three_nodes_the_process_runtime_and_kubernetes_grace_periods() {
    let Command::Lab(LabCommand::Up(args)) =
        Cli::try_parse_from(["skiff", "lab", "up"]).unwrap().command
    else {
        panic!("not lab up")
    };
    assert_eq!((args.servers, args.nodes), (3, 3));
    assert_eq!(args.runtime, RuntimeName::Process);
    assert_eq!(args.dir, PathBuf::from("./skiff-lab"));
    assert_eq!(args.node_monitor_grace_period.as_secs(), 40);
    assert_eq!(args.node_lease_duration_seconds, 40);
    assert_eq!(args.leader_elect_lease_duration.as_secs(), 15);
}

#[test]
fn the_short_commands_take_a_name_and_the_labs_directory() {
    let parse = |line: &[&str]| {
        let line = [&["skiff", "lab"], line].concat();
        match Cli::try_parse_from(line).unwrap().command {
            Command::Lab(command) => command,
            other => panic!("not lab: {other:?}"),
        }
    };
    let LabCommand::Kill(kill) = parse(&["kill", "store-1", "--dir", "/l"]) else {
        panic!("not kill")
    };
    assert_eq!(
        (kill.name.as_str(), kill.lab.dir.as_path()),
        ("store-1", Path::new("/l"))
    );
    let LabCommand::Heal(heal) = parse(&["heal"]) else {
        panic!("not heal")
    };
    assert_eq!(heal.name, None);
    assert!(matches!(parse(&["down"]), LabCommand::Down(_)));
    assert!(
        Cli::try_parse_from(["skiff", "lab", "restart"]).is_err(),
        "a name is needed"
    );
}
