//! The OCI runtime spec of a container (<https://github.com/opencontainers/runtime-spec>),
//! as a pure function: what runc is told to run, in which namespaces, with
//! which mounts and cgroup limits. containerd stores it with the container and
//! hands it to the runc v2 shim.
//!
//! The defaults follow containerd's own (`oci.WithDefaultSpec`): `/proc`,
//! a tmpfs `/dev` with `pts`, `shm` and `mqueue`, read-only `/sys` and its
//! cgroups, Docker's default capability set, the usual masked and read-only
//! paths. The network namespace is the sandbox's, so a pod's containers share
//! one IP; every other namespace is the container's own.

use serde_json::{json, Value};

use crate::image::oci::RunConfig;
use crate::runtime::{ContainerConfig, Mount, Resources};

/// The type URL containerd stores an OCI spec under.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// The type URL of an exec'd process's spec.
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// The CFS period CPU limits are expressed over, as the real kubelet's (100 ms).
pub const CPU_PERIOD_MICROS: u64 = 100_000;
/// `PATH` when the image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capabilities, which containerd's CRI also grants.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Everything a container's spec is made from.
#[derive(Clone, Debug, PartialEq)]
pub struct SpecInput {
    /// The process: its arguments, environment and working directory.
    pub process: ProcessInput,
    /// The pod's hostname.
    pub hostname: String,
    /// The sandbox's network namespace; `None` shares the node's (hostNetwork).
    pub netns: Option<String>,
    /// The container's cgroup, relative to each hierarchy's root.
    pub cgroups_path: String,
    /// CPU and memory limits.
    pub resources: Resources,
    /// Volumes as bind mounts.
    pub mounts: Vec<Mount>,
}

/// A process to run: the container's own, or an exec'd one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessInput {
    /// argv.
    pub args: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// The working directory.
    pub cwd: String,
    /// Allocate a TTY.
    pub terminal: bool,
}

impl ProcessInput {
    /// The container's process: the pod spec's command and args over the
    /// image's entrypoint and cmd, its env over the image's.
    pub fn for_container(config: &ContainerConfig, image: &RunConfig) -> ProcessInput {
        ProcessInput {
            args: effective_args(config, image),
            env: effective_env(image.env.as_deref().unwrap_or_default(), &config.env),
            cwd: config
                .working_dir
                .clone()
                .or_else(|| image.working_dir.clone())
                .filter(|dir| !dir.is_empty())
                .unwrap_or_else(|| "/".to_string()),
            terminal: config.tty,
        }
    }
}

/// The command a container runs, by Kubernetes' rules: `command` replaces the
/// image's entrypoint (and drops its cmd), `args` replaces its cmd.
pub fn effective_args(config: &ContainerConfig, image: &RunConfig) -> Vec<String> {
    let entrypoint = image.entrypoint.clone().unwrap_or_default();
    let cmd = image.cmd.clone().unwrap_or_default();
    match (config.command.is_empty(), config.args.is_empty()) {
        (true, true) => [entrypoint, cmd].concat(),
        (true, false) => [entrypoint, config.args.clone()].concat(),
        (false, _) => [config.command.clone(), config.args.clone()].concat(),
    }
}

