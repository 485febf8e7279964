//! The registry's behaviour, each scenario over the in-process store and over
//! a real etcd (see `fixture`).
//!
//! # Layout
//! - `mod.rs`: create, update, patch, delete, dry run and paging as clients
//!   see them.
//! - `fixture.rs`: a registry over either backend, and `scenarios!`, which
//!   runs each scenario over both.
//! - `admission.rs`: defaults and validation as clients see them.
//! - `list.rs`: consistent lists from the watch cache and the fall back.
//! - `managed_fields.rs`: managedFields on every write, and server-side apply.
//! - `patch.rs`: strategic merge patches of pods, deployments and services.
//! - `restart.rs`: a watch resumed across an API server restart.
//! - `selector.rs`: label and field selectors on lists and watches.
//! - `watch.rs`: watches, bookmarks and expiry.

use serde_json::{json, Value};
use skiff_api::status::Reason;

mod admission;
pub(crate) mod fixture;
mod list;
mod managed_fields;
mod patch;
mod restart;
mod selector;
mod watch;

use super::write::PatchType;
use super::*;
pub(crate) use fixture::{config_map, open_store, pod, r, rv, Fixture};
use fixture::{scenarios, Backend};

scenarios!(
    create_sets_server_fields_and_refuses_a_second_one,
    bootstrap_creates_the_system_namespaces_once,
    generate_name_makes_unique_names,
    namespaced_objects_need_a_live_namespace,
    stale_resource_version_is_a_conflict,
    concurrent_writers_that_retry_lose_no_update,
    status_is_a_separate_subresource_and_spec_changes_bump_generation,
    merge_patch_goes_through_the_update_path,
    lists_page_at_one_consistent_revision_with_selectors,
    objects_with_finalizers_stay_until_the_finalizers_are_gone,
    bound_pods_are_deleted_gracefully_unbound_ones_at_once,
    delete_preconditions_and_propagation_policy,
    service_addresses_are_unique_even_across_a_restart,
    dry_run_stores_nothing,
    lists_at_an_exact_revision_and_expire_below_the_compaction,
    create_resets_status_the_server_owns,
);

async fn create_sets_server_fields_and_refuses_a_second_one(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = f.create("pods", "default", pod("web")).await;
    let meta = &created["metadata"];
    assert_eq!(meta["namespace"], "default");
    assert_eq!(meta["generation"], 1);
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36);
    assert!(meta["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    // resourceVersion is the key's mod_revision in the store.
    assert_eq!(
        Some(rv(&created)),
        f.mod_revision("/registry/pods/default/web").await
    );
    assert_eq!(f.get("pods", "default", "web").await.unwrap(), created);

    let err = f
        .try_create("pods", "default", pod("web"))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::AlreadyExists);
    assert_eq!(err.message, "pods \"web\" already exists");
    let err = f.get("pods", "default", "nope").await.unwrap_err();
    assert_eq!(err.message, "pods \"nope\" not found");
}

async fn bootstrap_creates_the_system_namespaces_once(backend: Backend) {
    let f = Fixture::on(backend).await;
    let first = f.get("ns", "", "kube-system").await.unwrap();
    assert_eq!(first["status"]["phase"], "Active");
    assert_eq!(first["spec"]["finalizers"], json!(["kubernetes"]));
    f.registry.bootstrap().await.unwrap();
    assert_eq!(f.get("ns", "", "kube-system").await.unwrap(), first);
}

async fn generate_name_makes_unique_names(backend: Backend) {
    let f = Fixture::on(backend).await;
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let created = f.create("pods", "default", json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})).await;
        let name = created["metadata"]["name"].as_str().unwrap().to_string();
        assert!(name.starts_with("web-") && name.len() == 9, "{name}");
        names.insert(name);
    }
    assert_eq!(names.len(), 20);
}

