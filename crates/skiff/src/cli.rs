//! The command line: one clap subcommand per component or client action.
//!
//! Subcommands are added as the component behind them works; none pretends.

use clap::{Parser, Subcommand};

/// A Kubernetes-style control plane: an etcd-compatible store, an API server,
/// a scheduler, controllers and a kubelet, in one binary.
#[derive(Debug, Parser)]
#[command(name = "skiff", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Everything `skiff` can do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print skiff's version.
    Version,
}

/// What `skiff version` prints.
pub fn version_line() -> String {
    format!("skiff version {}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn version_subcommand_parses() {
        let cli = Cli::try_parse_from(["skiff", "version"]).unwrap();
        assert!(matches!(cli.command, Command::Version));
    }

    #[test]
    fn unknown_subcommand_is_rejected_with_its_name() {
        let err = Cli::try_parse_from(["skiff", "frobnicate"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidSubcommand);
        assert!(err.to_string().contains("frobnicate"), "{err}");
    }

    #[test]
    fn a_subcommand_is_required() {
        let err = Cli::try_parse_from(["skiff"]).unwrap_err();
        assert_eq!(
            err.kind(),
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        );
    }

    #[test]
    fn version_line_names_the_package_version() {
        assert_eq!(
            version_line(),
            format!("skiff version {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
