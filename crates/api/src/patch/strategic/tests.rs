use serde_json::{json, Value};

use super::strategic_merge_patch;
use crate::patch::PatchError;

fn patched(kind: &str, live: Value, patch: Value) -> Result<Value, PatchError> {
    let mut target = live;
    strategic_merge_patch(kind, &mut target, &patch)?;
    Ok(target)
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
}

/// One table row: what the live object is, what is sent, what results.
struct Case {
    name: &'static str,
    kind: &'static str,
    live: Value,
    patch: Value,
    want: Value,
}

fn check(cases: Vec<Case>) {
    for case in cases {
        let got = patched(case.kind, case.live.clone(), case.patch.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(got, case.want, "{}", case.name);
    }
}

#[test]
fn keyed_lists_merge_item_by_item() {
    check(vec![
        Case {
            name: "kubectl set image: one container changes, the other stays",
            kind: "Pod",
            live: pod(
                json!([{"name": "web", "image": "nginx:1"}, {"name": "log", "image": "busybox"}]),
            ),
            patch: json!({"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}),
            want: pod(
                json!([{"name": "web", "image": "nginx:2"}, {"name": "log", "image": "busybox"}]),
            ),
        },
        Case {
            name: "a container with a new name is appended",
            kind: "Pod",
            live: pod(json!([{"name": "web", "image": "nginx"}])),
            patch: json!({"spec": {"containers": [{"name": "side", "image": "envoy"}]}}),
            want: pod(
                json!([{"name": "web", "image": "nginx"}, {"name": "side", "image": "envoy"}]),
            ),
        },
        Case {
            name: "env by name and ports by containerPort, inside a Deployment's template",
            kind: "Deployment",
            live: json!({"spec": {"template": {"spec": {"containers": [{
                "name": "web",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "name": "http"}],
            }]}}}}),
            patch: json!({"spec": {"template": {"spec": {"containers": [{
                "name": "web",
                "env": [{"name": "B", "value": "3"}],
                "ports": [{"containerPort": 443, "name": "https"}],
            }]}}}}),
            want: json!({"spec": {"template": {"spec": {"containers": [{
                "name": "web",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}],
                "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}],
            }]}}}}),
        },
        Case {
            name: "Service ports merge by port",
            kind: "Service",
            live: json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}}),
            patch: json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
            want: json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}),
        },
        Case {
            name: "a Node's conditions merge by type",
            kind: "Node",
            live: json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]}}),
            patch: json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            want: json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}]}}),
        },
        Case {
            name: "ownerReferences merge by uid",
            kind: "ConfigMap",
            live: json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}),
            patch: json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}),
            want: json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}),
        },
    ]);
}

#[test]
fn lists_without_a_strategy_are_replaced() {
    check(vec![
        Case {
            name: "tolerations are atomic",
            kind: "Pod",
            live: json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}}),
            patch: json!({"spec": {"tolerations": [{"key": "c"}]}}),
            want: json!({"spec": {"tolerations": [{"key": "c"}]}}),
        },
        Case {
            name: "a container's args are atomic",
            kind: "Pod",
            live: pod(json!([{"name": "web", "args": ["-a", "-b"]}])),
            patch: json!({"spec": {"containers": [{"name": "web", "args": ["-c"]}]}}),
            want: pod(json!([{"name": "web", "args": ["-c"]}])),
        },
        Case {
            name: "a kind without merging lists merges like a JSON merge patch",
            kind: "ConfigMap",
            live: json!({"data": {"a": "1", "b": "2"}}),
            patch: json!({"data": {"a": null, "c": "3"}}),
            want: json!({"data": {"b": "2", "c": "3"}}),
        },
    ]);
}

