//! Builders of the objects the reconcilers' tests observe.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodCondition,
    PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

/// The instant `seconds` after the Unix epoch.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).expect("a test time in range")
}

/// A pod phase.
#[derive(Clone, Copy)]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// A pod under construction.
pub struct PodBuilder {
    pod: Pod,
}

/// A pod named `name` in namespace `default`, labelled `app=web`.
pub fn pod(name: &str) -> PodBuilder {
    PodBuilder {
        pod: Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            }),
        },
    }
}

/// A pod template labelled `app=web` with one container `main` of `image`.
pub fn template(image: &str) -> PodTemplateSpec {
    skiff_testing::workloads::template("web", image)
}

impl PodBuilder {
    fn status(&mut self) -> &mut PodStatus {
        self.pod.status.get_or_insert_with(Default::default)
    }

    pub fn node(mut self, node: &str) -> PodBuilder {
        self.pod.spec.get_or_insert_with(Default::default).node_name = Some(node.into());
        self
    }

    pub fn phase(mut self, phase: Phase) -> PodBuilder {
        let phase = match phase {
            Phase::Pending => "Pending",
            Phase::Running => "Running",
            Phase::Succeeded => "Succeeded",
            Phase::Failed => "Failed",
        };
        self.status().phase = Some(phase.into());
        self
    }

    pub fn labels(mut self, labels: &[(&str, &str)]) -> PodBuilder {
        self.pod.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }

    pub fn annotation(mut self, key: &str, value: &str) -> PodBuilder {
        self.pod
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
        self
    }

    /// Running, with Ready True since `since`.
    pub fn ready_at(mut self, since: Timestamp) -> PodBuilder {
        self = self.phase(Phase::Running);
        self.status().conditions = Some(vec![PodCondition {
            type_: "Ready".into(),
            status: "True".into(),
            last_transition_time: Some(Time(since)),
            ..Default::default()
        }]);
        self
    }

    pub fn ip(mut self, ip: &str) -> PodBuilder {
        self.status().pod_ip = Some(ip.into());
        self
    }

    pub fn cost(self, cost: i32) -> PodBuilder {
        self.annotation(crate::pods::POD_DELETION_COST, &cost.to_string())
    }

    pub fn restarts(mut self, count: i32) -> PodBuilder {
        self.status().container_statuses = Some(vec![ContainerStatus {
            name: "main".into(),
            restart_count: count,
            ..Default::default()
        }]);
        self
    }

    /// Failed, its container `main` having exited with `code` at `finished`.
    pub fn exited(mut self, code: i32, finished: Timestamp) -> PodBuilder {
        let phase = if code == 0 {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
        self = self.phase(phase);
        self.status().container_statuses = Some(vec![ContainerStatus {
            name: "main".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    finished_at: Some(Time(finished)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        self
    }

    pub fn created(mut self, when: Timestamp) -> PodBuilder {
        self.pod.metadata.creation_timestamp = Some(Time(when));
        self
    }

    pub fn deleting(mut self, when: Timestamp) -> PodBuilder {
        self.pod.metadata.deletion_timestamp = Some(Time(when));
        self
    }

    pub fn finalizer(mut self, finalizer: &str) -> PodBuilder {
        self.pod
            .metadata
            .finalizers
            .get_or_insert_with(Default::default)
            .push(finalizer.into());
        self
    }

    /// Controlled by the owner with `uid`.
    pub fn owner(mut self, kind: &str, name: &str, uid: &str) -> PodBuilder {
        self.pod.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        self
    }

    pub fn build(self) -> Pod {
        self.pod
    }
}
