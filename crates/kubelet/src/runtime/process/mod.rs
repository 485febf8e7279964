//! The process runtime: each container is a plain child process of the node,
//! in a directory of its own, with no isolation at all.
//!
//! This is what `skiff up` uses where there is no containerd or no root. A
//! container's process sees the host's filesystem, network and users; only
//! its environment, arguments and working directory are its own.
//!
//! # Layout on disk
//! Under the runtime's root directory:
//! - `sandboxes/<id>.json`: a sandbox (the pod's record; there is no network
//!   namespace — every pod has the node's IP).
//! - `containers/<id>/container.json`: a container's record (labels, command,
//!   pid, exit).
//! - `containers/<id>/rootfs/`: the container's "root": its `workingDir` and
//!   its volume mounts (symlinks to the node paths) appear under it, at their
//!   paths inside the container. A relative `workingDir` or none is `rootfs/`.
//! - `containers/<id>/{stdout,stderr}`: the raw output, copied record by
//!   record into the CRI-format log file the kubelet named.
//!
//! Exec (`exec.rs`) runs the command as a child of the kubelet with the
//! container's directory and env, on pipes, or with `tty` on a
//! pseudo-terminal of its own.
//!
//! A kubelet restarted over the same root adopts the processes still running
//! (found by their pid and checked through `/proc`), so nothing is started
//! twice; their exit codes come from the file the `sh` wrapper writes.
//!
//! # Caveats
//! No isolation, no resource limits, no images (`image` is recorded and
//! ignored; the command must exist on the node). Output written while the
//! kubelet was down is not copied into the log. Linux only (`/proc`); an
//! exec on a terminal needs util-linux's `setsid`. An exec'd command leads a
//! process group of its own, not the container's: stopping the container
//! does not stop it (its caller going does).

mod child;
mod exec;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{
    not_running, ContainerConfig, ContainerId, ContainerState, ContainerStatus, ExecRequest,
    ExecStreams, Result, Runtime, RuntimeError, SandboxConfig, SandboxId, SandboxStatus,
};
use crate::logs::Stream;

/// How the process runtime is set up.
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    /// Where sandboxes and containers are kept.
    pub root_dir: PathBuf,
    /// The IP every pod reports (the node's: there is no pod network).
    pub pod_ip: IpAddr,
}

/// Runs containers as plain processes. See the module doc.
pub struct ProcessRuntime {
    config: ProcessConfig,
    state: Arc<Mutex<State>>,
    next_id: AtomicU64,
    /// Stops this runtime's log copiers and waiters when it is dropped; the
    /// processes run on, for the next runtime over the same root to adopt.
    stop: CancellationToken,
}

impl Drop for ProcessRuntime {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Default)]
struct State {
    sandboxes: BTreeMap<SandboxId, SandboxStatus>,
    containers: BTreeMap<ContainerId, Container>,
}

/// A container's record, as kept in `container.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ContainerRecord {
    id: ContainerId,
    sandbox_id: SandboxId,
    labels: BTreeMap<String, String>,
    name: String,
    attempt: u32,
    image: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
    log_path: PathBuf,
    pid: Option<u32>,
    started_at: Option<SystemTime>,
    exit: Option<Exit>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Exit {
    code: i32,
    finished_at: SystemTime,
}

struct Container {
    record: ContainerRecord,
    /// Turns true when a child of this kubelet has been reaped; `None` for an
    /// adopted process (watched through `/proc`).
    exited: Option<watch::Receiver<bool>>,
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .expect("the process runtime's lock is never poisoned")
}

fn other(what: &str, error: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Other(format!("{what}: {error}"))
}

impl ProcessRuntime {
    /// Opens the runtime over `config.root_dir`, adopting the sandboxes and
    /// containers a previous kubelet left there.
    pub async fn open(config: ProcessConfig) -> Result<ProcessRuntime> {
        for dir in ["sandboxes", "containers"] {
            tokio::fs::create_dir_all(config.root_dir.join(dir))
                .await
                .map_err(|e| other("cannot create the process runtime's directory", e))?;
        }
        let runtime = ProcessRuntime {
            state: Arc::new(Mutex::new(State::default())),
            next_id: AtomicU64::new(0),
            stop: CancellationToken::new(),
            config,
        };
        runtime.adopt()?;
        Ok(runtime)
    }

