//! exec_sync: a command run to its end inside a running container, through
//! the Tasks service's Exec (a new process in the task's namespaces and
//! cgroup), its output read from two FIFOs into memory. Stdin, when given,
//! goes through a third FIFO that the shim copies to the process and closes
//! once its writer, the kubelet, has written everything and closed it. With
//! a terminal (`skiff exec -t`) the shim allocates a pseudo-terminal for the
//! process and copies all its output to the stdout FIFO.

use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::{
    CloseIoRequest, DeleteProcessRequest, ExecProcessRequest, KillRequest, StartRequest,
    WaitRequest,
};

use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;

use super::container::close_output;
use super::log;
use super::record::{self, new_id};
use super::spec::{self, ProcessInput};
use super::{containerd_error, Connection, ContainerdRuntime};
use crate::runtime::{ExecOutput, Result, RuntimeError};

impl ContainerdRuntime {
    #[tracing::instrument(skip(self))]
    pub(super) async fn exec(
        &self,
        id: &str,
        command: &[String],
        stdin: &[u8],
        tty: bool,
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let container = self.record(record::KIND_CONTAINER, id).await?;
        let spec = container.spec.as_ref().map(|s| s.value.as_slice());
        let process = exec_process(spec, command, tty);
        let exec_id = format!("exec-{}", &new_id(id)[..12]);
        let dir = self.state_dir_of(id).join(&exec_id);
        // On a terminal the shim copies everything the process writes to stdout.
        let stdout_path = dir.join("stdout");
        let stderr_path = (!tty).then(|| dir.join("stderr"));
        let io_error = |error: std::io::Error| RuntimeError::Other(format!("exec output: {error}"));
        std::fs::create_dir_all(&dir).map_err(io_error)?;
        let input = match stdin.is_empty() {
            true => None,
            false => {
                let path = dir.join("stdin");
                let writer = open_stdin(&path).map_err(io_error)?;
                Some(Stdin {
                    path,
                    writer,
                    data: terminal_input(stdin, tty),
                })
            }
        };
        let stdout = tokio::spawn(log::read_all(
            log::open_fifo(&stdout_path).map_err(io_error)?,
        ));
        let stderr = match &stderr_path {
            Some(path) => Some(tokio::spawn(log::read_all(
                log::open_fifo(path).map_err(io_error)?,
            ))),
            None => None,
        };

        let io = ExecIo {
            stdin: input,
            stdout: stdout_path.clone(),
            stderr: stderr_path.clone(),
        };
        let ran = self.run_exec(id, &exec_id, &process, io, timeout).await;
        if ran.is_err() {
            close_output(&stdout_path, stderr_path.as_deref().unwrap_or(&stdout_path));
        }
        let delete = DeleteProcessRequest {
            container_id: id.to_string(),
            exec_id: exec_id.clone(),
        };
        self.connection
            .tasks()
            .delete_process(self.connection.request(delete))
            .await
            .ok();
        // The FIFOs' names can go now: the readers hold them open.
        std::fs::remove_dir_all(&dir).ok();
        Ok(ExecOutput {
            exit_code: ran?,
            stdout: stdout.await.ok().and_then(|r| r.ok()).unwrap_or_default(),
            stderr: match stderr {
                Some(stderr) => stderr.await.ok().and_then(|r| r.ok()).unwrap_or_default(),
                None => Vec::new(),
            },
        })
    }

