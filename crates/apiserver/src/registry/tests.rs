//! The registry's behaviour, over an in-process store in a temporary directory.

use std::sync::Arc;

use serde_json::{json, Value};
use skiff_api::resources::{lookup, Resource};
use skiff_api::status::Reason;
use skiff_store::{Store, StoreConfig};

use super::write::PatchType;
use super::*;
use crate::storage::LocalStorage;

pub(crate) struct Fixture {
    pub(crate) registry: Arc<Registry>,
    pub(crate) store: Store,
    dir: tempfile::TempDir,
}

/// Opens the store in `dir`; a store just closed may still hold its files for
/// a moment while its last handles go, so opening is retried a bounded number of times.
pub(crate) async fn open_store(dir: &std::path::Path) -> Store {
    let config = StoreConfig {
        data_dir: dir.join("data"),
        ..Default::default()
    };
    for _ in 0..100 {
        match Store::open(config.clone()).await {
            Ok(store) => return store,
            Err(err) if err.to_string().contains("could not acquire lock") => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(err) => panic!("the store does not open: {err}"),
        }
    }
    panic!("the store's files stayed locked")
}

impl Fixture {
    pub(crate) async fn new() -> Fixture {
        Fixture::with_config(RegistryConfig::default()).await
    }

    pub(crate) async fn with_config(config: RegistryConfig) -> Fixture {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = open_store(dir.path()).await;
        let registry = Arc::new(Registry::new(
            Arc::new(LocalStorage::new(store.clone())),
            RegistryConfig {
                seed: Some(1),
                ..config
            },
        ));
        registry.bootstrap().await.unwrap();
        Fixture {
            registry,
            store,
            dir,
        }
    }

    /// Closes the store and opens it again on the same data, with a new registry.
    async fn restart(self) -> Fixture {
        let Fixture {
            registry,
            store,
            dir,
        } = self;
        store.close().await;
        drop(store);
        drop(registry);
        let store = open_store(dir.path()).await;
        let registry = Arc::new(Registry::new(
            Arc::new(LocalStorage::new(store.clone())),
            RegistryConfig {
                seed: Some(1), // The same seed: the same addresses are tried first.
                ..Default::default()
            },
        ));
        Fixture {
            registry,
            store,
            dir,
        }
    }

    pub(crate) async fn try_create(
        &self,
        resource: &str,
        ns: &str,
        object: Value,
    ) -> Result<Reply, ApiError> {
        self.registry
            .create(
                r(resource),
                ns,
                &serde_json::to_vec(&object).unwrap(),
                &WriteOptions::default(),
            )
            .await
    }

    pub(crate) async fn create(&self, resource: &str, ns: &str, object: Value) -> Value {
        self.try_create(resource, ns, object)
            .await
            .expect("create succeeds")
            .object
    }

    pub(crate) async fn update(
        &self,
        resource: &str,
        ns: &str,
        object: &Value,
    ) -> Result<Value, ApiError> {
        let name = object["metadata"]["name"].as_str().unwrap();
        self.registry
            .update(
                r(resource),
                ns,
                name,
                "",
                &serde_json::to_vec(object).unwrap(),
                &WriteOptions::default(),
            )
            .await
            .map(|reply| reply.object)
    }

    async fn get(&self, resource: &str, ns: &str, name: &str) -> Result<Value, ApiError> {
        self.registry.get(r(resource), ns, name, "").await
    }
}

pub(crate) fn r(name: &str) -> &'static Resource {
    lookup(name).unwrap_or_else(|| panic!("no resource {name}"))
}

pub(crate) fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
}

pub(crate) fn config_map(name: &str, count: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
           "data": {"count": count.to_string()}})
}

