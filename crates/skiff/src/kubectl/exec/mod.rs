//! `skiff exec POD [-c C] [-i] [-t] -- CMD…`: runs a command in a
//! container, as `kubectl exec`, through the API server's `pods/exec`,
//! interactively: standard input goes to the command as it is read (`-i`),
//! its output is printed as it comes, and the command's exit code becomes
//! skiff's, with kubectl's "command terminated with exit code N".
//!
//! With `-it` and a terminal on standard input, the command runs on a
//! terminal of its own: this side's terminal is put in raw mode for the
//! session (keys, Ctrl-C and Ctrl-D included, go to the command as typed)
//! and its size is sent at the start and on every SIGWINCH (`terminal`).
//! As kubectl, `-t` without `-i` is ignored, and `-it` with standard input
//! that is not a terminal warns and runs without one.
//!
//! # Caveats
//! No `--quiet` or `--pod-running-timeout`; no escape sequence to detach.
//! Raw mode is restored on return, error, panic and SIGTERM/SIGHUP/SIGQUIT,
//! but not after SIGKILL.

mod terminal;

use futures::StreamExt;
use skiff_client::AttachParams;
use std::io::Read;

use super::logs::{client_error, pod_api, pod_name, print_bytes};
use super::Error;
use crate::cli::ExecArgs;

/// What kubectl prints when `-t` is asked with standard input that is not a
/// terminal.
const NO_TTY_WARNING: &str =
    "Unable to use a TTY - input is not a terminal or the right kind of file";

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

/// Whether the session gets a terminal, and the warning to print, as
/// kubectl's `SetupTTY` decides: only with stdin, and only when stdin is a
/// terminal.
fn use_tty(stdin: bool, tty: bool, stdin_is_terminal: bool) -> (bool, Option<&'static str>) {
    match (stdin, tty, stdin_is_terminal) {
        (true, true, true) => (true, None),
        (true, true, false) => (false, Some(NO_TTY_WARNING)),
        _ => (false, None),
    }
}

/// Runs the command; `Ok(code)` is its exit code.
pub(crate) async fn run(args: ExecArgs) -> Result<i32, Error> {
    if args.command.is_empty() {
        return Err(Error::Usage(
            "you must specify at least one command for the container".into(),
        ));
    }
    let (tty, warning) = use_tty(args.stdin, args.tty, terminal::stdin_is_terminal());
    if let Some(warning) = warning {
        eprintln!("{warning}");
    }
    let name = pod_name(&args.pod)?;
    let (pods, server) = pod_api(&args.server.server, &args.namespace).await?;
    let mut params = AttachParams::default().stdin(args.stdin).tty(tty);
    params.container = args.container.clone();
    let mut process = pods
        .exec(&name, args.command.clone(), &params)
        .await
        .map_err(|e| client_error(e, &server))?;
    // Raw from here until this function returns, whichever way it does.
    let _raw = match tty {
        true => Some(terminal::RawMode::enter().map_err(|e| Error::Usage(e.to_string()))?),
        false => None,
    };
    if let Some(sizes) = process.terminal_size() {
        tokio::spawn(terminal::send_sizes(sizes));
    }
    if let Some(writer) = process.stdin() {
        forward_stdin(writer);
    }
    let printing = print_output(&mut process);
    let code = process.join().await;
    for printer in printing {
        let _ = printer.await;
    }
    code.map_err(|e| client_error(e, &server))
}

/// Prints the command's stdout and stderr as they come, each on ours.
fn print_output(process: &mut skiff_client::AttachedProcess) -> Vec<tokio::task::JoinHandle<()>> {
    let mut printers = Vec::new();
    if let Some(mut stdout) = process.stdout() {
        printers.push(tokio::spawn(async move {
            while let Some(data) = stdout.next().await {
                print_bytes(&data);
            }
        }));
    }
    if let Some(mut stderr) = process.stderr() {
        printers.push(tokio::spawn(async move {
            while let Some(data) = stderr.next().await {
                use std::io::Write;
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(&data);
                let _ = err.flush();
            }
        }));
    }
    printers
}

/// Copies this process's standard input to the command's as it is read,
/// until it ends: a thread reads (standard input blocks), a task writes.
/// Dropping the writer at the end closes the command's stdin.
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

    #[test]
    fn a_terminal_needs_stdin_and_a_terminal_on_it_as_kubectl_decides() {
        assert_eq!(use_tty(true, true, true), (true, None));
        assert_eq!(
            use_tty(true, true, false),
            (
                false,
                Some("Unable to use a TTY - input is not a terminal or the right kind of file")
            )
        );
        assert_eq!(
            use_tty(false, true, true),
            (false, None),
            "-t without -i is ignored"
        );
        assert_eq!(use_tty(true, false, true), (false, None));
    }
}