    /// The IDs of the sandbox's containers.
    fn containers_of(&self, sandbox: &str) -> Vec<String> {
        lock(&self.state)
            .containers
            .values()
            .filter(|c| c.record.sandbox_id == sandbox)
            .map(|c| c.record.id.clone())
            .collect()
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.config.root_dir.join("containers").join(id)
    }

    fn sandbox_file(&self, id: &str) -> PathBuf {
        self.config
            .root_dir
            .join("sandboxes")
            .join(format!("{id}.json"))
    }

    /// A new ID: the time in nanoseconds and a counter, unique across restarts.
    fn new_id(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{nanos:x}{n:04x}")
    }

    /// Reads the records a previous kubelet left, and restarts log copying
    /// for the processes still running.
    fn adopt(&self) -> Result<()> {
        let read_dir = |dir: &Path| {
            std::fs::read_dir(dir).map_err(|e| other("cannot read the process runtime's state", e))
        };
        let mut state = lock(&self.state);
        for entry in read_dir(&self.config.root_dir.join("sandboxes"))?.flatten() {
            match read_json::<SandboxStatus>(&entry.path()) {
                Some(mut record) => {
                    record.ip = Some(self.config.pod_ip);
                    state.sandboxes.insert(record.id.clone(), record);
                }
                None => tracing::warn!(path = %entry.path().display(), "unreadable sandbox record"),
            }
        }
        for entry in read_dir(&self.config.root_dir.join("containers"))?.flatten() {
            let Some(record) = read_json::<ContainerRecord>(&entry.path().join("container.json"))
            else {
                tracing::warn!(path = %entry.path().display(), "unreadable container record");
                continue;
            };
            if let (Some(pid), None) = (record.pid, &record.exit) {
                let dir = self.container_dir(&record.id);
                if child::is_ours(pid, &dir) {
                    self.copy_logs(&record, None, true);
                }
            }
            let id = record.id.clone();
            state.containers.insert(
                id,
                Container {
                    record,
                    exited: None,
                },
            );
        }
        Ok(())
    }

    /// Starts the two copiers of a container's output into its log.
    fn copy_logs(
        &self,
        record: &ContainerRecord,
        exited: Option<watch::Receiver<bool>>,
        adopted: bool,
    ) {
        let dir = self.container_dir(&record.id);
        let log_path = Arc::new(record.log_path.clone());
        for (file, stream) in [("stdout", Stream::Stdout), ("stderr", Stream::Stderr)] {
            let raw = dir.join(file);
            // An adopted process's output from before is already in the log
            // or lost; copy from the end.
            let offset = match adopted {
                true => std::fs::metadata(&raw).map(|m| m.len()).unwrap_or(0),
                false => 0,
            };
            let ended: Box<dyn Fn() -> bool + Send> = match (&exited, record.pid) {
                (Some(exited), _) => {
                    let exited = exited.clone();
                    Box::new(move || *exited.borrow())
                }
                (None, Some(pid)) => {
                    let dir = dir.clone();
                    Box::new(move || !child::is_ours(pid, &dir))
                }
                (None, None) => Box::new(|| true),
            };
            let copy = child::copy_log(raw, offset, log_path.clone(), stream, ended);
            let stop = self.stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = copy => {}
                }
            });
        }
    }

    /// Brings a container's record up to date: an adopted process that has
    /// ended gets its exit recorded.
    fn refresh(&self, id: &str) {
        let mut state = lock(&self.state);
        let Some(container) = state.containers.get_mut(id) else {
            return;
        };
        let record = &mut container.record;
        let (Some(pid), None, None) = (record.pid, &record.exit, &container.exited) else {
            return;
        };
        let dir = self.container_dir(id);
        if !child::is_ours(pid, &dir) {
            record.exit = Some(Exit {
                code: child::read_exit_code(&dir),
                finished_at: SystemTime::now(),
            });
            write_json(&dir.join("container.json"), &*record);
        }
    }

    fn record(&self, id: &str) -> Result<(ContainerRecord, Option<watch::Receiver<bool>>)> {
        self.refresh(id);
        let state = lock(&self.state);
        let container = state
            .containers
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound {
                kind: "container",
                id: id.to_string(),
            })?;
        Ok((container.record.clone(), container.exited.clone()))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes a record: to a temporary file, then renamed over the old one.