    /// Creates, starts and waits for the exec'd process; kills it when
    /// `timeout` passes. Returns its exit code.
    async fn run_exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &ProcessInput,
        io: ExecIo,
        timeout: Duration,
    ) -> Result<i32> {
        let exec = ExecProcessRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            stdin: io
                .stdin
                .as_ref()
                .map(|s| s.path.display().to_string())
                .unwrap_or_default(),
            stdout: io.stdout.display().to_string(),
            stderr: io
                .stderr
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            terminal: process.terminal,
            spec: Some(prost_types::Any {
                type_url: spec::PROCESS_TYPE_URL.to_string(),
                value: spec::process_spec(process).to_string().into_bytes(),
            }),
        };
        self.connection
            .tasks()
            .exec(self.connection.request(exec))
            .await
            .map_err(|status| containerd_error("exec", status))?;
        let start = StartRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        };
        self.connection
            .tasks()
            .start(self.connection.request(start))
            .await
            .map_err(|status| containerd_error("exec start", status))?;
        // The shim has opened stdin's FIFO by now (it does so at start), so
        // what is written stays readable after the kubelet closes its end.
        let writing = io.stdin.map(|stdin| {
            let close = CloseIoRequest {
                container_id: id.to_string(),
                exec_id: exec_id.to_string(),
                stdin: true,
            };
            // A terminal hangs up when its input closes: there the input
            // stays open until the process ends.
            let close = (!process.terminal).then_some(close);
            tokio::spawn(stdin.write(self.connection.clone(), close))
        });
        let exit_code = self.wait_exec(id, exec_id, process, timeout).await;
        if let Some(writing) = writing {
            writing.abort();
        }
        exit_code
    }

    /// Waits for the exec'd process to end; kills it when `timeout` passes.
    async fn wait_exec(
        &self,
        id: &str,
        exec_id: &str,
        process: &ProcessInput,
        timeout: Duration,
    ) -> Result<i32> {
        let wait = WaitRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        };
        let mut tasks = self.connection.tasks();
        match tokio::time::timeout(timeout, tasks.wait(self.connection.request(wait))).await {
            Ok(Ok(response)) => Ok(response.into_inner().exit_status as i32),
            Ok(Err(status)) => Err(containerd_error("exec wait", status)),
            Err(_) => {
                let kill = KillRequest {
                    container_id: id.to_string(),
                    exec_id: exec_id.to_string(),
                    signal: 9,
                    all: false,
                };
                self.connection
                    .tasks()
                    .kill(self.connection.request(kill))
                    .await
                    .ok();
                Err(RuntimeError::Other(format!(
                    "command {:?} timed out after {timeout:?}",
                    process.args
                )))
            }
        }
    }
}

/// Where an exec's streams go.
struct ExecIo {
    stdin: Option<Stdin>,
    stdout: PathBuf,
    /// `None` on a terminal.
    stderr: Option<PathBuf>,
}

/// An exec's stdin: its FIFO, the kubelet's end of it, and what to write.
struct Stdin {
    path: PathBuf,
    writer: pipe::Sender,
    data: Vec<u8>,
}

impl Stdin {
    /// Writes everything, then closes the kubelet's end and tells the shim
    /// (CloseIO), which closes the process's stdin; without `close`, keeps
    /// the end open until the task is aborted.
    async fn write(mut self, connection: Connection, close: Option<CloseIoRequest>) {
        if let Err(error) = self.writer.write_all(&self.data).await {
            tracing::debug!(%error, "exec stdin not fully written");
        }
        let Some(close) = close else {
            return std::future::pending().await;
        };
        drop(self.writer);
        if let Err(status) = connection.tasks().close_io(connection.request(close)).await {
            tracing::debug!(error = %status.message(), "exec stdin not closed by the shim");
        }
    }
}

/// Makes stdin's FIFO and opens the kubelet's end. Opened for reading and
/// writing, so that the open succeeds before the shim opens the other end.
fn open_stdin(path: &Path) -> std::io::Result<pipe::Sender> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(std::io::Error::from)?;
    pipe::OpenOptions::new().read_write(true).open_sender(path)
}

/// What is written to the exec's stdin. A terminal does not end its input
/// when the writer closes, so the input ends as a user at the keyboard ends
/// it: with Ctrl-D (EOT) at the start of a line, once more after a partial
/// line, which the first Ctrl-D only sends on.
fn terminal_input(stdin: &[u8], tty: bool) -> Vec<u8> {
    const EOT: u8 = 0x04;
    let mut data = stdin.to_vec();
    if tty {
        if !data.ends_with(b"\n") {
            data.push(EOT);
        }
        data.push(EOT);
    }
    data
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

    #[test]
    fn input_to_a_terminal_ends_with_ctrl_d_as_typed() {
        assert_eq!(terminal_input(b"ls\n", false), b"ls\n");
        assert_eq!(terminal_input(b"ls\n", true), b"ls\n\x04");
        assert_eq!(terminal_input(b"partial", true), b"partial\x04\x04");
    }
}
