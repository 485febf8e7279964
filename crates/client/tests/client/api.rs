//! Typed CRUD, selectors, paging, watches and errors through `Api<K>`.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use skiff_api::status::Reason;
use skiff_apiserver::RegistryConfig;
use skiff_client::{
    Api, DeleteParams, Discovery, DynamicObject, Either, ListParams, Patch, PatchParams,
    PostParams, Preconditions, ResourceExt, WatchEvent, WatchParams,
};

use crate::common::Cluster;

pub fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

pub fn pod(name: &str, node: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: (!node.is_empty()).then(|| node.to_string()),
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn names<K: skiff_client::Object>(items: &[K]) -> Vec<String> {
    let mut names: Vec<String> = items.iter().map(|o| o.name_any()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn typed_crud_round_trips_and_errors_match_their_reason() {
    let cluster = Cluster::new().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let pp = PostParams::default();

    let created = cms.create(&pp, &config_map("a", &[])).await.unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    assert!(created.metadata.resource_version.is_some());
    assert_eq!(cms.get("a").await.unwrap(), created);

    let err = cms.create(&pp, &config_map("a", &[])).await.unwrap_err();
    assert!(err.is_already_exists(), "{err:?}");
    assert_eq!(err.to_string(), "configmaps \"a\" already exists");
    let err = cms.get("missing").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.status().unwrap().code, 404);
    assert_eq!(cms.get_opt("missing").await.unwrap(), None);

    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("k".to_string(), "v2".to_string())]));
    let replaced = cms.replace("a", &pp, &changed).await.unwrap();
    assert_eq!(replaced.data.as_ref().unwrap()["k"], "v2");
    let err = cms.replace("a", &pp, &changed).await.unwrap_err();
    assert!(
        err.is_conflict(),
        "a stale resourceVersion conflicts: {err:?}"
    );
    assert_eq!(err.reason(), Some(Reason::Conflict));

    let merge = PatchParams::default();
    let merged = cms
        .patch("a", &merge, &Patch::Merge(json!({"data": {"extra": "1"}})))
        .await
        .unwrap();
    assert_eq!(merged.data.as_ref().unwrap()["extra"], "1");
    assert_eq!(merged.data.as_ref().unwrap()["k"], "v2");
    let operations = serde_json::from_value(json!([
        {"op": "test", "path": "/data/extra", "value": "1"},
        {"op": "remove", "path": "/data/extra"},
        {"op": "add", "path": "/data/added", "value": "2"},
    ]))
    .unwrap();
    let patched = cms
        .patch("a", &merge, &Patch::<()>::Json(operations))
        .await
        .unwrap();
    let data = patched.data.as_ref().unwrap();
    assert!(!data.contains_key("extra"), "{data:?}");
    assert_eq!((data["added"].as_str(), data["k"].as_str()), ("2", "v2"));
    let failing_test = serde_json::from_value(json!([
        {"op": "test", "path": "/data/k", "value": "not-v2"},
    ]))
    .unwrap();
    let err = cms
        .patch("a", &merge, &Patch::<()>::Json(failing_test))
        .await
        .unwrap_err();
    assert!(
        err.status().is_some(),
        "a failed test op is the server's refusal: {err}"
    );
    let err = cms
        .patch("a", &merge, &Patch::Apply(json!({"data": {}})))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        "server-side apply needs a field manager"
    );
    let intent = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"applied": "yes"}});
    let applied = cms
        .patch(
            "a",
            &PatchParams::apply("client-test"),
            &Patch::Apply(intent),
        )
        .await
        .unwrap();
    let data = applied.data.as_ref().unwrap();
    assert_eq!(data["applied"], "yes");
    assert_eq!(data["k"], "v2", "fields of other managers stay");

    let dry = cms
        .delete(
            "a",
            &DeleteParams {
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(dry.is_right(), "a configmap goes at once: {dry:?}");
    assert!(
        cms.get_opt("a").await.unwrap().is_some(),
        "a dry run deletes nothing"
    );
    let stale = DeleteParams::default().preconditions(Preconditions {
        resource_version: created.metadata.resource_version.clone(),
        uid: None,
    });
    assert!(cms.delete("a", &stale).await.unwrap_err().is_conflict());
    let deleted = cms.delete("a", &DeleteParams::default()).await.unwrap();
    let Either::Right(status) = deleted else {
        panic!("a configmap without finalizers is gone at once: {deleted:?}");
    };
    assert_eq!(
        status.status,
        Some(skiff_client::kube_core::response::StatusSummary::Success)
    );
    assert!(cms.get("a").await.unwrap_err().is_not_found());
    assert!(cms
        .delete("a", &DeleteParams::default())
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn replace_status_writes_only_the_status() {
    let cluster = Cluster::new().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("web", ""))
        .await
        .unwrap();
    let mut with_status = created.clone();
    with_status.status = Some(PodStatus {
        phase: Some("Running".into()),
        ..Default::default()
    });
    with_status.metadata.labels = Some(BTreeMap::from([("ignored".into(), "yes".into())]));
    let written = pods
        .replace_status("web", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(written.status.unwrap().phase.as_deref(), Some("Running"));
    let got = pods.get("web").await.unwrap();
    assert_eq!(got.status.unwrap().phase.as_deref(), Some("Running"));
    assert!(
        got.metadata.labels.unwrap_or_default().is_empty(),
        "the status subresource leaves metadata alone"
    );
}

#[tokio::test]
async fn lists_filter_by_label_and_field_and_come_in_pages() {
    let cluster = Cluster::new().await;
    let client = cluster.client();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        let tier = if i % 2 == 0 { "web" } else { "db" };
        cms.create(
            &PostParams::default(),
            &config_map(&format!("cm-{i}"), &[("tier", tier)]),
        )
        .await
        .unwrap();
    }
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    other
        .create(
            &PostParams::default(),
            &config_map("elsewhere", &[("tier", "web")]),
        )
        .await
        .unwrap();

    let web = cms
        .list(&ListParams::default().labels("tier=web"))
        .await
        .unwrap();
    assert_eq!(names(&web.items), ["cm-0", "cm-2", "cm-4"]);
    assert!(web
        .metadata
        .resource_version
        .is_some_and(|rv| !rv.is_empty()));
    let not_web = cms
        .list(&ListParams::default().labels("tier!=web"))
        .await
        .unwrap();
    assert_eq!(names(&not_web.items), ["cm-1", "cm-3"]);
    let one = cms
        .list(&ListParams::default().fields("metadata.name=cm-3"))
        .await
        .unwrap();
    assert_eq!(names(&one.items), ["cm-3"]);

    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.clone().expect("more pages follow");
    let second = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 2);
    let all = cms.list_all(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&all.items), ["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);

    let everywhere: Api<ConfigMap> = Api::all(client.clone());
    let web_everywhere = everywhere
        .list(&ListParams::default().labels("tier=web"))
        .await
        .unwrap();
    assert_eq!(
        names(&web_everywhere.items),
        ["cm-0", "cm-2", "cm-4", "elsewhere"]
    );

    let namespaces: Api<Namespace> = Api::all(client);
    let listed = namespaces.list(&ListParams::default()).await.unwrap();
    assert!(names(&listed.items).contains(&"kube-system".to_string()));
    assert!(
        namespaces.get("default").await.is_ok(),
        "cluster-scoped get"
    );
}

#[tokio::test]
async fn a_watch_carries_every_change_after_its_resource_version() {
    let cluster = Cluster::new().await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let pp = PostParams::default();
    let a = cms.create(&pp, &config_map("a", &[])).await.unwrap();
    let start = a.metadata.resource_version.clone().unwrap();
    let mut events = cms.watch(&WatchParams::default(), &start).await.unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    cms.create(&pp, &config_map("b", &[])).await.unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = events.next().await.expect("the watch stays open").unwrap();
        seen.push(match event {
            WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.unwrap()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.unwrap()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.unwrap()),
            other => panic!("unexpected {other:?}"),
        });
    }
    assert_eq!(seen, ["MODIFIED a", "ADDED b", "DELETED a"]);
}

