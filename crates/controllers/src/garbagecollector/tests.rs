//! The garbage collector's decisions, whole and one object at a time.

use super::*;

fn object(uid: &str, owners: &[(&str, bool)]) -> Object {
    Object {
        uid: uid.into(),
        kind: "Pod".into(),
        name: uid.into(),
        owners: owners
            .iter()
            .map(|(owner, block)| OwnerReference {
                uid: owner.to_string(),
                block_owner_deletion: Some(*block),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn deleting(mut o: Object, finalizer: &str) -> Object {
    o.deleting = true;
    o.finalizers = vec![finalizer.into()];
    o
}

#[test]
fn dependents_of_a_vanished_owner_are_deleted_in_the_background() {
    let pod = object("pod", &[("rs", true)]);
    assert_eq!(
        reconcile(&[pod]),
        [Action::Delete("pod".into(), Propagation::Background)]
    );
}

#[test]
fn a_dependent_with_a_living_owner_only_loses_the_dangling_reference() {
    let owner = object("cm", &[]);
    let pod = object("pod", &[("cm", false), ("gone", false)]);
    assert_eq!(
        reconcile(&[owner, pod]),
        [Action::RemoveOwners("pod".into(), vec!["gone".into()])]
    );
}

#[test]
fn orphan_removes_references_then_the_finalizer() {
    let rs = deleting(object("rs", &[]), ORPHAN);
    let pod = object("pod", &[("rs", true)]);
    assert_eq!(
        reconcile(&[rs.clone(), pod]),
        [Action::RemoveOwners("pod".into(), vec!["rs".into()])]
    );
    assert_eq!(
        reconcile(&[rs]),
        [Action::RemoveFinalizer("rs".into(), ORPHAN)]
    );
}

#[test]
fn foreground_deletes_dependents_first_and_waits_for_blocking_ones() {
    let deploy = deleting(object("d", &[]), FOREGROUND);
    let rs = object("rs", &[("d", true)]);
    let pod = object("pod", &[("rs", true)]);
    assert_eq!(
        reconcile(&[deploy.clone(), rs.clone(), pod]),
        [Action::Delete("rs".into(), Propagation::Foreground)],
        "the ReplicaSet owns pods, so it goes in the foreground too"
    );
    let going = deleting(rs, FOREGROUND);
    assert_eq!(
        reconcile(&[deploy.clone(), going]),
        [Action::RemoveFinalizer("rs".into(), FOREGROUND)],
        "the ReplicaSet's pods are gone, so it may go; the Deployment still waits for it"
    );
    let loose = object("cm", &[("d", false)]);
    assert_eq!(
        reconcile(&[deploy, loose]),
        [
            Action::Delete("cm".into(), Propagation::Background),
            Action::RemoveFinalizer("d".into(), FOREGROUND),
        ]
    );
}

#[test]
fn an_owner_appearing_late_saves_its_dependents_and_is_looked_at_with_them() {
    let mut graph = Graph::default();
    graph.upsert(object("pod", &[("rs", true)]));
    assert_eq!(
        graph.decide("pod"),
        [Action::Delete("pod".into(), Propagation::Background)],
        "seen alone, the pod looks orphaned (the shell confirms with a live read)"
    );
    let touched = graph.upsert(object("rs", &[]));
    assert!(touched.contains("pod"), "the pod is looked at again");
    assert_eq!(graph.decide("pod"), []);
}

#[test]
fn an_owner_removed_makes_its_dependents_dangling() {
    let mut graph = Graph::default();
    graph.upsert(object("rs", &[]));
    graph.upsert(object("pod", &[("rs", true)]));
    graph.upsert(object("cm", &[("rs", false), ("deploy", false)]));
    graph.upsert(object("deploy", &[]));
    let touched = graph.remove("rs");
    assert_eq!(touched, ["cm", "pod"].map(String::from).into());
    assert_eq!(
        graph.decide("pod"),
        [Action::Delete("pod".into(), Propagation::Background)]
    );
    assert_eq!(
        graph.decide("cm"),
        [Action::RemoveOwners("cm".into(), vec!["rs".into()])]
    );
    assert_eq!(graph.decide("rs"), [], "what is gone needs nothing");
}

#[test]
fn a_dependent_changing_wakes_the_owner_waiting_for_it() {
    let mut graph = Graph::default();
    graph.upsert(deleting(object("rs", &[]), FOREGROUND));
    graph.upsert(object("pod", &[("rs", true)]));
    assert_eq!(
        graph.decide("rs"),
        [Action::Delete("pod".into(), Propagation::Background)]
    );
    let touched = graph.upsert(deleting(object("pod", &[("rs", true)]), "example.com/hold"));
    assert!(touched.contains("rs"));
    assert_eq!(
        graph.decide("rs"),
        [],
        "a blocking dependent is still there"
    );
    let touched = graph.remove("pod");
    assert!(touched.contains("rs"));
    assert_eq!(
        graph.decide("rs"),
        [Action::RemoveFinalizer("rs".into(), FOREGROUND)]
    );
}

#[test]
fn a_released_dependent_no_longer_holds_its_old_owner() {
    let mut graph = Graph::default();
    graph.upsert(deleting(object("rs", &[]), ORPHAN));
    graph.upsert(object("pod", &[("rs", true)]));
    let touched = graph.upsert(object("pod", &[]));
    assert!(touched.contains("rs"), "the old owner is looked at again");
    assert_eq!(
        graph.decide("rs"),
        [Action::RemoveFinalizer("rs".into(), ORPHAN)]
    );
}

#[test]
fn a_dependent_kept_by_another_owner_only_lets_go_of_the_foreground_one() {
    let deploy = deleting(object("d", &[]), FOREGROUND);
    let keeper = object("keeper", &[]);
    let shared = object("cm", &[("d", true), ("keeper", false)]);
    assert_eq!(
        reconcile(&[deploy, keeper, shared]),
        [Action::RemoveOwners("cm".into(), vec!["d".into()])],
        "the ConfigMap stays; the Deployment waits until the reference is gone"
    );
}
