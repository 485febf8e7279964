//! The hub's behaviour, against the in-memory [`MemStore`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use skiff_proto::mvccpb::event::EventType;
use skiff_proto::mvccpb::{Event, KeyValue};

use super::mock::MemStore;
use super::{WatchOptions, WatchSpec, WatchUpdate, Watcher};

fn options(channel_capacity: usize) -> WatchOptions {
    WatchOptions {
        channel_capacity,
        ..WatchOptions::default()
    }
}

fn prefix(prefix: &[u8], start_revision: i64) -> WatchSpec {
    let mut range_end = prefix.to_vec();
    *range_end.last_mut().expect("non-empty prefix") += 1;
    WatchSpec {
        key: prefix.to_vec(),
        range_end,
        start_revision,
        ..WatchSpec::default()
    }
}

fn key(key: &[u8], start_revision: i64) -> WatchSpec {
    WatchSpec {
        key: key.to_vec(),
        start_revision,
        ..WatchSpec::default()
    }
}

/// The next update, failing the test if none comes within five seconds.
async fn next(watcher: &mut Watcher) -> WatchUpdate {
    tokio::time::timeout(Duration::from_secs(5), watcher.recv())
        .await
        .expect("no watch update within 5s")
        .expect("watcher closed")
}

async fn next_events(watcher: &mut Watcher) -> Vec<Event> {
    match next(watcher).await {
        WatchUpdate::Events { events, .. } => events,
        other => panic!("expected events, got {other:?}"),
    }
}

fn revisions(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .map(|e| e.kv.as_ref().map_or(0, |kv| kv.mod_revision))
        .collect()
}

/// Reads events until one at `last` revision arrives; returns their revisions
/// and how many updates carried them.
async fn read_until(watcher: &mut Watcher, last: i64) -> (Vec<i64>, usize) {
    let mut seen = Vec::new();
    let mut updates = 0;
    while seen.last().is_none_or(|&revision| revision < last) {
        seen.extend(revisions(&next_events(watcher).await));
        updates += 1;
    }
    (seen, updates)
}

#[tokio::test]
async fn watch_from_current_revision_sees_only_new_events() {
    let (store, hub) = MemStore::with_hub(options(16));
    store.put(&hub, b"a", b"old");
    let mut watcher = hub.watch(key(b"a", 0));
    let revision = store.put(&hub, b"a", b"new");
    let WatchUpdate::Events {
        revision: header,
        events,
    } = next(&mut watcher).await
    else {
        panic!("expected events");
    };
    assert_eq!((header, revisions(&events)), (revision, vec![revision]));
    assert_eq!(
        events[0].kv.as_ref().map(|kv| kv.value.as_slice()),
        Some(&b"new"[..])
    );
    assert_eq!(events[0].prev_kv, None, "prev_kv was not asked for");
}

#[tokio::test]
async fn watch_from_past_revision_replays_history_then_live() {
    let (store, hub) = MemStore::with_hub(options(16));
    for value in [b"1", b"2", b"3"] {
        store.put(&hub, b"a", value); // revisions 2, 3, 4
    }
    let mut watcher = hub.watch(key(b"a", 3));
    assert_eq!(read_until(&mut watcher, 4).await.0, vec![3, 4]);
    store.put(&hub, b"a", b"4");
    assert_eq!(revisions(&next_events(&mut watcher).await), vec![5]);
}

