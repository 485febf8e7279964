//! Exec through containerd: the Tasks service's Exec starts a new process in
//! the task's namespaces and cgroup, its streams on FIFOs in the container's
//! state directory that the shim copies to and from the process: stdin (when
//! asked), stdout and stderr — or, on a terminal (`tty`), one pseudo-terminal
//! the shim allocates, whose output all comes on the stdout FIFO.
//!
//! While the process runs: what the caller types is written to the stdin
//! FIFO; the end of the caller's stdin closes the kubelet's end and asks
//! the shim to close the process's (CloseIO) — on a terminal, it types
//! Ctrl-D instead, as closing would hang the terminal up; a resize is
//! ResizePty; output is sent as the FIFOs yield it. A timeout, or a caller
//! that goes, kills the process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::{
    CloseIoRequest, DeleteProcessRequest, ExecProcessRequest, KillRequest, ResizePtyRequest,
    StartRequest, WaitRequest,
};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use super::container::close_output;
use super::log;
use super::record::{self, new_id};
use super::spec::{self, ProcessInput};
use super::{containerd_error, Connection, ContainerdRuntime};
use crate::runtime::exec_io::{copy_output, copy_stdin};
use crate::runtime::{ExecChunk, ExecRequest, ExecStreams, Result, RuntimeError, TerminalSize};

impl ContainerdRuntime {
    #[tracing::instrument(skip(self, streams))]
    pub(super) async fn run_exec(
        &self,
        id: &str,
        request: &ExecRequest,
        streams: ExecStreams,
    ) -> Result<i32> {
        let container = self.record(record::KIND_CONTAINER, id).await?;
        let spec = container.spec.as_ref().map(|s| s.value.as_slice());
        let process = exec_process(spec, &request.command, request.tty);
        let exec = ExecProcess {
            connection: self.connection.clone(),
            container_id: id.to_string(),
            exec_id: format!("exec-{}", &new_id(id)[..12]),
        };
        let dir = self.state_dir_of(id).join(&exec.exec_id);
        let fifos = Fifos::open(&dir, request)
            .map_err(|e| RuntimeError::Other(format!("exec: the FIFOs: {e}")))?;
        let ran = exec.run(&process, fifos, streams, request.timeout).await;
        exec.delete().await;
        // The FIFOs' names can go now: their ends are closed or held.
        std::fs::remove_dir_all(&dir).ok();
        ran
    }
}

/// An exec'd process, as containerd names it.
#[derive(Clone)]
struct ExecProcess {
    connection: Connection,
    container_id: String,
    exec_id: String,
}

impl ExecProcess {
    /// Creates and starts the process, copies its streams while it runs,
    /// and returns its exit code once its output is all sent.
    async fn run(
        &self,
        process: &ProcessInput,
        fifos: Fifos,
        streams: ExecStreams,
        timeout: Option<Duration>,
    ) -> Result<i32> {
        let ExecStreams {
            stdin,
            mut resize,
            output,
        } = streams;
        let mut copies = vec![tokio::spawn(copy_output(
            fifos.stdout,
            ExecChunk::Stdout,
            output.clone(),
        ))];
        if let Some(stderr) = fifos.stderr {
            copies.push(tokio::spawn(copy_output(
                stderr,
                ExecChunk::Stderr,
                output.clone(),
            )));
        }
        let started = self.start(process, &fifos.paths).await;
        if let Err(error) = started {
            fifos.paths.close_output();
            return Err(error);
        }
        // A size sent before the start is set before any input is typed.
        while let Ok(size) = resize.try_recv() {
            self.resize_to(size).await;
        }
        let feeding = fifos
            .stdin
            .map(|writer| tokio::spawn(self.clone().feed(stdin, writer, process.terminal)));
        let resizing = tokio::spawn(self.clone().follow_resizes(resize));
        let exit = self.wait(timeout, &output).await;
        resizing.abort();
        if let Some(feeding) = feeding {
            feeding.abort();
        }
        if exit.is_err() {
            fifos.paths.close_output();
        }
        for copy in copies {
            let _ = copy.await;
        }
        exit
    }

