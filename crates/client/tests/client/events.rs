//! Events: repeats of one occurrence fold into one Event's count; anything
//! else is an Event of its own.

use k8s_openapi::api::core::v1::{ConfigMap, Event};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_client::events::{Occurrence, Recorder, Reporter};
use skiff_client::{Api, ListParams, PostParams};

use crate::common::Cluster;

async fn events(cluster: &Cluster) -> Vec<Event> {
    let api = Api::<Event>::namespaced(cluster.client(), "default");
    let mut events = api.list(&ListParams::default()).await.unwrap().items;
    events.sort_by_key(|e| e.reason.clone());
    events
}

#[tokio::test]
async fn repeats_raise_the_count_and_differences_write_new_events() {
    let cluster = Cluster::new().await;
    let client = cluster.client();
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("settings".into()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            },
        )
        .await
        .unwrap();
    let reporter = Reporter {
        component: "kubelet".into(),
        instance: Some("node-1".into()),
    };
    let recorder = Recorder::new(client, reporter);
    let failed = Recorder::warning("FailedMount", "volume settings is missing");
    recorder.publish(&config_map, failed.clone()).await;
    recorder.publish(&config_map, failed).await;
    let other = Occurrence {
        field_path: Some("data".into()),
        ..Recorder::normal("Loaded", "settings read")
    };
    recorder.publish(&config_map, other).await;

    let events = events(&cluster).await;
    assert_eq!(events.len(), 2, "{events:?}");
    let (failed, loaded) = (&events[0], &events[1]);
    assert_eq!(failed.reason.as_deref(), Some("FailedMount"));
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert_eq!(failed.count, Some(2), "the repeat raised the count");
    assert!(failed.last_timestamp >= failed.first_timestamp);
    assert_eq!(failed.involved_object.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(failed.involved_object.uid, config_map.metadata.uid);
    let source = failed.source.clone().unwrap_or_default();
    assert_eq!(source.component.as_deref(), Some("kubelet"));
    assert_eq!(source.host.as_deref(), Some("node-1"));
    assert!(failed
        .metadata
        .name
        .as_deref()
        .is_some_and(|n| n.starts_with("settings.")));
    assert_eq!(loaded.count, Some(1));
    assert_eq!(loaded.type_.as_deref(), Some("Normal"));
    assert_eq!(loaded.involved_object.field_path.as_deref(), Some("data"));
}
