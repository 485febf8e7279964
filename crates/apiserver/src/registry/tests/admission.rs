//! Defaulting and validation as a client sees them through the registry:
//! Invalid errors with causes, defaults on created objects, what an update may
//! not change, and the writes that are not spec updates (status, binding).

use serde_json::{json, Value};
use skiff_api::status::Reason;

use super::fixture::{pod, r, scenarios, Backend, Fixture};
use crate::registry::write::PatchType;
use crate::registry::*;

scenarios!(
    invalid_objects_are_refused_with_causes_and_field_paths,
    created_pods_carry_kubernetes_defaults,
    a_jobs_selector_is_generated_from_its_uid,
    pod_updates_may_change_only_what_kubernetes_allows,
    status_writes_and_bindings_are_not_spec_updates,
    a_service_update_without_its_addresses_keeps_them,
    json_patch_goes_through_the_update_path,
);

async fn invalid_objects_are_refused_with_causes_and_field_paths(backend: Backend) {
    let f = Fixture::on(backend).await;
    let mut no_image = pod("web");
    no_image["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("image");
    let err = f.try_create("pods", "default", no_image).await.unwrap_err();
    assert_eq!((err.reason, err.code), (Reason::Invalid, 422));
    assert_eq!(
        err.message,
        "Pod \"web\" is invalid: spec.containers[0].image: Required value"
    );
    let details = err.details.expect("an Invalid error names its causes");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("web", "Pod")
    );
    assert_eq!(details.causes.len(), 1);
    assert_eq!(details.causes[0].field, "spec.containers[0].image");
    assert_eq!(details.causes[0].reason, "FieldValueRequired");
    assert_eq!(
        details.causes[0].message,
        "spec.containers[0].image: Required value"
    );

    // Names follow Kubernetes' rules: a pod's is an RFC 1123 subdomain, a namespace's a label.
    let err = f
        .try_create("pods", "default", pod("Web_1"))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Invalid);
    assert!(
        err.message.starts_with("Pod \"Web_1\" is invalid: metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain must consist of"),
        "{err}"
    );
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}});
    let err = f.try_create("namespaces", "", ns).await.unwrap_err();
    assert_eq!(
        err.message,
        "Namespace \"a.b\" is invalid: metadata.name: Invalid value: \"a.b\": must not contain dots"
    );

    // Several problems are listed together, each with its own cause.
    let mut two = pod("two");
    two["spec"]["containers"] = json!([{"name": "c", "image": "i"}, {"name": "c"}]);
    let err = f.try_create("pods", "default", two).await.unwrap_err();
    let fields: Vec<String> = err
        .details
        .unwrap()
        .causes
        .iter()
        .map(|c| c.field.clone())
        .collect();
    assert!(
        fields.contains(&"spec.containers[1].image".to_string())
            && fields.contains(&"spec.containers[1].name".to_string()),
        "{fields:?}"
    );
    assert!(
        err.message.starts_with("Pod \"two\" is invalid: ["),
        "{}",
        err.message
    );
    // Nothing invalid was stored.
    assert_eq!(
        f.get("pods", "default", "web").await.unwrap_err().reason,
        Reason::NotFound
    );
}

async fn created_pods_carry_kubernetes_defaults(backend: Backend) {
    let f = Fixture::on(backend).await;
    let mut p = pod("web");
    p["spec"]["containers"] = json!([
        {"name": "latest", "image": "nginx"},
        {"name": "tagged", "image": "nginx:1.25"}
    ]);
    let created = f.create("pods", "default", p).await;
    let spec = &created["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(spec["containers"][1]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        spec["tolerations"],
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        ])
    );
    assert_eq!(created["status"]["phase"], "Pending");
    // What is stored is what was answered.
    assert_eq!(f.get("pods", "default", "web").await.unwrap(), created);
}