    /// Exec and Start: the shim opens the FIFOs and the process runs.
    async fn start(&self, process: &ProcessInput, paths: &FifoPaths) -> Result<()> {
        let path = |p: Option<&PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
        let exec = ExecProcessRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            stdin: path(paths.stdin.as_ref()),
            stdout: path(Some(&paths.stdout)),
            stderr: path(paths.stderr.as_ref()),
            terminal: process.terminal,
            spec: Some(prost_types::Any {
                type_url: spec::PROCESS_TYPE_URL.to_string(),
                value: spec::process_spec(process).to_string().into_bytes(),
            }),
        };
        let tasks = || self.connection.tasks();
        tasks()
            .exec(self.connection.request(exec))
            .await
            .map_err(|status| containerd_error("exec", status))?;
        let start = StartRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
        };
        tasks()
            .start(self.connection.request(start))
            .await
            .map_err(|status| containerd_error("exec start", status))?;
        Ok(())
    }

    /// Copies the caller's stdin to the process; at its end, closes the
    /// process's stdin (CloseIO), or on a terminal types Ctrl-D.
    async fn feed(self, stdin: mpsc::Receiver<Vec<u8>>, writer: pipe::Sender, terminal: bool) {
        // The shim has opened the FIFO by now (it does so at start), so
        // what is written stays readable after the kubelet closes its end.
        if !copy_stdin(stdin, writer, terminal).await || terminal {
            return;
        }
        let close = CloseIoRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            stdin: true,
        };
        let mut tasks = self.connection.tasks();
        if let Err(status) = tasks.close_io(self.connection.request(close)).await {
            tracing::debug!(error = %status.message(), "exec stdin not closed by the shim");
        }
    }

    /// Sets the process's terminal to each new size.
    async fn follow_resizes(self, mut resize: mpsc::Receiver<TerminalSize>) {
        while let Some(size) = resize.recv().await {
            self.resize_to(size).await;
        }
    }

    /// ResizePty: the terminal's new size, which the process learns by SIGWINCH.
    async fn resize_to(&self, size: TerminalSize) {
        let request = ResizePtyRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            width: size.width.into(),
            height: size.height.into(),
        };
        let mut tasks = self.connection.tasks();
        if let Err(status) = tasks.resize_pty(self.connection.request(request)).await {
            tracing::debug!(error = %status.message(), "exec terminal not resized");
        }
    }

    /// Waits for the process to end; kills it when `timeout` passes or the
    /// caller has gone.
    async fn wait(
        &self,
        timeout: Option<Duration>,
        output: &mpsc::Sender<ExecChunk>,
    ) -> Result<i32> {
        let wait = WaitRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
        };
        let mut tasks = self.connection.tasks();
        let deadline = async {
            match timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        };
        let failure = tokio::select! {
            waited = tasks.wait(self.connection.request(wait)) => {
                return match waited {
                    Ok(response) => Ok(response.into_inner().exit_status as i32),
                    Err(status) => Err(containerd_error("exec wait", status)),
                };
            }
            () = deadline => format!("command timed out after {:?}", timeout.unwrap_or_default()),
            () = output.closed() => "exec: the caller has gone".to_string(),
        };
        let kill = KillRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
            signal: 9,
            all: false,
        };
        self.connection
            .tasks()
            .kill(self.connection.request(kill))
            .await
            .ok();
        Err(RuntimeError::Other(failure))
    }

    /// Deletes the ended process from the task.
    async fn delete(&self) {
        let delete = DeleteProcessRequest {
            container_id: self.container_id.clone(),
            exec_id: self.exec_id.clone(),
        };
        let mut tasks = self.connection.tasks();
        if let Err(status) = tasks.delete_process(self.connection.request(delete)).await {
            tracing::debug!(error = %status.message(), "exec process not deleted");
        }
    }
}

/// The FIFOs of one exec, made before it starts, and the kubelet's ends.
struct Fifos {
    paths: FifoPaths,
    stdin: Option<pipe::Sender>,
    stdout: pipe::Receiver,
    /// `None` on a terminal.
    stderr: Option<pipe::Receiver>,
}

/// Where an exec's FIFOs are, as the Exec request names them.
struct FifoPaths {
    stdin: Option<PathBuf>,
    stdout: PathBuf,
    /// `None` on a terminal.
    stderr: Option<PathBuf>,
}

impl FifoPaths {
    /// Ends the copiers of a process that never ran or was killed.
    fn close_output(&self) {
        close_output(&self.stdout, self.stderr.as_deref().unwrap_or(&self.stdout));
    }
}

impl Fifos {
    /// Makes `dir` and the FIFOs `request` needs, and opens the kubelet's ends.
    fn open(dir: &Path, request: &ExecRequest) -> std::io::Result<Fifos> {
        std::fs::create_dir_all(dir)?;
        let paths = FifoPaths {
            stdin: request.stdin.then(|| dir.join("stdin")),
            stdout: dir.join("stdout"),
            stderr: (!request.tty).then(|| dir.join("stderr")),
        };
        Ok(Fifos {
            stdin: paths.stdin.as_deref().map(open_stdin).transpose()?,
            stdout: log::open_fifo(&paths.stdout)?,
            stderr: paths.stderr.as_deref().map(log::open_fifo).transpose()?,
            paths,
        })
    }
}

/// Makes stdin's FIFO and opens the kubelet's end. Opened for reading and
/// writing, so that the open succeeds before the shim opens the other end.
fn open_stdin(path: &Path) -> std::io::Result<pipe::Sender> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(std::io::Error::from)?;
    pipe::OpenOptions::new().read_write(true).open_sender(path)
}

/// The exec'd process: the command, with the container's environment and
/// working directory read from its stored spec.
fn exec_process(container_spec: Option<&[u8]>, command: &[String], tty: bool) -> ProcessInput {
    let spec: serde_json::Value = container_spec
        .and_then(|bytes| serde_json::from_slice(bytes).ok())
        .unwrap_or_default();
    let env = spec["process"]["env"]
        .as_array()
        .map(|env| {
            env.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let cwd = spec["process"]["cwd"].as_str().unwrap_or("/").to_string();
    ProcessInput {
        args: command.to_vec(),
        env,
        cwd,
        terminal: tty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_inherits_the_containers_env_and_working_directory() {
        let spec = br#"{"process":{"args":["sleep","1d"],"env":["PATH=/bin","A=1"],"cwd":"/srv"}}"#;
        let process = exec_process(
            Some(spec),
            &["cat".to_string(), "/etc/hostname".to_string()],
            false,
        );
        assert_eq!(process.args, ["cat", "/etc/hostname"]);
        assert_eq!(process.env, ["PATH=/bin", "A=1"]);
        assert_eq!(process.cwd, "/srv");
    }

    #[test]
    fn an_unreadable_spec_runs_the_command_from_root_with_no_env() {
        let process = exec_process(Some(b"not json"), &["true".to_string()], false);
        assert_eq!(process.cwd, "/");
        assert!(process.env.is_empty());
    }
}
