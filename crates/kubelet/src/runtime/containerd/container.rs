//! Containers: a containerd container (spec, snapshot, labels) and, once
//! started, its task under the runc shim.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::container::Runtime as ShimRuntime;
use containerd_client::services::v1::snapshots::{
    MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
};
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteTaskRequest, KillRequest,
    ListTasksRequest, StartRequest, WaitRequest,
};
use containerd_client::types::v1::{Process, Status};
use tonic::Code;

use super::log::{self, Stream};
use super::record::{self, new_id};
use super::sandbox::netns_path;
use super::spec::{self, ProcessInput, SpecInput};
use super::{containerd_error, ContainerdRuntime};
use crate::image::store::SNAPSHOTTER;
use crate::runtime::{
    ContainerConfig, ContainerId, ContainerState, ContainerStatus, Result, RuntimeError,
};

const SIGKILL: u32 = 9;
const SIGTERM: u32 = 15;
/// How long to wait for a task to go after SIGKILL before giving up.
const KILL_WAIT: Duration = Duration::from_secs(10);

impl ContainerdRuntime {
    #[tracing::instrument(skip(self, config), fields(container = %config.name, attempt = config.attempt))]
    pub(super) async fn create(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
    ) -> Result<ContainerId> {
        let sandbox = self.record(record::KIND_SANDBOX, sandbox_id).await?;
        if sandbox.labels.get(record::STATE).map(String::as_str) != Some(record::STATE_READY) {
            return Err(RuntimeError::CreateContainer(format!(
                "sandbox {sandbox_id} is not ready"
            )));
        }
        let image = self
            .images
            .resolve(&config.image)
            .await
            .map_err(|error| super::image_error(error, &config.image))?;
        let process = ProcessInput::for_container(config, &image.run);
        if process.args.is_empty() {
            return Err(RuntimeError::CreateContainer(
                "no command specified".to_string(),
            ));
        }
        let id = new_id(&format!("{sandbox_id}/{}/{}", config.name, config.attempt));
        let spec = spec::container_spec(&SpecInput {
            process,
            hostname: sandbox
                .labels
                .get(record::HOSTNAME)
                .cloned()
                .unwrap_or_default(),
            netns: netns_path(&sandbox),
            cgroups_path: cgroups_path(&id),
            resources: config.resources,
            mounts: config.mounts.clone(),
        });
        let container = Container {
            id: id.clone(),
            image: image.name,
            labels: container_labels(sandbox_id, config),
            runtime: Some(ShimRuntime {
                name: self.config.shim.clone(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: spec::SPEC_TYPE_URL.to_string(),
                value: spec.to_string().into_bytes(),
            }),
            snapshotter: SNAPSHOTTER.to_string(),
            snapshot_key: id.clone(),
            ..Container::default()
        };
        // Under a lease until the container record refers to the snapshot:
        // containerd's garbage collector removes snapshots nothing refers to.
        let lease = self
            .connection
            .create_lease(&id)
            .await
            .map_err(|status| containerd_error("create lease", status))?;
        let created = self.create_leased(container, &image.chain_id, &lease).await;
        if let Err(status) = self.connection.delete_lease(&lease).await {
            tracing::warn!(%lease, error = %status.message(), "lease not deleted; it expires");
        }
        created.map(|()| id)
    }

    /// Prepares the container's root from the image's snapshot, then
    /// records the container; the root goes again if the record fails.
    async fn create_leased(&self, container: Container, parent: &str, lease: &str) -> Result<()> {
        let id = container.id.clone();
        self.prepare_root(&id, parent, lease).await?;
        let create = CreateContainerRequest {
            container: Some(container),
        };
        let request = self.connection.leased(create, lease);
        if let Err(status) = self.connection.containers().create(request).await {
            self.remove_root(&id).await.ok();
            return Err(RuntimeError::CreateContainer(status.message().to_string()));
        }
        Ok(())
    }

    /// The container's writable root: a snapshot on top of the image's.
    async fn prepare_root(&self, id: &str, image_chain_id: &str, lease: &str) -> Result<()> {
        let prepare = PrepareSnapshotRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            key: id.to_string(),
            parent: image_chain_id.to_string(),
            labels: HashMap::new(),
        };
        self.connection
            .snapshots()
            .prepare(self.connection.leased(prepare, lease))
            .await
            .map(|_| ())
            .map_err(|status| {
                RuntimeError::CreateContainer(format!(
                    "preparing the root filesystem: {}",
                    status.message()
                ))
            })
    }

