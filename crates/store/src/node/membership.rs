//! Membership: configuration changes proposed and applied (etcd's
//! MemberAdd, MemberRemove and MemberPromote as raft `ConfChangeV2` entries),
//! this member's own removal, and the peer list the transport is given. See
//! "Membership" in the node's module doc.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use prost::Message as _;
use raft::eraftpb::{ConfChangeSingle, ConfChangeType, ConfChangeV2, Entry};
use raft::StateRole;
use skiff_proto::store::{log_entry, ConfChangeContext, LogEntry, Member};
use tokio::sync::oneshot;

use super::{expire_waiting, storage_err, Node, Proposal, Waiting};
use crate::error::{Result, StoreError};
use crate::mvcc::{MemberChange, Mvcc};
use crate::shared::read;

/// How often a member re-announces its name and client URLs until the log has them.
const PUBLISH_RETRY: Duration = Duration::from_secs(5);

/// The membership changes this member proposed, and the peers it knows.
pub(super) struct Membership {
    /// Membership changes of this member by context id.
    pending: HashMap<u64, Waiting<Vec<Member>>>,
    /// The context ids in `pending` that remove this member itself.
    removing_self: HashSet<u64>,
    next_id: u64,
    /// The peers the transport was given: member ID → peer URL.
    peers: HashMap<u64, String>,
    /// When this member next checks that the log has its name and client URLs.
    publish_after: Instant,
}

impl Membership {
    pub(super) fn new() -> Self {
        Membership {
            pending: HashMap::new(),
            removing_self: HashSet::new(),
            next_id: rand::random::<u64>() >> 1,
            peers: HashMap::new(),
            publish_after: Instant::now(),
        }
    }

    /// Answers the changes this member proposed that were applied, with the
    /// member list after them.
    pub(super) fn applied(&mut self, done: Vec<(u64, Result<()>)>, members: &[Member]) {
        for (id, result) in done {
            self.removing_self.remove(&id);
            if let Some(waiting) = self.pending.remove(&id) {
                waiting.answer(result.map(|()| members.to_vec()));
            }
        }
    }

    /// Answers every MemberRemove of this member that it proposed, with the
    /// remaining `members`: this member's removal is committed, whichever
    /// proposal it came from.
    fn answer_removals_of_self(&mut self, members: Vec<Member>) {
        for id in std::mem::take(&mut self.removing_self) {
            if let Some(waiting) = self.pending.remove(&id) {
                waiting.answer(Ok(members.clone()));
            }
        }
    }

    /// Answers the changes past their deadline with "request timed out".
    pub(super) fn expire(&mut self, now: Instant) {
        expire_waiting(&mut self.pending, now);
    }

    /// Every change waiting fails with `err`.
    pub(super) fn fail(&mut self, err: &StoreError) {
        for (_, w) in self.pending.drain() {
            w.answer(Err(err.clone()));
        }
    }
}

impl Node {
    pub(super) fn propose_conf_change(
        &mut self,
        change: MemberChange,
        respond: oneshot::Sender<Result<Vec<Member>>>,
    ) {
        if let Err(err) = self.check_conf_change(&change) {
            let _ = respond.send(Err(err));
            return;
        }
        let id = self.membership.next_id;
        self.membership.next_id += 1;
        let removes_self = change == MemberChange::Remove(self.id);
        let (member, change_type, node_id) = match &change {
            MemberChange::Add(member) => (
                Some(member.clone()),
                if member.is_learner {
                    ConfChangeType::AddLearnerNode
                } else {
                    ConfChangeType::AddNode
                },
                member.id,
            ),
            MemberChange::Promote(node) => (None, ConfChangeType::AddNode, *node),
            MemberChange::Remove(node) => (None, ConfChangeType::RemoveNode, *node),
        };
        let context = ConfChangeContext {
            proposer: self.id,
            id,
            member: member.or_else(|| {
                Some(Member {
                    id: node_id,
                    ..Default::default()
                })
            }),
        };
        let cc = conf_change(change_type, node_id);
        match self.raw.propose_conf_change(context.encode_to_vec(), cc) {
            Ok(()) => {
                self.membership.pending.insert(
                    id,
                    Waiting {
                        respond,
                        deadline: Instant::now() + self.request_timeout,
                    },
                );
                if removes_self {
                    self.membership.removing_self.insert(id);
                }
            }
            Err(_) => {
                let _ = respond.send(Err(self.no_leader_error()));
            }
        }
    }

