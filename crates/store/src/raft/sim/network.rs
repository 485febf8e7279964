//! The simulated network: every message in flight sits in one queue, and the
//! cluster's seeded RNG decides which arrives next, which are lost, and how
//! many ticks each is held back. Partitions are checked on delivery, so a
//! message sent before a partition is cut off by it, as on a real network.

use std::collections::BTreeMap;

use raft::eraftpb::Message;
use rand::rngs::StdRng;
use rand::Rng;

/// How hostile the network is.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Probability in `[0, 1)` that a sent message is lost.
    pub drop_rate: f64,
    /// A sent message is held back a uniformly drawn `0..=max_delay` ticks.
    pub max_delay: u64,
}

struct InFlight {
    msg: Message,
    deliver_at: u64,
}

/// Messages in flight plus the current partition.
#[derive(Default)]
pub struct Network {
    queue: Vec<InFlight>,
    /// Node id to partition group; empty when the network is whole.
    groups: BTreeMap<u64, usize>,
    faults: Faults,
    now: u64,
}

impl Network {
    pub fn set_faults(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// The logical clock moves only here, once per cluster tick.
    pub fn advance_clock(&mut self) {
        self.now += 1;
    }

    /// Puts messages on the wire, losing and delaying some.
    pub fn send(&mut self, rng: &mut StdRng, msgs: Vec<Message>) {
        for msg in msgs {
            if self.faults.drop_rate > 0.0 && rng.random_bool(self.faults.drop_rate) {
                continue;
            }
            let delay = rng.random_range(0..=self.faults.max_delay);
            self.queue.push(InFlight {
                msg,
                deliver_at: self.now + delay,
            });
        }
    }

    /// Takes one message that is due, chosen at random, or `None` if no
    /// message is due. The caller drops it if the partition cuts it off.
    pub fn take_due(&mut self, rng: &mut StdRng) -> Option<Message> {
        let due: Vec<usize> = (0..self.queue.len())
            .filter(|&i| self.queue[i].deliver_at <= self.now)
            .collect();
        if due.is_empty() {
            return None;
        }
        let pick = due[rng.random_range(0..due.len())];
        Some(self.queue.swap_remove(pick).msg)
    }

    /// Whether `from` can reach `to` under the current partition.
    pub fn connected(&self, from: u64, to: u64) -> bool {
        if self.groups.is_empty() {
            return true;
        }
        match (self.groups.get(&from), self.groups.get(&to)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// Splits the cluster; a node not named in any group is alone.
    pub fn partition(&mut self, groups: &[&[u64]]) {
        self.groups.clear();
        for (g, members) in groups.iter().enumerate() {
            for &id in members.iter() {
                self.groups.insert(id, g);
            }
        }
    }

    pub fn heal(&mut self) {
        self.groups.clear();
    }
}
