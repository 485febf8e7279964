//! Network partitions of a three-member store: each member runs in its own
//! network namespace (created by the test), and a partition is a pair of
//! blackhole routes, so the test's clients still reach every member while the
//! members cannot reach each other.
//!
//! Creating namespaces needs root: without it the test fails on CI (which runs
//! as root) and says why elsewhere.

use std::time::{Duration, Instant};

use etcd_client::GetOptions;
use skiff_e2e::cluster::{
    assert_all_present, connect, wait_converged, ClusterOptions, Load, StoreCluster, PATIENCE,
};
use skiff_e2e::netns::TestNet;

fn network() -> Option<TestNet> {
    if !TestNet::available() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run this suite as root"
        );
        eprintln!("skipping: network namespaces need root");
        return None;
    }
    Some(TestNet::create(3).expect("the test network is created"))
}

/// The leader that `members` agree on, as a member index.
async fn agreed_leader(cluster: &StoreCluster, members: &[usize]) -> Option<usize> {
    let mut ids = Vec::new();
    let mut leaders = Vec::new();
    for &i in members {
        let mut client = connect(&[cluster.members[i].endpoint()]).await;
        let status = client.status().await.ok()?;
        ids.push((i, status.header()?.member_id()));
        leaders.push(status.leader());
    }
    let leader = leaders[0];
    if leader == 0 || leaders.iter().any(|l| *l != leader) {
        return None;
    }
    ids.iter().find(|(_, id)| *id == leader).map(|(i, _)| *i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_serves_neither_writes_nor_linearizable_reads_and_converges_after_healing(
) {
    let Some(net) = network() else { return };
    let mut cluster = StoreCluster::start_in_namespaces(3, ClusterOptions::default(), net);
    let all = [0, 1, 2];
    let deadline = Instant::now() + PATIENCE;
    let leader = loop {
        if let Some(leader) = agreed_leader(&cluster, &all).await {
            break leader;
        }
        assert!(Instant::now() < deadline, "no leader\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut to_old = connect(&[cluster.members[leader].endpoint()]).await;
    to_old.put("/before", "1", None).await.unwrap();

    // Cut the leader off: the other two elect a new one and keep taking writes.
    cluster.isolate(leader);
    let majority: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
    let deadline = Instant::now() + PATIENCE;
    let new_leader = loop {
        if let Some(l) = agreed_leader(&cluster, &majority).await {
            if l != leader {
                break l;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the majority elected no leader\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let majority_endpoints: Vec<String> = majority
        .iter()
        .map(|&i| cluster.members[i].endpoint())
        .collect();
    let load = Load::start(majority_endpoints, "/partition/", 2);
    load.wait_for(50, &cluster).await;

    // The isolated member refuses writes and linearizable reads …
    let write = to_old.put("/isolated", "x", None).await;
    assert!(
        write.is_err(),
        "a write on the isolated member succeeded: {write:?}"
    );
    let read = to_old.get("/before", None).await;
    assert!(
        read.is_err(),
        "a linearizable read on the isolated member succeeded: {read:?}"
    );
    // … but still serves what it has, serializably.
    let stale = to_old
        .get("/before", Some(GetOptions::new().with_serializable()))
        .await
        .expect("serializable reads are served locally");
    assert_eq!(stale.kvs()[0].value(), b"1");
    eprintln!(
        "isolated {}: write refused ({}), linearizable read refused ({})",
        cluster.members[leader].name,
        write.unwrap_err(),
        read.unwrap_err()
    );

    // Heal: the old leader follows the new one and catches up.
    cluster.heal();
    load.wait_for(50, &cluster).await;
    let acked = load.stop().await;
    wait_converged(&cluster).await;
    assert_all_present(&cluster.members[leader].endpoint(), "/partition/", &acked).await;
    let written_on_isolated = to_old.get("/isolated", None).await.unwrap();
    assert_eq!(
        written_on_isolated.count(),
        0,
        "a write refused while isolated must not appear after healing"
    );
    let _ = new_leader;
}