async fn namespaced_objects_need_a_live_namespace(backend: Backend) {
    let f = Fixture::on(backend).await;
    let err = f
        .try_create("pods", "missing", pod("web"))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::NotFound);
    assert_eq!(err.message, "namespaces \"missing\" not found");
    let created = f
        .create(
            "namespaces",
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
        )
        .await;
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));
    f.create("configmaps", "demo", config_map("cm", 0)).await;
    // A pod on a node leaves only when its kubelet has stopped it.
    let mut running = pod("running");
    running["spec"]["nodeName"] = json!("n1");
    f.create("pods", "demo", running).await;

    let deleted = f
        .registry
        .delete(r("ns"), "", "demo", &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted.object["status"]["phase"], "Terminating");
    assert!(deleted.object["metadata"]["deletionTimestamp"].is_string());
    let err = f.try_create("pods", "demo", pod("web")).await.unwrap_err();
    assert_eq!(err.reason, Reason::Forbidden);
    assert_eq!(
        err.message,
        "pods \"web\" is forbidden: unable to create new content in namespace demo because it is being terminated"
    );

    // Nothing in the API server empties it: that is the controller
    // manager's namespace controller. Finalize is refused while content remains.
    let finalize = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}, "spec": {"finalizers": []}});
    let body = serde_json::to_vec(&finalize).unwrap();
    let finalize_demo = || async {
        f.registry
            .update(
                r("ns"),
                "",
                "demo",
                "finalize",
                &body,
                &WriteOptions::default(),
            )
            .await
    };
    assert_eq!(finalize_demo().await.unwrap_err().reason, Reason::Conflict);
    assert_eq!(
        f.get("ns", "", "demo").await.unwrap()["status"]["phase"],
        "Terminating"
    );
    assert!(f.get("cm", "demo", "cm").await.is_ok(), "content stays");
    // Once the content is gone (as the controller and the pod's kubelet
    // delete it), finalize removes the namespace.
    f.registry
        .delete(r("cm"), "demo", "cm", &DeleteOptions::default())
        .await
        .unwrap();
    let now = DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    f.registry
        .delete(r("pods"), "demo", "running", &now)
        .await
        .unwrap();
    finalize_demo().await.unwrap();
    assert_eq!(
        f.get("ns", "", "demo").await.unwrap_err().reason,
        Reason::NotFound
    );
    // A new namespace of the same name starts afresh.
    let again = f
        .create(
            "namespaces",
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
        )
        .await;
    assert_eq!(again["status"]["phase"], "Active");
    assert_ne!(again["metadata"]["uid"], created["metadata"]["uid"]);
}

async fn stale_resource_version_is_a_conflict(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = f.create("cm", "default", config_map("c", 0)).await;
    let mut first = created.clone();
    first["data"]["count"] = json!("1");
    let updated = f.update("cm", "default", &first).await.unwrap();
    assert!(rv(&updated) > rv(&created));
    let mut stale = created.clone();
    stale["data"]["count"] = json!("2");
    let err = f.update("cm", "default", &stale).await.unwrap_err();
    assert_eq!(err.reason, Reason::Conflict);
    assert_eq!(err.message, "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again");
    // Without a resourceVersion the update is unconditional.
    let mut blind = config_map("c", 3);
    blind["metadata"]["name"] = json!("c");
    assert_eq!(
        f.update("cm", "default", &blind).await.unwrap()["data"]["count"],
        "3"
    );
}

