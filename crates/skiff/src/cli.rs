//! The command line: one clap subcommand per component or client action.
//!
//! Subcommands are added as the component behind them works; none pretends.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    /// Run an etcd-compatible store member (etcd's flags).
    Store(StoreArgs),
}

/// `skiff store`: flags named as etcd's.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Path to the data directory [default: <name>.skiff].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// List of URLs to listen on for client traffic.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub listen_client_urls: Vec<String>,
    /// List of this member's client URLs to advertise [default: the listen URLs].
    #[arg(long, value_delimiter = ',')]
    pub advertise_client_urls: Vec<String>,
    /// List of this member's peer URLs to advertise.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2380")]
    pub initial_advertise_peer_urls: Vec<String>,
    /// Maximum client request size in bytes the server will accept.
    #[arg(long, default_value_t = 1536 * 1024)]
    pub max_request_bytes: usize,
    /// Maximum number of operations permitted in a transaction.
    #[arg(long, default_value_t = 128)]
    pub max_txn_ops: usize,
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
    fn store_flags_follow_etcds_names_and_defaults() {
        let cli = Cli::try_parse_from([
            "skiff",
            "store",
            "--data-dir",
            "/tmp/d",
            "--listen-client-urls",
            "http://127.0.0.1:1,http://127.0.0.2:2",
        ])
        .unwrap();
        let Command::Store(args) = cli.command else {
            panic!("not the store command")
        };
        assert_eq!(args.name, "default");
        assert_eq!(args.data_dir, Some(PathBuf::from("/tmp/d")));
        assert_eq!(
            args.listen_client_urls,
            ["http://127.0.0.1:1", "http://127.0.0.2:2"]
        );
        assert_eq!(args.max_request_bytes, 1536 * 1024);
        assert!(args.advertise_client_urls.is_empty());
    }

    #[test]
    fn store_rejects_a_non_numeric_request_limit() {
        let err =
            Cli::try_parse_from(["skiff", "store", "--max-request-bytes", "lots"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn version_line_names_the_package_version() {
        assert_eq!(
            version_line(),
            format!("skiff version {}", env!("CARGO_PKG_VERSION"))
        );
    }
}