    /// etcd's checks before a membership change is proposed.
    fn check_conf_change(&self, change: &MemberChange) -> Result<()> {
        let mvcc = read(&self.shared.mvcc)?;
        let members = mvcc.members();
        if self.raw.raft.has_pending_conf() {
            return Err(StoreError::ConfChangeInProgress);
        }
        mvcc.check_not_removed(change)?;
        match change {
            MemberChange::Add(member) => {
                if members.contains_key(&member.id) {
                    return Err(StoreError::MemberExists);
                }
                let taken = members
                    .values()
                    .flat_map(|m| &m.peer_urls)
                    .any(|url| member.peer_urls.contains(url));
                if taken {
                    return Err(StoreError::PeerUrlExists);
                }
            }
            MemberChange::Remove(id) => {
                if !members.contains_key(id) {
                    return Err(StoreError::MemberNotFound);
                }
            }
            MemberChange::Promote(id) => {
                let member = members.get(id).ok_or(StoreError::MemberNotFound)?;
                if !member.is_learner {
                    return Err(StoreError::MemberNotLearner);
                }
                if self.raw.raft.state != StateRole::Leader {
                    return Err(StoreError::NotLeader);
                }
                // etcd promotes a learner once it has 90% of the leader's log.
                let matched = self.raw.raft.prs().get(*id).map_or(0, |p| p.matched);
                let committed = self.raw.raft.raft_log.committed;
                if (matched as f64) < committed as f64 * 0.9 {
                    return Err(StoreError::LearnerNotReady);
                }
            }
        }
        Ok(())
    }

    /// Applies one configuration change to raft, the raft log's ConfState (made
    /// durable at once, before sled can record the entry as applied) and the
    /// member list. A change naming a removed member, proposed from a stale
    /// member list, is refused here by every member alike (as etcd validates
    /// it again when applying). Returns the proposer's context id and outcome
    /// when it was this member.
    pub(super) fn apply_conf_change(
        &mut self,
        mvcc: &mut Mvcc,
        entry: &Entry,
    ) -> Result<Option<(u64, Result<()>)>> {
        let context = match ConfChangeContext::decode(&entry.context[..]) {
            Ok(context) => context,
            Err(err) => {
                tracing::error!(index = entry.index, %err, "a membership change does not decode; skipped");
                mvcc.apply_empty(entry.index);
                return Ok(None);
            }
        };
        let member = context.member.clone().unwrap_or_default();
        // Rebuild the change raft agreed on from its context.
        let cc = conf_change_from_entry(entry)
            .unwrap_or_else(|| conf_change(ConfChangeType::AddNode, member.id));
        let change = match cc.changes.first().map(|c| c.get_change_type()) {
            Some(ConfChangeType::RemoveNode) => MemberChange::Remove(member.id),
            Some(ConfChangeType::AddNode)
                if mvcc.members().get(&member.id).is_some_and(|m| m.is_learner) =>
            {
                MemberChange::Promote(member.id)
            }
            _ => MemberChange::Add(member),
        };
        let mine = context.proposer == self.id;
        if let Err(err) = mvcc.check_not_removed(&change) {
            tracing::warn!(index = entry.index, ?change, %err, "a membership change names a removed member; ignored");
            mvcc.apply_empty(entry.index);
            return Ok(mine.then_some((context.id, Err(err))));
        }
        let conf_state = self
            .raw
            .apply_conf_change(&cc)
            .map_err(|e| StoreError::Storage(format!("applying a membership change: {e}")))?;
        self.log.set_conf_state(conf_state);
        self.log
            .sync()
            .map_err(storage_err("recording the membership"))?;
        tracing::info!(index = entry.index, ?change, "membership changed");
        mvcc.apply_member_change(entry.index, &change);
        if change == MemberChange::Remove(self.id) {
            // As etcd: a removed member stops rather than disturb the cluster
            // with elections it can no longer win.
            tracing::error!("the member has been permanently removed from the cluster");
            self.membership
                .answer_removals_of_self(mvcc.members().values().cloned().collect());
            self.shared.stop.cancel();
        }
        Ok(mine.then_some((context.id, Ok(()))))
    }

