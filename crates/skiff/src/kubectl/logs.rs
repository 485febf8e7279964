//! `skiff logs POD [-c C] [-f] [-p] [--tail N]`: a container's log, as
//! `kubectl logs`, through the API server's `pods/log` (which proxies to the
//! kubelet of the pod's node).
//!
//! # Caveats
//! No `--since`/`--since-time`, `--all-containers`, label selectors or
//! `TYPE/NAME` other than pods.

use std::io::Write;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use skiff_client::{Api, Client, LogParams};

use super::{namespace_or_default, server, Error};
use crate::cli::LogsArgs;

/// The pods of the namespace `-n` names (else `default`), over skiff-client,
/// and the server's URL for messages.
pub(crate) async fn pod_api(
    flag: &Option<String>,
    namespace: &Option<String>,
) -> Result<(Api<Pod>, String), Error> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let server = server::server_url(flag.as_deref(), home.as_deref())?;
    let client = Client::connect(server.clone())
        .await
        .map_err(|e| client_error(e, &server))?;
    let pods = Api::namespaced(client, &namespace_or_default(namespace));
    Ok((pods, server))
}

/// The pod a `POD` argument names: `web`, `pod/web` or `pods/web`.
pub(crate) fn pod_name(typed: &str) -> Result<String, Error> {
    let name = match typed.split_once('/') {
        Some(("po" | "pod" | "pods", name)) => name,
        Some((kind, _)) => {
            return Err(Error::Usage(format!(
                "cannot use {kind:?}: only pods are supported here"
            )))
        }
        None => typed,
    };
    match name.is_empty() {
        true => Err(Error::Usage("a pod name is required".into())),
        false => Ok(name.to_string()),
    }
}

/// The error a failed client call stands for, printed as kubectl's.
pub(crate) fn client_error(error: skiff_client::Error, server: &str) -> Error {
    Error::from_client(error, server)
}

/// Writes output bytes to stdout at once; a closed pipe is not an error.
pub(crate) fn print_bytes(data: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(data);
    let _ = out.flush();
}

/// kubectl's LogParams for the flags given (`--tail -1` means all lines).
fn log_params(args: &LogsArgs) -> LogParams {
    LogParams {
        container: args.container.clone(),
        follow: args.follow,
        previous: args.previous,
        tail_lines: (args.tail >= 0).then_some(args.tail),
        timestamps: args.timestamps,
        limit_bytes: args.limit_bytes,
        ..LogParams::default()
    }
}

/// Prints the log, as it grows with `-f`.
pub(crate) async fn run(args: LogsArgs) -> Result<(), Error> {
    let name = pod_name(&args.pod)?;
    let (pods, server) = pod_api(&args.server.server, &args.namespace).await?;
    let mut chunks = pods
        .log_stream(&name, &log_params(&args))
        .await
        .map_err(|e| client_error(e, &server))?;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| client_error(e, &server))?;
        print_bytes(&chunk);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(line: &[&str]) -> LogsArgs {
        match Cli::parse_from(line).command {
            Command::Logs(args) => args,
            other => panic!("not logs: {other:?}"),
        }
    }

    #[test]
    fn flags_become_kubectls_log_params() {
        let args = parse(&[
            "skiff", "logs", "web", "-c", "app", "-f", "-p", "--tail", "5",
        ]);
        let params = log_params(&args);
        assert_eq!(params.container.as_deref(), Some("app"));
        assert!(params.follow && params.previous);
        assert_eq!(params.tail_lines, Some(5));
    }

    #[test]
    fn a_pod_is_named_alone_or_as_type_slash_name() {
        assert_eq!(pod_name("web").ok().as_deref(), Some("web"));
        assert_eq!(pod_name("pod/web").ok().as_deref(), Some("web"));
        assert!(pod_name("deploy/web").is_err());
    }

    #[test]
    fn the_default_tail_is_every_line() {
        let params = log_params(&parse(&["skiff", "logs", "pod/web"]));
        assert_eq!(params.tail_lines, None);
        assert!(!params.follow && !params.previous);
    }
}