    async fn remove_root(&self, id: &str) -> Result<()> {
        let remove = RemoveSnapshotRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            key: id.to_string(),
        };
        match self
            .connection
            .snapshots()
            .remove(self.connection.request(remove))
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Ok(()),
            Err(status) => Err(containerd_error("remove snapshot", status)),
        }
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn start(&self, id: &str) -> Result<()> {
        let container = self.record(record::KIND_CONTAINER, id).await?;
        let log_path = PathBuf::from(
            container
                .labels
                .get(record::LOG_PATH)
                .cloned()
                .unwrap_or_default(),
        );
        let dir = self.state_dir_of(id);
        let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
        open_output(&dir, &stdout, &stderr, &log_path)?;
        let mounts = self
            .connection
            .snapshots()
            .mounts(self.connection.request(MountsRequest {
                snapshotter: SNAPSHOTTER.to_string(),
                key: id.to_string(),
            }))
            .await
            .map_err(|status| containerd_error("snapshot mounts", status))?
            .into_inner()
            .mounts;
        let create = CreateTaskRequest {
            container_id: id.to_string(),
            rootfs: mounts,
            stdout: stdout.display().to_string(),
            stderr: stderr.display().to_string(),
            ..CreateTaskRequest::default()
        };
        if let Err(status) = self
            .connection
            .tasks()
            .create(self.connection.request(create))
            .await
        {
            close_output(&stdout, &stderr);
            return Err(RuntimeError::RunContainer(status.message().to_string()));
        }
        let start = StartRequest {
            container_id: id.to_string(),
            ..StartRequest::default()
        };
        if let Err(status) = self
            .connection
            .tasks()
            .start(self.connection.request(start))
            .await
        {
            self.delete_task(id).await.ok();
            close_output(&stdout, &stderr);
            return Err(RuntimeError::RunContainer(status.message().to_string()));
        }
        self.set_label(
            container,
            record::STARTED_AT,
            record::time_label(SystemTime::now()),
        )
        .await
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        self.record(record::KIND_CONTAINER, id).await?;
        let terminated = !grace.is_zero() && self.kill(id, SIGTERM, false).await?;
        if terminated {
            if let Ok(waited) = tokio::time::timeout(grace, self.wait(id)).await {
                return waited;
            }
        }
        if self.kill(id, SIGKILL, true).await? {
            tokio::time::timeout(KILL_WAIT, self.wait(id))
                .await
                .map_err(|_| {
                    RuntimeError::Other(format!("container {id} did not stop after SIGKILL"))
                })??;
        }
        Ok(())
    }

    /// Signals the task; false when there is no running task to signal.
    async fn kill(&self, id: &str, signal: u32, all: bool) -> Result<bool> {
        let kill = KillRequest {
            container_id: id.to_string(),
            signal,
            all,
            ..KillRequest::default()
        };
        match self
            .connection
            .tasks()
            .kill(self.connection.request(kill))
            .await
        {
            Ok(_) => Ok(true),
            Err(status) if matches!(status.code(), Code::NotFound | Code::FailedPrecondition) => {
                Ok(false)
            }
            Err(status) => Err(containerd_error("kill task", status)),
        }
    }

    /// Waits for the task to exit.
    async fn wait(&self, id: &str) -> Result<()> {
        let wait = WaitRequest {
            container_id: id.to_string(),
            ..WaitRequest::default()
        };
        match self
            .connection
            .tasks()
            .wait(self.connection.request(wait))
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Ok(()),
            Err(status) => Err(containerd_error("wait task", status)),
        }
    }

    async fn delete_task(&self, id: &str) -> Result<()> {
        let delete = DeleteTaskRequest {
            container_id: id.to_string(),
        };
        match self
            .connection
            .tasks()
            .delete(self.connection.request(delete))
            .await
        {
            Ok(_) => Ok(()),
            Err(status) if status.code() == Code::NotFound => Ok(()),
            Err(status) => Err(containerd_error("delete task", status)),
        }
    }

    #[tracing::instrument(skip(self))]
    pub(super) async fn remove(&self, id: &str) -> Result<()> {
        match self.stop(id, Duration::ZERO).await {
            Ok(()) => {}
            Err(RuntimeError::NotFound { .. }) => return Ok(()),
            Err(error) => return Err(error),
        }
        self.delete_task(id).await?;
        self.delete_record(id).await?;
        self.remove_root(id).await?;
        match std::fs::remove_dir_all(self.state_dir_of(id)) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(RuntimeError::Other(format!(
                "removing container state: {error}"
            ))),
        }
    }

    pub(super) async fn list(&self) -> Result<Vec<ContainerStatus>> {
        let records = self.records(record::KIND_CONTAINER).await?;
        let tasks = self.tasks().await?;
        Ok(records
            .into_iter()
            .map(|container| {
                let state = state_of(&container, tasks.get(&container.id));
                container_status(container, state)
            })
            .collect())
    }

    /// Every task in the namespace, by container ID.
    async fn tasks(&self) -> Result<HashMap<String, Process>> {
        let list = self
            .connection
            .tasks()
            .list(self.connection.request(ListTasksRequest::default()))
            .await
            .map_err(|status| containerd_error("list tasks", status))?;
        Ok(list
            .into_inner()
            .tasks
            .into_iter()
            // containerd's List fills a task's `id` (its container's ID) and
            // leaves `container_id` empty.
            .map(|task| {
                let id = if task.container_id.is_empty() {
                    task.id.clone()
                } else {
                    task.container_id.clone()
                };
                (id, task)
            })
            .collect())
    }

    /// Reattaches the log copiers of running containers; a restarted kubelet
    /// calls this once, so output the shim buffered meanwhile reaches the log.
    pub async fn resume_logs(&self) -> Result<()> {
        let tasks = self.tasks().await?;
        for container in self.records(record::KIND_CONTAINER).await? {
            let running = tasks
                .get(&container.id)
                .is_some_and(|t| t.status == Status::Running as i32);
            let Some(log_path) = container.labels.get(record::LOG_PATH).filter(|_| running) else {
                continue;
            };
            let dir = self.state_dir_of(&container.id);
            for (name, stream) in [("stdout", Stream::Stdout), ("stderr", Stream::Stderr)] {
                if let Ok(fifo) = log::reopen_fifo(&dir.join(name)) {
                    log::spawn_copier(fifo, stream, PathBuf::from(log_path));
                }
            }
        }
        Ok(())
    }
}

