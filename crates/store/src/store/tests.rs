use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use skiff_proto::etcdserverpb::{PutRequest, RangeRequest};

use super::*;

fn single_member(data_dir: PathBuf) -> StoreConfig {
    StoreConfig {
        name: "solo".into(),
        data_dir,
        initial_advertise_peer_urls: vec!["http://127.0.0.1:2380".into()],
        heartbeat_interval: Duration::from_millis(10),
        election_timeout: Duration::from_millis(100),
        ..StoreConfig::default()
    }
}

#[tokio::test]
async fn a_data_directory_of_an_older_layout_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    {
        // What an older build left: one sled key per change, no layout record.
        let db = sled::Config::new().path(&db_dir).open().unwrap();
        let mut key = vec![b'r'];
        key.extend_from_slice(&crate::revision::Revision::new(2, 0).to_bytes());
        db.open_tree("kv").unwrap().insert(key, b"\0").unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(single_member(dir.path().to_path_buf()))
        .await
        .err()
        .expect("the older layout is refused");
    let text = err.to_string();
    assert!(text.contains("one change per key"), "{text}");
    assert!(text.contains(&db_dir.display().to_string()), "{text}");
}

#[tokio::test]
async fn a_member_added_again_after_its_removal_gets_a_fresh_id() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(single_member(dir.path().join("data")))
        .await
        .expect("the store opens");
    let urls = vec!["http://127.0.0.9:2380".to_string()];
    // Learners, so that the lone voter keeps its quorum.
    let (first, _) = store
        .member_add(urls.clone(), true)
        .await
        .expect("the first add");
    store.member_remove(first.id).await.expect("the removal");
    let (second, members) = store
        .member_add(urls.clone(), true)
        .await
        .expect("the same peer URLs are added again");
    assert_ne!(first.id, second.id);
    let ids: BTreeSet<u64> = members.iter().map(|m| m.id).collect();
    assert!(ids.contains(&second.id), "{ids:x?}");
    assert!(!ids.contains(&first.id), "{ids:x?}");
    assert_eq!(second.peer_urls, urls);
    // The first ID stays removed.
    assert_eq!(
        store.member_remove(first.id).await,
        Err(StoreError::MemberNotFound)
    );
    store.close().await;
}

#[tokio::test]
async fn a_restarted_member_keeps_the_id_its_data_directory_records() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = single_member(dir.path().join("data"));
    let store = Store::open(config.clone()).await.expect("the store opens");
    let id = store.identity().member_id;
    assert_eq!(id, config.member_id());
    store.close().await;
    drop(store);
    let recorded =
        std::fs::read_to_string(config.data_dir.join(bootstrap::MEMBER_ID_FILE)).expect("recorded");
    assert_eq!(recorded.trim(), format!("{id:x}"));

    // Other peer URLs give another configured ID; the data directory's wins.
    let moved = StoreConfig {
        initial_advertise_peer_urls: vec!["http://127.0.0.8:2380".into()],
        ..config.clone()
    };
    assert_ne!(moved.member_id(), id);
    let store = Store::open(moved).await.expect("the store opens again");
    assert_eq!(store.identity().member_id, id);
    assert_eq!(store.header(0).member_id, id);
    store.close().await;
}

/// The snapshot files in `dir`: (index, whether it is a delta).
fn snapshot_files(dir: &std::path::Path) -> Vec<(u64, bool)> {
    let mut files: Vec<(u64, bool)> = std::fs::read_dir(dir)
        .expect("the snapshot directory")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".snap")?
                .to_owned();
            let index = name.split_once('-')?.1.parse().ok()?;
            let magic = std::fs::read(&path).ok()?.get(..8)?.to_vec();
            Some((index, magic == b"SKIFFSND"))
        })
        .collect();
    files.sort();
    files
}

/// A member that lost its applied state (sled) restores it from its newest
/// snapshot, a delta, through the chain it ends, then replays the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_its_applied_state_restores_it_through_a_chain_of_deltas() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = StoreConfig {
        snapshot_count: 40,
        snapshot_catch_up_entries: 5,
        ..single_member(dir.path().join("data"))
    };
    let snap_dir = config.data_dir.join(bootstrap::SNAP_DIR);
    let store = Store::open(config.clone()).await.expect("the store opens");
    let put = |i: usize| PutRequest {
        key: format!("k{}", i % 50).into_bytes(),
        value: format!("v{i}").into_bytes(),
        ..Default::default()
    };
    let mut i = 0;
    // Bounded: the snapshots come with the writes.
    while i < 5_000 {
        store.put(put(i)).await.expect("a put");
        i += 1;
        let files = snapshot_files(&snap_dir);
        if i % 10 == 0 && files.last().is_some_and(|(_, delta)| *delta) && files.len() >= 3 {
            break;
        }
    }
    let files = snapshot_files(&snap_dir);
    assert!(
        files.last().is_some_and(|(_, delta)| *delta),
        "{i} puts wrote no delta: {files:?}"
    );
    // A few more after the newest snapshot, for the log to replay.
    for _ in 0..7 {
        store.put(put(i)).await.expect("a put");
        i += 1;
    }
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    let before = store.range(&all).await.expect("a range");
    let revision = store.current_revision().expect("a revision");
    store.close().await;
    drop(store);

    std::fs::remove_dir_all(config.data_dir.join(bootstrap::DB_DIR)).expect("sled removed");
    let store = Store::open(config.clone())
        .await
        .expect("the store opens from its snapshots and log");
    // A linearizable read waits for the log's entries to be applied.
    let after = store.range(&all).await.expect("a range");
    assert_eq!(after.header.expect("a header").revision, revision);
    assert_eq!(after.kvs, before.kvs, "every key as it was");
    assert_eq!(after.kvs.len(), 50);
    store.put(put(i)).await.expect("writes go on");
    store.close().await;
}