#[tokio::test]
async fn watch_from_future_revision_waits_for_it() {
    let (store, hub) = MemStore::with_hub(options(16));
    let mut watcher = hub.watch(key(b"a", 4));
    store.put(&hub, b"a", b"2");
    store.put(&hub, b"a", b"3");
    store.put(&hub, b"a", b"4");
    assert_eq!(revisions(&next_events(&mut watcher).await), vec![4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_live_events_have_no_gaps_or_duplicates_under_concurrent_notify() {
    const LAST: i64 = 3001;
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (store, hub) = MemStore::with_hub(options(4));
    // The notifier runs at most `PACE` revisions ahead of the watcher creations,
    // so that creations really interleave with notifies.
    const WATCHERS: i64 = 40;
    const PACE: i64 = 70;
    let created = Arc::new(AtomicI64::new(0));
    let notifier = {
        let (store, hub, created) = (Arc::clone(&store), hub.clone(), Arc::clone(&created));
        tokio::spawn(async move {
            for i in 0..LAST - 1 {
                while i > created.load(Ordering::Relaxed) * PACE {
                    tokio::task::yield_now().await;
                }
                store.put(&hub, format!("k{}", i % 7).as_bytes(), b"v");
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..WATCHERS {
        let current = hub.current_revision();
        let start = match rng.random_range(0..4) {
            0 => 0,
            _ => rng.random_range(1..=current + 3),
        };
        let mut watcher = hub.watch(prefix(b"k", start));
        created.fetch_add(1, Ordering::Relaxed);
        let first = if start == 0 {
            watcher.created_revision() + 1
        } else {
            start.max(2)
        };
        readers.push(tokio::spawn(async move {
            let (seen, _) = read_until(&mut watcher, LAST).await;
            (first, seen)
        }));
        for _ in 0..rng.random_range(0..50) {
            tokio::task::yield_now().await;
        }
    }
    created.store(LAST, Ordering::Relaxed);
    notifier.await.expect("notifier");
    for reader in readers {
        let (first, seen) = reader.await.expect("reader");
        let expected: Vec<i64> = (first..=LAST).collect();
        assert_eq!(seen, expected, "watcher from {first} (seed {seed})");
    }
}

#[tokio::test]
async fn slow_watcher_does_not_block_notify_and_loses_nothing() {
    let (store, hub) = MemStore::with_hub(options(1));
    let mut watcher = hub.watch(prefix(b"k", 0));
    // Nobody reads while 2000 revisions are applied: notify must not wait.
    for i in 0..2000 {
        store.put(&hub, format!("k{}", i % 10).as_bytes(), b"v");
    }
    let (seen, updates) = read_until(&mut watcher, 2001).await;
    assert_eq!(seen, (2..=2001).collect::<Vec<_>>());
    assert!(
        updates < 2000,
        "caught up from history in batches, not one by one"
    );
    store.put(&hub, b"k0", b"live again");
    assert_eq!(revisions(&next_events(&mut watcher).await), vec![2002]);
}

#[tokio::test]
async fn watch_from_compacted_revision_is_canceled() {
    let (store, hub) = MemStore::with_hub(options(16));
    for _ in 0..5 {
        store.put(&hub, b"a", b"v"); // revisions 2..=6
    }
    store.compact(4);
    let mut watcher = hub.watch(key(b"a", 2));
    assert_eq!(
        next(&mut watcher).await,
        WatchUpdate::Canceled {
            compact_revision: 4,
            reason: "mvcc: required revision has been compacted".into(),
        }
    );
    assert_eq!(watcher.recv().await, None, "a canceled watcher is closed");
}

#[tokio::test]
async fn slow_watcher_is_canceled_when_history_is_compacted_past_it() {
    let (store, hub) = MemStore::with_hub(options(1));
    let mut watcher = hub.watch(key(b"a", 0));
    for _ in 0..10 {
        store.put(&hub, b"a", b"v"); // revisions 2..=11; only 2 fits the channel
    }
    store.compact(8);
    assert_eq!(revisions(&next_events(&mut watcher).await), vec![2]);
    assert!(matches!(
        next(&mut watcher).await,
        WatchUpdate::Canceled {
            compact_revision: 8,
            ..
        }
    ));
}

#[tokio::test]
async fn noput_and_nodelete_filters() {
    let (store, hub) = MemStore::with_hub(options(16));
    let mut no_put = hub.watch(WatchSpec {
        no_put: true,
        ..key(b"a", 0)
    });
    let mut no_delete = hub.watch(WatchSpec {
        no_delete: true,
        ..key(b"a", 0)
    });
    store.put(&hub, b"a", b"1"); // 2
    store.delete(&hub, b"a"); // 3
    store.put(&hub, b"a", b"2"); // 4
    store.delete(&hub, b"a"); // 5
    let deletes = next_events(&mut no_put).await;
    assert_eq!(revisions(&deletes), vec![3]);
    assert_eq!(deletes[0].r#type, EventType::Delete as i32);
    assert_eq!(revisions(&next_events(&mut no_put).await), vec![5]);
    assert_eq!(revisions(&next_events(&mut no_delete).await), vec![2]);
    assert_eq!(revisions(&next_events(&mut no_delete).await), vec![4]);
}

#[tokio::test]
async fn prev_kv_only_when_asked() {
    let (store, hub) = MemStore::with_hub(options(16));
    store.put(&hub, b"a", b"1"); // 2
    let mut with = hub.watch(WatchSpec {
        prev_kv: true,
        ..key(b"a", 0)
    });
    let mut without = hub.watch(key(b"a", 0));
    let mut without_from_history = hub.watch(key(b"a", 2));
    store.put(&hub, b"a", b"2"); // 3
    let event = &next_events(&mut with).await[0];
    assert_eq!(
        event.prev_kv.as_ref().map(|kv| kv.value.as_slice()),
        Some(&b"1"[..])
    );
    assert_eq!(next_events(&mut without).await[0].prev_kv, None);
    let (seen, _) = read_until(&mut without_from_history, 3).await;
    assert_eq!(seen, vec![2, 3]);
    assert!(
        store.history_at(3).prev_kv.is_some(),
        "the store did send prev_kv"
    );
}

#[tokio::test]
async fn range_and_prefix_watchers() {
    let (store, hub) = MemStore::with_hub(options(16));
    let mut range = hub.watch(WatchSpec {
        key: b"b".to_vec(),
        range_end: b"d".to_vec(),
        ..WatchSpec::default()
    });
    let mut pods = hub.watch(prefix(b"pods/", 0));
    let mut from_m = hub.watch(WatchSpec {
        key: b"m".to_vec(),
        range_end: b"\0".to_vec(),
        ..WatchSpec::default()
    });
    for k in ["a", "b", "c", "d", "pods/x", "podsx", "z"] {
        store.put(&hub, k.as_bytes(), b"v"); // revisions 2..=8
    }
    let keys = |events: Vec<Event>| -> Vec<Vec<u8>> {
        events
            .into_iter()
            .filter_map(|e| e.kv.map(|kv| kv.key))
            .collect()
    };
    assert_eq!(keys(next_events(&mut range).await), vec![b"b".to_vec()]);
    assert_eq!(keys(next_events(&mut range).await), vec![b"c".to_vec()]);
    assert_eq!(keys(next_events(&mut pods).await), vec![b"pods/x".to_vec()]);
    for expected in ["pods/x", "podsx", "z"] {
        assert_eq!(
            keys(next_events(&mut from_m).await),
            vec![expected.as_bytes().to_vec()]
        );
    }
    store.put(&hub, b"pods/y", b"v");
    assert_eq!(
        keys(next_events(&mut pods).await),
        vec![b"pods/y".to_vec()],
        "podsx skipped"
    );
}

#[tokio::test]
async fn dropping_a_watcher_removes_it_from_the_hub() {
    let (store, hub) = MemStore::with_hub(options(16));
    let watcher = hub.watch(key(b"a", 0));
    assert_eq!(hub.watcher_count(), 1);
    drop(watcher);
    assert_eq!(hub.watcher_count(), 0);
    store.put(&hub, b"a", b"v");
}

#[tokio::test]
async fn progress_request_reports_current_revision() {
    let (store, hub) = MemStore::with_hub(options(1));
    let mut idle = hub.watch(key(b"idle", 0));
    let mut behind = hub.watch(key(b"a", 0));
    for _ in 0..3 {
        store.put(&hub, b"a", b"v"); // revisions 2..=4; `behind` falls behind
    }
    store.put(&hub, b"other", b"v"); // 5
    idle.request_progress();
    assert_eq!(next(&mut idle).await, WatchUpdate::Progress { revision: 5 });
    behind.request_progress();
    // Progress only after every event up to that revision.
    assert_eq!(read_until(&mut behind, 4).await.0, vec![2, 3, 4]);
    assert_eq!(
        next(&mut behind).await,
        WatchUpdate::Progress { revision: 5 }
    );
}

#[tokio::test]
async fn progress_of_a_future_watcher_waits_for_its_start_revision() {
    let (store, hub) = MemStore::with_hub(options(16));
    let mut watcher = hub.watch(key(b"a", 4));
    watcher.request_progress();
    store.put(&hub, b"b", b"v"); // 2
    store.put(&hub, b"b", b"v"); // 3
    store.put(&hub, b"b", b"v"); // 4: the store reached the start revision
    assert_eq!(
        next(&mut watcher).await,
        WatchUpdate::Progress { revision: 4 }
    );
}

#[tokio::test]
async fn missing_prev_kv_is_read_from_history_for_watchers_that_ask() {
    let (store, hub) = MemStore::with_hub(options(16));
    let rev = store.put(&hub, b"k", b"old");
    let mut with_prev = hub.watch(WatchSpec {
        prev_kv: true,
        ..key(b"k", 0)
    });
    // The state machine leaves prev_kv out when the request did not read it.
    let change = Event {
        r#type: EventType::Put as i32,
        kv: Some(KeyValue {
            key: b"k".to_vec(),
            create_revision: rev,
            mod_revision: rev + 1,
            version: 2,
            value: b"new".to_vec(),
            lease: 0,
        }),
        prev_kv: None,
    };
    hub.notify(rev + 1, vec![change]);
    let events = next_events(&mut with_prev).await;
    assert_eq!(
        events[0].prev_kv.as_ref().map(|kv| kv.value.as_slice()),
        Some(&b"old"[..])
    );
}
