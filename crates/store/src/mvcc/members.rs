//! The cluster's members as replicated state.
//!
//! Membership lives in the state machine, beside the key space, so that it is
//! in every snapshot and every member agrees on it at every applied index:
//! configuration changes from the raft log add, promote and remove members, and
//! each member's own announcement fills in its name and client URLs.

use std::collections::BTreeMap;

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

    /// Loads the members sled holds.
    pub(super) fn restore_members(&mut self) -> Result<()> {
        self.members.clear();
        for encoded in self.backend.members() {
            let member = Member::decode(encoded?.as_ref())
                .map_err(|e| StoreError::Storage(format!("bad member record: {e}")))?;
            self.members.insert(member.id, member);
        }
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
    pub(crate) fn apply_member_change(&mut self, index: u64, change: &MemberChange) {
        self.set_applied(index);
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
