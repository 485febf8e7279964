use serde_json::{json, Value};
use skiff_api::patch::schema;

use super::fieldset::{from_fields_v1, remove, to_fields_v1};
use super::*;

fn manager(name: &str) -> Manager {
    Manager {
        name: name.into(),
        api_version: "apps/v1".into(),
        time: "2026-01-01T00:00:00Z".into(),
        subresource: String::new(),
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "uid": "u1", "resourceVersion": "5", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}},
        },
        "status": {"replicas": 1},
    })
}

fn merge(live: &mut Value, intent: &Value) -> Result<(), String> {
    skiff_api::patch::apply_merge("Deployment", live, intent).map_err(|e| e.to_string())
}

fn fields_of(object: &Value, manager: &str) -> Value {
    object["metadata"]["managedFields"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["manager"] == manager))
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn fields_v1_names_fields_keyed_items_and_set_items() {
    let object = json!({
        "metadata": {"name": "p", "uid": "u", "finalizers": ["a/b"], "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}]}], "tolerations": [{"key": "k"}]},
        "status": {"phase": "Running"},
    });
    let set: FieldSet = members(&object, schema::for_kind("Pod"), Scope::Main)
        .into_keys()
        .collect();
    let encoded = to_fields_v1(&set);
    assert_eq!(
        encoded,
        json!({
            "f:metadata": {"f:finalizers": {"v:\"a/b\"": {}}, "f:labels": {"f:app": {}}},
            "f:spec": {
                "f:containers": {"k:{\"name\":\"web\"}": {
                    ".": {},
                    "f:image": {},
                    "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}},
                }},
                "f:tolerations": {},
            },
        })
    );
    assert_eq!(from_fields_v1(&encoded), set, "decoding gives the set back");
}

#[test]
fn status_writes_own_only_the_status() {
    let object = deployment(1, "nginx");
    let status: Vec<_> = members(&object, schema::for_kind("Deployment"), Scope::Status)
        .into_keys()
        .collect();
    assert_eq!(
        status,
        vec![vec!["f:status".to_string(), "f:replicas".into()]]
    );
}

#[test]
fn an_update_takes_the_fields_it_changes_from_other_managers() {
    let mut created = deployment(1, "nginx");
    record_update(
        None,
        &mut created,
        schema::for_kind("Deployment"),
        &manager("kubectl-create"),
    );
    assert!(fields_of(&created, "kubectl-create")["f:spec"]["f:replicas"].is_object());
    assert!(
        fields_of(&created, "kubectl-create")["f:metadata"]
            .get("f:uid")
            .is_none(),
        "server-set metadata is not owned"
    );
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(3);
    record_update(
        Some(&created),
        &mut scaled,
        schema::for_kind("Deployment"),
        &manager("hpa"),
    );
    assert_eq!(
        fields_of(&scaled, "hpa"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(fields_of(&scaled, "kubectl-create")["f:spec"]
        .get("f:replicas")
        .is_none());
    assert!(fields_of(&scaled, "kubectl-create")["f:spec"]["f:template"].is_object());

    let mut unchanged = scaled.clone();
    record_update(
        Some(&scaled),
        &mut unchanged,
        schema::for_kind("Deployment"),
        &manager("other"),
    );
    assert_eq!(
        unchanged, scaled,
        "a write that changes nothing records nothing"
    );
}

#[test]
fn apply_conflicts_with_an_updater_unless_forced() {
    let mut live = deployment(1, "nginx");
    record_update(
        None,
        &mut live,
        schema::for_kind("Deployment"),
        &manager("kubectl-client-side-apply"),
    );
    let mut intent = deployment(3, "nginx");
    intent["status"] = Value::Null;
    let ty = schema::for_kind("Deployment");
    let err = apply(&live, &intent, ty, &manager("kubectl"), false, merge).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    let forced = apply(&live, &intent, ty, &manager("kubectl"), true, merge).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    assert!(fields_of(&forced, "kubectl")["f:spec"]["f:replicas"].is_object());
    assert!(fields_of(&forced, "kubectl-client-side-apply")["f:spec"]
        .get("f:replicas")
        .is_none());
}

#[test]
fn apply_with_the_same_values_shares_ownership_without_conflict() {
    let mut live = deployment(1, "nginx");
    record_update(
        None,
        &mut live,
        schema::for_kind("Deployment"),
        &manager("creator"),
    );
    let intent = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}});
    let applied = apply(
        &live,
        &intent,
        schema::for_kind("Deployment"),
        &manager("kubectl"),
        false,
        merge,
    )
    .unwrap();
    assert_eq!(
        fields_of(&applied, "kubectl"),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert!(fields_of(&applied, "creator")["f:spec"]["f:replicas"].is_object());
}

#[test]
fn apply_removes_fields_it_no_longer_sets_unless_others_own_them() {
    let ty = schema::for_kind("Deployment");
    let base = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
    let mut first = base.clone();
    first["metadata"]["labels"] = json!({"app": "web", "tier": "front"});
    first["spec"] = json!({"replicas": 2, "paused": true});
    let applied = apply(&base, &first, ty, &manager("kubectl"), false, merge).unwrap();
    let mut again = base.clone();
    again["metadata"]["labels"] = json!({"app": "web"});
    again["spec"] = json!({"replicas": 2});
    // Another manager also owns `paused`: it stays.
    let mut shared = applied.clone();
    shared["spec"]["paused"] = json!(false);
    record_update(Some(&applied), &mut shared, ty, &manager("pauser"));
    let reapplied = apply(&shared, &again, ty, &manager("kubectl"), false, merge).unwrap();
    assert_eq!(reapplied["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(reapplied["spec"], json!({"replicas": 2, "paused": false}));
}

#[test]
fn removing_a_path_takes_empty_parents_along() {
    let mut object =
        json!({"spec": {"containers": [{"name": "web", "env": [{"name": "A", "value": "1"}]}]}});
    let path = |elements: &[&str]| elements.iter().map(|e| e.to_string()).collect::<Vec<_>>();
    remove(
        &mut object,
        &path(&[
            "f:spec",
            "f:containers",
            "k:{\"name\":\"web\"}",
            "f:env",
            "k:{\"name\":\"A\"}",
        ]),
    );
    assert_eq!(object, json!({"spec": {"containers": [{"name": "web"}]}}));
    remove(&mut object, &path(&["f:spec", "f:missing", "f:x"]));
    assert_eq!(object, json!({"spec": {"containers": [{"name": "web"}]}}));
}

#[test]
fn conflicts_with_several_managers_are_grouped() {
    let conflicts = vec![
        Conflict {
            manager: "\"b\"".into(),
            field: ".spec.replicas".into(),
        },
        Conflict {
            manager: "\"a\" using v1".into(),
            field: ".metadata.labels.x".into(),
        },
        Conflict {
            manager: "\"b\"".into(),
            field: ".spec.paused".into(),
        },
    ];
    assert_eq!(
        conflict_message(&conflicts),
        "Apply failed with 3 conflicts: conflicts with \"a\" using v1:\n- .metadata.labels.x\nconflicts with \"b\":\n- .spec.replicas\n- .spec.paused"
    );
}

#[test]
fn managed_fields_sent_with_an_update_replace_the_old_ones_and_absent_keeps_them() {
    let old = json!({"metadata": {"managedFields": [{"manager": "m", "operation": "Update", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]}});
    let mut absent = json!({"metadata": {}});
    carry_over(&mut absent, &old);
    assert_eq!(
        absent["metadata"]["managedFields"],
        old["metadata"]["managedFields"]
    );
    let mut cleared = json!({"metadata": {"managedFields": [{}]}});
    carry_over(&mut cleared, &old);
    assert!(cleared["metadata"].get("managedFields").is_none());
}

/// Not a limit, a measurement: what recording a create costs, printed with
/// `cargo test -p skiff-apiserver cost_on_create -- --nocapture`.
#[test]
fn cost_on_create() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web", "tier": "front"}},
        "spec": {"containers": [{"name": "web", "image": "nginx", "imagePullPolicy": "IfNotPresent",
            "ports": [{"containerPort": 80, "protocol": "TCP"}], "env": [{"name": "A", "value": "1"}],
            "resources": {}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
            "terminationGracePeriodSeconds": 30, "securityContext": {}},
    });
    let ty = schema::for_kind("Pod");
    let rounds = 1000;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let mut object = pod.clone();
        record_create(&mut object, ty, &manager("kubectl"), None);
        assert!(object["metadata"]["managedFields"].is_array());
    }
    let per_create = start.elapsed() / rounds;
    let without = std::time::Instant::now();
    for _ in 0..rounds {
        let object = pod.clone();
        assert!(object["metadata"].get("managedFields").is_none());
    }
    let baseline = without.elapsed() / rounds;
    eprintln!("managedFields on create: {per_create:?} a pod (a clone alone: {baseline:?})");
}
