//! The watch cache seen through the registry: where a watch starts, 410
//! Expired, selectors, bookmarks and fan-out to many watchers.

use serde_json::json;

use super::fixture::{config_map, pod, r, rv, scenarios, Backend, Fixture};
use crate::registry::*;
use crate::watch_cache::{EventType, WatchEvent, WatchStream};

scenarios!(
    watch_without_version_starts_with_the_current_state,
    watch_from_a_version_replays_exactly_what_followed,
    watch_older_than_the_cache_gets_410_expired,
    a_watch_behind_the_minimum_but_within_the_fresh_events_catches_up,
    a_thousand_watchers_each_see_every_event,
    watch_bookmarks_carry_progress,
    several_objects_written_in_one_txn_all_reach_watchers,
);

async fn next(stream: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
        .await
        .expect("an event arrives")
        .expect("the watch is open")
}

async fn watch_without_version_starts_with_the_current_state(backend: Backend) {
    let f = Fixture::on(backend).await;
    f.create("pods", "default", pod("a")).await;
    let mut w = f
        .registry
        .watch(r("pods"), "default", &WatchOptions::default())
        .await
        .unwrap();
    let first = next(&mut w).await;
    assert_eq!(
        (first.kind, first.object["metadata"]["name"].as_str()),
        (EventType::Added, Some("a"))
    );
    let b = f.create("pods", "default", pod("b")).await;
    let second = next(&mut w).await;
    assert_eq!(second.kind, EventType::Added);
    assert_eq!(second.object, b);
}

async fn watch_from_a_version_replays_exactly_what_followed(backend: Backend) {
    let f = Fixture::on(backend).await;
    let a = f.create("pods", "default", pod("a")).await;
    let mut changed = a.clone();
    changed["metadata"]["labels"]["v"] = json!("2");
    let modified = f.update("pods", "default", &changed).await.unwrap();
    f.registry
        .delete(r("pods"), "default", "a", &DeleteOptions::default())
        .await
        .unwrap();
    let options = WatchOptions {
        resource_version: a["metadata"]["resourceVersion"].as_str().unwrap().into(),
        ..Default::default()
    };
    let mut w = f
        .registry
        .watch(r("pods"), "default", &options)
        .await
        .unwrap();
    let m = next(&mut w).await;
    assert_eq!(m.kind, EventType::Modified);
    assert_eq!(m.object, modified);
    let d = next(&mut w).await;
    assert_eq!(d.kind, EventType::Deleted);
    assert!(
        rv(&d.object) > rv(&modified),
        "a DELETED object carries the delete's revision"
    );
}

/// A registry whose watch caches keep 3 events at least, and those younger
/// than `fresh`; six ConfigMaps written and seen by the cache. Returns a
/// watch from the first one's resourceVersion, and that ConfigMap.
async fn watch_from_the_first_of_six(
    backend: Backend,
    fresh: std::time::Duration,
) -> (Fixture, WatchStream, Value) {
    let f = Fixture::with_config(
        backend,
        RegistryConfig {
            watch_cache_size: 3,
            watch_cache_fresh: fresh,
            ..Default::default()
        },
    )
    .await;
    let first = f.create("cm", "default", config_map("c0", 0)).await;
    for i in 1..6 {
        f.create("cm", "default", config_map(&format!("c{i}"), 0))
            .await;
    }
    // Let the cache see every write.
    let mut live = f
        .registry
        .watch(r("cm"), "default", &WatchOptions::default())
        .await
        .unwrap();
    for _ in 0..6 {
        next(&mut live).await;
    }
    let options = WatchOptions {
        resource_version: rv(&first).to_string(),
        ..Default::default()
    };
    let w = f
        .registry
        .watch(r("cm"), "default", &options)
        .await
        .unwrap();
    (f, w, first)
}

async fn watch_older_than_the_cache_gets_410_expired(backend: Backend) {
    let (_f, mut w, first) = watch_from_the_first_of_six(backend, Duration::ZERO).await;
    let event = next(&mut w).await;
    assert_eq!(event.kind, EventType::Error);
    assert_eq!(event.object["code"], 410);
    assert_eq!(event.object["reason"], "Expired");
    assert!(event.object["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("too old resource version: {}", rv(&first))));
    assert!(w.next().await.is_none(), "nothing follows an ERROR");
}

async fn a_watch_behind_the_minimum_but_within_the_fresh_events_catches_up(backend: Backend) {
    // As the test above, but with Kubernetes' default freshness: the cache
    // keeps more than its 3 events while they are young.
    let fresh = RegistryConfig::default().watch_cache_fresh;
    let (_f, mut w, _) = watch_from_the_first_of_six(backend, fresh).await;
    for i in 1..6 {
        let event = next(&mut w).await;
        assert_eq!(
            event.kind,
            EventType::Added,
            "event {i}: {:?}",
            event.object
        );
        assert_eq!(event.object["metadata"]["name"], format!("c{i}"));
    }
}

async fn a_thousand_watchers_each_see_every_event(backend: Backend) {
    let f = Fixture::on(backend).await;
    let start = f.revision().await.to_string();
    let events = 20;
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let options = WatchOptions {
            resource_version: start.clone(),
            ..Default::default()
        };
        let mut w = f
            .registry
            .watch(r("cm"), "default", &options)
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < events {
                let e = next(&mut w).await;
                assert_eq!(e.kind, EventType::Added);
                seen.push(e.object["metadata"]["name"].as_str().unwrap().to_string());
            }
            seen
        }));
    }
    for i in 0..events {
        f.create("cm", "default", config_map(&format!("c{i:02}"), i as i64))
            .await;
    }
    let expected: Vec<String> = (0..events).map(|i| format!("c{i:02}")).collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), expected);
    }
}

async fn watch_bookmarks_carry_progress(backend: Backend) {
    let f = Fixture::with_config(
        backend,
        RegistryConfig {
            bookmark_interval: std::time::Duration::from_millis(20),
            ..Default::default()
        },
    )
    .await;
    let created = f.create("cm", "default", config_map("c", 0)).await;
    let options = WatchOptions {
        allow_watch_bookmarks: true,
        resource_version: "1".into(),
        ..Default::default()
    };
    let mut w = f
        .registry
        .watch(r("cm"), "default", &options)
        .await
        .unwrap();
    assert_eq!(next(&mut w).await.kind, EventType::Added);
    let bookmark = next(&mut w).await;
    assert_eq!(bookmark.kind, EventType::Bookmark);
    assert_eq!(
        bookmark.object["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
}

async fn several_objects_written_in_one_txn_all_reach_watchers(backend: Backend) {
    use skiff_proto::etcdserverpb::{request_op, PutRequest, RequestOp, TxnRequest};
    let f = Fixture::on(backend).await;
    let mut w = f
        .registry
        .watch(r("cm"), "default", &WatchOptions::default())
        .await
        .unwrap();
    let put = |name: &str| RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: format!("/registry/configmaps/default/{name}").into_bytes(),
            value: serde_json::to_vec(&config_map(name, 0)).unwrap(),
            ..Default::default()
        })),
    };
    f.txn(TxnRequest {
        success: vec![put("x"), put("y")],
        ..Default::default()
    })
    .await;
    let (x, y) = (next(&mut w).await, next(&mut w).await);
    assert_eq!((x.kind, y.kind), (EventType::Added, EventType::Added));
    assert_eq!(x.object["metadata"]["name"], "x");
    assert_eq!(y.object["metadata"]["name"], "y");
    assert_eq!(
        x.object["metadata"]["resourceVersion"],
        y.object["metadata"]["resourceVersion"]
    );
}
