//! Raft's `Ready`, handled as raft-rs's recipe has it, one numbered step at a
//! time — send, apply snapshot, apply committed, persist, advance — and the
//! proposals that feed it.

use std::sync::Arc;
use std::time::Instant;

use prost::Message as _;
use raft::eraftpb::{Entry, EntryType, Snapshot};
use raft::RawNode;
use skiff_proto::store::{LogEntry, Member};

use super::{raft_config, storage_err, Node, Proposal, Waiting};
use crate::error::{Result, StoreError};
use crate::mvcc::Applied;
use crate::shared::{read, write};

impl Node {
    pub(super) fn no_leader_error(&self) -> StoreError {
        if self.raw.raft.leader_id == raft::INVALID_ID {
            StoreError::NoLeader
        } else {
            StoreError::LeaderChanged
        }
    }

    pub(super) fn propose(&mut self, proposal: Proposal) {
        let data = proposal.entry.encode_to_vec();
        match self.raw.propose(Vec::new(), data) {
            Ok(()) => {
                if let Some(respond) = proposal.respond {
                    self.pending.insert(
                        proposal.entry.id,
                        Waiting {
                            respond,
                            deadline: Instant::now() + self.request_timeout,
                        },
                    );
                }
            }
            Err(_) => {
                if let Some(respond) = proposal.respond {
                    let _ = respond.send(Err(self.no_leader_error()));
                }
            }
        }
    }

    /// When the leader changes, proposals still waiting were made under the old
    /// one and may have died with it: they are answered "leader changed" (their
    /// outcome unknown, as etcd's) rather than left to time out, so clients
    /// retry against the new leader at once.
    pub(super) fn notice_leader_change(&mut self) {
        let leader = self.raw.raft.leader_id;
        if leader == self.known_leader {
            return;
        }
        let previous = std::mem::replace(&mut self.known_leader, leader);
        if previous == raft::INVALID_ID {
            return;
        }
        tracing::info!(
            from = %format!("{previous:x}"),
            to = %format!("{leader:x}"),
            term = self.raw.raft.term,
            "leader changed"
        );
        for (_, w) in self.pending.drain() {
            w.answer(Err(StoreError::LeaderChanged));
        }
    }

