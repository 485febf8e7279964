//! The lab's state — `lab.json` — and the `skiff lab status` table.
//!
//! The supervisor writes `lab.json` whenever a process starts or stops, so
//! the file always names the pids it would kill; `lab status` asks the
//! supervisor for the same record over the control socket, then asks the
//! store members who leads and the API server which nodes are Ready.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::plan::{Layout, ProcessSpec, Role};

/// What a lab process is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ProcessState {
    /// Started and not known to have exited.
    Running,
    /// Killed by `lab kill`.
    Killed,
    /// A store member cut off from its peers (and running).
    Partitioned,
    /// Exited on its own.
    Exited,
}

impl ProcessState {
    fn as_str(self) -> &'static str {
        match self {
            ProcessState::Running => "running",
            ProcessState::Killed => "killed",
            ProcessState::Partitioned => "partitioned",
            ProcessState::Exited => "exited",
        }
    }
}

/// One process: how it starts, and its pid while it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessRecord {
    /// Its name, role, address and flags.
    #[serde(flatten)]
    pub spec: ProcessSpec,
    /// Its pid, while it runs.
    pub pid: Option<u32>,
    /// What it is doing.
    pub state: ProcessState,
}

/// `lab.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LabState {
    /// The supervisor's pid.
    pub supervisor_pid: u32,
    /// The layout the lab was started with.
    pub layout: Layout,
    /// Every process, in start order.
    pub processes: Vec<ProcessRecord>,
}

/// Where `lab.json` lives in `dir`.
pub(crate) fn state_path(dir: &Path) -> PathBuf {
    dir.join("lab.json")
}

impl LabState {
    /// Writes `lab.json` whole (temporary file, then rename).
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let path = state_path(dir);
        let temporary = dir.join(".lab.json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&temporary, text)
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, &path).with_context(|| format!("replacing {}", path.display()))
    }

    /// Reads `lab.json` from `dir`, if there is one.
    pub(crate) fn read(dir: &Path) -> anyhow::Result<Option<LabState>> {
        let path = state_path(dir);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} does not parse", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The process named `name`.
    pub(crate) fn process(&self, name: &str) -> Option<&ProcessRecord> {
        self.processes.iter().find(|p| p.spec.name == name)
    }

    /// The error for an unknown name: it lists the valid ones.
    pub(crate) fn unknown_name(&self, name: &str) -> String {
        let names: Vec<&str> = self
            .processes
            .iter()
            .map(|p| p.spec.name.as_str())
            .collect();
        format!(
            "no process {name:?} in the lab; the names are: {}",
            names.join(", ")
        )
    }
}

