//! A deterministic simulation of raft clusters.
//!
//! A [`Cluster`] owns N raft-rs `RawNode`s over `MemStorage`, the network
//! between them, and one seeded RNG that makes every choice: which message
//! arrives next, which is lost or held back, each election timeout. Time is a
//! counter moved by [`Cluster::tick`]; nothing reads the wall clock. So a run
//! is a function of its seed and its script, and a failing seed replays
//! exactly: every assertion names the seed.
//!
//! Steps are small and separate, as in toydb's cluster tests: `tick`,
//! `deliver_one`, `ready` (one turn of a node's Ready loop), `propose`,
//! `partition`/`heal`, `crash`/`restart`, and `stabilize` to run messages and
//! Ready loops to quiescence. Keeping `ready` a step of its own is what lets a
//! crash fall between raft accepting work and that work being persisted.
//!
//! After every step the invariants are checked (`check`):
//! - at most one leader per term, over the whole run;
//! - state machine safety: an index applied anywhere, ever, holds the same
//!   entry everywhere (so applied sequences agree on their common prefix);
//! - a node's commit index never goes back while it is up; a restart resets
//!   it to the commit index the node persisted.
//!
//! At the end of a run, [`Cluster::settle`] heals the network, restarts every
//! node and ticks until the cluster converges; [`Cluster::check_acked_applied`]
//! then requires every acknowledged write on every node.

mod check;
mod network;
mod node;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use raft::StateRole;
use rand::rngs::StdRng;
use rand::SeedableRng;
use slog::Logger;

pub use network::Faults;
use network::Network;
use node::Node;

/// Why a client's proposal was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// No live node believes it is leader.
    NoLeader,
    /// The node refused it (not leader, or a leader transfer is under way).
    Refused,
}

pub struct Cluster {
    seed: u64,
    rng: StdRng,
    logger: Logger,
    net: Network,
    /// `nodes[i]` has raft id `i + 1`.
    nodes: Vec<Node>,
    /// The leader seen in each term.
    leaders: BTreeMap<u64, u64>,
    /// Every index applied by any node, and the data applied there.
    log: BTreeMap<u64, Vec<u8>>,
    /// Proposals waiting for their leader to apply them: data to node id.
    pending: BTreeMap<Vec<u8>, u64>,
    acked: Vec<Vec<u8>>,
}

