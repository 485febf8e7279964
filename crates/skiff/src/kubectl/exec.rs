//! `skiff exec POD [-c C] [-i] [-t] -- CMD…`: runs a command in a
//! container, as `kubectl exec`, through the API server's `pods/exec`. The
//! command's exit code becomes skiff's, with kubectl's "command terminated
//! with exit code N".
//!
//! # Caveats
//! Not interactive: with `-i` all of standard input is read and sent before
//! the command's output comes back. `-t` runs the command on a terminal
//! where the node's runtime can allocate one (containerd; not the process
//! runtime), but this side's terminal stays as it is: no raw mode, no resize.

use futures::StreamExt;
use skiff_client::AttachParams;
use std::io::Read;

use super::logs::{client_error, pod_api, pod_name, print_bytes};
use super::Error;
use crate::cli::ExecArgs;

/// `skiff exec`: exits with the remote command's exit code, as kubectl; a
/// refused exec prints the error and exits with 1.
pub fn run_blocking(args: ExecArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(args));
    drop(runtime);
    match result {
        Ok(0) => Ok(()),
        Ok(code) => {
            eprintln!("{}", terminated_message(code));
            std::process::exit(code)
        }
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(1)
        }
    }
}

/// Runs the command; `Ok(code)` is its exit code.
pub(crate) async fn run(args: ExecArgs) -> Result<i32, Error> {
    if args.command.is_empty() {
        return Err(Error::Usage(
            "you must specify at least one command for the container".into(),
        ));
    }
    let name = pod_name(&args.pod)?;
    let (pods, server) = pod_api(&args.server.server, &args.namespace).await?;
    let mut params = AttachParams::default().stdin(args.stdin).tty(args.tty);
    params.container = args.container.clone();
    let mut process = pods
        .exec(&name, args.command.clone(), &params)
        .await
        .map_err(|e| client_error(e, &server))?;
    if let Some(writer) = process.stdin() {
        forward_stdin(writer);
    }
    let stdout = process.stdout();
    let stderr = process.stderr();
    let code = process.join().await.map_err(|e| client_error(e, &server))?;
    if let Some(mut stdout) = stdout {
        while let Some(data) = stdout.next().await {
            print_bytes(&data);
        }
    }
    if let Some(mut stderr) = stderr {
        while let Some(data) = stderr.next().await {
            eprint!("{}", String::from_utf8_lossy(&data));
        }
    }
    Ok(code)
}

/// Copies this process's standard input to the command's until it ends: a
/// thread reads (standard input blocks), a task writes.
fn forward_stdin(mut writer: skiff_client::StdinWriter) {
    let (read_tx, mut read_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(read @ 1..) = stdin.read(&mut buffer) {
            if read_tx.blocking_send(buffer[..read].to_vec()).is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(data) = read_rx.recv().await {
            if writer.write_all(&data).await.is_err() {
                break;
            }
        }
    });
}

/// What kubectl says when the remote command fails.
pub(crate) fn terminated_message(code: i32) -> String {
    format!("command terminated with exit code {code}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn the_command_is_everything_after_the_double_dash() {
        let cli = Cli::parse_from([
            "skiff", "exec", "web", "-c", "app", "-it", "--", "sh", "-c", "ls -l",
        ]);
        let Command::Exec(args) = cli.command else {
            panic!("not exec");
        };
        assert_eq!(args.command, ["sh", "-c", "ls -l"]);
        assert!(args.stdin && args.tty);
        assert_eq!(args.container.as_deref(), Some("app"));
    }

    #[test]
    fn a_failed_command_is_reported_as_kubectl_does() {
        assert_eq!(terminated_message(3), "command terminated with exit code 3");
    }
}
