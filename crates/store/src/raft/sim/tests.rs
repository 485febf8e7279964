//! Scenarios, each written as a lab notebook: what is done, what is expected.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Cluster, Faults, ProposeError};

/// Ticks and stabilizes until some live node is leader; returns it.
fn elect(c: &mut Cluster, max_ticks: u64) -> u64 {
    for _ in 0..max_ticks {
        c.stabilize();
        if let Some(leader) = c.leader() {
            return leader;
        }
        c.tick();
    }
    panic!("no leader within {max_ticks} ticks (seed {})", c.seed());
}

/// Ticks `n` times, stabilizing after each.
fn run(c: &mut Cluster, n: u64) {
    for _ in 0..n {
        c.tick();
        c.stabilize();
    }
}

fn data(c: &Cluster, id: u64) -> Vec<Vec<u8>> {
    c.applied(id).iter().map(|(_, d)| d.clone()).collect()
}

#[test]
fn leader_is_elected_in_a_healthy_cluster() {
    // Three fresh nodes: no leader until someone's election timeout fires.
    let mut c = Cluster::new(3, 1);
    assert_eq!(c.leader(), None);
    assert_eq!(c.propose(b"early"), Err(ProposeError::NoLeader));
    // Within two election timeouts one node wins, and all follow it.
    let leader = elect(&mut c, 40);
    c.settle(40);
    assert_eq!(c.leader(), Some(leader), "leader changed without faults");
    // A write through it is acknowledged and applied everywhere.
    c.propose(b"x=1").expect("leader takes proposal");
    c.stabilize();
    assert_eq!(c.acked(), [b"x=1".to_vec()]);
    for id in c.ids() {
        assert_eq!(data(&c, id), [b"x=1".to_vec()], "node {id}");
    }
}

#[test]
fn minority_partition_cannot_commit() {
    // Five nodes settle on a leader.
    let mut c = Cluster::new(5, 2);
    c.settle(100);
    let old = c.leader().expect("leader after settle");
    // Cut the leader off alone; it still believes it leads, and takes a write.
    let rest: Vec<u64> = c.ids().into_iter().filter(|&id| id != old).collect();
    c.partition(&[&[old], &rest]);
    c.propose_to(old, b"lost")
        .expect("old leader takes proposal");
    run(&mut c, 60);
    // It can never commit it: no node applied it, no client was told.
    for id in c.ids() {
        assert!(!data(&c, id).contains(&b"lost".to_vec()), "node {id}");
    }
    assert!(c.acked().is_empty());
    // The majority elects a new leader in a higher term and commits a write.
    let new = c.leader().expect("majority leader");
    assert_ne!(new, old, "isolated node is still the newest leader");
    c.propose_to(new, b"kept")
        .expect("new leader takes proposal");
    c.stabilize();
    assert_eq!(c.acked(), [b"kept".to_vec()]);
    // After healing, the old leader's entry is overwritten, never applied.
    c.settle(100);
    c.check_acked_applied();
    for id in c.ids() {
        assert_eq!(data(&c, id), [b"kept".to_vec()], "node {id}");
    }
}

#[test]
fn crashed_follower_catches_up_after_restart() {
    let mut c = Cluster::new(3, 3);
    c.settle(100);
    let leader = c.leader().expect("leader after settle");
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    c.propose(b"before").expect("propose");
    c.stabilize();
    // The follower crashes; two of three still make a majority.
    c.crash(follower);
    for i in 0..5 {
        c.propose(format!("during-{i}").as_bytes())
            .expect("propose");
        c.stabilize();
    }
    assert_eq!(c.acked().len(), 6);
    assert!(
        c.applied(follower).is_empty(),
        "crash keeps the state machine"
    );
    // Restarted, it replays its own log and receives the rest from the leader.
    c.restart(follower);
    c.settle(100);
    assert_eq!(c.applied(follower), c.applied(leader));
    c.check_acked_applied();
}

/// One random step. The weights favour progress over faults.
fn random_step(c: &mut Cluster, rng: &mut StdRng, next_write: &mut u64) {
    let ids = c.ids();
    let any = ids[rng.random_range(0..ids.len())];
    match rng.random_range(0..100) {
        0..25 => c.tick(),
        25..50 => {
            for _ in 0..rng.random_range(1..=4) {
                c.deliver_one();
            }
        }
        50..68 => c.ready(any),
        68..73 => c.stabilize(),
        73..87 => {
            *next_write += 1;
            let _ = c.propose(format!("w{next_write}").as_bytes());
        }
        87..89 => {
            let cut = rng.random_range(1..ids.len());
            let mut shuffled = ids.clone();
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, rng.random_range(0..=i));
            }
            let (a, b) = shuffled.split_at(cut);
            c.partition(&[a, b]);
        }
        89..93 => c.heal(),
        93..95 if c.is_up(any) => c.crash(any),
        _ => match ids.into_iter().find(|&id| !c.is_up(id)) {
            Some(down) => c.restart(down),
            None => c.tick(),
        },
    }
}

#[test]
fn random_faults_never_lose_acknowledged_writes() {
    let mut total_acked = 0;
    for seed in 0..30 {
        let mut rng = StdRng::seed_from_u64(seed);
        let size = if seed % 2 == 0 { 3 } else { 5 };
        let mut c = Cluster::new(size, seed);
        c.settle(100);
        c.set_faults(Faults {
            drop_rate: rng.random_range(0.0..0.2),
            max_delay: rng.random_range(0..4),
        });
        let mut next_write = 0;
        for _ in 0..400 {
            random_step(&mut c, &mut rng, &mut next_write);
        }
        c.settle(500);
        c.check_acked_applied();
        total_acked += c.acked().len();
    }
    // Guard against a scenario so hostile that nothing is ever acknowledged.
    assert!(total_acked >= 100, "only {total_acked} writes acknowledged");
}

#[test]
fn same_seed_replays_exactly() {
    let trace = |seed| {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut c = Cluster::new(5, seed);
        c.set_faults(Faults {
            drop_rate: 0.1,
            max_delay: 2,
        });
        let mut next_write = 0;
        for _ in 0..200 {
            random_step(&mut c, &mut rng, &mut next_write);
        }
        c.settle(500);
        let applied: Vec<_> = c.ids().iter().map(|&id| c.applied(id).to_vec()).collect();
        (c.leader(), c.acked().to_vec(), applied)
    };
    assert_eq!(trace(7), trace(7), "seed 7 diverged between two runs");
}