impl Cluster {
    /// A cluster of `size` nodes (ids 1..=size) with a perfect network.
    pub fn new(size: u64, seed: u64) -> Cluster {
        let mut rng = StdRng::seed_from_u64(seed);
        let logger = Logger::root(slog::Discard, slog::o!());
        let peers: Vec<u64> = (1..=size).collect();
        let nodes = peers
            .iter()
            .map(|&id| Node::new(id, &peers, &mut rng, &logger))
            .collect();
        Cluster {
            seed,
            rng,
            logger,
            net: Network::default(),
            nodes,
            leaders: BTreeMap::new(),
            log: BTreeMap::new(),
            pending: BTreeMap::new(),
            acked: Vec::new(),
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn set_faults(&mut self, faults: Faults) {
        self.net.set_faults(faults);
    }

    fn node(&self, id: u64) -> &Node {
        let seed = self.seed;
        self.nodes
            .get((id as usize).wrapping_sub(1))
            .unwrap_or_else(|| panic!("no node {id} (seed {seed})"))
    }

    fn index(&self, id: u64) -> usize {
        self.node(id);
        id as usize - 1
    }

    pub fn is_up(&self, id: u64) -> bool {
        self.node(id).is_up()
    }

    /// The applied normal entries of a node, in order.
    pub fn applied(&self, id: u64) -> &[(u64, Vec<u8>)] {
        &self.node(id).applied
    }

    pub fn committed(&self, id: u64) -> Option<u64> {
        self.node(id).raw().map(|raw| raw.raft.raft_log.committed)
    }

    /// Proposals acknowledged to clients, in acknowledgement order.
    pub fn acked(&self) -> &[Vec<u8>] {
        &self.acked
    }

    /// The live leader with the highest term, as a client would find it.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|n| n.raw().map(|raw| (raw.raft.term, raw.raft.state, n.id)))
            .filter(|&(_, state, _)| state == StateRole::Leader)
            .map(|(term, _, id)| (term, id))
            .max()
            .map(|(_, id)| id)
    }

    /// Advances every live node's logical clock by one tick.
    pub fn tick(&mut self) {
        self.net.advance_clock();
        for node in &mut self.nodes {
            node.tick(&mut self.rng);
        }
        self.check();
    }

    /// Delivers one due message, picked at random; a message to a crashed
    /// node or across the partition is lost. Returns false if none was due.
    pub fn deliver_one(&mut self) -> bool {
        let Some(msg) = self.net.take_due(&mut self.rng) else {
            return false;
        };
        if self.net.connected(msg.from, msg.to) {
            if let Some(i) = (msg.to as usize).checked_sub(1) {
                if let Some(node) = self.nodes.get_mut(i) {
                    node.step(msg, &mut self.rng);
                }
            }
        }
        self.check();
        true
    }

    /// One turn of a node's Ready loop; acknowledges the proposals it applied.
    pub fn ready(&mut self, id: u64) {
        let i = self.index(id);
        let (msgs, applied) = self.nodes[i].handle_ready(&mut self.rng);
        self.net.send(&mut self.rng, msgs);
        for (index, data) in applied {
            let seen = self.log.entry(index).or_insert_with(|| data.clone());
            assert!(
                *seen == data,
                "node {id} applied {data:?} at index {index}, where {seen:?} was applied (seed {})",
                self.seed
            );
            if self.pending.get(&data) == Some(&id) {
                self.pending.remove(&data);
                self.acked.push(data);
            }
        }
        self.check();
    }

    pub fn ready_all(&mut self) {
        for id in self.ids() {
            self.ready(id);
        }
    }

    /// Runs Ready loops and delivers due messages until nothing is left to do.
    pub fn stabilize(&mut self) {
        for _ in 0..100_000 {
            self.ready_all();
            let delivered = self.deliver_one();
            if !delivered && !self.nodes.iter().any(|n| n.has_ready()) {
                return;
            }
        }
        panic!("cluster did not stabilize (seed {})", self.seed);
    }

    /// Proposes `data` through the current leader; returns the leader's id.
    /// Data must be unique in the run: it is how an applied entry is matched
    /// to its proposal.
    pub fn propose(&mut self, data: &[u8]) -> Result<u64, ProposeError> {
        let leader = self.leader().ok_or(ProposeError::NoLeader)?;
        self.propose_to(leader, data).map(|()| leader)
    }

    /// Proposes `data` on node `id`, whatever it believes it is.
    pub fn propose_to(&mut self, id: u64, data: &[u8]) -> Result<(), ProposeError> {
        let seed = self.seed;
        assert!(!data.is_empty(), "empty proposal (seed {seed})");
        assert!(
            !self.pending.contains_key(data) && !self.acked.iter().any(|a| a == data),
            "proposal {data:?} is not unique (seed {seed})"
        );
        let i = self.index(id);
        let result = self.nodes[i].propose(data.to_vec());
        self.check();
        result.map_err(|_| ProposeError::Refused)?;
        self.pending.insert(data.to_vec(), id);
        Ok(())
    }

    /// Cuts the network into groups; nodes in no group are isolated.
    pub fn partition(&mut self, groups: &[&[u64]]) {
        self.net.partition(groups);
    }

    pub fn heal(&mut self) {
        self.net.heal();
    }

    /// Crashes a node: memory is lost, storage survives. Its clients' pending
    /// proposals are never acknowledged.
    pub fn crash(&mut self, id: u64) {
        let i = self.index(id);
        self.nodes[i].crash();
        self.pending.retain(|_, &mut node| node != id);
        self.check();
    }

    pub fn restart(&mut self, id: u64) {
        let i = self.index(id);
        self.nodes[i].restart(&mut self.rng, &self.logger);
        let node = &self.nodes[i];
        let committed = self.committed(id).unwrap_or_default();
        assert!(
            committed == node.persisted_commit(),
            "node {id} restarted at commit {committed}, persisted {} (seed {})",
            node.persisted_commit(),
            self.seed
        );
        self.check();
    }
}