/// The `lab status` table: NAME, ROLE, PID, STATE, ADDRESS.
pub(crate) fn table(processes: &[ProcessRecord]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "ROLE".into(),
        "PID".into(),
        "STATE".into(),
        "ADDRESS".into(),
    ]];
    for p in processes {
        rows.push([
            p.spec.name.clone(),
            p.spec.role.as_str().into(),
            p.pid.map_or("-".into(), |pid| pid.to_string()),
            p.state.as_str().into(),
            p.spec.address.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// `skiff lab status`: the table, the store leader and each node's Ready.
pub(crate) async fn print_status(dir: &Path) -> anyhow::Result<()> {
    let answer = super::control::request(dir, "status", None).await?;
    let state: LabState =
        serde_json::from_str(&answer).context("the supervisor's status does not parse")?;
    print!("{}", table(&state.processes));
    println!();
    println!("store leader: {}", store_leader(&state).await);
    match node_readiness(&state).await {
        Ok(nodes) => {
            for (name, ready) in nodes {
                println!("node {name}: Ready={ready}");
            }
        }
        Err(err) => println!("nodes: not reachable ({err:#})"),
    }
    Ok(())
}

/// The leading store member's name, as most answering members report it
/// (a partitioned member may know of no leader, or of an old one).
async fn store_leader(state: &LabState) -> String {
    let mut ids = Vec::new();
    let mut leaders = Vec::new();
    let stores = state
        .processes
        .iter()
        .filter(|p| p.spec.role == Role::Store && p.pid.is_some());
    for store in stores {
        if let Some((member_id, leader)) = member_status(&store.spec.address).await {
            ids.push((member_id, store.spec.name.clone()));
            leaders.push(leader);
        }
    }
    if leaders.is_empty() {
        return "unknown (no store member answers)".into();
    }
    let seen_by = |leader: &u64| leaders.iter().filter(|l| *l == leader).count();
    let Some(leader) = leaders
        .iter()
        .filter(|l| **l != 0)
        .max_by_key(|l| seen_by(l))
    else {
        return "none (no member knows of a leader)".into();
    };
    match ids.iter().find(|(id, _)| id == leader) {
        Some((_, name)) => name.clone(),
        None => format!("{leader:x} (not answering)"),
    }
}

/// A store member's own ID and the leader it knows of (0: none).
pub(crate) async fn member_status(address: &str) -> Option<(u64, u64)> {
    use skiff_proto::etcdserverpb::maintenance_client::MaintenanceClient;
    use skiff_proto::etcdserverpb::StatusRequest;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}")).ok()?;
    let ask = async {
        let channel = endpoint.connect().await.ok()?;
        let status = MaintenanceClient::new(channel)
            .status(StatusRequest {})
            .await
            .ok()?
            .into_inner();
        Some((status.header?.member_id, status.leader))
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// Each Node's name and the status of its Ready condition.
async fn node_readiness(state: &LabState) -> anyhow::Result<Vec<(String, String)>> {
    use k8s_openapi::api::core::v1::Node;
    let mut last_error = anyhow::anyhow!("the lab has no API server");
    for server in &state.layout.api_servers {
        let endpoint = tonic::transport::Endpoint::from_shared(server.clone())?;
        let client = skiff_client::Client::new(endpoint.connect_lazy());
        let nodes = skiff_client::Api::<Node>::all(client);
        let params = Default::default();
        let list = tokio::time::timeout(std::time::Duration::from_secs(3), nodes.list(&params));
        match list.await {
            Ok(Ok(list)) => return Ok(list.items.iter().map(ready_of).collect()),
            Ok(Err(err)) => last_error = err.into(),
            Err(_) => last_error = anyhow::anyhow!("{server} did not answer"),
        }
    }
    Err(last_error)
}

fn ready_of(node: &k8s_openapi::api::core::v1::Node) -> (String, String) {
    let name = node.metadata.name.clone().unwrap_or_default();
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map_or("Unknown".to_string(), |c| c.status.clone());
    (name, ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, role: Role, pid: Option<u32>, state: ProcessState) -> ProcessRecord {
        ProcessRecord {
            spec: ProcessSpec {
                name: name.into(),
                role,
                address: "127.0.0.1:1".into(),
                args: vec![],
            },
            pid,
            state,
        }
    }

    #[test]
    fn the_status_table_has_a_row_per_process_in_aligned_columns() {
        let table = table(&[
            record("store-1", Role::Store, Some(42), ProcessState::Running),
            record(
                "controller-manager-1",
                Role::ControllerManager,
                None,
                ProcessState::Killed,
            ),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[0].starts_with("NAME"), "{table}");
        let state_column = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][state_column..state_column + 7], "running");
        assert_eq!(&lines[2][state_column..state_column + 6], "killed");
        assert!(lines[1].contains(" 42 "), "{table}");
        assert!(lines[2].contains(" - "), "{table}");
    }

    #[test]
    fn lab_json_is_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LabState::read(dir.path()).unwrap(), None);
        let state = LabState {
            supervisor_pid: 7,
            layout: Layout {
                processes: vec![],
                relays: vec![],
                api_servers: vec!["http://127.0.0.1:1".into()],
                store_clients: vec![],
            },
            processes: vec![record(
                "node-1",
                Role::Kubelet,
                Some(9),
                ProcessState::Partitioned,
            )],
        };
        state.write(dir.path()).unwrap();
        assert_eq!(LabState::read(dir.path()).unwrap(), Some(state.clone()));
        let unknown = state.unknown_name("node-9");
        assert!(
            unknown.contains("node-9") && unknown.contains("node-1"),
            "{unknown}"
        );
    }
}
