//! `skiff lab up`: starts the lab's processes and supervises them — answers
//! the control socket, records exits, and stops everything on Ctrl-C,
//! SIGTERM or `skiff lab down`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

use super::control;
use super::plan::{self, Layout, Role, Settings};
use super::relay::Relays;
use super::state::{LabState, ProcessRecord, ProcessState};
use super::LabUpArgs;
use crate::flags::RuntimeName;

/// How long a store member or API server may take to serve.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a process is given to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often the supervisor looks for processes that exited.
const REAP_PERIOD: Duration = Duration::from_millis(500);

/// The lab's processes and their state.
struct Supervisor {
    dir: PathBuf,
    binary: PathBuf,
    state: LabState,
    children: HashMap<String, Child>,
    relays: Relays,
}

type Shared = Arc<Mutex<Supervisor>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Supervisor> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// `skiff lab up`: start everything, print the banner, supervise until stopped.
pub(crate) async fn up(args: LabUpArgs) -> anyhow::Result<()> {
    let settings = settings(&args).await?;
    let dir = settings.dir.clone();
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("creating {}", dir.join("logs").display()))?;
    let listener = control::listen(&dir).await?;
    let layout = layout_for(&settings)?;
    let shutdown = crate::shutdown::cancel_on_signal();
    let relays = Relays::start(&layout.relays, &shutdown).await?;
    let shared = Arc::new(Mutex::new(Supervisor {
        dir: dir.clone(),
        binary: std::env::current_exe().context("finding the skiff binary")?,
        state: LabState {
            supervisor_pid: std::process::id(),
            processes: layout
                .processes
                .iter()
                .map(|spec| ProcessRecord {
                    spec: spec.clone(),
                    pid: None,
                    state: ProcessState::Killed,
                })
                .collect(),
            layout: layout.clone(),
        },
        children: HashMap::new(),
        relays,
    }));
    tokio::spawn(serve_control(listener, shared.clone(), shutdown.clone()));
    tokio::spawn(reap(shared.clone(), shutdown.clone()));
    let started = tokio::select! {
        started = start_all(&shared, &layout) => started,
        () = shutdown.cancelled() => Err(anyhow::anyhow!("stopped while starting")),
    };
    if let Ok(()) = &started {
        let config = write_client_config(&layout);
        print!("{}", banner(&dir, &layout, config.as_deref()));
        shutdown.cancelled().await;
    }
    stop_all(&shared).await;
    let _ = std::fs::remove_file(control::socket_path(&dir));
    started
}

/// The settings, with the runtime decided.
async fn settings(args: &LabUpArgs) -> anyhow::Result<Settings> {
    if !(1..=plan::MAX_SERVERS).contains(&args.servers) {
        anyhow::bail!("--servers must be 1 to {}", plan::MAX_SERVERS);
    }
    if args.nodes > plan::MAX_NODES {
        anyhow::bail!("--nodes must be at most {}", plan::MAX_NODES);
    }
    let runtime = match args.runtime {
        RuntimeName::Auto => "auto",
        RuntimeName::Process => "process",
        RuntimeName::Hollow => "hollow",
        RuntimeName::Containerd => {
            let socket = Path::new("/run/containerd/containerd.sock");
            if tokio::net::UnixStream::connect(socket).await.is_err() {
                anyhow::bail!(
                    "--runtime containerd: containerd does not answer on {}",
                    socket.display()
                );
            }
            "containerd"
        }
    };
    Ok(Settings {
        servers: args.servers,
        nodes: args.nodes,
        runtime: runtime.into(),
        dir: args.dir.clone(),
        node_monitor_grace_period: args.node_monitor_grace_period,
        node_lease_duration_seconds: args.node_lease_duration_seconds,
        leader_elect_lease_duration: args.leader_elect_lease_duration,
    })
}

