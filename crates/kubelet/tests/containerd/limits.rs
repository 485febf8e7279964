//! A pod's `resources.limits` through the whole path: the kubelet hands them
//! to containerd as cgroup settings, a container over its memory limit is
//! OOMKilled in the pod's status, and a cpu limit is the container's CFS quota.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde_json::json;

use crate::common::eventually;
use crate::kubelet::Kubelet;

/// The status of container `name` of `pod`, if reported.
fn status_of<'p>(pod: &'p Pod, name: &str) -> Option<&'p ContainerStatus> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find(|c| c.name == name)
}

/// The cgroup file `v2` (or its cgroup v1 equivalent `v1` under `controller`)
/// of the container whose status carries `id`.
fn cgroup_setting(id: &str, controller: &str, v1: &str, v2: &str) -> String {
    let container = id.trim_start_matches("containerd://");
    let read = |path: String| std::fs::read_to_string(path).map(|s| s.trim().to_string());
    read(format!(
        "/sys/fs/cgroup/{controller}/skiff/{container}/{v1}"
    ))
    .or_else(|_| read(format!("/sys/fs/cgroup/skiff/{container}/{v2}")))
    .unwrap_or_else(|e| panic!("no cgroup setting {v2} for {container}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_s_limits_are_its_containers_cgroups_and_going_over_memory_is_oom_killed() {
    let mut kubelet = Kubelet::start().await;
    kubelet
        .create(json!({
            "metadata": {"name": "limited", "namespace": "default"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "hog",
                        "image": "busybox",
                        "command": ["dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"],
                        "resources": {"limits": {"memory": "32Mi"}},
                    },
                    {
                        "name": "steady",
                        "image": "busybox",
                        "command": ["sleep", "1000"],
                        "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
                    },
                ],
            },
        }))
        .await;
    let pods = kubelet.pods();
    let pod = eventually("hog is OOMKilled while steady runs", || async {
        let pod = pods.get("limited").await.ok()?;
        let hog = status_of(&pod, "hog")?
            .state
            .as_ref()?
            .terminated
            .as_ref()?;
        let steady = status_of(&pod, "steady")?.state.as_ref()?.running.is_some();
        (steady && hog.reason.as_deref() == Some("OOMKilled")).then_some(pod.clone())
    })
    .await;
    let hog = status_of(&pod, "hog").and_then(|s| s.state.as_ref()?.terminated.clone());
    assert_eq!(hog.map(|t| t.exit_code), Some(137));

    let steady = status_of(&pod, "steady")
        .and_then(|s| s.container_id.clone())
        .expect("steady has a container id");
    let cpu = cgroup_setting(&steady, "cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(cpu == "25000" || cpu == "25000 100000", "cpu quota {cpu}");
    let memory = cgroup_setting(&steady, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(memory, (64u64 << 20).to_string());
    kubelet.stop().await;
}
