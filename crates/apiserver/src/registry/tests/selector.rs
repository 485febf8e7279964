//! Label and field selectors on lists and watches, written as clients write
//! them (`kubectl -l 'tier in (front)'`, `--field-selector spec.nodeName=n1`).

use serde_json::{json, Value};
use skiff_api::status::Reason;

use super::fixture::{pod, r, scenarios, Backend, Fixture};
use crate::registry::*;
use crate::watch_cache::{EventType, WatchStream};

scenarios!(
    label_selectors_equality_and_set_based_select_lists,
    field_selectors_select_pods_by_node_scheduler_and_phase,
    unsupported_fields_and_bad_selectors_are_bad_requests,
    objects_entering_and_leaving_a_label_selection_are_added_and_deleted,
    a_field_selected_watch_follows_binding_and_phase,
);

/// A pod with labels, scheduler and (optionally) node.
fn labelled_pod(name: &str, labels: Value, node: Option<&str>) -> Value {
    let mut p = pod(name);
    p["metadata"]["labels"] = labels;
    if let Some(node) = node {
        p["spec"]["nodeName"] = json!(node);
    }
    p
}

/// The sorted names of a list's items.
fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .expect("a list has items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The names a list selects, read from the store (resourceVersion "") and
/// from the watch cache ("0"), which must agree once the cache has caught up.
async fn list(f: &Fixture, resource: &str, ns: &str, labels: &str, fields: &str) -> Vec<String> {
    let options = ListOptions {
        label_selector: labels.into(),
        field_selector: fields.into(),
        ..Default::default()
    };
    let listed = f.registry.list(r(resource), ns, &options).await;
    let want =
        names(&listed.unwrap_or_else(|e| panic!("-l {labels:?} --field-selector {fields:?}: {e}")));
    let from_cache = ListOptions {
        resource_version: "0".into(),
        ..options
    };
    for _ in 0..200 {
        let cached = f.registry.list(r(resource), ns, &from_cache).await.unwrap();
        if names(&cached) == want {
            return want;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the watch cache never selected {want:?} for -l {labels:?} --field-selector {fields:?}")
}

async fn label_selectors_equality_and_set_based_select_lists(backend: Backend) {
    let f = Fixture::on(backend).await;
    f.create(
        "pods",
        "default",
        labelled_pod("front-1", json!({"app": "web", "tier": "front"}), None),
    )
    .await;
    f.create(
        "pods",
        "default",
        labelled_pod("back-1", json!({"app": "web", "tier": "back"}), None),
    )
    .await;
    f.create(
        "pods",
        "default",
        labelled_pod("db", json!({"app": "db", "tier": "back"}), None),
    )
    .await;
    f.create(
        "pods",
        "default",
        labelled_pod("plain", json!({"app": "web"}), None),
    )
    .await;
    let cases: &[(&str, &[&str])] = &[
        ("", &["back-1", "db", "front-1", "plain"]),
        ("app=web", &["back-1", "front-1", "plain"]),
        ("app==web", &["back-1", "front-1", "plain"]),
        ("app!=web", &["db"]),
        ("app=web,tier=back", &["back-1"]),
        ("tier in (front,back)", &["back-1", "db", "front-1"]),
        ("tier notin (front)", &["back-1", "db", "plain"]),
        ("tier", &["back-1", "db", "front-1"]),
        ("!tier", &["plain"]),
        ("app in (web), tier notin (back)", &["front-1", "plain"]),
        ("app=nothing", &[]),
    ];
    for (selector, want) in cases {
        assert_eq!(
            list(&f, "pods", "default", selector, "").await,
            *want,
            "-l {selector:?}"
        );
    }
}

async fn field_selectors_select_pods_by_node_scheduler_and_phase(backend: Backend) {
    let f = Fixture::on(backend).await;
    f.create(
        "namespaces",
        "",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
    )
    .await;
    f.create(
        "pods",
        "default",
        labelled_pod("on-n1", json!({}), Some("n1")),
    )
    .await;
    f.create(
        "pods",
        "default",
        labelled_pod("on-n2", json!({"app": "web"}), Some("n2")),
    )
    .await;
    let mut custom = labelled_pod("custom", json!({}), None);
    custom["spec"]["schedulerName"] = json!("my-scheduler");
    f.create("pods", "default", custom).await;
    f.create(
        "pods",
        "other",
        labelled_pod("elsewhere", json!({"app": "web"}), Some("n1")),
    )
    .await;
    // on-n1 runs: its kubelet writes the status subresource.
    let mut running = f.get("pods", "default", "on-n1").await.unwrap();
    running["status"]["phase"] = json!("Running");
    f.update_sub("pods", "default", "status", &running)
        .await
        .unwrap();

    let cases: &[(&str, &str, &[&str])] = &[
        ("default", "spec.nodeName=n1", &["on-n1"]),
        ("", "spec.nodeName=n1", &["elsewhere", "on-n1"]),
        ("default", "spec.nodeName=", &["custom"]),
        ("default", "spec.nodeName!=", &["on-n1", "on-n2"]),
        ("default", "spec.schedulerName=my-scheduler", &["custom"]),
        (
            "default",
            "spec.schedulerName=default-scheduler",
            &["on-n1", "on-n2"],
        ),
        ("default", "status.phase=Running", &["on-n1"]),
        ("default", "status.phase!=Running", &["custom", "on-n2"]),
        ("", "metadata.namespace=other", &["elsewhere"]),
        ("", "metadata.name=on-n2", &["on-n2"]),
        (
            "",
            "metadata.name!=on-n2,spec.nodeName=n1",
            &["elsewhere", "on-n1"],
        ),
        ("", "spec.host=n2", &["on-n2"]),
    ];
    for (ns, selector, want) in cases {
        assert_eq!(
            list(&f, "pods", ns, "", selector).await,
            *want,
            "--field-selector {selector:?} in {ns:?}"
        );
    }
    // Label and field selectors together, and on another kind.
    assert_eq!(
        list(&f, "pods", "", "app=web", "spec.nodeName!=n1").await,
        ["on-n2"]
    );
    assert_eq!(
        list(&f, "namespaces", "", "", "metadata.name=other").await,
        ["other"]
    );
    assert_eq!(
        list(&f, "namespaces", "", "", "status.phase=Active")
            .await
            .len(),
        5,
        "the four system namespaces and other"
    );
    // Nodes by schedulability, Services by type.
    for (name, unschedulable) in [("n1", false), ("n2", true)] {
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                          "spec": {"unschedulable": unschedulable}});
        f.create("nodes", "", node).await;
    }
    assert_eq!(
        list(&f, "nodes", "", "", "spec.unschedulable=false").await,
        ["n1"]
    );
    assert_eq!(
        list(&f, "nodes", "", "", "spec.unschedulable=true").await,
        ["n2"]
    );
    for (name, kind) in [("internal", "ClusterIP"), ("public", "NodePort")] {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                         "spec": {"type": kind, "ports": [{"port": 80}]}});
        f.create("services", "default", svc).await;
    }
    assert_eq!(
        list(&f, "services", "default", "", "spec.type=NodePort").await,
        ["public"]
    );
}