/// A new layout on free ports, or the one of the lab stopped earlier in the
/// same directory: the store members' IDs come from their peer URLs, so a
/// resumed cluster must keep them.
fn layout_for(settings: &Settings) -> anyhow::Result<Layout> {
    if let Some(old) = LabState::read(&settings.dir)? {
        let servers = old.layout.relays.len();
        let nodes = old
            .layout
            .processes
            .iter()
            .filter(|p| p.role == Role::Kubelet)
            .count();
        if (servers, nodes) != (settings.servers, settings.nodes) {
            anyhow::bail!(
                "the lab in {} has {servers} servers and {nodes} nodes; start it so, or use another --dir",
                settings.dir.display()
            );
        }
        return Ok(old.layout);
    }
    Ok(plan::layout(settings, free_port))
}

/// A port free on `ip` now.
fn free_port(ip: std::net::Ipv4Addr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Starts the stores, waits for them; the API servers, waits; then the rest.
async fn start_all(shared: &Shared, layout: &Layout) -> anyhow::Result<()> {
    let phases: [(&[Role], Option<&str>); 3] = [
        (&[Role::Store], Some("serving etcd v3 API")),
        (&[Role::Apiserver], Some("serving the skiff API")),
        (
            &[Role::Scheduler, Role::ControllerManager, Role::Kubelet],
            None,
        ),
    ];
    for (roles, ready_line) in phases {
        let mut waits = Vec::new();
        for spec in layout.processes.iter().filter(|p| roles.contains(&p.role)) {
            let offset = lock(shared).start(&spec.name)?;
            waits.push((spec.name.clone(), offset));
        }
        let Some(line) = ready_line else { continue };
        for (name, offset) in waits {
            wait_for_log_line(shared, &name, offset, line).await?;
        }
        if roles == [Role::Store] {
            // An API server prepares its registry at start and exits if the
            // store cannot answer, as before the first election.
            wait_for_store_leader(layout).await?;
        }
    }
    Ok(())
}

/// Waits until a store member knows of a leader.
async fn wait_for_store_leader(layout: &Layout) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        for store in layout.processes.iter().filter(|p| p.role == Role::Store) {
            if let Some((_, leader)) = super::state::member_status(&store.address).await {
                if leader != 0 {
                    return Ok(());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the store members elected no leader in {START_TIMEOUT:?}")
}

/// Waits until `name`'s log, past `offset`, has `line`; fails if it exits.
async fn wait_for_log_line(
    shared: &Shared,
    name: &str,
    offset: u64,
    line: &str,
) -> anyhow::Result<()> {
    let log = lock(shared).log_path(name);
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        let text = std::fs::read(&log).unwrap_or_default();
        let fresh = text.get(offset as usize..).unwrap_or_default();
        if String::from_utf8_lossy(fresh).contains(line) {
            return Ok(());
        }
        if lock(shared).process_state(name) == Some(ProcessState::Exited) {
            anyhow::bail!("{name} exited while starting; see {}", log.display());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "{name} is not serving after {START_TIMEOUT:?}; see {}",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Supervisor {
    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    fn process_state(&self, name: &str) -> Option<ProcessState> {
        self.state.process(name).map(|p| p.state)
    }

    fn record(&mut self, name: &str) -> &mut ProcessRecord {
        self.state
            .processes
            .iter_mut()
            .find(|p| p.spec.name == name)
            .expect("names are checked before a process is looked up")
    }

    /// Starts `name` (known to be in the lab); answers its log's length
    /// before the start, where this run's lines begin.
    fn start(&mut self, name: &str) -> anyhow::Result<u64> {
        let log_path = self.log_path(name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        let args = self.record(name).spec.args.clone();
        let child = Command::new(&self.binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("sharing the log file")?)
            .stderr(log)
            // Its own process group: a Ctrl-C in the terminal reaches the
            // supervisor only, which then stops the processes in order.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        tracing::info!(name, pid, "started");
        if self.record(name).spec.role == Role::Store {
            self.relays.set_pid(name, pid);
        }
        let partitioned = self.relays.is_partitioned(name);
        let record = self.record(name);
        record.pid = Some(pid);
        record.state = if partitioned {
            ProcessState::Partitioned
        } else {
            ProcessState::Running
        };
        self.children.insert(name.to_string(), child);
        self.save();
        Ok(offset)
    }

    fn save(&self) {
        if let Err(err) = self.state.write(&self.dir) {
            tracing::warn!("{err:#}");
        }
    }

    /// Looks for processes that exited on their own.
    fn reap(&mut self) {
        let mut exited = Vec::new();
        for (name, child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                tracing::warn!(name, %status, "exited");
                exited.push(name.clone());
            }
        }
        for name in &exited {
            self.children.remove(name);
            let record = self.record(name);
            record.pid = None;
            record.state = ProcessState::Exited;
        }
        if !exited.is_empty() {
            self.save();
        }
    }

    /// Whether `name`, sent SIGTERM, is gone; past the grace period it is
    /// killed. A gone process is recorded as exited.
    fn reap_stopping(&mut self, name: &str, past_grace: bool) -> bool {
        let Some(child) = self.children.get_mut(name) else {
            return true;
        };
        if matches!(child.try_wait(), Ok(None)) {
            if !past_grace {
                return false;
            }
            tracing::warn!(name, "still running after the grace period; killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.remove(name);
        let record = self.record(name);
        record.pid = None;
        record.state = ProcessState::Exited;
        true
    }

    /// One control request.
    fn handle(&mut self, verb: &str, name: Option<&str>) -> Result<String, String> {
        let partitioning = verb == "partition" || verb == "heal";
        let name = name.map(|n| {
            if partitioning {
                store_of(n)
            } else {
                n.to_string()
            }
        });
        if let Some(name) = &name {
            self.check_name(partitioning, name)?;
        }
        match (verb, name.as_deref()) {
            ("status", None) => serde_json::to_string(&self.state).map_err(|e| e.to_string()),
            ("kill", Some(name)) => self.kill(name),
            ("restart", Some(name)) => self.restart(name),
            ("partition", Some(name)) => self.partition(name),
            ("heal", name) => self.heal(name),
            _ => Err(format!("unknown request {verb:?}")),
        }
    }

    fn check_name(&self, partitioning: bool, name: &str) -> Result<(), String> {
        if self.state.process(name).is_none() {
            return Err(self.state.unknown_name(name));
        }
        if partitioning && self.state.process(name).map(|p| p.spec.role) != Some(Role::Store) {
            return Err(format!(
                "only store members (store-N, or server-N for its member) can be partitioned, not {name}"
            ));
        }
        Ok(())
    }

    fn kill(&mut self, name: &str) -> Result<String, String> {
        let Some(mut child) = self.children.remove(name) else {
            return Err(format!("{name} is not running"));
        };
        let pid = child.id();
        child
            .kill()
            .map_err(|e| format!("killing {name} (pid {pid}): {e}"))?;
        let _ = child.wait();
        let record = self.record(name);
        record.pid = None;
        record.state = ProcessState::Killed;
        self.save();
        Ok(format!("killed {name} (pid {pid})"))
    }

    fn restart(&mut self, name: &str) -> Result<String, String> {
        if self.children.contains_key(name) {
            return Err(format!("{name} is running; `skiff lab kill {name}` first"));
        }
        self.start(name).map_err(|e| format!("{e:#}"))?;
        let pid = self.record(name).pid.unwrap_or_default();
        Ok(format!("restarted {name} (pid {pid})"))
    }

    fn partition(&mut self, name: &str) -> Result<String, String> {
        self.relays.partition(name);
        let record = self.record(name);
        if record.state == ProcessState::Running {
            record.state = ProcessState::Partitioned;
        }
        self.save();
        Ok(format!("partitioned {name} from its peers"))
    }

    fn heal(&mut self, name: Option<&str>) -> Result<String, String> {
        self.relays.heal(name);
        for record in &mut self.state.processes {
            let chosen = name.is_none_or(|n| n == record.spec.name);
            if chosen && record.state == ProcessState::Partitioned {
                record.state = ProcessState::Running;
            }
        }
        self.save();
        Ok(match name {
            Some(name) => format!("healed {name}"),
            None => "healed every partition".into(),
        })
    }
}

/// `server-N` stands for its store member, `store-N`; other names for themselves.
fn store_of(name: &str) -> String {
    match name.strip_prefix("server-") {
        Some(n) => format!("store-{n}"),
        None => name.to_string(),
    }
}

/// Answers control requests until `shutdown`; `down` cancels it. The
/// listener stays open until the supervisor ends, so that `lab down` can
/// wait for the socket file to go.
async fn serve_control(
    listener: tokio::net::UnixListener,
    shared: Shared,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (shared, shutdown) = (shared.clone(), shutdown.clone());
        tokio::spawn(async move {
            control::answer_one(stream, |verb, name| {
                if verb == "down" {
                    shutdown.cancel();
                    return Ok("stopping the lab".into());
                }
                lock(&shared).handle(verb, name)
            })
            .await;
        });
    }
    // Keep the socket bound (unanswered) until the process ends.
    std::future::pending::<()>().await;
    drop(listener);
}

async fn reap(shared: Shared, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        lock(&shared).reap();
        tokio::time::sleep(REAP_PERIOD).await;
    }
}

/// Stops every process, nodes first and stores last: SIGTERM, then SIGKILL
/// after the grace period; waits for each.
async fn stop_all(shared: &Shared) {
    for role in [
        Role::Kubelet,
        Role::ControllerManager,
        Role::Scheduler,
        Role::Apiserver,
        Role::Store,
    ] {
        let names: Vec<String> = {
            let supervisor = lock(shared);
            supervisor
                .state
                .processes
                .iter()
                .filter(|p| p.spec.role == role && supervisor.children.contains_key(&p.spec.name))
                .map(|p| p.spec.name.clone())
                .collect()
        };
        for name in &names {
            if let Some(child) = lock(shared).children.get(name) {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            }
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for name in &names {
            loop {
                let past_grace = tokio::time::Instant::now() > deadline;
                if lock(shared).reap_stopping(name, past_grace) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    lock(shared).save();
}

/// Writes `$HOME/.skiff/config` for the first API server; answers its path.
fn write_client_config(layout: &Layout) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let first = layout.api_servers.first()?;
    let addr: SocketAddr = first.strip_prefix("http://")?.parse().ok()?;
    match crate::up::write_client_config(Path::new(&home), addr) {
        Ok(path) => Some(path),
        Err(err) => {
            tracing::warn!("{err:#}");
            None
        }
    }
}

/// What `lab up` prints once everything started.
fn banner(dir: &Path, layout: &Layout, config: Option<&Path>) -> String {
    let mut out = String::from("The skiff lab is up.\n\n");
    for p in &layout.processes {
        out.push_str(&format!(
            "  {:<22} {:<19} {}\n",
            p.name,
            p.role.as_str(),
            p.address
        ));
    }
    let config = config.map_or("not written ($HOME is not set)".into(), |p| {
        p.display().to_string()
    });
    let d = dir.display();
    out.push_str(&format!(
        "\n  API servers:    {}\
         \n  store clients:  {}\
         \n  logs:           {d}/logs/NAME.log\
         \n  client config:  {config}\
         \n\
         \nTry:\
         \n  skiff get nodes\
         \n  skiff lab status --dir {d}\
         \n  skiff lab kill store-1 --dir {d}      (then: skiff lab restart store-1 --dir {d})\
         \n  skiff lab partition server-2 --dir {d} (then: skiff lab heal --dir {d})\
         \n\
         \nCtrl-C or `skiff lab down --dir {d}` stops the lab; `skiff lab up --dir {d}` resumes it.\n",
        layout.api_servers.join(", "),
        layout.store_clients.join(", "),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            servers: 3,
            nodes: 2,
            runtime: "hollow".into(),
            dir: PathBuf::from("/lab"),
            node_monitor_grace_period: Duration::from_secs(40),
            node_lease_duration_seconds: 40,
            leader_elect_lease_duration: Duration::from_secs(15),
        }
    }

    /// A supervisor of a lab whose processes all run (on paper: no children).
    fn supervisor(dir: &Path) -> Supervisor {
        let layout = plan::layout(&settings(), |_| 1);
        Supervisor {
            dir: dir.to_path_buf(),
            binary: PathBuf::from("/nonexistent/skiff"),
            state: LabState {
                supervisor_pid: 1,
                processes: layout
                    .processes
                    .iter()
                    .map(|spec| ProcessRecord {
                        spec: spec.clone(),
                        pid: Some(1),
                        state: ProcessState::Running,
                    })
                    .collect(),
                layout,
            },
            children: HashMap::new(),
            relays: Relays::default(),
        }
    }

    #[test]
    fn an_unknown_name_is_answered_with_the_valid_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut supervisor = supervisor(dir.path());
        let err = supervisor.handle("kill", Some("node-9")).unwrap_err();
        assert!(err.contains("\"node-9\""), "{err}");
        assert!(err.contains("store-1, store-2, store-3"), "{err}");
        assert!(err.contains("node-2"), "{err}");
        let err = supervisor.handle("frobnicate", None).unwrap_err();
        assert!(err.contains("unknown request"), "{err}");
    }

    #[test]
    fn only_store_members_are_partitioned_and_a_server_stands_for_its_member() {
        let dir = tempfile::tempdir().unwrap();
        let mut supervisor = supervisor(dir.path());
        let err = supervisor.handle("partition", Some("node-1")).unwrap_err();
        assert!(err.contains("only store members"), "{err}");
        let said = supervisor.handle("partition", Some("server-2")).unwrap();
        assert_eq!(said, "partitioned store-2 from its peers");
        assert!(supervisor.relays.is_partitioned("store-2"));
        assert_eq!(
            supervisor.process_state("store-2"),
            Some(ProcessState::Partitioned)
        );
        let saved = LabState::read(dir.path()).unwrap().unwrap();
        assert_eq!(
            saved.process("store-2").map(|p| p.state),
            Some(ProcessState::Partitioned),
            "lab.json follows"
        );
        supervisor.handle("heal", None).unwrap();
        assert!(!supervisor.relays.is_partitioned("store-2"));
        assert_eq!(
            supervisor.process_state("store-2"),
            Some(ProcessState::Running)
        );
    }

    #[test]
    fn killing_a_process_that_is_not_running_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut supervisor = supervisor(dir.path());
        // No child was started here, so nothing is running to kill.
        let err = supervisor.handle("kill", Some("node-1")).unwrap_err();
        assert_eq!(err, "node-1 is not running");
    }

    #[test]
    fn a_server_name_stands_for_its_store_member() {
        assert_eq!(store_of("server-2"), "store-2");
        assert_eq!(store_of("store-3"), "store-3");
        assert_eq!(store_of("node-1"), "node-1");
    }

    #[test]
    fn the_banner_names_every_process_and_the_next_commands() {
        let layout = plan::layout(&settings(), |_| 1);
        let banner = banner(Path::new("/lab"), &layout, None);
        for name in ["store-3", "apiserver-1", "controller-manager-2", "node-2"] {
            assert!(banner.contains(name), "{name} in {banner}");
        }
        assert!(banner.contains("skiff get nodes"), "{banner}");
        assert!(banner.contains("skiff lab status --dir /lab"), "{banner}");
        assert!(banner.contains("not written"), "{banner}");
    }
}