async fn a_jobs_selector_is_generated_from_its_uid(backend: Backend) {
    let f = Fixture::on(backend).await;
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "pi", "image": "perl"}]}}}});
    let created = f.create("jobs", "default", job).await;
    let uid = created["metadata"]["uid"].as_str().unwrap();
    assert!(!uid.is_empty());
    assert_eq!(
        created["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    assert_eq!(
        created["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    // An update keeps the generated selector valid (the uid stays the object's).
    let mut update = created.clone();
    update["metadata"]["labels"] = json!({"team": "maths"});
    let updated = f.update("jobs", "default", &update).await.unwrap();
    assert_eq!(updated["spec"]["selector"], created["spec"]["selector"]);
}

async fn pod_updates_may_change_only_what_kubernetes_allows(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = f.create("pods", "default", pod("web")).await;
    // The image may change.
    let mut image = created.clone();
    image["spec"]["containers"][0]["image"] = json!("nginx:2");
    let updated = f.update("pods", "default", &image).await.unwrap();
    assert_eq!(updated["spec"]["containers"][0]["image"], "nginx:2");
    // The restart policy may not.
    let mut policy = updated.clone();
    policy["spec"]["restartPolicy"] = json!("Never");
    let err = f.update("pods", "default", &policy).await.unwrap_err();
    assert_eq!(err.reason, Reason::Invalid);
    assert!(
        err.message.starts_with(
            "Pod \"web\" is invalid: spec: Forbidden: pod updates may not change fields other than"
        ),
        "{err}"
    );
    let causes = err.details.unwrap().causes;
    assert_eq!(
        (causes[0].field.as_str(), causes[0].reason.as_str()),
        ("spec", "FieldValueForbidden")
    );
    // Metadata the server owns cannot be taken over: a changed uid is ignored.
    let mut uid = updated.clone();
    uid["metadata"]["uid"] = json!("00000000-0000-0000-0000-000000000000");
    uid["metadata"]["labels"]["new"] = json!("yes");
    let kept = f.update("pods", "default", &uid).await.unwrap();
    assert_eq!(kept["metadata"]["uid"], created["metadata"]["uid"]);
    // A Service's type-specific field: a cluster IP may not change once set.
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]}});
    let svc = f.create("services", "default", svc).await;
    let mut moved = svc.clone();
    moved["spec"]["clusterIP"] = json!("10.96.0.99");
    moved["spec"]["clusterIPs"] = json!(["10.96.0.99"]);
    let err = f.update("services", "default", &moved).await.unwrap_err();
    assert_eq!(err.reason, Reason::Invalid);
    assert!(err.message.contains("may not change once set"), "{err}");
}

