//! The cluster's members as replicated state.
//!
//! Membership lives in the state machine, beside the key space, so that it is
//! in every snapshot and every member agrees on it at every applied index:
//! configuration changes from the raft log add, promote and remove members, and
//! each member's own announcement fills in its name and client URLs.
//!
//! # Removed members
//! As etcd keeps `members_removed` beside `members`, a removed member's ID is
//! remembered for good: it travels in every snapshot, the peer transport
//! refuses messages from it (so a removed member that never applied its own
//! removal learns of it and stops), and no change may name it again
//! ([`Mvcc::check_not_removed`], at proposal and again when the change is
//! applied, since a member proposing from a stale member list cannot know).
//!
//! A removed member's host is not lost for good: MemberAdd salts the new
//! member's ID with the time, as etcd's does, so the same peer URLs added
//! again make a new member with a fresh ID (started on an empty data
//! directory, it learns that ID from its peers).
//!
//! # Caveats
//! - The founding members' IDs are derived from their peer URLs and the
//!   cluster token alone, so that all of them compute the same IDs from
//!   `--initial-cluster`; only MemberAdd salts with the time.
//! - The removed set only grows: it is never compacted, as etcd's is not.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use skiff_proto::store::Member;

use super::Mvcc;
use crate::error::{Result, StoreError};

/// A membership change carried by a configuration-change entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MemberChange {
    /// A new voter or learner.
    Add(Member),
    /// A learner becomes a voter.
    Promote(u64),
    /// A member leaves.
    Remove(u64),
}

impl Mvcc {
    /// Every member, by ID.
    pub(crate) fn members(&self) -> &BTreeMap<u64, Member> {
        &self.members
    }

    /// Every member ever removed from the cluster, by ID.
    pub(crate) fn removed_members(&self) -> &BTreeSet<u64> {
        &self.removed
    }

    /// Whether `id` was removed from the cluster.
    pub(crate) fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    /// Refuses a change that names a removed member: its ID never returns
    /// (etcd's `ErrIDRemoved`, which its gRPC edge answers "member not found").
    pub(crate) fn check_not_removed(&self, change: &MemberChange) -> Result<()> {
        match change {
            MemberChange::Add(member) if self.is_removed(member.id) => {
                Err(StoreError::InvalidRequest(format!(
                    "member {:x} was removed from the cluster and cannot be added again \
                     (peer URLs {:?}); a new MemberAdd gives them a fresh ID",
                    member.id, member.peer_urls
                )))
            }
            MemberChange::Promote(id) | MemberChange::Remove(id) if self.is_removed(*id) => {
                Err(StoreError::MemberNotFound)
            }
            _ => Ok(()),
        }
    }

    /// Loads the members and removed members sled holds.
    pub(super) fn restore_members(&mut self) -> Result<()> {
        self.members.clear();
        for encoded in self.backend.members() {
            let member = Member::decode(encoded?.as_ref())
                .map_err(|e| StoreError::Storage(format!("bad member record: {e}")))?;
            self.members.insert(member.id, member);
        }
        self.removed = self.backend.removed_members().collect::<Result<_>>()?;
        Ok(())
    }

    /// Sets the first members of a new cluster, before any log entry.
    pub(crate) fn bootstrap_members(&mut self, members: &[Member]) {
        for member in members {
            self.store_member(member.clone());
        }
    }

    /// Marks `index` applied without changing the key space: an empty entry
    /// (a new leader's first) or a configuration change.
    pub(crate) fn apply_empty(&mut self, index: u64) {
        self.set_applied(index);
    }

    /// Applies a configuration change's effect on the member list at `index`.
    /// The caller checks [`Mvcc::check_not_removed`] first; a change naming a
    /// removed member changes nothing here.
    pub(crate) fn apply_member_change(&mut self, index: u64, change: &MemberChange) {
        self.set_applied(index);
        if self.check_not_removed(change).is_err() {
            return;
        }
        match change {
            MemberChange::Add(member) => {
                // A member re-added keeps whatever it announced before.
                let mut member = member.clone();
                if let Some(old) = self.members.get(&member.id) {
                    if member.name.is_empty() {
                        member.name = old.name.clone();
                    }
                    if member.client_urls.is_empty() {
                        member.client_urls = old.client_urls.clone();
                    }
                }
                self.store_member(member);
            }
            MemberChange::Promote(id) => {
                if let Some(mut member) = self.members.get(id).cloned() {
                    member.is_learner = false;
                    self.store_member(member);
                }
            }
            MemberChange::Remove(id) => {
                self.members.remove(id);
                self.backend.set_member(*id, None);
                self.removed.insert(*id);
                self.backend.add_removed_member(*id);
            }
        }
    }

