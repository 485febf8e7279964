//! skiff-store through the `etcd-client` crate: a real etcd client library
//! against the store's gRPC API.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, EventType, GetOptions, LeaseTimeToLiveOptions,
    PutOptions, SortOrder, SortTarget, Txn, TxnOp, WatchOptions,
};
use skiff_e2e::InProcessStore;

async fn client(store: &InProcessStore) -> Client {
    Client::connect([store.endpoint.as_str()], None)
        .await
        .expect("connects")
}

fn grpc_message(err: etcd_client::Error) -> String {
    match err {
        etcd_client::Error::GRpcStatus(status) => status.message().to_string(),
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

#[tokio::test]
async fn put_get_delete_with_revisions() {
    let store = InProcessStore::start().await;
    let mut c = client(&store).await;
    let put = c.put("/a", "1", None).await.unwrap();
    assert_eq!(
        put.header().unwrap().revision(),
        2,
        "a fresh store is at revision 1"
    );
    c.put("/a", "2", None).await.unwrap();
    let got = c.get("/a", None).await.unwrap();
    let kv = &got.kvs()[0];
    assert_eq!(
        (
            kv.value(),
            kv.create_revision(),
            kv.mod_revision(),
            kv.version()
        ),
        (&b"2"[..], 2, 3, 2)
    );
    let old = c
        .get("/a", Some(GetOptions::new().with_revision(2)))
        .await
        .unwrap();
    assert_eq!(old.kvs()[0].value(), b"1");
    let del = c
        .delete("/a", Some(DeleteOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(del.deleted(), 1);
    assert_eq!(del.prev_kvs()[0].value(), b"2");
    assert_eq!(c.get("/a", None).await.unwrap().count(), 0);
}

#[tokio::test]
async fn prefix_limit_sort_and_count() {
    let store = InProcessStore::start().await;
    let mut c = client(&store).await;
    for (k, v) in [("/p/a", "3"), ("/p/b", "1"), ("/p/c", "2"), ("/q", "x")] {
        c.put(k, v, None).await.unwrap();
    }
    let page = c
        .get("/p/", Some(GetOptions::new().with_prefix().with_limit(2)))
        .await
        .unwrap();
    assert_eq!(page.kvs().len(), 2);
    assert!(page.more());
    assert_eq!(page.count(), 3);
    let by_value = c
        .get(
            "/p/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Value, SortOrder::Descend),
            ),
        )
        .await
        .unwrap();
    let keys: Vec<&str> = by_value
        .kvs()
        .iter()
        .map(|kv| kv.key_str().unwrap())
        .collect();
    assert_eq!(keys, ["/p/a", "/p/c", "/p/b"]);
    let counted = c
        .get(
            "/p/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!((counted.count(), counted.kvs().len()), (3, 0));
    let from_key = c
        .get("/p/c", Some(GetOptions::new().with_from_key()))
        .await
        .unwrap();
    assert_eq!(from_key.count(), 2);
}

#[tokio::test]
async fn txn_compare_and_swap() {
    let store = InProcessStore::start().await;
    let mut c = client(&store).await;
    let rev = c
        .put("/cas", "v1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let swap = |expected_rev: i64, new: &'static str| {
        Txn::new()
            .when([Compare::mod_revision(
                "/cas",
                CompareOp::Equal,
                expected_rev,
            )])
            .and_then([TxnOp::put("/cas", new, None)])
            .or_else([TxnOp::get("/cas", None)])
    };
    assert!(c.txn(swap(rev, "v2")).await.unwrap().succeeded());
    let lost = c.txn(swap(rev, "v3")).await.unwrap();
    assert!(
        !lost.succeeded(),
        "the second swap from the same revision loses"
    );
    assert_eq!(c.get("/cas", None).await.unwrap().kvs()[0].value(), b"v2");
    let dup = Txn::new().and_then([TxnOp::put("/d", "1", None), TxnOp::put("/d", "2", None)]);
    let err = c.txn(dup).await.unwrap_err();
    assert_eq!(
        grpc_message(err),
        "etcdserver: duplicate key given in txn request"
    );
}

#[tokio::test]
async fn watch_replays_history_then_streams_live_events() {
    let store = InProcessStore::start().await;
    let mut c = client(&store).await;
    let first = c
        .put("/w/1", "a", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    c.put("/w/2", "b", None).await.unwrap();
    let mut stream = c
        .watch(
            "/w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(first)
                    .with_prev_key(),
            ),
        )
        .await
        .unwrap();
    c.delete("/w/1", None).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let resp = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("events arrive")
            .unwrap()
            .expect("the stream stays open");
        for ev in resp.events() {
            let kv = ev.kv().unwrap();
            seen.push((
                ev.event_type(),
                kv.key_str().unwrap().to_string(),
                kv.mod_revision(),
            ));
        }
    }
    assert_eq!(
        seen,
        [
            (EventType::Put, "/w/1".to_string(), first),
            (EventType::Put, "/w/2".to_string(), first + 1),
            (EventType::Delete, "/w/1".to_string(), first + 2),
        ]
    );
}

#[tokio::test]
async fn watch_from_a_compacted_revision_is_canceled() {
    let store = InProcessStore::start().await;
    let mut c = client(&store).await;
    for i in 0..5 {
        c.put("/c", i.to_string(), None).await.unwrap();
    }
    c.compact(5, None).await.unwrap();
    let mut stream = c
        .watch("/c", Some(WatchOptions::new().with_start_revision(2)))
        .await
        .unwrap();
    let canceled = loop {
        let resp = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a response arrives")
            .unwrap()
            .expect("a response");
        if resp.canceled() {
            break resp;
        }
    };
    assert_eq!(canceled.compact_revision(), 5);
    let err = c
        .get("/c", Some(GetOptions::new().with_revision(3)))
        .await
        .unwrap_err();
    assert_eq!(
        grpc_message(err),
        "etcdserver: mvcc: required revision has been compacted"
    );
}

#[tokio::test]
async fn leases_keep_alive_expire_and_revoke() {
    let store =
        InProcessStore::start_with(|c| c.lease_check_interval = Duration::from_millis(100)).await;
    let mut c = client(&store).await;
    let lease = c.lease_grant(1, None).await.unwrap();
    assert_eq!(lease.ttl(), 2, "TTLs below the minimum are raised to it");
    c.put(
        "/l/key",
        "v",
        Some(PutOptions::new().with_lease(lease.id())),
    )
    .await
    .unwrap();
    let ttl = c
        .lease_time_to_live(lease.id(), Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .unwrap();
    assert_eq!(ttl.granted_ttl(), 2);
    assert_eq!(ttl.keys(), [b"/l/key".to_vec()]);
    let (mut keeper, mut responses) = c.lease_keep_alive(lease.id()).await.unwrap();
    keeper.keep_alive().await.unwrap();
    assert_eq!(responses.message().await.unwrap().unwrap().ttl(), 2);
    // Without keep-alives the lease expires and its key goes with it.
    let mut events = c.watch("/l/key", None).await.unwrap();
    let deleted = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let resp = events.message().await.unwrap().unwrap();
            if resp
                .events()
                .iter()
                .any(|e| e.event_type() == EventType::Delete)
            {
                return;
            }
        }
    })
    .await;
    assert!(deleted.is_ok(), "the key is deleted when its lease expires");
    assert_eq!(c.get("/l/key", None).await.unwrap().count(), 0);
    let gone = c.lease_time_to_live(lease.id(), None).await.unwrap();
    assert_eq!(gone.ttl(), -1);

    let other = c.lease_grant(60, None).await.unwrap();
    c.put(
        "/l/other",
        "v",
        Some(PutOptions::new().with_lease(other.id())),
    )
    .await
    .unwrap();
    assert!(c
        .leases()
        .await
        .unwrap()
        .leases()
        .iter()
        .any(|l| l.id() == other.id()));
    c.lease_revoke(other.id()).await.unwrap();
    assert_eq!(c.get("/l/other", None).await.unwrap().count(), 0);
    let err = c.lease_revoke(other.id()).await.unwrap_err();
    assert_eq!(grpc_message(err), "etcdserver: requested lease not found");
}

#[tokio::test]
async fn bad_requests_get_etcds_errors_and_the_store_keeps_serving() {
    let store = InProcessStore::start().await;
    let mut c = client(&store).await;
    let empty = c.put("", "v", None).await.unwrap_err();
    assert_eq!(grpc_message(empty), "etcdserver: key is not provided");
    let unknown_lease = c
        .put("/k", "v", Some(PutOptions::new().with_lease(12345)))
        .await
        .unwrap_err();
    assert_eq!(
        grpc_message(unknown_lease),
        "etcdserver: requested lease not found"
    );
    let future = c
        .get("/k", Some(GetOptions::new().with_revision(1000)))
        .await
        .unwrap_err();
    assert_eq!(
        grpc_message(future),
        "etcdserver: mvcc: required revision is a future revision"
    );
    // Past --max-request-bytes (1.5 MiB) the store refuses the request itself...
    let large = vec![b'x'; 1600 * 1024];
    let too_large = c.put("/big", large, None).await.unwrap_err();
    assert_eq!(grpc_message(too_large), "etcdserver: request is too large");
    // ...and past that plus gRPC's 512 KiB allowance, gRPC refuses the message, as etcd's does.
    let huge = vec![b'x'; 3 * 1024 * 1024];
    assert!(c.put("/big", huge, None).await.is_err());
    c.put("/k", "still serving", None).await.unwrap();
    assert_eq!(
        c.get("/k", None).await.unwrap().kvs()[0].value(),
        b"still serving"
    );
    assert_eq!(
        c.get("/big", None).await.unwrap().count(),
        0,
        "nothing of the refused write is stored"
    );
}

#[tokio::test]
async fn maintenance_and_cluster_report_the_member() {
    let store = InProcessStore::start().await;
    let mut c = client(&store).await;
    c.put("/s", "v", None).await.unwrap();
    let status = c.status().await.unwrap();
    let header = status.header().unwrap();
    assert_eq!(status.leader(), header.member_id());
    assert!(status.raft_index() >= 1);
    assert_eq!(header.revision(), 2);
    let members = c.member_list().await.unwrap();
    assert_eq!(members.members().len(), 1);
    assert_eq!(
        members.members()[0].client_urls(),
        std::slice::from_ref(&store.endpoint)
    );
    let h1 = c.hash_kv(0).await.unwrap().hash();
    c.put("/s", "changed", None).await.unwrap();
    assert_ne!(c.hash_kv(0).await.unwrap().hash(), h1);
}

#[tokio::test]
async fn concurrent_writers_get_distinct_consecutive_revisions() {
    let store = InProcessStore::start().await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let mut c = client(&store).await;
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..50 {
                let resp = c.put(format!("/conc/{w}/{i}"), "v", None).await.unwrap();
                revs.push(resp.header().unwrap().revision());
            }
            revs
        }));
    }
    let mut all: Vec<i64> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let expected: Vec<i64> = (2..2 + 400).collect();
    assert_eq!(
        all, expected,
        "every put is its own revision, with no holes"
    );
}