async fn unsupported_fields_and_bad_selectors_are_bad_requests(backend: Backend) {
    let f = Fixture::on(backend).await;
    let cases = [
        ("pods", "", "spec.containers=x", "field label not supported: spec.containers"),
        ("nodes", "", "metadata.namespace=x", "field label not supported: metadata.namespace"),
        (
            "configmaps",
            "",
            "data.key=x",
            "\"data.key\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
        ),
        (
            "jobs",
            "",
            "spec.parallelism=1",
            "field label \"spec.parallelism\" not supported for batchv1.Job",
        ),
        ("pods", "x y", "", ""),
        ("pods", "a in (b", "", ""),
        ("pods", "", "nonsense", "invalid selector: 'nonsense'; can't understand 'nonsense'"),
    ];
    for (resource, labels, fields, message) in cases {
        let list = ListOptions {
            label_selector: labels.into(),
            field_selector: fields.into(),
            ..Default::default()
        };
        let err = f
            .registry
            .list(r(resource), "", &list)
            .await
            .expect_err("a bad selector is refused");
        assert_eq!((err.reason, err.code), (Reason::BadRequest, 400), "{err}");
        if !message.is_empty() {
            assert_eq!(err.message, message);
        }
        let watch = WatchOptions {
            label_selector: labels.into(),
            field_selector: fields.into(),
            ..Default::default()
        };
        let err = f
            .registry
            .watch(r(resource), "", &watch)
            .await
            .err()
            .expect("a bad selector is refused for a watch too");
        assert_eq!(err.reason, Reason::BadRequest, "{err}");
        if !message.is_empty() {
            assert_eq!(err.message, message);
        }
    }
}