#[test]
fn patch_directives_replace_and_delete() {
    check(vec![
        Case {
            name: "$patch: delete removes the item with that key",
            kind: "Pod",
            live: pod(json!([{"name": "web"}, {"name": "log"}])),
            patch: json!({"spec": {"containers": [{"name": "log", "$patch": "delete"}]}}),
            want: pod(json!([{"name": "web"}])),
        },
        Case {
            name: "{\"$patch\": \"replace\"} as an item replaces the list",
            kind: "Pod",
            live: pod(json!([{"name": "web"}, {"name": "log"}])),
            patch: json!({"spec": {"containers": [{"name": "new"}, {"$patch": "replace"}]}}),
            want: pod(json!([{"name": "new"}])),
        },
        Case {
            name: "$patch: replace in an object replaces it",
            kind: "Pod",
            live: json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            patch: json!({"metadata": {"labels": {"c": "3", "$patch": "replace"}}}),
            want: json!({"metadata": {"labels": {"c": "3"}}}),
        },
        Case {
            name: "$patch: delete in an object removes it",
            kind: "Pod",
            live: json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
            patch: json!({"metadata": {"labels": {"$patch": "delete"}}}),
            want: json!({"metadata": {"name": "p"}}),
        },
        Case {
            name: "a new item is added without its directives",
            kind: "Pod",
            live: pod(json!([])),
            patch: json!({"spec": {"containers": [{"name": "web", "$patch": "merge", "env": [{"name": "A", "value": null}]}]}}),
            want: pod(json!([{"name": "web", "env": [{"name": "A"}]}])),
        },
    ]);
}

#[test]
fn primitive_lists_merge_and_delete_from_primitive_list_removes() {
    check(vec![
        Case {
            name: "finalizers gain items without duplicates",
            kind: "Pod",
            live: json!({"metadata": {"finalizers": ["a", "b"]}}),
            patch: json!({"metadata": {"finalizers": ["b", "c"]}}),
            want: json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        },
        Case {
            name: "$deleteFromPrimitiveList removes the named finalizers",
            kind: "Pod",
            live: json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            patch: json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a", "c"]}}),
            want: json!({"metadata": {"finalizers": ["b"]}}),
        },
    ]);
}

#[test]
fn retain_keys_switches_a_union_member() {
    check(vec![
        Case {
            name: "a Deployment's strategy goes from RollingUpdate to Recreate",
            kind: "Deployment",
            live: json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            patch: json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            want: json!({"spec": {"strategy": {"type": "Recreate"}}}),
        },
        Case {
            name: "a volume's source goes from emptyDir to hostPath",
            kind: "Pod",
            live: json!({"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}}),
            patch: json!({"spec": {"volumes": [{"name": "data", "hostPath": {"path": "/d"}, "$retainKeys": ["hostPath", "name"]}]}}),
            want: json!({"spec": {"volumes": [{"name": "data", "hostPath": {"path": "/d"}}]}}),
        },
    ]);
}

#[test]
fn kubectl_apply_three_way_patch_with_element_order() {
    // What client-side `kubectl apply` sends after `B` was dropped from the
    // manifest, the image changed and `side` was moved before `web`.
    let live = pod(json!([
        {"name": "web", "image": "nginx:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "side", "image": "envoy"},
    ]));
    let patch = json!({"spec": {
        "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
        "containers": [{
            "name": "web",
            "image": "nginx:2",
            "$setElementOrder/env": [{"name": "A"}],
            "env": [{"name": "B", "$patch": "delete"}],
        }],
    }});
    let want = pod(json!([
        {"name": "side", "image": "envoy"},
        {"name": "web", "image": "nginx:2", "env": [{"name": "A", "value": "1"}]},
    ]));
    assert_eq!(patched("Pod", live, patch).unwrap(), want);
}

#[test]
fn errors_name_the_path() {
    let live = pod(json!([{"name": "web"}]));
    let cases = [
        (
            json!({"spec": {"containers": [{"name": "web"}, {"image": "x"}]}}),
            "spec.containers[1]: the item does not contain declared merge key: name",
        ),
        (
            json!({"spec": {"containers": ["web"]}}),
            "spec.containers[0]: a list merged by \"name\" holds objects, not \"web\"",
        ),
        (
            json!({"metadata": {"$patch": "shred"}}),
            "metadata: unknown patch type: shred",
        ),
        (
            json!({"spec": {"$unknown": 1}}),
            "spec: unknown directive $unknown",
        ),
        (
            json!({"spec": {"$retainKeys": ["x"], "y": 1}}),
            "spec: field y is not in $retainKeys [\"x\"]",
        ),
        (json!([1]), "a strategic merge patch must be a JSON object"),
    ];
    for (patch, want) in cases {
        let err = patched("Pod", live.clone(), patch.clone()).unwrap_err();
        assert_eq!(err.to_string(), want, "patch {patch}");
    }
}