async fn concurrent_writers_that_retry_lose_no_update(backend: Backend) {
    let f = Fixture::on(backend).await;
    f.create("cm", "default", config_map("counter", 0)).await;
    let (writers, increments) = (8, 10);
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let registry = f.registry.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..increments {
                loop {
                    let mut current = registry
                        .get(r("cm"), "default", "counter", "")
                        .await
                        .unwrap();
                    let n: i64 = current["data"]["count"].as_str().unwrap().parse().unwrap();
                    current["data"]["count"] = json!((n + 1).to_string());
                    let body = serde_json::to_vec(&current).unwrap();
                    match registry
                        .update(
                            r("cm"),
                            "default",
                            "counter",
                            "",
                            &body,
                            &WriteOptions::default(),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if e.reason == Reason::Conflict => conflicts += 1,
                        Err(e) => panic!("unexpected error {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let last = f.get("cm", "default", "counter").await.unwrap();
    assert_eq!(last["data"]["count"], (writers * increments).to_string());
}

async fn status_is_a_separate_subresource_and_spec_changes_bump_generation(backend: Backend) {
    let f = Fixture::on(backend).await;
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let created = f.create("deploy", "default", deploy).await;
    // Status in a main update is ignored; spec change bumps generation.
    let mut next = created.clone();
    next["spec"]["replicas"] = json!(3);
    next["status"] = json!({"replicas": 9});
    let updated = f.update("deploy", "default", &next).await.unwrap();
    assert_eq!(updated["metadata"]["generation"], 2);
    assert!(updated
        .get("status")
        .is_none_or(|s| s.get("replicas").is_none()));
    // A status update changes only status, and not generation.
    let mut status = updated.clone();
    status["status"] = json!({"replicas": 3});
    status["spec"]["replicas"] = json!(7);
    let body = serde_json::to_vec(&status).unwrap();
    let after = f
        .registry
        .update(
            r("deploy"),
            "default",
            "d",
            "status",
            &body,
            &WriteOptions::default(),
        )
        .await
        .unwrap()
        .object;
    assert_eq!(after["status"]["replicas"], 3);
    assert_eq!(after["spec"]["replicas"], 3);
    assert_eq!(after["metadata"]["generation"], 2);
    // Metadata the server owns cannot be changed.
    let mut sneaky = after.clone();
    sneaky["metadata"]["uid"] = json!("forged");
    sneaky["metadata"]["labels"] = json!({"x": "y"});
    let kept = f.update("deploy", "default", &sneaky).await.unwrap();
    assert_eq!(kept["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(kept["metadata"]["labels"]["x"], "y");
    assert_eq!(kept["metadata"]["generation"], 2);
}

async fn merge_patch_goes_through_the_update_path(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = f.create("cm", "default", config_map("p", 1)).await;
    let patch = serde_json::to_vec(&json!({"data": {"extra": "yes"}})).unwrap();
    let patched = f
        .registry
        .patch(
            r("cm"),
            "default",
            "p",
            "",
            PatchType::Merge,
            &patch,
            &WriteOptions::default(),
        )
        .await
        .unwrap()
        .object;
    assert_eq!(patched["data"], json!({"count": "1", "extra": "yes"}));
    assert!(rv(&patched) > rv(&created));
    // A resourceVersion in the patch is a precondition.
    let stale = serde_json::to_vec(&json!({"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"x": "1"}})).unwrap();
    let err = f
        .registry
        .patch(
            r("cm"),
            "default",
            "p",
            "",
            PatchType::Merge,
            &stale,
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Conflict);
}

async fn lists_page_at_one_consistent_revision_with_selectors(backend: Backend) {
    let f = Fixture::on(backend).await;
    for i in 0..10 {
        let mut p = pod(&format!("p{i}"));
        p["metadata"]["labels"]["parity"] = json!(if i % 2 == 0 { "even" } else { "odd" });
        f.create("pods", "default", p).await;
    }
    let mut names = Vec::new();
    let mut options = ListOptions {
        limit: 3,
        ..Default::default()
    };
    let mut revision = None;
    for page in 0.. {
        assert!(page < 10, "paging does not end");
        let list = f
            .registry
            .list(r("pods"), "default", &options)
            .await
            .unwrap();
        assert_eq!(list["kind"], "PodList");
        let rev = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            revision.get_or_insert(rev.clone()),
            &rev,
            "every page is at the first page's revision"
        );
        names.extend(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string()),
        );
        if page == 0 {
            // Changes after the first page do not show in later pages.
            f.create("pods", "default", pod("p99")).await;
            f.registry
                .delete(r("pods"), "default", "p9", &DeleteOptions::default())
                .await
                .unwrap();
        }
        match list["metadata"]["continue"].as_str() {
            Some(token) => options.continue_token = token.to_string(),
            None => break,
        }
    }
    let expected: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    assert_eq!(names, expected);
    // The label selector pages over matching items only.
    let odd = f
        .registry
        .list(
            r("pods"),
            "default",
            &ListOptions {
                label_selector: "parity=odd".into(),
                ..Default::default()
            },
        )
        .await;
    let odd = odd.unwrap();
    let items = odd["items"].as_array().unwrap();
    assert!(items
        .iter()
        .all(|i| i["metadata"]["labels"]["parity"] == "odd"));
    assert_eq!(items.len(), 4); // p1, p3, p5, p7 (p9 is gone)
                                // A continue token from before a compaction is expired.
    let first = f
        .registry
        .list(
            r("pods"),
            "default",
            &ListOptions {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    f.create("pods", "default", pod("late")).await;
    let now = f.revision().await;
    f.compact(now).await;
    let err = f
        .registry
        .list(
            r("pods"),
            "default",
            &ListOptions {
                limit: 2,
                continue_token: token,
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Expired);
    assert_eq!(err.code, 410);
}

async fn objects_with_finalizers_stay_until_the_finalizers_are_gone(backend: Backend) {
    let f = Fixture::on(backend).await;
    let mut cm = config_map("f", 0);
    cm["metadata"]["finalizers"] = json!(["example.com/keep"]);
    f.create("cm", "default", cm).await;
    let marked = f
        .registry
        .delete(r("cm"), "default", "f", &DeleteOptions::default())
        .await
        .unwrap()
        .object;
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    let mut current = f.get("cm", "default", "f").await.unwrap();
    assert_eq!(
        current["metadata"]["deletionTimestamp"],
        marked["metadata"]["deletionTimestamp"]
    );
    current["metadata"]["finalizers"] = json!([]);
    f.update("cm", "default", &current).await.unwrap();
    assert_eq!(
        f.get("cm", "default", "f").await.unwrap_err().reason,
        Reason::NotFound
    );
}

async fn bound_pods_are_deleted_gracefully_unbound_ones_at_once(backend: Backend) {
    let f = Fixture::on(backend).await;
    f.create("pods", "default", pod("free")).await;
    let gone = f
        .registry
        .delete(r("pods"), "default", "free", &DeleteOptions::default())
        .await
        .unwrap()
        .object;
    assert_eq!(gone["status"], "Success");
    assert_eq!(
        f.get("pods", "default", "free").await.unwrap_err().reason,
        Reason::NotFound
    );

    f.create("pods", "default", pod("bound")).await;
    let binding = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"}, "target": {"kind": "Node", "name": "n1"}})).unwrap();
    f.registry
        .bind("default", "bound", &binding, &WriteOptions::default())
        .await
        .unwrap();
    let bound = f.get("pods", "default", "bound").await.unwrap();
    assert_eq!(bound["spec"]["nodeName"], "n1");
    let err = f
        .registry
        .bind("default", "bound", &binding, &WriteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Conflict);
    assert_eq!(err.message, "Operation cannot be fulfilled on pods/binding \"bound\": pod bound is already assigned to node \"n1\"");

    let marked = f
        .registry
        .delete(r("pods"), "default", "bound", &DeleteOptions::default())
        .await
        .unwrap()
        .object;
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    // The kubelet's final delete with grace period 0 removes it.
    let now = DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    f.registry
        .delete(r("pods"), "default", "bound", &now)
        .await
        .unwrap();
    assert_eq!(
        f.get("pods", "default", "bound").await.unwrap_err().reason,
        Reason::NotFound
    );
}

async fn delete_preconditions_and_propagation_policy(backend: Backend) {
    let f = Fixture::on(backend).await;
    let created = f.create("cm", "default", config_map("c", 0)).await;
    let wrong_uid = DeleteOptions::from_json(br#"{"preconditions": {"uid": "other"}}"#).unwrap();
    let err = f
        .registry
        .delete(r("cm"), "default", "c", &wrong_uid)
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Conflict);
    assert!(
        err.message
            .contains("Precondition failed: UID in precondition: other"),
        "{err}"
    );
    let orphan = DeleteOptions::from_json(br#"{"propagationPolicy": "Orphan"}"#).unwrap();
    let marked = f
        .registry
        .delete(r("cm"), "default", "c", &orphan)
        .await
        .unwrap()
        .object;
    assert_eq!(marked["metadata"]["finalizers"], json!(["orphan"]));
    assert_eq!(marked["metadata"]["uid"], created["metadata"]["uid"]);
}

async fn service_addresses_are_unique_even_across_a_restart(backend: Backend) {
    let f = Fixture::on(backend).await;
    let service = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}})
    };
    let mut ips = std::collections::BTreeSet::new();
    let mut ports = std::collections::BTreeSet::new();
    let mut record = |s: &Value| {
        let ip: std::net::Ipv4Addr = s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        assert_eq!(ip.octets()[0], 10);
        assert!(
            (96..112).contains(&ip.octets()[1]),
            "{ip} outside 10.96.0.0/12"
        );
        assert!(ips.insert(ip), "{ip} given twice");
        let port = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&port));
        assert!(ports.insert(port), "{port} given twice");
    };
    for i in 0..5 {
        record(&f.create("svc", "default", service(&format!("s{i}"))).await);
    }
    // The same seed after a restart tries the same addresses first; the store says they are taken.
    let f = f.restart().await;
    for i in 5..10 {
        record(&f.create("svc", "default", service(&format!("s{i}"))).await);
    }
    // A taken address asked for explicitly is Invalid; a deleted Service frees its address.
    let taken = f.get("svc", "default", "s0").await.unwrap()["spec"]["clusterIP"].clone();
    let mut clash = service("clash");
    clash["spec"]["clusterIP"] = taken.clone();
    let err = f
        .try_create("svc", "default", clash.clone())
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Invalid);
    assert!(
        err.message.contains("provided IP is already allocated"),
        "{err}"
    );
    f.registry
        .delete(r("svc"), "default", "s0", &DeleteOptions::default())
        .await
        .unwrap();
    let reused = f.create("svc", "default", clash).await;
    assert_eq!(reused["spec"]["clusterIP"], taken);
}

async fn dry_run_stores_nothing(backend: Backend) {
    let f = Fixture::on(backend).await;
    let body = serde_json::to_vec(&pod("dry")).unwrap();
    let reply = f
        .registry
        .create(
            r("pods"),
            "default",
            &body,
            &WriteOptions {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reply.object["metadata"]["name"], "dry");
    assert_eq!(
        f.get("pods", "default", "dry").await.unwrap_err().reason,
        Reason::NotFound
    );
}

async fn lists_at_an_exact_revision_and_expire_below_the_compaction(backend: Backend) {
    let f = Fixture::on(backend).await;
    let first = f.create("cm", "default", config_map("a", 0)).await;
    f.create("cm", "default", config_map("b", 0)).await;
    let at_first = ListOptions {
        resource_version: first["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .into(),
        limit: 10,
        ..Default::default()
    };
    let old = f
        .registry
        .list(r("cm"), "default", &at_first)
        .await
        .unwrap();
    assert_eq!(
        old["items"].as_array().unwrap().len(),
        1,
        "the state at that revision"
    );
    let now = f.revision().await;
    f.compact(now).await;
    let err = f
        .registry
        .list(r("cm"), "default", &at_first)
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Expired);
    assert_eq!(
        err.message,
        format!("too old resource version: {} ({now})", rv(&first))
    );
    let future = ListOptions {
        resource_version: (now + 100).to_string(),
        limit: 10,
        ..Default::default()
    };
    let err = f
        .registry
        .list(r("cm"), "default", &future)
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Timeout);
    assert!(
        err.message.starts_with("Too large resource version"),
        "{err}"
    );
}

async fn create_resets_status_the_server_owns(backend: Backend) {
    let f = Fixture::on(backend).await;
    let mut p = pod("s");
    p["status"] = json!({"phase": "Running", "podIP": "10.0.0.1"});
    let created = f.create("pods", "default", p).await;
    assert_eq!(
        created["status"],
        json!({"phase": "Pending", "qosClass": "BestEffort"})
    );
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                      "status": {"capacity": {"cpu": "4"}}});
    // A kubelet registers its node with status: kept.
    assert_eq!(
        f.create("nodes", "", node).await["status"]["capacity"]["cpu"],
        "4"
    );
}
