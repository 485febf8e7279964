//! Two candidates for one Lease: exactly one leads, and the other takes over
//! when the leader stops renewing.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use skiff_client::{Api, Client, LeaderElectionConfig, LeaderElector, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::common::{eventually, Cluster};

fn config(identity: &str, release_on_cancel: bool) -> LeaderElectionConfig {
    LeaderElectionConfig {
        namespace: "kube-system".into(),
        lease_name: "skiff-test".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(1),
        renew_deadline: Duration::from_millis(500),
        retry_period: Duration::from_millis(100),
        release_on_cancel,
    }
}

struct Candidate {
    leading: watch::Receiver<bool>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(client: Client, config: LeaderElectionConfig) -> Candidate {
    let elector = LeaderElector::new(client, config).unwrap();
    let leading = elector.leading();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(elector.run(shutdown.clone()));
    Candidate {
        leading,
        shutdown,
        task,
    }
}

fn leads(c: &Candidate) -> bool {
    *c.leading.borrow()
}

async fn lease(client: &Client) -> LeaseSpec {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    leases.get("skiff-test").await.unwrap().spec.unwrap()
}

#[tokio::test]
async fn exactly_one_of_two_candidates_leads_and_the_other_takes_over_when_it_stops_renewing() {
    let cluster = Cluster::new().await;
    let client = cluster.client();
    let a = start(client.clone(), config("a", false));
    let b = start(client.clone(), config("b", false));
    eventually("someone leads", || leads(&a) || leads(&b)).await;
    // Over many renewals, never both.
    for _ in 0..30 {
        assert!(!(leads(&a) && leads(&b)), "two leaders");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let (leader, follower, follower_id) = if leads(&a) { (a, b, "b") } else { (b, a, "a") };
    let held = lease(&client).await;
    assert_ne!(held.holder_identity.as_deref(), Some(follower_id));
    assert_eq!(held.lease_duration_seconds, Some(1));
    assert_eq!(held.lease_transitions, Some(0));
    assert!(held.acquire_time.is_some() && held.renew_time.is_some());

    // The leader stops without releasing: the follower waits out the lease.
    leader.shutdown.cancel();
    leader.task.await.unwrap();
    assert!(!*leader.leading.borrow());
    eventually("the follower takes over", || leads(&follower)).await;
    let taken = lease(&client).await;
    assert_eq!(taken.holder_identity.as_deref(), Some(follower_id));
    assert_eq!(taken.lease_transitions, Some(1));
    assert!(taken.acquire_time.unwrap().0 > held.acquire_time.unwrap().0);

    follower.shutdown.cancel();
    follower.task.await.unwrap();
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_and_a_leader_that_cannot_renew_steps_down() {
    let cluster = Cluster::new().await;
    let client = cluster.client();
    let a = start(client.clone(), config("a", true));
    eventually("a leads", || leads(&a)).await;
    let b = start(client.clone(), config("b", true));
    a.shutdown.cancel();
    a.task.await.unwrap();
    eventually("b takes the released lease", || leads(&b)).await;
    assert_eq!(lease(&client).await.lease_transitions, Some(1));

    // Someone else writes the lease with a long duration: b cannot renew and
    // gives up leadership after its renew deadline.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let mut current = leases.get("skiff-test").await.unwrap();
    let spec = current.spec.get_or_insert_with(Default::default);
    spec.holder_identity = Some("intruder".into());
    spec.lease_duration_seconds = Some(3600);
    leases
        .replace("skiff-test", &PostParams::default(), &current)
        .await
        .unwrap();
    eventually("b steps down", || !leads(&b)).await;
    assert_eq!(
        lease(&client).await.holder_identity.as_deref(),
        Some("intruder"),
        "b does not take back a lease that has not expired"
    );
    b.shutdown.cancel();
    b.task.await.unwrap();
}

#[tokio::test]
async fn timings_that_cannot_work_are_refused() {
    let cluster = Cluster::new().await;
    let bad = LeaderElectionConfig {
        renew_deadline: Duration::from_secs(2),
        ..config("a", true)
    };
    let err = LeaderElector::new(cluster.client(), bad).err().unwrap();
    assert_eq!(
        err.to_string(),
        "leader election: lease_duration must be greater than renew_deadline"
    );
}
