//! Crash safety of `skiff store`: a process killed with SIGKILL in the middle
//! of a write load loses none of the writes it acknowledged.
//!
//! etcd promises that a put is durable once its response arrives: the store
//! must have made the WAL entry durable before answering. This test plays a
//! power cut: eight etcd-client writers put distinct keys as fast as the store
//! answers, each recording every acknowledged put with the revision from its
//! response header; after [`LOAD`] the process gets SIGKILL (no shutdown path
//! runs), and is started again on the same data directory and port. Then:
//!
//! - every acknowledged put is there, with its value and the mod revision it
//!   was acknowledged with;
//! - the mod revisions of all keys are exactly `2..=revision`: every key is
//!   written once and nothing else writes, so each revision is one put and a
//!   hole would be a lost write (a put that was applied but not acknowledged
//!   may survive; it fills its own revision);
//! - the next put gets `revision + 1`.
//!
//! This runs for [`CYCLES`] kill/restart cycles on one data directory. A debug
//! build on two cores acknowledged between about 3,000 and 9,500 puts per
//! cycle, and now and then one or two puts in flight at the kill survived
//! without their acknowledgement; the numbers are printed (`--nocapture`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use etcd_client::{Client, GetOptions, KvClient};
use skiff_e2e::StoreProcess;

/// Concurrent writers, each with its own keys.
const WRITERS: usize = 8;

/// How long the writers run before the store is killed.
const LOAD: Duration = Duration::from_millis(1500);

/// Kill/restart cycles on the same data directory.
const CYCLES: u32 = 3;

/// The longest one put may take before its writer gives up.
const PUT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest the writers may take to notice the store is gone.
const WRITERS_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Every key of this test starts with this.
const PREFIX: &str = "/crash/";

/// A put the store acknowledged.
#[derive(Debug)]
struct Ack {
    key: String,
    value: String,
    revision: i64,
}

/// The value written under `key`: derived from the key, so any value read
/// back, acknowledged or not, can be checked.
fn value_for(key: &str) -> String {
    format!("value of {key}")
}

/// Puts `/crash/CYCLE/WRITER/N` for N = 0, 1, … until a put fails (the store
/// was killed) or times out; returns the acknowledged ones.
async fn write_until_failure(mut kv: KvClient, cycle: u32, writer: usize) -> Vec<Ack> {
    let mut acks = Vec::new();
    for n in 0u64.. {
        let key = format!("{PREFIX}{cycle}/{writer:02}/{n:08}");
        let value = value_for(&key);
        let put = tokio::time::timeout(PUT_TIMEOUT, kv.put(key.clone(), value.clone(), None)).await;
        let Ok(Ok(response)) = put else { break };
        let revision = response
            .header()
            .expect("a put response has a header")
            .revision();
        acks.push(Ack {
            key,
            value,
            revision,
        });
    }
    acks
}

/// Runs the writers against `store` for [`LOAD`], kills the store with
/// SIGKILL and returns every put acknowledged before that.
async fn load_then_kill(store: &mut StoreProcess, cycle: u32) -> Vec<Ack> {
    let client = connect(store).await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write_until_failure(client.kv_client(), cycle, writer)))
        .collect();
    tokio::time::sleep(LOAD).await;
    store.kill();
    // All writers must be done before the restart, or one could write to the
    // new process and blur what the old one acknowledged.
    let finished = tokio::time::timeout(WRITERS_STOP_TIMEOUT, futures::future::join_all(writers))
        .await
        .unwrap_or_else(|_| panic!("writers still busy {WRITERS_STOP_TIMEOUT:?} after the kill"));
    finished
        .into_iter()
        .flat_map(|acks| acks.expect("a writer panicked"))
        .collect()
}

async fn connect(store: &StoreProcess) -> Client {
    Client::connect([store.endpoint()], None)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to {}: {err}", store.endpoint()))
}