/// The container's cgroup, under `skiff` in every hierarchy.
fn cgroups_path(id: &str) -> String {
    format!("/skiff/{id}")
}

fn container_labels(sandbox_id: &str, config: &ContainerConfig) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = config.labels.clone().into_iter().collect();
    labels.insert(record::KIND.into(), record::KIND_CONTAINER.into());
    labels.insert(record::SANDBOX_ID.into(), sandbox_id.into());
    labels.insert(record::NAME.into(), config.name.clone());
    labels.insert(record::ATTEMPT.into(), config.attempt.to_string());
    labels.insert(record::IMAGE.into(), config.image.clone());
    labels.insert(
        record::LOG_PATH.into(),
        config.log_path.display().to_string(),
    );
    labels
}

/// Creates the stdio FIFOs and starts copying them into the log.
fn open_output(dir: &Path, stdout: &Path, stderr: &Path, log_path: &Path) -> Result<()> {
    let io_error =
        |error: std::io::Error| RuntimeError::RunContainer(format!("container output: {error}"));
    std::fs::create_dir_all(dir).map_err(io_error)?;
    let out = log::open_fifo(stdout).map_err(io_error)?;
    let err = log::open_fifo(stderr).map_err(io_error)?;
    log::spawn_copier(out, Stream::Stdout, log_path.to_path_buf());
    log::spawn_copier(err, Stream::Stderr, log_path.to_path_buf());
    Ok(())
}

/// Ends the copiers of a task that never ran: a writer that opens and
/// closes each FIFO gives its reader the end of the stream.
pub(super) fn close_output(stdout: &Path, stderr: &Path) {
    for fifo in [stdout, stderr] {
        drop(tokio::net::unix::pipe::OpenOptions::new().open_sender(fifo));
    }
}

