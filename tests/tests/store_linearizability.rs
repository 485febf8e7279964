//! Linearizability of a three-member store under faults: concurrent clients
//! put, get and compare-and-set a few keys through different members while
//! members are killed (SIGKILL) and restarted — and, when the test may create
//! network namespaces (root), while members are cut off and healed — then the
//! recorded history is checked with `skiff_e2e::linearizability`.

use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use skiff_e2e::cluster::{connect, wait_converged, ClusterOptions, StoreCluster};
use skiff_e2e::linearizability::{check, Op, OpResult, Recorder};
use skiff_e2e::netns::TestNet;

const CLIENTS: usize = 6;
const KEYS: usize = 4;
/// Operations per client at most; clients stop earlier once the faults end.
const OPS_PER_CLIENT: usize = 3000;
/// Faults injected per run.
const FAULTS: usize = 12;

/// One client: issues random operations through one member at a time and
/// moves to the next member after an error.
async fn client_run(
    id: usize,
    endpoints: Vec<String>,
    recorder: Recorder,
    seed: u64,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clients: Vec<Option<Client>> = vec![None; endpoints.len()];
    let mut at = id % endpoints.len();
    let (mut ok, mut failed) = (0, 0);
    for n in 0..OPS_PER_CLIENT {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        if clients[at].is_none() {
            clients[at] = Some(connect(&[endpoints[at].clone()]).await);
        }
        let client = clients[at].as_mut().expect("connected above");
        let key = format!("/lin/k{}", rng.random_range(0..KEYS));
        let value = format!("c{id}-{n}");
        let result = match rng.random_range(0..10) {
            0..=3 => {
                let handle = recorder.invoke(id, Op::get(key.clone()));
                match client.get(key.as_str(), None).await {
                    Ok(resp) => {
                        let got = resp
                            .kvs()
                            .first()
                            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned());
                        recorder.ok(handle, OpResult::Value(got));
                        true
                    }
                    Err(_) => {
                        recorder.unknown(handle);
                        false
                    }
                }
            }
            4..=6 => {
                let handle = recorder.invoke(id, Op::put(key.clone(), value.clone()));
                match client.put(key.as_str(), value.as_str(), None).await {
                    Ok(_) => {
                        recorder.ok(handle, OpResult::Ok);
                        true
                    }
                    Err(_) => {
                        recorder.unknown(handle);
                        false
                    }
                }
            }
            _ => {
                // Compare-and-set from the value this client last saw, or from absent.
                let current = client
                    .get(key.as_str(), None)
                    .await
                    .ok()
                    .and_then(|r| r.kvs().first().map(|kv| kv.value().to_vec()));
                let expected = current
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                let handle =
                    recorder.invoke(id, Op::cas(key.clone(), expected.as_deref(), value.clone()));
                let compare = match &current {
                    Some(v) => Compare::value(key.as_str(), CompareOp::Equal, v.clone()),
                    None => Compare::create_revision(key.as_str(), CompareOp::Equal, 0),
                };
                let txn = Txn::new().when([compare]).and_then([TxnOp::put(
                    key.as_str(),
                    value.as_str(),
                    None,
                )]);
                match client.txn(txn).await {
                    Ok(resp) => {
                        recorder.ok(handle, OpResult::Swapped(resp.succeeded()));
                        true
                    }
                    Err(_) => {
                        recorder.unknown(handle);
                        false
                    }
                }
            }
        };
        if result {
            ok += 1;
        } else {
            failed += 1;
            clients[at] = None;
            at = (at + 1) % endpoints.len();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_under_crashes_and_partitions_are_linearizable() {
    let net = if TestNet::available() {
        Some(TestNet::create(3).expect("the test network is created"))
    } else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run this suite as root"
        );
        eprintln!("no root: faults are crashes only, no partitions");
        None
    };
    let partitions = net.is_some();
    let mut cluster = match net {
        Some(net) => StoreCluster::start_in_namespaces(3, ClusterOptions::default(), net),
        None => StoreCluster::start(3, ClusterOptions::default()),
    };
    let endpoints = cluster.endpoints();
    let recorder = Recorder::new();
    let seed = std::env::var("SKIFF_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            tokio::spawn(client_run(
                id,
                endpoints.clone(),
                recorder.clone(),
                seed * 1000 + id as u64,
                stop.clone(),
            ))
        })
        .collect();

    // Faults while the clients run: kill and restart members, and cut
    // members off and heal them.
    let mut rng = StdRng::seed_from_u64(seed);
    let mut faults = Vec::new();
    let started = Instant::now();
    for _ in 0..FAULTS {
        if clients.iter().all(|c| c.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(500..1500))).await;
        let victim = rng.random_range(0..3);
        if partitions && rng.random_bool(0.5) {
            cluster.isolate(victim);
            faults.push(format!("isolate m{}", victim + 1));
            tokio::time::sleep(Duration::from_millis(rng.random_range(500..2000))).await;
            cluster.heal();
        } else {
            cluster.kill(victim);
            faults.push(format!("kill -9 m{}", victim + 1));
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..1500))).await;
            cluster.restart(victim);
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut ok = 0;
    let mut failed = 0;
    for client in clients {
        let (o, f) = client.await.expect("a client task");
        ok += o;
        failed += f;
    }
    wait_converged(&cluster).await;

    let history = recorder.history();
    let report = check(&history);
    eprintln!(
        "seed {seed}: {} operations ({ok} answered, {failed} failed or timed out) on {} keys \
         by {CLIENTS} clients in {:?}; {} faults: {}",
        report.operations,
        report.keys,
        started.elapsed(),
        faults.len(),
        faults.join(", ")
    );
    eprintln!("{report}");
    assert!(report.linearizable, "{report}\n{}", cluster.logs());
    assert!(!faults.is_empty(), "the run injected no fault");
    assert!(
        ok > failed,
        "too few operations succeeded: {ok} of {}",
        ok + failed
    );
}
