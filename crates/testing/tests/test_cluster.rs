//! TestCluster as its users see it: start, use through a client, run several
//! at once, stop.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_client::{Api, ListParams, PostParams};
use skiff_testing::TestCluster;

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("value".to_string(), value.to_string())].into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_started_cluster_serves_the_api_with_its_system_namespaces() {
    let cluster = TestCluster::builder().start().await.unwrap();
    let client = cluster.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect();
    for expected in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let maps: Api<ConfigMap> = Api::namespaced(client, "default");
    let created = maps
        .create(&PostParams::default(), &config_map("settings", "a"))
        .await
        .unwrap();
    assert!(created.metadata.resource_version.is_some());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_side_by_side_do_not_see_each_other() {
    let (a, b) = tokio::join!(
        TestCluster::builder().start(),
        TestCluster::builder().start()
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let in_a: Api<ConfigMap> = Api::namespaced(a.client().await.unwrap(), "default");
    let in_b: Api<ConfigMap> = Api::namespaced(b.client().await.unwrap(), "default");
    in_a.create(&PostParams::default(), &config_map("only-in-a", "1"))
        .await
        .unwrap();
    let err = in_b.get("only-in-a").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_ne!(a.data_dir(), b.data_dir());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn dropping_a_cluster_removes_its_data() {
    let cluster = TestCluster::builder().start().await.unwrap();
    let dir = cluster.data_dir().to_path_buf();
    assert!(dir.exists());
    cluster.stop().await;
    assert!(!dir.exists(), "{} is gone", dir.display());
}
