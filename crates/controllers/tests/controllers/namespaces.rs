//! The namespace controller: deleting a namespace deletes everything in it,
//! then the namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use skiff_client::{Api, DeleteParams, Patch, PatchParams, PostParams};

use crate::common::{eventually, Cluster, Manager};
use crate::workloads::template;

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn condition(ns: &Namespace, type_: &str) -> Option<(String, String)> {
    let conditions = ns.status.as_ref()?.conditions.as_ref()?;
    let c = conditions.iter().find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.message.clone().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_namespace_is_emptied_then_removed() {
    let cluster = Cluster::new().await;
    let client = cluster.client().await;
    let manager = Manager::start(&cluster).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let pp = PostParams::default();
    namespaces
        .create(
            &pp,
            &Namespace {
                metadata: named("team"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let settings = ConfigMap {
        metadata: named("settings"),
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    };
    config_maps.create(&pp, &settings).await.unwrap();
    // A pod that cannot go at once: another party holds it with a finalizer.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team");
    let mut held = Pod {
        metadata: named("held"),
        spec: template("held", "busybox").spec,
        ..Default::default()
    };
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    pods.create(&pp, &held).await.unwrap();

    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the content deleted, the held pod reported", || async {
        let Some(ns) = namespaces.get_opt("team").await.unwrap() else {
            return false;
        };
        let remaining = condition(&ns, "NamespaceContentRemaining");
        config_maps.get_opt("settings").await.unwrap().is_none()
            && remaining.is_some_and(|(status, message)| {
                status == "True" && message.contains("pods has 1 resource instances")
            })
    })
    .await;
    let ns = namespaces.get("team").await.unwrap();
    assert_eq!(
        ns.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Terminating")
    );
    assert_eq!(
        condition(&ns, "NamespaceDeletionContentFailure").map(|(s, _)| s),
        Some("False".into()),
        "every delete went through"
    );
    assert!(pods
        .get("held")
        .await
        .unwrap()
        .metadata
        .deletion_timestamp
        .is_some());

    let release = json!({"metadata": {"finalizers": null}});
    pods.patch("held", &PatchParams::default(), &Patch::Merge(release))
        .await
        .unwrap();
    eventually("the namespace gone", || async {
        namespaces.get_opt("team").await.unwrap().is_none()
    })
    .await;
    manager.stop().await;
}