async fn next(stream: &mut WatchStream) -> (EventType, Value) {
    let event = tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
        .await
        .expect("an event arrives")
        .expect("the watch is open");
    (event.kind, event.object.into_value())
}

/// An unconditional update of `object` (no resourceVersion precondition).
fn blind(mut object: Value) -> Value {
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    object
}

async fn objects_entering_and_leaving_a_label_selection_are_added_and_deleted(backend: Backend) {
    let f = Fixture::on(backend).await;
    let options = WatchOptions {
        resource_version: f.revision().await.to_string(),
        label_selector: "tier in (front),app=web".into(),
        ..Default::default()
    };
    let mut w = f
        .registry
        .watch(r("pods"), "default", &options)
        .await
        .unwrap();
    let mut current = f
        .create(
            "pods",
            "default",
            labelled_pod("a", json!({"app": "web", "tier": "back"}), None),
        )
        .await;
    let mut relabel = |tier: &str, extra: &str| {
        current["metadata"]["labels"]["tier"] = json!(tier);
        current["metadata"]["labels"]["extra"] = json!(extra);
        blind(current.clone())
    };
    let to_front = f
        .update("pods", "default", &relabel("front", "1"))
        .await
        .unwrap();
    let still_front = f
        .update("pods", "default", &relabel("front", "2"))
        .await
        .unwrap();
    let to_back = f
        .update("pods", "default", &relabel("back", "3"))
        .await
        .unwrap();
    f.update("pods", "default", &relabel("back", "4"))
        .await
        .unwrap();
    f.registry
        .delete(r("pods"), "default", "a", &DeleteOptions::default())
        .await
        .unwrap();
    let b = f
        .create(
            "pods",
            "default",
            labelled_pod("b", json!({"app": "web", "tier": "front"}), None),
        )
        .await;
    f.create(
        "pods",
        "default",
        labelled_pod("c", json!({"app": "db", "tier": "front"}), None),
    )
    .await;
    f.registry
        .delete(r("pods"), "default", "b", &DeleteOptions::default())
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next(&mut w).await);
    }
    assert_eq!(
        seen[..4],
        [
            (EventType::Added, to_front),
            (EventType::Modified, still_front),
            (EventType::Deleted, to_back),
            (EventType::Added, b.clone()),
        ]
    );
    assert_eq!(seen[4].0, EventType::Deleted);
    assert_eq!(seen[4].1["metadata"]["uid"], b["metadata"]["uid"]);
}

async fn a_field_selected_watch_follows_binding_and_phase(backend: Backend) {
    let f = Fixture::on(backend).await;
    let from = f.revision().await.to_string();
    let watch = |fields: &str| WatchOptions {
        resource_version: from.clone(),
        field_selector: fields.into(),
        ..Default::default()
    };
    // A kubelet's watch, and a scheduler's watch of pods still pending.
    let mut kubelet = f
        .registry
        .watch(r("pods"), "", &watch("spec.nodeName=n1"))
        .await
        .unwrap();
    let mut pending = f
        .registry
        .watch(
            r("pods"),
            "default",
            &watch("status.phase=Pending,spec.schedulerName=default-scheduler"),
        )
        .await
        .unwrap();
    let created = f.create("pods", "default", pod("a")).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "a"},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}});
    f.registry
        .bind(
            "default",
            "a",
            &serde_json::to_vec(&binding).unwrap(),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let bound = f.get("pods", "default", "a").await.unwrap();
    let mut running = bound.clone();
    running["status"]["phase"] = json!("Running");
    let running = f
        .update_sub("pods", "default", "status", &running)
        .await
        .unwrap();

    assert_eq!(next(&mut kubelet).await, (EventType::Added, bound.clone()));
    assert_eq!(
        next(&mut kubelet).await,
        (EventType::Modified, running.clone())
    );
    assert_eq!(next(&mut pending).await, (EventType::Added, created));
    assert_eq!(next(&mut pending).await, (EventType::Modified, bound));
    assert_eq!(
        next(&mut pending).await,
        (EventType::Deleted, running),
        "a pod that stops matching leaves the watch as DELETED"
    );
}
