use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStrategy, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::fixtures::{at, template};

fn deployment(replicas: i32, image: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("d-uid".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            template: template(image),
            progress_deadline_seconds: Some(600),
            ..Default::default()
        }),
        status: None,
    }
}

fn rolling(d: &mut Deployment, surge: IntOrString, unavailable: IntOrString) {
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(surge),
            max_unavailable: Some(unavailable),
        }),
    });
}

/// A cluster where every ReplicaSet's pods are instantly running and available.
struct World {
    sets: Vec<ReplicaSet>,
}

impl World {
    fn apply(&mut self, plan: &Plan) {
        if let Some(rs) = &plan.create {
            let mut rs = rs.clone();
            rs.metadata.uid = Some(format!("uid-{}", name_of(&rs)));
            self.sets.push(rs);
        }
        for scale in &plan.scale {
            let rs = self
                .sets
                .iter_mut()
                .find(|rs| name_of(rs) == scale.name)
                .unwrap();
            rs.spec.as_mut().unwrap().replicas = Some(scale.replicas);
            let annotations = rs.metadata.annotations.get_or_insert_with(Default::default);
            annotations.extend(scale.annotations.iter().cloned());
        }
        self.sets.retain(|rs| !plan.delete.contains(&name_of(rs)));
    }

    /// The ReplicaSet controller and kubelets catch up.
    fn settle(&mut self) {
        for rs in &mut self.sets {
            let n = replicas_of(rs);
            rs.status = Some(ReplicaSetStatus {
                replicas: n,
                ready_replicas: Some(n),
                available_replicas: Some(n),
                ..Default::default()
            });
        }
    }

    fn refs(&self) -> Vec<&ReplicaSet> {
        self.sets.iter().collect()
    }
}

#[test]
fn rolling_update_never_passes_surge_or_unavailability_limits() {
    let mut d = deployment(10, "v1");
    rolling(
        &mut d,
        IntOrString::Int(3),
        IntOrString::String("20%".into()),
    );
    let mut world = World { sets: Vec::new() };
    let plan = reconcile(&d, &world.refs(), at(0)).unwrap();
    assert_eq!(
        replicas_of(plan.create.as_ref().unwrap()),
        10,
        "a first rollout starts at full size"
    );
    world.apply(&plan);
    world.settle();
    d.spec.as_mut().unwrap().template = template("v2");
    for step in 0..50 {
        let plan = reconcile(&d, &world.refs(), at(step)).unwrap();
        if plan.create.is_none() && plan.scale.is_empty() {
            break;
        }
        world.apply(&plan);
        let total: i32 = world.sets.iter().map(replicas_of).sum();
        assert!(
            total <= 13,
            "step {step}: {total} pods wanted, more than 10 + maxSurge 3"
        );
        let available: i32 = world
            .sets
            .iter()
            .map(|rs| {
                replicas_of(rs).min(
                    rs.status
                        .as_ref()
                        .map_or(0, |s| s.available_replicas.unwrap_or(0)),
                )
            })
            .sum();
        assert!(
            available >= 8,
            "step {step}: only {available} available, below 10 - maxUnavailable 2"
        );
        world.settle();
    }
    let v2 = world
        .sets
        .iter()
        .find(|rs| revision::is_new(&d, rs))
        .unwrap();
    assert_eq!(replicas_of(v2), 10);
    assert_eq!(revision::revision(v2), 2);
    assert!(world
        .sets
        .iter()
        .filter(|rs| !revision::is_new(&d, rs))
        .all(|rs| replicas_of(rs) == 0));
    let plan = reconcile(&d, &world.refs(), at(100)).unwrap();
    let progressing = plan
        .status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
}

#[test]
fn recreate_scales_old_to_zero_and_waits_for_their_pods() {
    let mut d = deployment(4, "v1");
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    let mut world = World { sets: Vec::new() };
    world.apply(&reconcile(&d, &[], at(0)).unwrap());
    world.settle();
    d.spec.as_mut().unwrap().template = template("v2");
    let plan = reconcile(&d, &world.refs(), at(1)).unwrap();
    assert!(plan.create.is_none());
    assert_eq!(plan.scale[0].replicas, 0);
    world.apply(&plan);
    let plan = reconcile(&d, &world.refs(), at(2)).unwrap();
    assert!(plan.create.is_none(), "the old pods are still there");
    world.settle();
    let plan = reconcile(&d, &world.refs(), at(3)).unwrap();
    assert_eq!(replicas_of(plan.create.as_ref().unwrap()), 4);
}

#[test]
fn ecs_percentages_become_surge_and_unavailability() {
    let mut d = deployment(10, "v1");
    d.metadata.annotations = Some(BTreeMap::from([
        (rolling::ECS_MINIMUM_HEALTHY_PERCENT.into(), "50".into()),
        (rolling::ECS_MAXIMUM_PERCENT.into(), "200".into()),
    ]));
    assert_eq!(rolling::fenceposts(&d), Ok((10, 5)));
    d.metadata.annotations = Some(BTreeMap::from([(
        rolling::ECS_MAXIMUM_PERCENT.into(),
        "90".into(),
    )]));
    assert!(reconcile(&d, &[], at(0))
        .unwrap_err()
        .contains("at least 100"));
}

