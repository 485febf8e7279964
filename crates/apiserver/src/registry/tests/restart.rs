//! A client watch across an API server restart: the client resumes from the
//! last resourceVersion it saw and gets every change once, with no gap, even
//! though the new API server's watch cache starts after those changes.

use std::sync::Arc;

use serde_json::json;

use super::fixture::{config_map, r, rv, scenarios, Backend, Fixture};
use crate::registry::*;
use crate::watch_cache::{EventType, WatchStream};

scenarios!(a_watch_resumes_across_an_api_server_restart_without_gaps_or_repeats);

/// What a watcher saw, or a writer did: the event type, the name, and the
/// resourceVersion (for a delete, the delete's own, which the writer does not see).
type Seen = (EventType, String, Option<i64>);

async fn next(stream: &mut WatchStream) -> Seen {
    let event = tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
        .await
        .expect("an event arrives")
        .expect("the watch is open");
    let name = event.object["metadata"]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    (event.kind, name, Some(rv(&event.object)))
}

/// Writes `count` changes through `registry`: every third step creates a
/// ConfigMap, then updates it, then deletes it.
async fn write(registry: &Registry, from: usize, count: usize) -> Vec<Seen> {
    let mut done = Vec::new();
    for step in from..from + count {
        let name = format!("c{}", step / 3);
        let cm = config_map(&name, step as i64);
        let body = serde_json::to_vec(&cm).unwrap();
        let options = WriteOptions::default();
        let seen = match step % 3 {
            0 => {
                let created = registry.create(r("cm"), "default", &body, &options).await;
                (EventType::Added, name, Some(rv(&created.unwrap().object)))
            }
            1 => {
                let updated = registry
                    .update(r("cm"), "default", &name, "", &body, &options)
                    .await;
                (
                    EventType::Modified,
                    name,
                    Some(rv(&updated.unwrap().object)),
                )
            }
            _ => {
                registry
                    .delete(r("cm"), "default", &name, &DeleteOptions::default())
                    .await
                    .unwrap();
                (EventType::Deleted, name, None)
            }
        };
        done.push(seen);
    }
    done
}

async fn a_watch_resumes_across_an_api_server_restart_without_gaps_or_repeats(backend: Backend) {
    let f = Fixture::on(backend).await;
    // Another API server in front of the same store takes writes throughout.
    let writer = f.another_registry();
    let start = f.revision().await;

    // 1. The client watches through the first API server; 21 changes happen.
    let first = Arc::new(f.another_registry());
    first.start_watch_caches().await.unwrap();
    let mut watch = first
        .watch(
            r("cm"),
            "default",
            &WatchOptions {
                resource_version: start.to_string(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut written = write(&writer, 0, 21).await;
    // 2. It has read ten of them when the API server stops.
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(next(&mut watch).await);
    }
    drop(watch);
    drop(first);
    // 3. While it is down, 21 more changes happen.
    written.extend(write(&writer, 21, 21).await);
    // 4. A new API server starts; its watch cache begins after all of them.
    let second = Arc::new(f.another_registry());
    second.bootstrap().await.unwrap();
    let last_seen = seen.last().and_then(|s| s.2).unwrap();
    assert!(
        last_seen < second.cache(r("cm")).await.unwrap().started_at(),
        "the new cache never held what the client missed"
    );
    let mut resumed = second
        .watch(
            r("cm"),
            "default",
            &WatchOptions {
                resource_version: last_seen.to_string(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // 5. And 21 more after it is up.
    written.extend(write(&writer, 42, 21).await);
    while seen.len() < written.len() {
        seen.push(next(&mut resumed).await);
    }
    // Every change exactly once, in order: resourceVersions strictly increase.
    let versions: Vec<i64> = seen.iter().map(|s| s.2.unwrap()).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "resourceVersions go back or repeat: {versions:?}"
    );
    let comparable = |s: &Seen| {
        (
            s.0,
            s.1.clone(),
            if s.0 == EventType::Deleted { None } else { s.2 },
        )
    };
    assert_eq!(
        seen.iter().map(comparable).collect::<Vec<_>>(),
        written.iter().map(comparable).collect::<Vec<_>>()
    );
    // Nothing more is pending: the next event is the next change.
    let marker = writer
        .create(
            r("cm"),
            "default",
            &serde_json::to_vec(
                &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "marker"}}),
            )
            .unwrap(),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        next(&mut resumed).await,
        (
            EventType::Added,
            "marker".to_string(),
            Some(rv(&marker.object))
        )
    );
}