    /// A member restarted after applying its own removal is no longer in its
    /// own configuration: it would never campaign nor send anything a peer
    /// could refuse, so it stops at once.
    pub(super) fn stop_if_removed(&mut self) {
        let removed = read(&self.shared.mvcc).is_ok_and(|mvcc| mvcc.is_removed(self.id));
        if removed {
            tracing::error!("the member has been permanently removed from the cluster");
            self.shared.stop.cancel();
        }
    }

    /// A peer refused this member's messages because its applied state has
    /// this member removed: the removal is committed, though this member may
    /// never apply it (the leader stopped replicating to it). It stops, as
    /// etcd's does, answering a MemberRemove of itself it proposed as done.
    pub(super) fn removed_by_peer(&mut self, peer: u64) {
        if self.shared.stop.is_cancelled() {
            return;
        }
        tracing::error!(
            peer = %format!("{peer:x}"),
            "the member has been permanently removed from the cluster"
        );
        let members: Vec<Member> = read(&self.shared.mvcc)
            .map(|mvcc| {
                mvcc.members()
                    .values()
                    .filter(|m| m.id != self.id)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        self.membership.answer_removals_of_self(members);
        self.shared.stop.cancel();
    }

    /// Points the transport at every other member's peer URL.
    pub(super) fn sync_peers(&mut self) {
        let Ok(mvcc) = read(&self.shared.mvcc) else {
            return;
        };
        self.transport.set_removed(mvcc.removed_members());
        // A member joining an existing cluster knows nobody until the leader's
        // snapshot arrives; until then its peers are those of the member list
        // it learned its ID from.
        let members: Vec<Member> = if mvcc.members().is_empty() {
            self.shared.initial_peers.clone()
        } else {
            mvcc.members().values().cloned().collect()
        };
        drop(mvcc);
        let wanted: HashMap<u64, String> = members
            .iter()
            .filter(|m| m.id != self.id)
            .filter_map(|m| Some((m.id, m.peer_urls.first()?.clone())))
            .collect();
        for id in self.membership.peers.keys() {
            if !wanted.contains_key(id) {
                self.transport.remove_peer(*id);
            }
        }
        for (id, url) in &wanted {
            if self.membership.peers.get(id) != Some(url) {
                self.transport.set_peer(*id, url);
            }
        }
        self.membership.peers = wanted;
    }

    /// Proposes this member's name and client URLs until the log records them.
    pub(super) fn publish_attributes(&mut self, now: Instant) {
        if now < self.membership.publish_after || self.raw.raft.leader_id == raft::INVALID_ID {
            return;
        }
        let config = &self.shared.config;
        let wanted = Member {
            id: self.id,
            name: config.name.clone(),
            peer_urls: Vec::new(),
            client_urls: config.advertise_client_urls.clone(),
            is_learner: false,
        };
        let current = read(&self.shared.mvcc)
            .ok()
            .and_then(|mvcc| mvcc.members().get(&self.id).cloned());
        let Some(current) = current else { return };
        if current.name == wanted.name && current.client_urls == wanted.client_urls {
            self.membership.publish_after = now + PUBLISH_RETRY * 12;
            return;
        }
        self.membership.publish_after = now + PUBLISH_RETRY;
        self.propose(Proposal {
            entry: LogEntry {
                id: 0,
                proposer: self.id,
                request: Some(log_entry::Request::MemberAttributes(wanted)),
            },
            respond: None,
        });
    }
}

fn conf_change(change_type: ConfChangeType, node_id: u64) -> ConfChangeV2 {
    let mut single = ConfChangeSingle::default();
    single.set_change_type(change_type);
    single.node_id = node_id;
    let mut cc = ConfChangeV2::default();
    cc.mut_changes().push(single);
    cc
}

/// The ConfChangeV2 raft committed, decoded from the entry's data.
fn conf_change_from_entry(entry: &Entry) -> Option<ConfChangeV2> {
    use protobuf::Message as _;
    let mut cc = ConfChangeV2::default();
    cc.merge_from_bytes(&entry.data).ok()?;
    Some(cc)
}