#[tokio::test]
async fn a_watch_from_before_the_window_is_expired() {
    let cluster = Cluster::with_config(RegistryConfig {
        watch_cache_size: 3,
        watch_cache_fresh: std::time::Duration::ZERO,
        ..Default::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    let first = cms
        .create(&PostParams::default(), &config_map("c0", &[]))
        .await
        .unwrap();
    for i in 1..8 {
        cms.create(&PostParams::default(), &config_map(&format!("c{i}"), &[]))
            .await
            .unwrap();
    }
    let old = first.metadata.resource_version.unwrap();
    let expired = match cms.watch(&WatchParams::default(), &old).await {
        Err(err) => err.is_expired(),
        Ok(mut events) => loop {
            match events.next().await {
                Some(Ok(WatchEvent::Error(status))) => break status.code == 410,
                Some(Ok(_)) => continue,
                other => panic!("the watch ended without an error: {other:?}"),
            }
        },
    };
    assert!(expired, "a watch from {old} is 410 Expired");
}

#[tokio::test]
async fn an_unserved_kind_is_refused_by_the_server() {
    let cluster = Cluster::new().await;
    let roles = Api::<k8s_openapi::api::rbac::v1::Role>::all(cluster.client());
    let err = roles.list(&ListParams::default()).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}

#[tokio::test]
async fn a_pod_is_bound_to_a_node_through_its_binding() {
    let cluster = Cluster::new().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    pods.create(&PostParams::default(), &pod("web", ""))
        .await
        .unwrap();
    let binding = k8s_openapi::api::core::v1::Binding {
        metadata: ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        },
        target: k8s_openapi::api::core::v1::ObjectReference {
            kind: Some("Node".into()),
            name: Some("node-1".into()),
            ..Default::default()
        },
    };
    pods.bind("web", &PostParams::default(), &binding)
        .await
        .unwrap();
    let bound = pods.get("web").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("node-1"));
    let again = pods.bind("web", &PostParams::default(), &binding).await;
    assert!(again.is_err(), "a bound pod cannot be bound again");
}

#[tokio::test]
async fn discovered_resources_are_served_through_dynamic_objects() {
    let cluster = Cluster::new().await;
    let discovery: Discovery = cluster.client().discover().await.unwrap();
    let served = discovery.resolve("cm").expect("configmaps are served");
    assert_eq!(served.resource.plural, "configmaps");
    let cms: Api<DynamicObject> =
        Api::namespaced_with(cluster.client(), "default", &served.resource);
    let object = DynamicObject::new("dyn", &served.resource).data(json!({"data": {"k": "v"}}));
    let created = cms.create(&PostParams::default(), &object).await.unwrap();
    assert_eq!(created.data["data"]["k"], "v");
    assert_eq!(created.types.as_ref().unwrap().kind, "ConfigMap");

    let typed: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
    assert_eq!(typed.get("dyn").await.unwrap().data.unwrap()["k"], "v");
    let listed = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&listed.items), ["dyn"]);
    let patched = cms
        .patch(
            "dyn",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "w"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["data"]["k"], "w");
}