/// Checks the restarted store against what was acknowledged before any kill;
/// returns the store's revision.
async fn check_after_restart(client: &mut Client, acked: &[Ack]) -> i64 {
    let all = client
        .get(PREFIX, Some(GetOptions::new().with_prefix()))
        .await
        .expect("a range read after the restart");
    let revision = all
        .header()
        .expect("a range response has a header")
        .revision();
    let mut present = BTreeMap::new();
    for kv in all.kvs() {
        let key = kv.key_str().expect("keys are UTF-8").to_string();
        let value = kv.value_str().expect("values are UTF-8").to_string();
        assert_eq!(value, value_for(&key), "a corrupt value under {key}");
        assert_eq!(
            (kv.version(), kv.create_revision()),
            (1, kv.mod_revision()),
            "{key} was written once"
        );
        present.insert(key, kv.mod_revision());
    }
    for ack in acked {
        let Some(&mod_revision) = present.get(&ack.key) else {
            panic!(
                "the acknowledged put of {} at revision {} was lost (store revision {revision})",
                ack.key, ack.revision
            );
        };
        assert_eq!(
            mod_revision, ack.revision,
            "{} was acknowledged at revision {} but reads back with mod revision {mod_revision}",
            ack.key, ack.revision
        );
        assert_eq!(ack.value, value_for(&ack.key));
    }
    let revisions: BTreeSet<i64> = present.values().copied().collect();
    assert_eq!(revisions.len(), present.len(), "two keys share a revision");
    let expected: BTreeSet<i64> = (2..=revision).collect();
    let missing: Vec<_> = expected.difference(&revisions).take(10).collect();
    let extra: Vec<_> = revisions.difference(&expected).take(10).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "mod revisions are not exactly 2..={revision}: missing {missing:?}, beyond {extra:?}"
    );
    revision
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_puts_survive_sigkill_and_revisions_have_no_holes() {
    kill_and_check(&mut StoreProcess::start()).await;
}

/// The same with a snapshot every [`SMALL_SNAPSHOT_COUNT`] entries, so that
/// kills land while snapshots are written in the background, between them,
/// and after the log was compacted behind them; recovery then starts from a
/// snapshot and replays the log past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_puts_survive_sigkill_during_background_snapshots() {
    let count = SMALL_SNAPSHOT_COUNT.to_string();
    let mut store = StoreProcess::start_with_args(&[
        "--snapshot-count",
        &count,
        "--snapshot-catchup-entries",
        "100",
    ]);
    kill_and_check(&mut store).await;
    let logs = store.all_logs();
    let written = logs.matches("wrote a snapshot").count();
    println!("{written} snapshots written over all runs");
    assert!(
        written > 1,
        "the load wrote no snapshot beyond the first; the test covers nothing more:\n{logs}"
    );
    assert!(
        logs.contains("delta=true"),
        "no snapshot was a delta on top of the one before it:\n{logs}"
    );
}

/// The snapshot count of the snapshot crash test: well below the puts a
/// cycle acknowledges.
const SMALL_SNAPSHOT_COUNT: u64 = 500;

/// Runs [`CYCLES`] load/kill/restart cycles on `store` and checks each restart.
async fn kill_and_check(store: &mut StoreProcess) {
    let mut acked: Vec<Ack> = Vec::new();
    for cycle in 1..=CYCLES {
        let acks = load_then_kill(store, cycle).await;
        println!(
            "cycle {cycle}: {} puts acknowledged before SIGKILL",
            acks.len()
        );
        assert!(!acks.is_empty(), "cycle {cycle}: no put was acknowledged");
        acked.extend(acks);
        let revisions: BTreeSet<i64> = acked.iter().map(|ack| ack.revision).collect();
        assert_eq!(
            revisions.len(),
            acked.len(),
            "two acknowledged puts share a revision"
        );

        store.restart();
        let mut client = connect(store).await;
        let revision = check_after_restart(&mut client, &acked).await;
        println!("cycle {cycle}: restarted at revision {revision}");

        let probe = format!("{PREFIX}{cycle}/probe");
        let put = client
            .put(probe.clone(), value_for(&probe), None)
            .await
            .unwrap_or_else(|err| panic!("the first put after restart {cycle} failed: {err}"));
        assert_eq!(
            put.header()
                .expect("a put response has a header")
                .revision(),
            revision + 1,
            "writes after restart {cycle} continue at the next revision"
        );
        acked.push(Ack {
            value: value_for(&probe),
            key: probe,
            revision: revision + 1,
        });
    }
}