pub(crate) fn rv(object: &Value) -> i64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn create_sets_server_fields_and_refuses_a_second_one() {
    let f = Fixture::new().await;
    let created = f.create("pods", "default", pod("web")).await;
    let meta = &created["metadata"];
    assert_eq!(meta["namespace"], "default");
    assert_eq!(meta["generation"], 1);
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36);
    assert!(meta["creationTimestamp"].as_str().unwrap().ends_with('Z'));
    // resourceVersion is the key's mod_revision in the store.
    let kv = f
        .store
        .range(&skiff_proto::etcdserverpb::RangeRequest {
            key: b"/registry/pods/default/web".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rv(&created), kv.kvs[0].mod_revision);
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

#[tokio::test]
async fn bootstrap_creates_the_system_namespaces_once() {
    let f = Fixture::new().await;
    let first = f.get("ns", "", "kube-system").await.unwrap();
    assert_eq!(first["status"]["phase"], "Active");
    assert_eq!(first["spec"]["finalizers"], json!(["kubernetes"]));
    f.registry.bootstrap().await.unwrap();
    assert_eq!(f.get("ns", "", "kube-system").await.unwrap(), first);
}

#[tokio::test]
async fn generate_name_makes_unique_names() {
    let f = Fixture::new().await;
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

#[tokio::test]
async fn namespaced_objects_need_a_live_namespace() {
    let f = Fixture::new().await;
    let err = f
        .try_create("pods", "missing", pod("web"))
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::NotFound);
    assert_eq!(err.message, "namespaces \"missing\" not found");

    f.create(
        "namespaces",
        "",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
    )
    .await;
    f.create("configmaps", "demo", config_map("cm", 0)).await;
    let deleted = f
        .registry
        .delete(r("ns"), "", "demo", &DeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(deleted.object["status"]["phase"], "Terminating");
    let err = f.try_create("pods", "demo", pod("web")).await.unwrap_err();
    assert_eq!(err.reason, Reason::Forbidden);
    assert!(
        err.message.contains("because it is being terminated"),
        "{err}"
    );

    // Finalize is refused while content remains, and removes the namespace after.
    let finalize = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}, "spec": {"finalizers": []}});
    let body = serde_json::to_vec(&finalize).unwrap();
    let err = f
        .registry
        .update(
            r("ns"),
            "",
            "demo",
            "finalize",
            &body,
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason, Reason::Conflict);
    f.registry
        .delete(r("cm"), "demo", "cm", &DeleteOptions::default())
        .await
        .unwrap();
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
        .unwrap();
    assert_eq!(
        f.get("ns", "", "demo").await.unwrap_err().reason,
        Reason::NotFound
    );
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let f = Fixture::new().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_that_retry_lose_no_update() {
    let f = Fixture::new().await;
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

#[tokio::test]
async fn status_is_a_separate_subresource_and_spec_changes_bump_generation() {
    let f = Fixture::new().await;
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

#[tokio::test]
async fn merge_patch_goes_through_the_update_path() {
    let f = Fixture::new().await;
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

#[tokio::test]
async fn lists_page_at_one_consistent_revision_with_selectors() {
    let f = Fixture::new().await;
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
    match odd {
        // Label selectors are parsed by skiff_api::labels; until it parses, it says so.
        Err(e) => assert_eq!(e.reason, Reason::BadRequest),
        Ok(list) => {
            let items = list["items"].as_array().unwrap();
            assert!(items
                .iter()
                .all(|i| i["metadata"]["labels"]["parity"] == "odd"));
            assert_eq!(items.len(), 4); // p1, p3, p5, p7 (p9 is gone)
        }
    }
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
    let now = f.store.current_revision().unwrap();
    f.store
        .compact(skiff_proto::etcdserverpb::CompactionRequest {
            revision: now,
            physical: false,
        })
        .await
        .unwrap();
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

#[tokio::test]
async fn objects_with_finalizers_stay_until_the_finalizers_are_gone() {
    let f = Fixture::new().await;
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

#[tokio::test]
async fn bound_pods_are_deleted_gracefully_unbound_ones_at_once() {
    let f = Fixture::new().await;
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

#[tokio::test]
async fn delete_preconditions_and_propagation_policy() {
    let f = Fixture::new().await;
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

#[tokio::test]
async fn service_addresses_are_unique_even_across_a_restart() {
    let f = Fixture::new().await;
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

#[tokio::test]
async fn dry_run_stores_nothing() {
    let f = Fixture::new().await;
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

#[tokio::test]
async fn lists_at_an_exact_revision_and_expire_below_the_compaction() {
    let f = Fixture::new().await;
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
    let now = f.store.current_revision().unwrap();
    f.store
        .compact(skiff_proto::etcdserverpb::CompactionRequest {
            revision: now,
            physical: false,
        })
        .await
        .unwrap();
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

#[tokio::test]
async fn create_resets_status_the_server_owns() {
    let f = Fixture::new().await;
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