    /// Records a member's announced name and client URLs; unknown members are ignored.
    pub(super) fn apply_member_attributes(&mut self, attributes: &Member) {
        if let Some(mut member) = self.members.get(&attributes.id).cloned() {
            member.name = attributes.name.clone();
            member.client_urls = attributes.client_urls.clone();
            self.store_member(member);
        }
    }

    fn store_member(&mut self, member: Member) {
        self.backend
            .set_member(member.id, Some(member.encode_to_vec()));
        self.members.insert(member.id, member);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64) -> Member {
        Member {
            id,
            name: format!("m{id}"),
            peer_urls: vec![format!("http://127.0.0.{id}:2380")],
            client_urls: Vec::new(),
            is_learner: false,
        }
    }

    fn open(db: &sled::Db) -> Mvcc {
        Mvcc::open(db.open_tree("kv").unwrap()).unwrap()
    }

    /// Two founders, then member 2 is removed at index 5.
    fn with_two_removed(db: &sled::Db) -> Mvcc {
        let mut mvcc = open(db);
        mvcc.bootstrap_members(&[member(1), member(2)]);
        mvcc.apply_member_change(5, &MemberChange::Remove(2));
        mvcc.commit().unwrap();
        mvcc
    }

    #[test]
    fn a_removed_member_leaves_the_list_and_is_remembered() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mvcc = with_two_removed(&db);
        assert_eq!(mvcc.members().keys().copied().collect::<Vec<_>>(), [1]);
        assert!(mvcc.is_removed(2));
        assert!(!mvcc.is_removed(1));
        assert_eq!(mvcc.removed_members(), &BTreeSet::from([2]));
        assert_eq!(mvcc.applied_index(), 5);
    }

    #[test]
    fn a_removed_id_is_never_accepted_again() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mut mvcc = with_two_removed(&db);

        let add = MemberChange::Add(member(2));
        let err = mvcc.check_not_removed(&add).unwrap_err().to_string();
        assert!(
            err.contains("was removed from the cluster and cannot be added again"),
            "{err}"
        );
        assert_eq!(
            mvcc.check_not_removed(&MemberChange::Remove(2)),
            Err(StoreError::MemberNotFound)
        );
        assert_eq!(
            mvcc.check_not_removed(&MemberChange::Promote(2)),
            Err(StoreError::MemberNotFound)
        );
        // Other members are not concerned.
        assert_eq!(
            mvcc.check_not_removed(&MemberChange::Add(member(3))),
            Ok(())
        );
        assert_eq!(mvcc.check_not_removed(&MemberChange::Remove(1)), Ok(()));

        // Even committed (proposed from a stale member list), it changes nothing.
        mvcc.apply_member_change(6, &add);
        assert!(!mvcc.members().contains_key(&2));
        assert_eq!(mvcc.applied_index(), 6);
        // A member it never knew announcing itself is ignored too.
        mvcc.apply_member_attributes(&member(2));
        assert!(!mvcc.members().contains_key(&2));
    }

    #[test]
    fn removed_members_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let mvcc = with_two_removed(&db);
            drop(mvcc); // waits for the writer
            db.flush().unwrap();
        }
        let db = crate::mvcc::open_sled(&sled::Config::new().path(dir.path())).unwrap();
        let mvcc = open(&db);
        assert_eq!(mvcc.removed_members(), &BTreeSet::from([2]));
        assert_eq!(mvcc.members().keys().copied().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn removed_members_travel_in_a_snapshot() {
        let source_db = sled::Config::new().temporary(true).open().unwrap();
        let mut source = with_two_removed(&source_db);
        let mut snapshot = Vec::new();
        source.write_snapshot(&mut snapshot).unwrap();

        // The receiver knew both members and nothing of the removal.
        let db = sled::Config::new().temporary(true).open().unwrap();
        let mut receiver = open(&db);
        receiver.bootstrap_members(&[member(1), member(2)]);
        receiver.commit().unwrap();
        receiver.restore_snapshot(&mut snapshot.as_slice()).unwrap();
        assert!(receiver.is_removed(2));
        assert_eq!(receiver.members().keys().copied().collect::<Vec<_>>(), [1]);

        // And a snapshot from before the removal forgets it again.
        let mut older = Vec::new();
        let fresh_db = sled::Config::new().temporary(true).open().unwrap();
        let mut fresh = open(&fresh_db);
        fresh.bootstrap_members(&[member(1), member(2)]);
        fresh.write_snapshot(&mut older).unwrap();
        receiver.restore_snapshot(&mut older.as_slice()).unwrap();
        assert!(!receiver.is_removed(2));
    }
}
