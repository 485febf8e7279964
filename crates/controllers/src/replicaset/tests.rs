use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::*;
use crate::fixtures::{at, pod, template, Phase};
use crate::writes::slow_start_batches;

fn replica_set(replicas: i32) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("rs-uid".into()),
            generation: Some(3),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            template: Some(template("nginx")),
            min_ready_seconds: None,
        }),
        status: None,
    }
}

fn owned(name: &str) -> crate::fixtures::PodBuilder {
    pod(name).owner("ReplicaSet", "web", "rs-uid")
}

#[test]
fn creates_the_missing_pods_up_to_the_burst() {
    let existing = owned("a").ready_at(at(0)).build();
    let plan = reconcile(&replica_set(3), &[&existing], true, at(10)).unwrap();
    assert_eq!(plan.create, 2);
    assert!(plan.delete.is_empty());
    let plan = reconcile(&replica_set(10_000), &[], true, at(10)).unwrap();
    assert_eq!(plan.create, BURST_REPLICAS);
}

#[test]
fn deletes_the_surplus_cheapest_first() {
    let ready = owned("ready").node("n1").ready_at(at(0)).build();
    let pending = owned("pending").node("n2").phase(Phase::Pending).build();
    let unassigned = owned("unassigned").build();
    let plan = reconcile(
        &replica_set(1),
        &[&ready, &pending, &unassigned],
        true,
        at(10),
    )
    .unwrap();
    assert_eq!(plan.create, 0);
    assert_eq!(plan.delete, ["unassigned", "pending"]);
}

#[test]
fn finished_and_terminating_pods_do_not_count() {
    let done = owned("done").phase(Phase::Succeeded).build();
    let failed = owned("failed").phase(Phase::Failed).build();
    let going = owned("going").ready_at(at(0)).deleting(at(5)).build();
    let plan = reconcile(&replica_set(1), &[&done, &failed, &going], true, at(10)).unwrap();
    assert_eq!(plan.create, 1);
    assert_eq!(plan.status.replicas, 0);
}

#[test]
fn adopts_matching_orphans_releases_mismatches_and_leaves_others_alone() {
    let orphan = pod("orphan").ready_at(at(0)).build();
    let relabelled = owned("relabelled").labels(&[("app", "db")]).build();
    let foreign = pod("foreign")
        .owner("ReplicaSet", "other", "other-uid")
        .build();
    let plan = reconcile(
        &replica_set(1),
        &[&orphan, &relabelled, &foreign],
        true,
        at(10),
    )
    .unwrap();
    assert_eq!(plan.adopt, ["orphan"]);
    assert_eq!(plan.release, ["relabelled"]);
    assert_eq!(plan.create, 0, "the adopted orphan is the one replica");
    assert!(plan.delete.is_empty());
}

#[test]
fn waits_for_the_cache_while_expectations_are_unmet() {
    let plan = reconcile(&replica_set(3), &[], false, at(10)).unwrap();
    assert_eq!(plan.create, 0);
    assert_eq!(plan.status.replicas, 0, "status is still written");
}

#[test]
fn a_replica_set_being_deleted_creates_nothing() {
    let mut rs = replica_set(3);
    rs.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(1)));
    assert_eq!(reconcile(&rs, &[], true, at(10)).unwrap().create, 0);
}

#[test]
fn status_counts_ready_and_available_and_requeues_for_min_ready_seconds() {
    let mut rs = replica_set(3);
    rs.spec.as_mut().unwrap().min_ready_seconds = Some(30);
    let old = owned("old").ready_at(at(0)).build();
    let new = owned("new").ready_at(at(90)).build();
    let starting = owned("starting").phase(Phase::Running).build();
    let plan = reconcile(&rs, &[&old, &new, &starting], true, at(100)).unwrap();
    assert_eq!(plan.status.replicas, 3);
    assert_eq!(plan.status.ready_replicas, Some(2));
    assert_eq!(plan.status.available_replicas, Some(1));
    assert_eq!(plan.status.fully_labeled_replicas, Some(3));
    assert_eq!(plan.status.observed_generation, Some(3));
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(20)));
}

#[test]
fn a_selector_that_selects_everything_is_refused_with_a_reason() {
    let mut rs = replica_set(1);
    rs.spec.as_mut().unwrap().selector = LabelSelector::default();
    let err = reconcile(&rs, &[], true, at(0)).unwrap_err();
    assert!(err.contains("empty selector"), "{err}");
}

#[test]
fn slow_start_doubles_each_batch() {
    assert_eq!(slow_start_batches(0), Vec::<usize>::new());
    assert_eq!(slow_start_batches(1), [1]);
    assert_eq!(slow_start_batches(10), [1, 2, 4, 3]);
    assert_eq!(slow_start_batches(500).iter().sum::<usize>(), 500);
}

#[test]
fn only_a_change_to_what_the_reconcile_acts_on_is_synced_at_once() {
    let old = replica_set(3);
    let mut status_only = old.clone();
    status_only.status = Some(ReplicaSetStatus {
        replicas: 3,
        ..Default::default()
    });
    status_only.metadata.resource_version = Some("7".into());
    assert!(!controller::spec_changed(&old, &status_only));
    assert!(controller::spec_changed(&old, &replica_set(4)));
    let mut deleting = old.clone();
    deleting.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(5)));
    assert!(controller::spec_changed(&old, &deleting));
}