async fn status_writes_and_bindings_are_not_spec_updates(backend: Backend) {
    let f = Fixture::on(backend).await;
    f.create("pods", "default", pod("web")).await;
    // A binding sets spec.nodeName, which a pod update may not change.
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"}});
    let reply = f
        .registry
        .bind(
            "default",
            "web",
            &serde_json::to_vec(&binding).unwrap(),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(reply.object["status"], "Success");
    let bound = f.get("pods", "default", "web").await.unwrap();
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(bound["status"]["conditions"][0]["type"], "PodScheduled");
    // The same change as a spec update is refused.
    let mut moved = bound.clone();
    moved["spec"]["nodeName"] = json!("n2");
    let err = f.update("pods", "default", &moved).await.unwrap_err();
    assert_eq!(err.reason, Reason::Invalid);
    // A second binding is a Conflict.
    let err = f
        .registry
        .bind(
            "default",
            "web",
            &serde_json::to_vec(&binding).unwrap(),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Conflict);
    assert!(
        err.message.contains("is already assigned to node \"n1\""),
        "{err}"
    );

    // A kubelet's status write: the status changes, a changed spec in the body is ignored.
    let mut status = bound.clone();
    status["status"]["phase"] = json!("Running");
    status["status"]["podIP"] = json!("10.244.0.5");
    status["spec"]["restartPolicy"] = json!("Never");
    let written = f
        .update_sub("pods", "default", "status", &status)
        .await
        .unwrap();
    assert_eq!(written["status"]["phase"], "Running");
    assert_eq!(written["spec"], bound["spec"]);
    assert_eq!(
        written["metadata"]["generation"],
        bound["metadata"]["generation"]
    );
    // A status patch too.
    let patched = f
        .registry
        .patch(
            r("pods"),
            "default",
            "web",
            "status",
            PatchType::Merge,
            br#"{"status": {"phase": "Succeeded"}}"#,
            &WriteOptions::default(),
        )
        .await
        .unwrap()
        .object;
    assert_eq!(patched["status"]["phase"], "Succeeded");
    // As Kubernetes' ResetObjectMetaForStatus: labels in a status write are
    // not the writer's to change, so even an invalid one is dropped.
    let mut relabel = patched.clone();
    relabel["metadata"]["labels"]["bad key!"] = json!("x");
    relabel["status"]["phase"] = json!("Failed");
    let written = f
        .update_sub("pods", "default", "status", &relabel)
        .await
        .unwrap();
    assert_eq!(written["status"]["phase"], "Failed");
    assert_eq!(written["metadata"]["labels"], patched["metadata"]["labels"]);
}

async fn a_service_update_without_its_addresses_keeps_them(backend: Backend) {
    let f = Fixture::on(backend).await;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}});
    let created = f.create("services", "default", svc.clone()).await;
    let ip = created["spec"]["clusterIP"].as_str().unwrap().to_string();
    let node_port = created["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
    assert_eq!(created["spec"]["clusterIPs"], json!([ip]));
    // A client replaces the Service with what it first sent: no clusterIP,
    // clusterIPs or nodePort, and one more label.
    let mut replace = svc;
    replace["metadata"]["labels"] = json!({"tier": "front"});
    let updated = f.update("services", "default", &replace).await.unwrap();
    assert_eq!(updated["spec"]["clusterIP"], ip.as_str());
    assert_eq!(updated["spec"]["clusterIPs"], json!([ip]));
    assert_eq!(updated["spec"]["ports"][0]["nodePort"], node_port);
    assert_eq!(updated["metadata"]["labels"]["tier"], "front");
    // A new port gets a new node port; the old one keeps its own.
    let mut more = replace.clone();
    more["spec"]["ports"] = json!([
        {"name": "http", "port": 80, "protocol": "TCP"},
        {"name": "https", "port": 443, "protocol": "TCP"}
    ]);
    let two = f.update("services", "default", &more).await.unwrap();
    assert_eq!(two["spec"]["ports"][0]["nodePort"], node_port);
    let second = two["spec"]["ports"][1]["nodePort"].as_u64().unwrap();
    assert_ne!(second, node_port);
}

async fn json_patch_goes_through_the_update_path(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = f.create("pods", "default", pod("web")).await;
    let patch = |ops: Value| {
        let registry = f.registry.clone();
        async move {
            registry
                .patch(
                    r("pods"),
                    "default",
                    "web",
                    "",
                    PatchType::Json,
                    &serde_json::to_vec(&ops).unwrap(),
                    &WriteOptions::default(),
                )
                .await
        }
    };
    let patched = patch(json!([
        {"op": "test", "path": "/metadata/labels/app", "value": "web"},
        {"op": "add", "path": "/metadata/labels/tier", "value": "front"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:2"},
        {"op": "remove", "path": "/metadata/labels/app"}
    ]))
    .await
    .unwrap()
    .object;
    assert_eq!(patched["metadata"]["labels"], json!({"tier": "front"}));
    assert_eq!(patched["spec"]["containers"][0]["image"], "nginx:2");
    assert!(super::fixture::rv(&patched) > super::fixture::rv(&created));
    assert_eq!(f.get("pods", "default", "web").await.unwrap(), patched);

    // A failed test stores nothing.
    let err = patch(json!([
        {"op": "test", "path": "/metadata/labels/tier", "value": "back"},
        {"op": "replace", "path": "/spec/containers/0/image", "value": "nginx:3"}
    ]))
    .await
    .unwrap_err();
    assert_eq!((err.reason, err.code), (Reason::Invalid, 422), "{err}");
    assert_eq!(f.get("pods", "default", "web").await.unwrap(), patched);
    // A patch that makes the pod invalid is refused by validation.
    let err = patch(json!([{"op": "remove", "path": "/spec/containers/0/image"}]))
        .await
        .unwrap_err();
    assert_eq!(
        err.message,
        "Pod \"web\" is invalid: spec.containers[0].image: Required value"
    );
    // A resourceVersion in the patch is a precondition.
    let err = patch(json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": "1"}]))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Conflict);
    // A body that is not a list of operations is refused.
    let err = patch(json!({"op": "add"})).await.unwrap_err();
    assert_eq!(err.reason, Reason::Invalid, "{err}");
}