fn write_json<T: Serialize>(path: &Path, value: &T) {
    let tmp = path.with_extension("tmp");
    let written = serde_json::to_vec_pretty(value)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(error) = written {
        tracing::warn!(path = %path.display(), %error, "cannot write the runtime's record");
    }
}

/// Where a path inside the container lives on the node: under `rootfs`.
fn in_rootfs(rootfs: &Path, container_path: &Path) -> PathBuf {
    rootfs.join(container_path.strip_prefix("/").unwrap_or(container_path))
}

fn status_of(record: &ContainerRecord) -> ContainerStatus {
    let state = match (&record.exit, record.started_at) {
        (Some(exit), started_at) => ContainerState::Exited {
            exit_code: exit.code,
            reason: if exit.code == 0 { "Completed" } else { "Error" }.to_string(),
            started_at,
            finished_at: exit.finished_at,
        },
        (None, Some(started_at)) => ContainerState::Running { started_at },
        (None, None) => ContainerState::Created,
    };
    ContainerStatus {
        id: record.id.clone(),
        sandbox_id: record.sandbox_id.clone(),
        labels: record.labels.clone(),
        name: record.name.clone(),
        attempt: record.attempt,
        image: record.image.clone(),
        state,
    }
}

#[async_trait::async_trait]
impl Runtime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    async fn ensure_image(&self, _image: &str) -> Result<()> {
        Ok(())
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<SandboxId> {
        let ip = Some(self.config.pod_ip);
        let record = SandboxStatus::new(self.new_id(), config, ip, SystemTime::now());
        write_json(&self.sandbox_file(&record.id), &record);
        let id = record.id.clone();
        lock(&self.state).sandboxes.insert(id.clone(), record);
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        for container in self.containers_of(id) {
            self.stop_container(&container, Duration::ZERO).await?;
        }
        let mut state = lock(&self.state);
        if let Some(record) = state.sandboxes.get_mut(id) {
            record.ready = false;
            write_json(&self.sandbox_file(id), &*record);
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.stop_pod_sandbox(id).await?;
        for container in self.containers_of(id) {
            self.remove_container(&container).await?;
        }
        lock(&self.state).sandboxes.remove(id);
        let _ = tokio::fs::remove_file(self.sandbox_file(id)).await;
        Ok(())
    }

    async fn list_pod_sandboxes(&self) -> Result<Vec<SandboxStatus>> {
        Ok(lock(&self.state).sandboxes.values().cloned().collect())
    }

    async fn create_container(
        &self,
        sandbox: &str,
        config: &ContainerConfig,
    ) -> Result<ContainerId> {
        if !lock(&self.state).sandboxes.contains_key(sandbox) {
            return Err(RuntimeError::NotFound {
                kind: "sandbox",
                id: sandbox.to_string(),
            });
        }
        let argv: Vec<String> = config.command.iter().chain(&config.args).cloned().collect();
        if argv.is_empty() {
            return Err(RuntimeError::CreateContainer(
                "the process runtime has no images: the container needs a command".into(),
            ));
        }
        let id = self.new_id();
        let dir = self.container_dir(&id);
        let rootfs = dir.join("rootfs");
        let cwd = in_rootfs(
            &rootfs,
            Path::new(config.working_dir.as_deref().unwrap_or("")),
        );
        let created = prepare_rootfs(&rootfs, &cwd, config).await;
        created.map_err(|e| {
            RuntimeError::CreateContainer(format!("cannot prepare the container's directory: {e}"))
        })?;
        let record = ContainerRecord {
            id: id.clone(),
            sandbox_id: sandbox.to_string(),
            labels: config.labels.clone(),
            name: config.name.clone(),
            attempt: config.attempt,
            image: config.image.clone(),
            argv,
            env: config.env.clone(),
            cwd,
            log_path: config.log_path.clone(),
            pid: None,
            started_at: None,
            exit: None,
        };
        write_json(&dir.join("container.json"), &record);
        lock(&self.state).containers.insert(
            id.clone(),
            Container {
                record,
                exited: None,
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let (record, _) = self.record(id)?;
        if record.pid.is_some() {
            return Ok(());
        }
        let dir = self.container_dir(id);
        if child::find_program(&record.argv[0], &record.env, &record.cwd).is_none() {
            return Err(RuntimeError::RunContainer(format!(
                "exec: {:?}: executable file not found in $PATH",
                record.argv[0]
            )));
        }
        if let Some(parent) = record.log_path.parent() {
            let _ = tokio::fs::create_dir_all(parent).await;
        }
        let launch = child::Launch {
            argv: &record.argv,
            env: &record.env,
            cwd: &record.cwd,
            dir: &dir,
        };
        let mut process = child::spawn(&launch)
            .map_err(|e| RuntimeError::RunContainer(format!("cannot start the process: {e}")))?;
        let pid = process.id();
        let (done, exited) = watch::channel(false);
        let record = {
            let mut state = lock(&self.state);
            let Some(container) = state.containers.get_mut(id) else {
                return Err(RuntimeError::NotFound {
                    kind: "container",
                    id: id.to_string(),
                });
            };
            container.record.pid = pid;
            container.record.started_at = Some(SystemTime::now());
            container.exited = Some(exited.clone());
            write_json(&dir.join("container.json"), &container.record);
            container.record.clone()
        };
        self.copy_logs(&record, Some(exited), false);
        let state = self.state.clone();
        let id = id.to_string();
        let stop = self.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = process.wait() => {}
            }
            let mut state = lock(&state);
            if let Some(container) = state.containers.get_mut(&id) {
                container.record.exit = Some(Exit {
                    code: child::read_exit_code(&dir),
                    finished_at: SystemTime::now(),
                });
                write_json(&dir.join("container.json"), &container.record);
            }
            let _ = done.send(true);
        });
        Ok(())
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let (record, exited) = self.record(id)?;
        let (Some(pid), None) = (record.pid, record.exit) else {
            return Ok(());
        };
        let dir = self.container_dir(id);
        child::signal_group(pid, "TERM").await;
        let ended = child::wait_ended(pid, &dir, exited.clone());
        if tokio::time::timeout(grace, ended).await.is_err() {
            child::signal_group(pid, "KILL").await;
            child::wait_ended(pid, &dir, exited).await;
        }
        self.refresh(id);
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        if lock(&self.state).containers.contains_key(id) {
            self.stop_container(id, Duration::ZERO).await?;
        }
        lock(&self.state).containers.remove(id);
        let _ = tokio::fs::remove_dir_all(self.container_dir(id)).await;
        Ok(())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerStatus>> {
        let ids: Vec<String> = lock(&self.state).containers.keys().cloned().collect();
        for id in &ids {
            self.refresh(id);
        }
        Ok(lock(&self.state)
            .containers
            .values()
            .map(|c| status_of(&c.record))
            .collect())
    }

    async fn exec(&self, id: &str, request: &ExecRequest, streams: ExecStreams) -> Result<i32> {
        let (record, _) = self.record(id)?;
        if record.pid.is_none() || record.exit.is_some() {
            return Err(not_running(id));
        }
        exec::run(&record, request, streams).await
    }
}

/// The exit code of a process, 128 + the signal for a killed one (as a shell
/// reports it).
fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Creates the container's rootfs, working directory and mount symlinks.
async fn prepare_rootfs(
    rootfs: &Path,
    cwd: &Path,
    config: &ContainerConfig,
) -> std::io::Result<()> {
    tokio::fs::create_dir_all(cwd).await?;
    for mount in &config.mounts {
        let at = in_rootfs(rootfs, &mount.container_path);
        if let Some(parent) = at.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::symlink(&mount.host_path, &at).await?;
    }
    Ok(())
}
