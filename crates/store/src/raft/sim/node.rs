//! One simulated member: a `RawNode` over a `MemStorage`, and the Ready loop
//! that drives it.
//!
//! The `MemStorage` stands for the disk: it outlives a crash. The `RawNode`
//! (unstable entries, messages not yet taken, progress, timers) and the
//! applied sequence are memory: a crash drops them, and a restart rebuilds the
//! `RawNode` from storage and replays the committed log into an empty state
//! machine.

use raft::eraftpb::{ConfState, EntryType, Message};
use raft::storage::MemStorage;
use raft::{Config, RawNode, StateRole};
use rand::rngs::StdRng;
use rand::Rng;
use slog::Logger;

/// Ticks without a heartbeat before a follower campaigns (at least).
pub const ELECTION_TICK: usize = 10;
/// Ticks between a leader's heartbeats.
pub const HEARTBEAT_TICK: usize = 3;

/// An entry as the state machine saw it: its index and data. Empty entries
/// and conf changes are applied as empty data (they occupy their index).
pub type Applied = (u64, Vec<u8>);

pub struct Node {
    pub id: u64,
    storage: MemStorage,
    raw: Option<RawNode<MemStorage>>,
    /// The state machine: applied normal entries with data, in order.
    pub applied: Vec<Applied>,
    /// The last index applied, including skipped entries.
    pub applied_index: u64,
    /// The commit index last observed; it may only grow while the node is up.
    pub commit_floor: u64,
    /// (term, role) last observed, to spot when raft reset its timer.
    observed: (u64, StateRole),
}

impl Node {
    pub fn new(id: u64, peers: &[u64], rng: &mut StdRng, logger: &Logger) -> Node {
        let storage = MemStorage::new_with_conf_state(ConfState::from((peers.to_vec(), vec![])));
        let mut node = Node {
            id,
            storage,
            raw: None,
            applied: Vec::new(),
            applied_index: 0,
            commit_floor: 0,
            observed: (0, StateRole::Follower),
        };
        node.start(rng, logger);
        node
    }

    pub fn raw(&self) -> Option<&RawNode<MemStorage>> {
        self.raw.as_ref()
    }

    pub fn is_up(&self) -> bool {
        self.raw.is_some()
    }

    /// The commit index in the persisted HardState.
    pub fn persisted_commit(&self) -> u64 {
        self.storage.rl().hard_state().commit
    }

    /// Loses everything not in storage, including Ready work not yet persisted.
    pub fn crash(&mut self) {
        self.raw = None;
        self.applied.clear();
        self.applied_index = 0;
    }

    /// Rebuilds the node from what it persisted.
    pub fn restart(&mut self, rng: &mut StdRng, logger: &Logger) {
        assert!(self.raw.is_none(), "restart of running node {}", self.id);
        self.start(rng, logger);
    }

    fn start(&mut self, rng: &mut StdRng, logger: &Logger) {
        let config = Config {
            id: self.id,
            election_tick: ELECTION_TICK,
            heartbeat_tick: HEARTBEAT_TICK,
            ..Default::default()
        };
        config.validate().expect("simulation raft config is valid");
        let raw = RawNode::new(&config, self.storage.clone(), logger)
            .expect("a RawNode builds from its own MemStorage");
        self.commit_floor = raw.raft.raft_log.committed;
        self.raw = Some(raw);
        self.observed = (u64::MAX, StateRole::Follower);
        self.observe(rng);
    }

    /// raft-rs draws each election timeout from `thread_rng`, which would make
    /// runs unrepeatable. It redraws only when the node changes term or role,
    /// so after any such change the timeout is redrawn from the seeded RNG,
    /// before the next tick can read it.
    fn observe(&mut self, rng: &mut StdRng) {
        let Some(raw) = self.raw.as_mut() else { return };
        let now = (raw.raft.term, raw.raft.state);
        if now != self.observed {
            self.observed = now;
            let timeout = rng.random_range(ELECTION_TICK..2 * ELECTION_TICK);
            raw.raft.set_randomized_election_timeout(timeout);
        }
    }

    pub fn tick(&mut self, rng: &mut StdRng) {
        if let Some(raw) = self.raw.as_mut() {
            raw.tick();
        }
        self.observe(rng);
    }

    /// Steps a message from the network. raft-rs refuses local message types
    /// and unknown peers; a transport drops those, and so does the simulation.
    pub fn step(&mut self, msg: Message, rng: &mut StdRng) {
        if let Some(raw) = self.raw.as_mut() {
            let _refused = raw.step(msg);
        }
        self.observe(rng);
    }

    pub fn propose(&mut self, data: Vec<u8>) -> Result<(), raft::Error> {
        match self.raw.as_mut() {
            Some(raw) => raw.propose(vec![], data),
            None => Err(raft::Error::ProposalDropped),
        }
    }

    pub fn has_ready(&self) -> bool {
        self.raw.as_ref().is_some_and(|raw| raw.has_ready())
    }

    /// One turn of the Ready loop. Returns the messages to put on the network
    /// and the entries applied, in order.
    pub fn handle_ready(&mut self, rng: &mut StdRng) -> (Vec<Message>, Vec<Applied>) {
        let mut out = Vec::new();
        let mut applied = Vec::new();
        let Some(raw) = self.raw.as_mut() else {
            return (out, applied);
        };
        if !raw.has_ready() {
            return (out, applied);
        }
        let mut ready = raw.ready();
        // 1. Send messages: these may go out before the entries are persisted.
        out.extend(ready.take_messages());
        // 2. Apply the snapshot, if any (never, while logs are not compacted).
        if !ready.snapshot().is_empty() {
            let snap = ready.snapshot().clone();
            self.storage
                .wl()
                .apply_snapshot(snap)
                .expect("apply snapshot");
        }
        // 3. Apply committed entries to the state machine.
        applied.extend(
            ready
                .take_committed_entries()
                .into_iter()
                .map(entry_applied),
        );
        // 4. Persist new entries and the HardState.
        if !ready.entries().is_empty() {
            self.storage.wl().append(ready.entries()).expect("append");
        }
        if let Some(hs) = ready.hs() {
            self.storage.wl().set_hardstate(hs.clone());
        }
        // 5. Send the messages that had to wait for persistence (votes, acks).
        out.extend(ready.take_persisted_messages());
        // 6. Advance; the LightReady carries the new commit index, messages
        //    and committed entries that persistence unlocked.
        let mut light = raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.storage.wl().mut_hard_state().commit = commit;
        }
        out.extend(light.take_messages());
        applied.extend(
            light
                .take_committed_entries()
                .into_iter()
                .map(entry_applied),
        );
        // 7. Tell raft everything handed over has been applied.
        raw.advance_apply();
        for (index, data) in &applied {
            assert!(
                *index > self.applied_index,
                "node {} applied index {index} after {}",
                self.id,
                self.applied_index
            );
            self.applied_index = *index;
            if !data.is_empty() {
                self.applied.push((*index, data.clone()));
            }
        }
        self.observe(rng);
        (out, applied)
    }
}

fn entry_applied(entry: raft::eraftpb::Entry) -> Applied {
    let data = match entry.entry_type {
        EntryType::EntryNormal => entry.data.to_vec(),
        EntryType::EntryConfChange | EntryType::EntryConfChangeV2 => Vec::new(),
    };
    (entry.index, data)
}
