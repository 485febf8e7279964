//! A three-member replicated store as real `skiff store` processes on
//! 127.0.0.1–3, driven through the `etcd-client` crate: leader election,
//! replication, reads on followers, leader failure under load, catch-up by
//! snapshot, and membership changes under load.
//!
//! The tests run one at a time: several clusters at once on a small machine
//! would starve each other into needless elections.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use etcd_client::MemberAddOptions;
use skiff_e2e::cluster::{
    assert_all_present, connect, wait_converged, wait_for_leader, ClusterOptions, Load,
    StoreCluster, PATIENCE,
};
use skiff_e2e::netns::TestNet;

/// One cluster at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_elect_a_leader_and_replicate_every_write() {
    let _serial = SERIAL.lock().await;
    let cluster = StoreCluster::start(3, ClusterOptions::default());
    let leader = wait_for_leader(&cluster).await;
    let follower = (leader + 1) % 3;

    // A write through a follower is forwarded to the leader.
    let mut via_follower = connect(&[cluster.members[follower].endpoint()]).await;
    let put = via_follower.put("/greeting", "hello", None).await.unwrap();
    let revision = put.header().unwrap().revision();

    // A linearizable read on any member sees it at once.
    for member in &cluster.members {
        let mut client = connect(&[member.endpoint()]).await;
        let got = client.get("/greeting", None).await.unwrap();
        assert_eq!(got.kvs()[0].value(), b"hello", "read on {}", member.name);
        assert!(got.header().unwrap().revision() >= revision);
    }

    // MemberList names all three, with their URLs, once each has announced itself.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list = via_follower.member_list().await.unwrap();
        let mut names: Vec<String> = list
            .members()
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        names.sort();
        let urls_ok = list.members().iter().all(|m| !m.client_urls().is_empty());
        if names == ["m1", "m2", "m3"] && urls_ok {
            let peer_urls: BTreeSet<String> = list
                .members()
                .iter()
                .flat_map(|m| m.peer_urls().to_vec())
                .collect();
            let expected: BTreeSet<String> = cluster.members.iter().map(|m| m.peer_url()).collect();
            assert_eq!(peer_urls, expected);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members never announced themselves: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Status agrees on leader and term everywhere.
    let mut terms = BTreeSet::new();
    let mut leaders = BTreeSet::new();
    for member in &cluster.members {
        let mut client = connect(&[member.endpoint()]).await;
        let status = client.status().await.unwrap();
        terms.insert(status.raft_term());
        leaders.insert(status.leader());
        assert!(
            status.raft_index() >= 2,
            "raft index {}",
            status.raft_index()
        );
    }
    assert_eq!(leaders.len(), 1, "one leader: {leaders:?}");
    assert_eq!(terms.len(), 1, "one term: {terms:?}");
    wait_converged(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_load_elects_another_and_loses_no_acknowledged_write() {
    let _serial = SERIAL.lock().await;
    let options = ClusterOptions::default();
    let election = Duration::from_millis(options.election_ms);
    let mut cluster = StoreCluster::start(3, options);
    let leader = wait_for_leader(&cluster).await;
    let load = Load::start(cluster.endpoints(), "/load/", 4);
    load.wait_for(200, &cluster).await;

    let killed_at = Instant::now();
    let before = load.acked();
    cluster.kill(leader);
    let new_leader = wait_for_leader(&cluster).await;
    assert_ne!(new_leader, leader);
    load.wait_for(1, &cluster).await;
    let failover = killed_at.elapsed();
    eprintln!(
        "leader {} killed with {before} writes acknowledged; first write after it in {failover:?} \
         (election timeout {election:?})",
        cluster.members[leader].name
    );
    load.wait_for(200, &cluster).await;

    // The old leader comes back, catches up and agrees.
    cluster.restart(leader);
    load.wait_for(100, &cluster).await;
    let acked = load.stop().await;
    wait_converged(&cluster).await;
    for member in &cluster.members {
        assert_all_present(&member.endpoint(), "/load/", &acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_behind_a_compacted_log_catches_up_by_snapshot() {
    let _serial = SERIAL.lock().await;
    let options = ClusterOptions {
        snapshot_count: 100,
        catch_up_entries: 20,
        ..ClusterOptions::default()
    };
    let mut cluster = StoreCluster::start(3, options);
    let leader = wait_for_leader(&cluster).await;
    let lagging = (leader + 1) % 3;
    cluster.kill(lagging);
    let load = Load::start(cluster.endpoints(), "/snap/", 4);
    load.wait_for(600, &cluster).await;
    let acked = load.stop().await;

    cluster.restart(lagging);
    wait_converged(&cluster).await;
    assert_all_present(&cluster.members[lagging].endpoint(), "/snap/", &acked).await;
    assert!(
        cluster
            .log(lagging)
            .contains("installing a snapshot from the leader"),
        "the restarted member should have caught up by snapshot:\n{}",
        cluster.log(lagging)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_added_promoted_and_removed_under_load() {
    let _serial = SERIAL.lock().await;
    let mut cluster = StoreCluster::start(3, ClusterOptions::default());
    wait_for_leader(&cluster).await;
    let load = Load::start(cluster.endpoints(), "/members/", 3);
    load.wait_for(100, &cluster).await;

    // Add a learner, start it, promote it once it has caught up.
    let joining = cluster.prepare_joining_member();
    let mut admin = patient_client(cluster.endpoints()).await;
    let added = admin
        .member_add(
            [cluster.members[joining].peer_url()],
            Some(MemberAddOptions::new().with_is_learner()),
        )
        .await
        .expect("member add");
    let new_id = added.member().expect("the added member").id();
    assert!(added.member().unwrap().is_learner());
    // Not started yet, so far behind: promotion is refused, as etcd refuses it.
    let leader = wait_for_leader(&cluster).await;
    let mut to_leader = connect(&[cluster.members[leader].endpoint()]).await;
    let refused = to_leader
        .member_promote(new_id)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("can only promote a learner member which is in sync with leader"),
        "{refused}"
    );
    cluster.spawn_and_wait(joining);

    let deadline = Instant::now() + PATIENCE;
    loop {
        let leader = wait_for_leader(&cluster).await;
        let mut to_leader = connect(&[cluster.members[leader].endpoint()]).await;
        match to_leader.member_promote(new_id).await {
            Ok(resp) => {
                assert!(resp.members().iter().all(|m| !m.is_learner()));
                break;
            }
            Err(err) => {
                let text = err.to_string();
                assert!(
                    text.contains("in sync with leader") || text.contains("not leader"),
                    "unexpected promote error: {text}"
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "the learner never caught up\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    load.wait_for(100, &cluster).await;

    // Remove a founding member that is not the leader, through the leader.
    let leader = wait_for_leader(&cluster).await;
    let leaving = (0..3).find(|&i| i != leader).unwrap();
    let list = admin.member_list().await.unwrap();
    let leaving_id = list
        .members()
        .iter()
        .find(|m| m.name() == cluster.members[leaving].name)
        .expect("the leaving member is listed")
        .id();
    let mut to_leader = patient_client([cluster.members[leader].endpoint()]).await;
    let removed = to_leader
        .member_remove(leaving_id)
        .await
        .expect("member remove");
    assert_eq!(removed.members().len(), 3);
    // It stops by itself: it applies its own removal, or, when the leader no
    // longer replicates to it, a peer refuses it as removed.
    assert_exits_as_removed(&mut cluster, leaving).await;
    load.wait_for(100, &cluster).await;
    let acked = load.stop().await;
    wait_converged(&cluster).await;
    for i in (0..cluster.members.len()).filter(|&i| cluster.members[i].is_running()) {
        assert_all_present(&cluster.members[i].endpoint(), "/members/", &acked).await;
    }
}

/// Waits for member `i` to exit by itself and checks that it says why.
/// A client of `endpoints` whose requests wait up to [`PATIENCE`]: membership
/// changes wait for a commit under load.
async fn patient_client<E: AsRef<str>, S: AsRef<[E]>>(endpoints: S) -> etcd_client::Client {
    etcd_client::Client::connect(
        endpoints,
        Some(etcd_client::ConnectOptions::new().with_timeout(PATIENCE)),
    )
    .await
    .expect("connects")
}

/// The member ID of the member `client` talks to.
async fn own_member_id(client: &mut etcd_client::Client) -> u64 {
    client
        .status()
        .await
        .expect("status")
        .header()
        .expect("a header")
        .member_id()
}

async fn assert_exits_as_removed(cluster: &mut StoreCluster, i: usize) {
    let status = cluster.wait_for_exit(i).await;
    let log = cluster.log(i);
    assert!(
        log.contains("the member has been permanently removed from the cluster"),
        "member {} exited ({status}) without saying it was removed:\n{log}",
        cluster.members[i].name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_through_itself_answers_and_exits_and_stays_out() {
    let _serial = SERIAL.lock().await;
    let mut cluster = StoreCluster::start(3, ClusterOptions::default());
    let leader = wait_for_leader(&cluster).await;
    let leaving = (leader + 1) % 3;
    let staying: Vec<String> = (0..3)
        .filter(|&i| i != leaving)
        .map(|i| cluster.members[i].endpoint())
        .collect();
    let load = Load::start(staying.clone(), "/self/", 2);
    load.wait_for(100, &cluster).await;

    // MemberRemove sent to the member being removed: it answers once the
    // removal is committed, whether it applies it or hears of it from a peer.
    let mut via_itself = patient_client([cluster.members[leaving].endpoint()]).await;
    let leaving_id = own_member_id(&mut via_itself).await;
    let removed = via_itself
        .member_remove(leaving_id)
        .await
        .expect("member remove through the member being removed");
    let ids: BTreeSet<u64> = removed.members().iter().map(|m| m.id()).collect();
    assert_eq!(ids.len(), 2, "{ids:x?}");
    assert!(!ids.contains(&leaving_id), "{ids:x?}");
    assert_exits_as_removed(&mut cluster, leaving).await;

    // The other two go on.
    load.wait_for(100, &cluster).await;
    let acked = load.stop().await;
    wait_converged(&cluster).await;
    for endpoint in &staying {
        assert_all_present(endpoint, "/self/", &acked).await;
    }

    // Restarted on its old data, it is refused as removed and exits again.
    cluster.restart(leaving);
    assert_exits_as_removed(&mut cluster, leaving).await;
    let mut client = connect(&staying).await;
    let list = client.member_list().await.expect("member list");
    assert_eq!(list.members().len(), 2, "{:?}", list.members());
    // Its ID never comes back: a change naming it finds no such member.
    let refused = client
        .member_remove(leaving_id)
        .await
        .expect_err("a removed member cannot be removed again")
        .to_string();
    assert!(refused.contains("member not found"), "{refused}");
}

/// The members as `client` lists them, once the member with `id` has
/// announced its name and client URLs (etcd's "started").
async fn wait_until_started(
    client: &mut etcd_client::Client,
    id: u64,
    cluster: &StoreCluster,
) -> Vec<etcd_client::Member> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list = client.member_list().await.expect("member list");
        let started = list
            .members()
            .iter()
            .any(|m| m.id() == id && !m.name().is_empty() && !m.client_urls().is_empty());
        if started {
            return list.members().to_vec();
        }
        assert!(
            Instant::now() < deadline,
            "member {id:x} never announced itself: {:?}\n{}",
            list.members(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_is_replaced_by_a_new_one_on_the_same_peer_url() {
    let _serial = SERIAL.lock().await;
    let mut cluster = StoreCluster::start(3, ClusterOptions::default());
    let leader = wait_for_leader(&cluster).await;
    let replaced = (leader + 1) % 3;
    let founder = (leader + 2) % 3;
    let staying: Vec<String> = (0..3)
        .filter(|&i| i != replaced)
        .map(|i| cluster.members[i].endpoint())
        .collect();
    let mut client = patient_client(&staying).await;
    client.put("/before", "1", None).await.expect("a write");

    // The failed host is removed.
    let mut to_replaced = connect(&[cluster.members[replaced].endpoint()]).await;
    let old_id = own_member_id(&mut to_replaced).await;
    let mut to_leader = patient_client([cluster.members[leader].endpoint()]).await;
    to_leader
        .member_remove(old_id)
        .await
        .expect("member remove");
    assert_exits_as_removed(&mut cluster, replaced).await;
    client.put("/between", "2", None).await.expect("a write");

    // The same peer URL is added again: a new member, with a fresh ID.
    cluster.prepare_replacement(replaced);
    let added = client
        .member_add([cluster.members[replaced].peer_url()], None)
        .await
        .expect("the peer URL of a removed member can be added again");
    let new_id = added.member().expect("the added member").id();
    assert_ne!(new_id, old_id);

    // Started on an empty data directory, it learns that ID from its peers,
    // joins, announces itself and serves.
    cluster.spawn_and_wait(replaced);
    assert!(
        cluster
            .log(replaced)
            .contains("learned this member's ID from the cluster's member list"),
        "{}",
        cluster.log(replaced)
    );
    let members = wait_until_started(&mut client, new_id, &cluster).await;
    assert_eq!(members.len(), 3, "{members:?}");
    let listed = members.iter().find(|m| m.id() == new_id).unwrap();
    assert_eq!(listed.name(), cluster.members[replaced].name);
    assert_eq!(listed.peer_urls(), [cluster.members[replaced].peer_url()]);
    assert!(members.iter().all(|m| m.id() != old_id), "{members:?}");

    let mut via_new = patient_client([cluster.members[replaced].endpoint()]).await;
    assert_eq!(own_member_id(&mut via_new).await, new_id);
    via_new
        .put("/after", "3", None)
        .await
        .expect("a write through the new member");
    for (key, value) in [("/before", "1"), ("/between", "2"), ("/after", "3")] {
        let got = via_new.get(key, None).await.expect("a linearizable read");
        assert_eq!(got.kvs().len(), 1, "{key} through the new member");
        assert_eq!(got.kvs()[0].value(), value.as_bytes(), "{key}");
    }

    // Restarted on their data, the new member and a founder keep their IDs.
    let founder_id =
        own_member_id(&mut connect(&[cluster.members[founder].endpoint()]).await).await;
    for (i, id) in [(replaced, new_id), (founder, founder_id)] {
        cluster.restart(i);
        let mut again = patient_client([cluster.members[i].endpoint()]).await;
        assert_eq!(
            own_member_id(&mut again).await,
            id,
            "{} after a restart",
            cluster.members[i].name
        );
        // Until it hears from the leader, it answers "no leader".
        let deadline = Instant::now() + PATIENCE;
        while let Err(err) = again.put(format!("/restarted/{i}"), "v", None).await {
            assert!(
                Instant::now() < deadline,
                "no write through {} after its restart: {err}\n{}",
                cluster.members[i].name,
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(
        !cluster.log(replaced).contains("learned this member's ID"),
        "a restart takes the ID from the data directory:\n{}",
        cluster.log(replaced)
    );
    let list = client.member_list().await.expect("member list");
    let ids: BTreeSet<u64> = list.members().iter().map(|m| m.id()).collect();
    assert_eq!(ids.len(), 3, "{ids:x?}");
    assert!(
        ids.contains(&new_id) && ids.contains(&founder_id),
        "{ids:x?}"
    );
    wait_converged(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_while_cut_off_learns_it_from_its_peers_and_exits() {
    // Each member in its own network namespace, so one can be cut off.
    if !TestNet::available() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must run this suite as root"
        );
        eprintln!("skipping: network namespaces need root");
        return;
    }
    let _serial = SERIAL.lock().await;
    let net = TestNet::create(3).expect("the test network is created");
    let mut cluster = StoreCluster::start_in_namespaces(3, ClusterOptions::default(), net);
    let leader = wait_for_leader(&cluster).await;
    let leaving = (leader + 1) % 3;
    let mut to_leaving = connect(&[cluster.members[leaving].endpoint()]).await;
    let leaving_id = own_member_id(&mut to_leaving).await;

    // Cut off, it cannot receive the entry that removes it; once the others
    // have applied it, nobody sends it anything any more.
    cluster.isolate(leaving);
    let mut to_leader = patient_client([cluster.members[leader].endpoint()]).await;
    let removed = to_leader
        .member_remove(leaving_id)
        .await
        .expect("member remove");
    assert_eq!(removed.members().len(), 2);
    cluster.heal();

    // Its own campaigns reach the others again, which refuse it as removed.
    assert_exits_as_removed(&mut cluster, leaving).await;
    assert!(
        !cluster
            .log(leaving)
            .contains(&format!("change=Remove({leaving_id})")),
        "the removed member applied its own removal, though it was cut off:\n{}",
        cluster.log(leaving)
    );
    let mut client = connect(&cluster.endpoints()).await;
    client
        .put("/after", "v", None)
        .await
        .expect("the others serve writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_resuming_after_its_member_dies_sees_every_event_exactly_once_in_order() {
    let _serial = SERIAL.lock().await;
    let mut cluster = StoreCluster::start(3, ClusterOptions::default());
    let leader = wait_for_leader(&cluster).await;
    let endpoints: Vec<String> = cluster.endpoints();

    // The watcher starts on the leader, which will die; it then resumes on
    // another member from the revision after the last one it saw.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, i64)>::new()));
    let watcher = {
        let seen = seen.clone();
        let mut order: Vec<String> = vec![endpoints[leader].clone()];
        order.extend(
            endpoints
                .iter()
                .filter(|e| **e != endpoints[leader])
                .cloned(),
        );
        tokio::spawn(async move {
            let mut next_revision = 1;
            // Bounded: at most 200 (re)connections.
            for attempt in 0..200usize {
                let endpoint = order[attempt % order.len()].clone();
                let mut client = connect(&[endpoint]).await;
                let options = etcd_client::WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(next_revision);
                let Ok(mut stream) = client.watch("/w/", Some(options)).await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                while let Ok(Some(resp)) = stream.message().await {
                    for event in resp.events() {
                        let kv = event.kv().expect("an event has a key");
                        let key = String::from_utf8_lossy(kv.key()).into_owned();
                        seen.lock().unwrap().push((key, kv.mod_revision()));
                        next_revision = kv.mod_revision() + 1;
                    }
                }
            }
        })
    };

    let mut writer = connect(&endpoints).await;
    let mut acked = Vec::new();
    let mut n = 0;
    // Bounded: 600 writes at most, 300 before the leader dies.
    while acked.len() < 600 && n < 10_000 {
        if acked.len() == 300 && cluster.members[leader].is_running() {
            cluster.kill(leader);
        }
        let key = format!("/w/{n:05}");
        n += 1;
        if let Ok(resp) = writer.put(key.clone(), "v", None).await {
            acked.push((key, resp.header().unwrap().revision()));
        }
    }
    assert_eq!(acked.len(), 600, "writes stalled\n{}", cluster.logs());

    let last = acked.last().unwrap().1;
    let deadline = Instant::now() + PATIENCE;
    while seen.lock().unwrap().last().map_or(0, |e| e.1) < last {
        assert!(
            Instant::now() < deadline,
            "the watcher fell behind\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    watcher.abort();
    let seen = seen.lock().unwrap().clone();
    for pair in seen.windows(2) {
        assert!(
            pair[0].1 < pair[1].1,
            "events out of order or repeated: {pair:?}"
        );
    }
    let seen: BTreeSet<(String, i64)> = seen.into_iter().collect();
    for (key, revision) in &acked {
        assert!(
            seen.contains(&(key.clone(), *revision)),
            "the watcher missed {key} at revision {revision}"
        );
    }
}

/// Runs `etcdctl` (Debian's etcd-client, etcdctl 3.4) with `args` against
/// `endpoints`, bounded by `timeout`; returns (success, stdout, stderr).
fn etcdctl(endpoints: &[String], args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new("timeout")
        .args(["30", "etcdctl", "--endpoints", &endpoints.join(",")])
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .expect("timeout and etcdctl run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn etcdctl_available() -> bool {
    let found = std::process::Command::new("etcdctl")
        .arg("version")
        .env("ETCDCTL_API", "3")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI must install etcdctl (Debian's etcd-client)"
        );
        eprintln!("skipping: etcdctl is not installed");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_lists_adds_and_removes_members_and_reports_status_for_the_cluster() {
    if !etcdctl_available() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let mut cluster = StoreCluster::start(3, ClusterOptions::default());
    wait_for_leader(&cluster).await;
    let endpoints = cluster.endpoints();

    // member list: every member, started, with its name and URLs (once announced).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (ok, out, err) = etcdctl(&endpoints[..1], &["member", "list"]);
        assert!(ok, "member list failed: {err}");
        let started = out.lines().filter(|l| l.contains(", started, m")).count();
        if started == 3 {
            for member in &cluster.members {
                assert!(out.contains(&member.peer_url()), "{out}");
                assert!(out.contains(&member.endpoint()), "{out}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members never announced themselves:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // endpoint status --cluster: one row per member, all naming the same leader.
    let (ok, out, err) = etcdctl(
        &endpoints[..1],
        &["endpoint", "status", "--cluster", "-w", "json"],
    );
    assert!(ok, "endpoint status --cluster failed: {err}");
    let rows: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let rows = rows.as_array().expect("a list");
    assert_eq!(rows.len(), 3, "{out}");
    let leaders: BTreeSet<u64> = rows
        .iter()
        .map(|r| r["Status"]["leader"].as_u64().unwrap())
        .collect();
    assert_eq!(leaders.len(), 1, "{out}");
    let leader = *leaders.iter().next().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["Status"]["header"]["member_id"].as_u64() == Some(leader)),
        "the leader is one of the members: {out}"
    );

    // member add (as a learner), start it, then remove it again.
    let joining = cluster.prepare_joining_member();
    let peer = cluster.members[joining].peer_url();
    let (ok, out, err) = etcdctl(
        &endpoints,
        &["member", "add", "m4", "--learner", "--peer-urls", &peer],
    );
    assert!(ok, "member add failed: {err}");
    assert!(out.contains("added to cluster"), "{out}");
    cluster.spawn_and_wait(joining);
    let (_, list, _) = etcdctl(&endpoints, &["member", "list", "-w", "json"]);
    let list: serde_json::Value = serde_json::from_str(&list).expect("JSON");
    let added = list["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["peerURLs"][0] == peer.as_str())
        .expect("the new member is listed")
        .clone();
    assert_eq!(added["isLearner"], true);
    let id = format!("{:x}", added["ID"].as_u64().unwrap());
    let (ok, out, err) = etcdctl(&endpoints, &["member", "remove", &id]);
    assert!(ok, "member remove failed: {err}");
    assert!(
        // etcdctl pads the ID to 16 columns: "Member  8b53… removed from cluster …".
        out.contains("removed from cluster") && out.contains(&id),
        "{out}"
    );
    assert_exits_as_removed(&mut cluster, joining).await;
    let (_, out, _) = etcdctl(&endpoints, &["member", "list"]);
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alives_sent_to_a_follower_keep_a_lease_alive_until_they_stop() {
    let _serial = SERIAL.lock().await;
    let cluster = StoreCluster::start(3, ClusterOptions::default());
    let leader = wait_for_leader(&cluster).await;
    let follower = (leader + 1) % 3;
    let mut to_leader = connect(&[cluster.members[leader].endpoint()]).await;
    let mut to_follower = connect(&[cluster.members[follower].endpoint()]).await;
    let lease = to_leader.lease_grant(2, None).await.unwrap().id();
    to_leader
        .put(
            "/leased",
            "v",
            Some(etcd_client::PutOptions::new().with_lease(lease)),
        )
        .await
        .unwrap();

    // Renew through the follower only, for three TTLs.
    let (mut keeper, mut responses) = to_follower.lease_keep_alive(lease).await.unwrap();
    for _ in 0..12 {
        keeper.keep_alive().await.unwrap();
        let resp = responses
            .message()
            .await
            .unwrap()
            .expect("a keep-alive response");
        assert_eq!(resp.ttl(), 2, "the lease is alive");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let got = to_leader.get("/leased", None).await.unwrap();
    assert_eq!(
        got.count(),
        1,
        "renewals through a follower reached the leader"
    );

    // Stop renewing: the leader expires the lease and deletes its key.
    drop(keeper);
    let deadline = Instant::now() + PATIENCE;
    while to_leader.get("/leased", None).await.unwrap().count() == 1 {
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