#[test]
fn both_limits_rounding_to_zero_allow_one_unavailable() {
    let mut d = deployment(3, "v1");
    rolling(
        &mut d,
        IntOrString::String("10%".into()),
        IntOrString::String("10%".into()),
    );
    assert_eq!(rolling::fenceposts(&d), Ok((1, 0)), "surge rounds up");
    rolling(
        &mut d,
        IntOrString::Int(0),
        IntOrString::String("10%".into()),
    );
    assert_eq!(rolling::fenceposts(&d), Ok((0, 1)));
}

#[test]
fn the_pod_template_hash_is_stable_and_ignores_its_own_label() {
    let t = template("v1");
    let hash = revision::pod_template_hash(&t, None);
    assert_eq!(hash, revision::pod_template_hash(&t.clone(), None));
    assert_ne!(hash, revision::pod_template_hash(&template("v2"), None));
    assert_ne!(hash, revision::pod_template_hash(&t, Some(1)));
    let rs = revision::new_replica_set(&deployment(1, "v1"), 1, 1, 0);
    assert_eq!(name_of(&rs), format!("web-{hash}"));
    let labelled = rs.spec.unwrap().template.unwrap();
    assert_eq!(revision::pod_template_hash(&labelled, None), hash);
    assert!(hash
        .chars()
        .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
}

#[test]
fn old_history_beyond_the_limit_is_deleted_oldest_first() {
    let mut d = deployment(1, "v4");
    d.spec.as_mut().unwrap().revision_history_limit = Some(1);
    let mut world = World { sets: Vec::new() };
    for (i, image) in ["v1", "v2", "v3", "v4"].iter().enumerate() {
        let mut rs = revision::new_replica_set(&deployment(1, image), i as i64 + 1, 0, 0);
        rs.metadata.uid = Some(format!("rs{i}"));
        world.sets.push(rs);
    }
    world.sets[3].spec.as_mut().unwrap().replicas = Some(1);
    world.settle();
    let plan = reconcile(&d, &world.refs(), at(0)).unwrap();
    assert_eq!(plan.delete.len(), 2);
    assert_eq!(plan.delete[0], name_of(&world.sets[0]));
    assert_eq!(plan.delete[1], name_of(&world.sets[1]));
}

#[test]
fn rollback_brings_back_the_previous_template_and_its_revision_moves_up() {
    let mut world = World { sets: Vec::new() };
    let mut d = deployment(2, "v1");
    world.apply(&reconcile(&d, &[], at(0)).unwrap());
    world.settle();
    d.spec.as_mut().unwrap().template = template("v2");
    for step in 0..20 {
        let plan = reconcile(&d, &world.refs(), at(step)).unwrap();
        world.apply(&plan);
        world.settle();
    }
    let previous = rollback_template(&d, &world.refs(), None).unwrap();
    assert_eq!(previous, template("v1"));
    assert!(rollback_template(&d, &world.refs(), Some(7))
        .unwrap_err()
        .contains("revision 7"));
    d.spec.as_mut().unwrap().template = previous;
    let plan = reconcile(&d, &world.refs(), at(30)).unwrap();
    assert!(plan.create.is_none(), "the v1 ReplicaSet is reused");
    assert!(plan.scale[0]
        .annotations
        .contains(&(revision::REVISION.into(), "3".into())));
}

#[test]
fn progress_deadline_exceeded_when_nothing_moves() {
    let mut d = deployment(2, "v1");
    d.spec.as_mut().unwrap().progress_deadline_seconds = Some(60);
    let plan = reconcile(&d, &[], at(0)).unwrap();
    let mut world = World { sets: Vec::new() };
    world.apply(&plan);
    d.status = Some(plan.status);
    let plan = reconcile(&d, &world.refs(), at(30)).unwrap();
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(31)));
    d.status = Some(plan.status);
    let plan = reconcile(&d, &world.refs(), at(61)).unwrap();
    d.status = Some(plan.status.clone());
    let progressing = plan
        .status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(progressing.status, "False");
    assert_eq!(
        progressing.reason.as_deref(),
        Some("ProgressDeadlineExceeded")
    );
    assert!(rollout_status(&d)
        .unwrap_err()
        .contains("exceeded its progress deadline"));
}

#[test]
fn rollout_status_reads_as_kubectl_prints_it() {
    let mut d = deployment(3, "v1");
    d.status = Some(DeploymentStatus {
        observed_generation: Some(1),
        replicas: Some(4),
        updated_replicas: Some(2),
        ..Default::default()
    });
    assert_eq!(
        rollout_status(&d).unwrap().0,
        "Waiting for deployment \"web\" rollout to finish: 2 out of 3 new replicas have been updated..."
    );
    d.status = Some(DeploymentStatus {
        observed_generation: Some(1),
        replicas: Some(3),
        updated_replicas: Some(3),
        available_replicas: Some(3),
        ..Default::default()
    });
    assert_eq!(
        rollout_status(&d).unwrap(),
        ("deployment \"web\" successfully rolled out".into(), true)
    );
}

#[test]
fn paused_deployments_take_no_step() {
    let mut d = deployment(2, "v1");
    d.spec.as_mut().unwrap().paused = Some(true);
    let plan = reconcile(&d, &[], at(0)).unwrap();
    assert!(plan.create.is_none());
}