fn state_of(container: &Container, task: Option<&Process>) -> ContainerState {
    let started_at = container
        .labels
        .get(record::STARTED_AT)
        .and_then(|t| record::parse_time_label(t));
    let Some(task) = task else {
        return ContainerState::Created;
    };
    if task.status == Status::Created as i32 || task.status == Status::Unknown as i32 {
        return ContainerState::Created;
    }
    if task.status != Status::Stopped as i32 {
        return ContainerState::Running {
            started_at: started_at.unwrap_or(SystemTime::UNIX_EPOCH),
        };
    }
    let exit_code = task.exit_status as i32;
    let reason = if oom_killed(&container.id) {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    ContainerState::Exited {
        exit_code,
        reason: reason.to_string(),
        started_at,
        finished_at: record::from_timestamp(task.exited_at).unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// Whether the kernel's OOM killer killed a process in the container's memory
/// cgroup (`oom_kill` in cgroup v1's `memory.oom_control`, v2's `memory.events`).
fn oom_killed(id: &str) -> bool {
    let path = cgroups_path(id);
    let v1 = format!("/sys/fs/cgroup/memory{path}/memory.oom_control");
    let v2 = format!("/sys/fs/cgroup{path}/memory.events");
    [v1, v2]
        .iter()
        .any(|file| std::fs::read_to_string(file).is_ok_and(|text| oom_kill_count(&text) > 0))
}

/// The `oom_kill` counter of a cgroup memory file.
fn oom_kill_count(text: &str) -> u64 {
    text.lines()
        .filter_map(|line| line.strip_prefix("oom_kill "))
        .find_map(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

fn container_status(container: Container, state: ContainerState) -> ContainerStatus {
    let label = |key: &str| container.labels.get(key).cloned().unwrap_or_default();
    ContainerStatus {
        sandbox_id: label(record::SANDBOX_ID),
        name: label(record::NAME),
        attempt: label(record::ATTEMPT).parse().unwrap_or(0),
        image: label(record::IMAGE),
        labels: record::kubelet_labels(&container.labels),
        state,
        id: container.id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oom_kill_counter_is_read_from_either_cgroup_version() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        let v2 = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kill_count(v1), 1);
        assert_eq!(oom_kill_count(v2), 2);
        assert_eq!(oom_kill_count("oom_kill_disable 0\n"), 0);
    }

    fn stopped(exit_status: u32) -> Process {
        Process {
            status: Status::Stopped as i32,
            exit_status,
            ..Process::default()
        }
    }

    #[test]
    fn an_exited_task_is_completed_on_zero_and_an_error_otherwise() {
        let container = Container {
            id: "no-such-cgroup".into(),
            ..Container::default()
        };
        let reason = |state| match state {
            ContainerState::Exited {
                exit_code, reason, ..
            } => (exit_code, reason),
            other => panic!("not exited: {other:?}"),
        };
        assert_eq!(
            reason(state_of(&container, Some(&stopped(0)))),
            (0, "Completed".to_string())
        );
        assert_eq!(
            reason(state_of(&container, Some(&stopped(3)))),
            (3, "Error".to_string())
        );
    }

    #[test]
    fn no_task_is_created_and_a_running_task_reports_its_start_label() {
        let started = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        let container = Container {
            labels: HashMap::from([(record::STARTED_AT.to_string(), record::time_label(started))]),
            ..Container::default()
        };
        assert_eq!(state_of(&container, None), ContainerState::Created);
        let running = Process {
            status: Status::Running as i32,
            ..Process::default()
        };
        assert_eq!(
            state_of(&container, Some(&running)),
            ContainerState::Running {
                started_at: started
            }
        );
    }

    #[test]
    fn a_status_carries_the_kubelets_labels_and_skiffs_fields() {
        let config = ContainerConfig {
            name: "web".into(),
            attempt: 2,
            image: "busybox".into(),
            log_path: PathBuf::from("/var/log/pods/x/web/2.log"),
            labels: [(
                "io.kubernetes.container.name".to_string(),
                "web".to_string(),
            )]
            .into(),
            ..ContainerConfig::default()
        };
        let container = Container {
            id: "c1".into(),
            labels: container_labels("s1", &config),
            ..Container::default()
        };
        let status = container_status(container, ContainerState::Created);
        assert_eq!(status.sandbox_id, "s1");
        assert_eq!((status.name.as_str(), status.attempt), ("web", 2));
        assert_eq!(status.image, "busybox");
        assert_eq!(status.labels, config.labels);
    }
}
