//! Exec in the process runtime: the command runs as a child of the kubelet
//! with the container's working directory and environment, its stdin,
//! stdout and stderr on pipes copied to and from the caller's streams as
//! bytes come — or, with `tty`, all three on one pseudo-terminal the kubelet
//! opens (`/dev/ptmx`), which becomes the command's controlling terminal
//! (through util-linux's `setsid --ctty`, the crate having no unsafe code
//! for `setsid(2)` and `TIOCSCTTY` itself). A resize sets the terminal's size,
//! and the kernel tells the command with SIGWINCH, as on a real terminal.
//!
//! The command leads a process group of its own, so that a timeout or a
//! caller that goes kills what it started too.

use std::fs::File;
use std::process::Stdio;
use std::time::Duration;

use rustix::pty::OpenptFlags;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::{child, exit_code_of, ContainerRecord};
use crate::runtime::exec_io::{copy_output, copy_stdin};
use crate::runtime::{ExecChunk, ExecRequest, ExecStreams, Result, RuntimeError, TerminalSize};

/// Runs `request` in the container `record` describes; see the module doc.
pub(super) async fn run(
    record: &ContainerRecord,
    request: &ExecRequest,
    streams: ExecStreams,
) -> Result<i32> {
    let Some(program) = request.command.first() else {
        return Err(RuntimeError::Other("exec: an empty command".into()));
    };
    if child::find_program(program, &record.env, &record.cwd).is_none() {
        return Err(RuntimeError::Other(format!(
            "exec: {program:?}: executable file not found in $PATH"
        )));
    }
    let mut command = match request.tty {
        true => {
            let mut command = Command::new("setsid");
            command.arg("--ctty").arg(program);
            command
        }
        false => Command::new(program),
    };
    command
        .args(&request.command[1..])
        .current_dir(&record.cwd)
        .env_clear()
        .env("PATH", child::DEFAULT_PATH)
        .envs(record.env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    match request.tty {
        true => on_terminal(command, request, streams).await,
        false => with_pipes(command, request, streams).await,
    }
}

fn spawn_error(error: std::io::Error) -> RuntimeError {
    RuntimeError::Other(format!("exec: cannot start the command: {error}"))
}

/// Stdin, stdout and stderr on three pipes; resizes have nothing to resize.
async fn with_pipes(
    mut command: Command,
    request: &ExecRequest,
    streams: ExecStreams,
) -> Result<i32> {
    let stdin = match request.stdin {
        true => Stdio::piped(),
        false => Stdio::null(),
    };
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut running = command.spawn().map_err(spawn_error)?;
    let ExecStreams {
        stdin,
        resize: _,
        output,
    } = streams;
    let feeding = running
        .stdin
        .take()
        .map(|pipe| tokio::spawn(copy_stdin(stdin, pipe, false)));
    let stdout = running
        .stdout
        .take()
        .map(|pipe| tokio::spawn(copy_output(pipe, ExecChunk::Stdout, output.clone())));
    let stderr = running
        .stderr
        .take()
        .map(|pipe| tokio::spawn(copy_output(pipe, ExecChunk::Stderr, output.clone())));
    let exit = wait(&mut running, request.timeout, &output).await;
    if let Some(feeding) = feeding {
        feeding.abort();
    }
    for copy in [stdout, stderr].into_iter().flatten() {
        let _ = copy.await;
    }
    exit
}

/// Stdin, stdout and stderr on one new pseudo-terminal.
async fn on_terminal(
    mut command: Command,
    request: &ExecRequest,
    streams: ExecStreams,
) -> Result<i32> {
    let terminal_error = |error: std::io::Error| {
        RuntimeError::Other(format!("exec: cannot open a terminal: {error}"))
    };
    let (master, slave) = open_terminal().map_err(terminal_error)?;
    let copies = (slave.try_clone(), slave.try_clone(), master.try_clone());
    let (stdin_end, stdout_end, writer) = match copies {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(terminal_error(e)),
    };
    command.stdin(stdin_end).stdout(stdout_end).stderr(slave);
    let spawned = command.spawn();
    // The command's copies of the terminal's far end are its own now; the
    // kubelet's must go, or reading would never see the terminal close.
    drop(command);
    let mut running = spawned.map_err(spawn_error)?;
    let ExecStreams {
        stdin,
        mut resize,
        output,
    } = streams;
    let resizer = master.try_clone().map_err(terminal_error)?;
    // A size sent before the start is set before any input is typed.
    while let Ok(size) = resize.try_recv() {
        set_size(&resizer, size).map_err(terminal_error)?;
    }
    let resizing = tokio::spawn(async move {
        while let Some(size) = resize.recv().await {
            if let Err(error) = set_size(&resizer, size) {
                tracing::debug!(%error, "exec: the terminal's size was not set");
            }
        }
    });
    let feeding = request.stdin.then(|| {
        let writer = tokio::fs::File::from_std(writer);
        tokio::spawn(copy_stdin(stdin, writer, true))
    });
    let reader = tokio::fs::File::from_std(master);
    let copy = tokio::spawn(copy_output(reader, ExecChunk::Stdout, output.clone()));
    let exit = wait(&mut running, request.timeout, &output).await;
    resizing.abort();
    if let Some(feeding) = feeding {
        feeding.abort();
    }
    let _ = copy.await;
    exit
}

/// A new pseudo-terminal: the kubelet's end (the master) and the command's.
fn open_terminal() -> std::io::Result<(File, File)> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)?;
    Ok((File::from(master), File::from(slave)))
}

fn set_size(terminal: &File, size: TerminalSize) -> std::io::Result<()> {
    let size = rustix::termios::Winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(terminal, size)?;
    Ok(())
}

/// Waits for the command to end; kills its process group when `timeout`
/// passes or the caller has gone (nobody reads `output` any more).
async fn wait(
    running: &mut Child,
    timeout: Option<Duration>,
    output: &mpsc::Sender<ExecChunk>,
) -> Result<i32> {
    let deadline = async {
        match timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    let failure = tokio::select! {
        status = running.wait() => {
            return status
                .map(exit_code_of)
                .map_err(|e| RuntimeError::Other(format!("exec: {e}")));
        }
        () = deadline => format!("command timed out after {:?}", timeout.unwrap_or_default()),
        () = output.closed() => "exec: the caller has gone".to_string(),
    };
    // The command's own children go too (a shell's `sleep`), not only the
    // process that was started: the group is killed.
    if let Some(group) = running.id() {
        child::signal_group(group, "KILL").await;
    }
    let _ = running.wait().await;
    Err(RuntimeError::Other(failure))
}
