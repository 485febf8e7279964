//! The invariants checked after every step, and the end-of-run convergence
//! that makes "eventually" checkable.

use raft::StateRole;

use super::{Cluster, Faults};

impl Cluster {
    /// Panics, naming the seed, if an invariant is broken.
    pub(super) fn check(&mut self) {
        let seed = self.seed;
        for node in &mut self.nodes {
            let Some(raw) = node.raw() else { continue };
            let (term, id) = (raw.raft.term, node.id);
            if raw.raft.state == StateRole::Leader {
                let first = *self.leaders.entry(term).or_insert(id);
                assert!(
                    first == id,
                    "two leaders in term {term}: {first} and {id} (seed {seed})"
                );
            }
            let committed = raw.raft.raft_log.committed;
            assert!(
                committed >= node.commit_floor,
                "node {id} commit index went back from {} to {committed} (seed {seed})",
                node.commit_floor
            );
            node.commit_floor = committed;
        }
    }

    /// Every two nodes' applied sequences agree on their common prefix.
    /// (`ready` already checks each applied entry against every earlier one.)
    pub fn check_prefixes(&self) {
        for a in &self.nodes {
            for b in &self.nodes {
                let upto = a.applied_index.min(b.applied_index);
                let prefix = |n: &super::Node| {
                    n.applied
                        .iter()
                        .take_while(|(i, _)| *i <= upto)
                        .cloned()
                        .collect::<Vec<_>>()
                };
                assert!(
                    prefix(a) == prefix(b),
                    "nodes {} and {} disagree up to index {upto} (seed {})",
                    a.id,
                    b.id,
                    self.seed
                );
            }
        }
    }

    /// Ends the faults, restarts every crashed node, and ticks until one
    /// leader has committed its whole log and every node has applied it.
    pub fn settle(&mut self, max_ticks: u64) {
        self.heal();
        self.set_faults(Faults::default());
        for id in self.ids() {
            if !self.is_up(id) {
                self.restart(id);
            }
        }
        for _ in 0..max_ticks {
            self.stabilize();
            if self.converged() {
                self.check_prefixes();
                return;
            }
            self.tick();
        }
        panic!(
            "cluster did not converge in {max_ticks} ticks (seed {})",
            self.seed
        );
    }

    fn converged(&self) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let Some(raw) = self.node(leader).raw() else {
            return false;
        };
        let commit = raw.raft.raft_log.committed;
        commit == raw.raft.raft_log.last_index()
            && self.nodes.iter().all(|n| {
                n.raw().is_some_and(|r| {
                    r.raft.leader_id == leader && r.raft.raft_log.committed == commit
                }) && n.applied_index == commit
            })
    }

    /// Every acknowledged write is applied on every node.
    pub fn check_acked_applied(&self) {
        for node in &self.nodes {
            for data in &self.acked {
                assert!(
                    node.applied.iter().any(|(_, d)| d == data),
                    "acknowledged {:?} missing on node {} (seed {})",
                    String::from_utf8_lossy(data),
                    node.id,
                    self.seed
                );
            }
        }
    }
}