    /// One `Ready`, handled in the order raft requires.
    pub(super) fn handle_ready(&mut self) -> Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        // 1. Send the messages that may leave before the entries are durable
        //    (a leader's appends: it may persist in parallel, thesis §10.2.1).
        self.transport.send(ready.take_messages());
        // 2. Install the leader's snapshot.
        if !ready.snapshot().is_empty() {
            let snapshot = ready.snapshot().clone();
            self.install_snapshot(&snapshot)?;
        }
        // 3. Apply what was committed, and note the ReadIndex answers.
        self.apply(ready.take_committed_entries())?;
        self.reads.indexes_known(ready.take_read_states());
        // 4. Persist the new entries and HardState, one fsync for the batch.
        if let Err(err) = self.persist(&ready) {
            // Nothing of this Ready may be acknowledged or sent.
            return self.recover_from_log_failure(err, ready.entries());
        }
        // Only now the messages that promise the entries are on disk (votes,
        // append acknowledgements).
        self.transport.send(ready.take_persisted_messages());
        // 5. Advance, and apply what that made committed.
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            let mut hard_state = self.log.hard_state();
            hard_state.commit = commit;
            self.log.set_hard_state(hard_state);
        }
        self.transport.send(light.take_messages());
        self.apply(light.take_committed_entries())?;
        self.raw.advance_apply();
        self.reads.release(self.raw.raft.raft_log.applied);
        Ok(())
    }

    /// Appends the Ready's entries and HardState and fsyncs them.
    fn persist(&mut self, ready: &raft::Ready) -> std::result::Result<(), crate::wal::WalError> {
        let mut dirty = false;
        if !ready.entries().is_empty() {
            self.log.append(ready.entries())?;
            dirty = true;
        }
        if let Some(hard_state) = ready.hs() {
            self.log.set_hard_state(hard_state.clone());
            dirty = true;
        }
        if dirty || ready.must_sync() {
            self.log.sync()?;
        }
        self.durable_last = self.log.last_index();
        Ok(())
    }

    /// The log refused a write (a full disk, say): the proposals in it fail,
    /// the log is cut back to what is durable, and raft restarts from there,
    /// so the member keeps serving reads and takes writes again once the disk
    /// does. A log that cannot even be cut back stops the member.
    fn recover_from_log_failure(
        &mut self,
        err: crate::wal::WalError,
        entries: &[Entry],
    ) -> Result<()> {
        tracing::error!(%err, "writing the raft log failed; the batch is refused");
        let failure = StoreError::LogWrite(err.to_string());
        for entry in entries {
            let Ok(request) = LogEntry::decode(&entry.data[..]) else {
                continue;
            };
            if request.proposer == self.id {
                if let Some(waiting) = self.pending.remove(&request.id) {
                    waiting.answer(Err(failure.clone()));
                }
            }
        }
        self.membership.fail(&failure);
        self.reads.fail_sent(&failure);
        self.log
            .rollback(self.durable_last)
            .map_err(storage_err("rolling the raft log back"))?;
        let applied = read(&self.shared.mvcc)?.applied_index();
        let reader = self.log.reader_with_snapshots(self.snapshot.source());
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        self.raw = RawNode::new(
            &raft_config(&self.shared.config, self.id, applied),
            reader,
            &logger,
        )
        .map_err(|e| StoreError::Storage(format!("restarting raft: {e}")))?;
        self.campaign_if_alone();
        Ok(())
    }

    /// A lone voter need not wait out an election timeout to lead.
    pub(super) fn campaign_if_alone(&mut self) {
        let voters = self.raw.raft.prs().conf().voters().ids();
        if voters.len() == 1 && voters.contains(self.id) {
            let _ = self.raw.campaign();
        }
    }

    /// Replaces the state machine with a snapshot from the leader.
    fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<()> {
        let meta = snapshot.get_metadata();
        tracing::info!(
            index = meta.index,
            term = meta.term,
            bytes = snapshot.data.len(),
            "installing a snapshot from the leader"
        );
        // Our own snapshot in the making is older than the leader's, and it
        // reads the tree about to be replaced.
        self.snapshot.abandon(&self.shared);
        // The state is replaced: the next snapshot of ours starts a new chain.
        self.snapshot.save_installed(meta, &snapshot.data)?;
        let revision = {
            let mut mvcc = write(&self.shared.mvcc)?;
            mvcc.restore_snapshot(&mut &snapshot.data[..])?;
            mvcc.commit()?;
            mvcc.current_revision()
        };
        self.log
            .apply_snapshot(meta)
            .and_then(|()| self.log.sync())
            .map_err(storage_err("recording the snapshot in the raft log"))?;
        self.snapshot.installed_at(meta.index);
        self.shared.hub.jump_to(revision);
        self.sync_peers();
        Ok(())
    }

    /// Applies committed entries in order, then announces and answers them.
    fn apply(&mut self, entries: Vec<Entry>) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut done: Vec<(Option<Waiting<Applied>>, Result<Applied>)> = Vec::new();
        let mut conf_done: Vec<(u64, Result<()>)> = Vec::new();
        let mut members_changed = false;
        {
            let shared = Arc::clone(&self.shared);
            let mut mvcc = write(&shared.mvcc)?;
            for entry in entries {
                if entry.index <= mvcc.applied_index() {
                    continue;
                }
                match entry.get_entry_type() {
                    EntryType::EntryNormal if entry.data.is_empty() => {
                        mvcc.apply_empty(entry.index)
                    }
                    EntryType::EntryNormal => match LogEntry::decode(&entry.data[..]) {
                        Ok(request) => {
                            let result = mvcc.apply(entry.index, &request);
                            self.leases.applied(&request, &result);
                            let waiting = if request.proposer == self.id {
                                self.pending.remove(&request.id)
                            } else {
                                None
                            };
                            if waiting.is_some() || result.is_ok() {
                                done.push((waiting, result));
                            }
                        }
                        Err(err) => {
                            tracing::error!(index = entry.index, %err, "a log entry does not decode; skipped");
                            mvcc.apply_empty(entry.index);
                        }
                    },
                    EntryType::EntryConfChange => mvcc.apply_empty(entry.index),
                    EntryType::EntryConfChangeV2 => {
                        if let Some(done) = self.apply_conf_change(&mut mvcc, &entry)? {
                            conf_done.push(done);
                        }
                        members_changed = true;
                    }
                }
            }
            mvcc.commit()?;
        }
        for (waiting, mut result) in done {
            if let Ok(applied) = &mut result {
                if !applied.events.is_empty() {
                    self.shared
                        .hub
                        .notify(applied.revision, std::mem::take(&mut applied.events));
                }
            }
            if let Some(waiting) = waiting {
                waiting.answer(result);
            }
        }
        if members_changed {
            self.sync_peers();
            let members: Vec<Member> = read(&self.shared.mvcc)?
                .members()
                .values()
                .cloned()
                .collect();
            self.membership.applied(conf_done, &members);
        }
        Ok(())
    }
}