/// The image's environment with the pod's variables over it (a pod's value
/// wins; new names are appended in order), and a default `PATH`.
pub fn effective_env(image: &[String], pod: &[(String, String)]) -> Vec<String> {
    let mut env: Vec<String> = image.to_vec();
    if !env.iter().any(|pair| pair.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    for (name, value) in pod {
        let pair = format!("{name}={value}");
        let prefix = format!("{name}=");
        match env
            .iter_mut()
            .find(|existing| existing.starts_with(&prefix))
        {
            Some(existing) => *existing = pair,
            None => env.push(pair),
        }
    }
    env
}

/// The OCI process object.
pub fn process_spec(process: &ProcessInput) -> Value {
    json!({
        "terminal": process.terminal,
        "user": { "uid": 0, "gid": 0 },
        "args": process.args,
        "env": process.env,
        "cwd": process.cwd,
        "capabilities": {
            "bounding": CAPABILITIES,
            "effective": CAPABILITIES,
            "permitted": CAPABILITIES,
        },
        "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
        "noNewPrivileges": true,
    })
}

/// The container's whole OCI runtime spec. The root is `rootfs` in the
/// bundle, where the shim mounts the container's snapshot.
pub fn container_spec(input: &SpecInput) -> Value {
    let mut namespaces = vec![
        json!({ "type": "pid" }),
        json!({ "type": "ipc" }),
        json!({ "type": "uts" }),
        json!({ "type": "mount" }),
    ];
    if let Some(netns) = &input.netns {
        namespaces.push(json!({ "type": "network", "path": netns }));
    }
    json!({
        "ociVersion": "1.0.2-dev",
        "process": process_spec(&input.process),
        "root": { "path": "rootfs", "readonly": false },
        "hostname": input.hostname,
        "mounts": mounts(&input.mounts),
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": input.cgroups_path,
            "resources": resources(&input.resources),
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    })
}

/// The cgroup settings: every device denied but those runc adds itself, a
/// CFS quota for the CPU limit, and the memory limit.
fn resources(resources: &Resources) -> Value {
    let mut value = json!({ "devices": [{ "allow": false, "access": "rwm" }] });
    if let Some(millis) = resources.cpu_limit_millis {
        // At least 1 ms of quota: the kernel refuses less.
        let quota = (millis * CPU_PERIOD_MICROS / 1000).max(1000);
        value["cpu"] = json!({ "quota": quota, "period": CPU_PERIOD_MICROS });
    }
    if let Some(bytes) = resources.memory_limit_bytes {
        value["memory"] = json!({ "limit": bytes });
    }
    value
}

fn mounts(volumes: &[Mount]) -> Vec<Value> {
    let mut mounts = vec![
        json!({ "destination": "/proc", "type": "proc", "source": "proc",
                "options": ["nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }),
        json!({ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] }),
        json!({ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] }),
        json!({ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"] }),
        json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"] }),
        json!({ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }),
    ];
    for volume in volumes {
        let access = if volume.read_only { "ro" } else { "rw" };
        mounts.push(json!({
            "destination": volume.container_path,
            "type": "bind",
            "source": volume.host_path,
            "options": ["rbind", "rprivate", access],
        }));
    }
    mounts
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn image() -> RunConfig {
        RunConfig {
            env: Some(vec!["PATH=/bin".into(), "MODE=image".into()]),
            entrypoint: Some(vec!["/bin/entry".into()]),
            cmd: Some(vec!["serve".into()]),
            working_dir: Some("/srv".into()),
        }
    }

    fn config(command: &[&str], args: &[&str]) -> ContainerConfig {
        ContainerConfig {
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..ContainerConfig::default()
        }
    }

    fn input(resources: Resources, netns: Option<&str>) -> SpecInput {
        SpecInput {
            process: ProcessInput::for_container(&config(&["sh"], &[]), &image()),
            hostname: "web-0".into(),
            netns: netns.map(str::to_string),
            cgroups_path: "/skiff/abc".into(),
            resources,
            mounts: vec![Mount {
                host_path: PathBuf::from("/var/lib/skiff/pods/x/volumes/data"),
                container_path: PathBuf::from("/data"),
                read_only: true,
            }],
        }
    }

    #[test]
    fn without_command_or_args_the_image_entrypoint_and_cmd_run() {
        assert_eq!(
            effective_args(&config(&[], &[]), &image()),
            ["/bin/entry", "serve"]
        );
    }

    #[test]
    fn args_alone_replace_the_images_cmd_but_keep_its_entrypoint() {
        assert_eq!(
            effective_args(&config(&[], &["debug"]), &image()),
            ["/bin/entry", "debug"]
        );
    }

    #[test]
    fn a_command_replaces_entrypoint_and_cmd() {
        assert_eq!(
            effective_args(&config(&["sh", "-c"], &["echo hi"]), &image()),
            ["sh", "-c", "echo hi"]
        );
        assert_eq!(
            effective_args(&config(&["sleep"], &[]), &image()),
            ["sleep"]
        );
    }

    #[test]
    fn pod_env_overrides_the_images_and_appends_new_names_in_order() {
        let pod = vec![
            ("MODE".to_string(), "pod".to_string()),
            ("B".to_string(), "2".to_string()),
            ("A".to_string(), "1".to_string()),
        ];
        let env = effective_env(&["PATH=/bin".into(), "MODE=image".into()], &pod);
        assert_eq!(env, ["PATH=/bin", "MODE=pod", "B=2", "A=1"]);
    }

    #[test]
    fn an_image_without_path_gets_the_default_path() {
        let env = effective_env(&[], &[]);
        assert_eq!(env, [DEFAULT_PATH]);
    }

    #[test]
    fn the_working_directory_is_the_pods_else_the_images_else_root() {
        let mut with_dir = config(&[], &[]);
        with_dir.working_dir = Some("/work".into());
        assert_eq!(
            ProcessInput::for_container(&with_dir, &image()).cwd,
            "/work"
        );
        assert_eq!(
            ProcessInput::for_container(&config(&[], &[]), &image()).cwd,
            "/srv"
        );
        let bare = RunConfig::default();
        assert_eq!(
            ProcessInput::for_container(&config(&[], &[]), &bare).cwd,
            "/"
        );
    }

    #[test]
    fn the_network_namespace_is_the_sandboxs_and_the_rest_are_the_containers_own() {
        let spec = container_spec(&input(Resources::default(), Some("/var/run/netns/skiff-1")));
        let namespaces = spec["linux"]["namespaces"].as_array().unwrap();
        let network: Vec<&Value> = namespaces
            .iter()
            .filter(|n| n["type"] == "network")
            .collect();
        assert_eq!(network.len(), 1);
        assert_eq!(network[0]["path"], "/var/run/netns/skiff-1");
        for own in ["pid", "ipc", "uts", "mount"] {
            assert!(namespaces
                .iter()
                .any(|n| n["type"] == own && n.get("path").is_none()));
        }
    }

    #[test]
    fn host_network_has_no_network_namespace() {
        let spec = container_spec(&input(Resources::default(), None));
        let namespaces = spec["linux"]["namespaces"].as_array().unwrap();
        assert!(namespaces.iter().all(|n| n["type"] != "network"));
    }

    #[test]
    fn limits_become_a_cfs_quota_over_100ms_and_a_memory_limit() {
        let resources = Resources {
            cpu_limit_millis: Some(250),
            memory_limit_bytes: Some(64 << 20),
        };
        let spec = container_spec(&input(resources, None));
        let linux = &spec["linux"]["resources"];
        assert_eq!(linux["cpu"]["quota"], 25_000);
        assert_eq!(linux["cpu"]["period"], 100_000);
        assert_eq!(linux["memory"]["limit"], 64 << 20);
    }

    #[test]
    fn no_limits_set_no_cpu_or_memory_controller_values() {
        let spec = container_spec(&input(Resources::default(), None));
        assert!(spec["linux"]["resources"].get("cpu").is_none());
        assert!(spec["linux"]["resources"].get("memory").is_none());
    }

    #[test]
    fn a_tiny_cpu_limit_is_raised_to_the_kernels_minimum_quota() {
        let resources = Resources {
            cpu_limit_millis: Some(1),
            memory_limit_bytes: None,
        };
        let spec = container_spec(&input(resources, None));
        assert_eq!(spec["linux"]["resources"]["cpu"]["quota"], 1000);
    }

    #[test]
    fn the_process_hostname_root_and_cgroup_are_set() {
        let spec = container_spec(&input(Resources::default(), None));
        assert_eq!(spec["process"]["args"], json!(["sh"]));
        assert_eq!(spec["process"]["cwd"], "/srv");
        assert_eq!(spec["hostname"], "web-0");
        assert_eq!(spec["root"]["path"], "rootfs");
        assert_eq!(spec["linux"]["cgroupsPath"], "/skiff/abc");
    }

    #[test]
    fn volumes_are_bind_mounts_after_the_defaults_with_their_access_mode() {
        let spec = container_spec(&input(Resources::default(), None));
        let mounts = spec["mounts"].as_array().unwrap();
        assert_eq!(mounts[0]["destination"], "/proc");
        let data = mounts.last().unwrap();
        assert_eq!(data["destination"], "/data");
        assert_eq!(data["type"], "bind");
        assert_eq!(data["options"], json!(["rbind", "rprivate", "ro"]));
    }
}
