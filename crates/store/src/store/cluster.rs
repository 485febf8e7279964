//! Membership on the handle: etcd's `Cluster` service (MemberList,
//! MemberAdd, MemberRemove, MemberPromote). Changes go to the raft node as
//! configuration changes (`node::membership`).

use skiff_proto::store::Member;
use tokio::sync::oneshot;

use super::Store;
use crate::config::added_member_id;
use crate::error::{Result, StoreError};
use crate::mvcc::MemberChange;
use crate::node::Input;
use crate::shared::read;

impl Store {
    /// The cluster's members.
    pub fn member_list(&self) -> Result<Vec<Member>> {
        Ok(read(&self.inner.shared.mvcc)?
            .members()
            .values()
            .cloned()
            .collect())
    }

    /// Adds a member (a voter, or a learner) reached at `peer_urls`; returns it
    /// and the new member list once the change is applied here. Its ID is
    /// salted with the time (`config::added_member_id`), so peer URLs of a removed
    /// member can be added again, as a new member.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        is_learner: bool,
    ) -> Result<(Member, Vec<Member>)> {
        if peer_urls.is_empty() {
            return Err(StoreError::InvalidRequest(
                "member add needs at least one peer URL".into(),
            ));
        }
        let member = Member {
            id: added_member_id(
                &peer_urls,
                &self.inner.shared.config.initial_cluster_token,
                unix_nanos(),
            ),
            name: String::new(),
            peer_urls,
            client_urls: Vec::new(),
            is_learner,
        };
        let members = self
            .change_members(MemberChange::Add(member.clone()))
            .await?;
        Ok((member, members))
    }

    /// Removes a member; returns the remaining members.
    pub async fn member_remove(&self, id: u64) -> Result<Vec<Member>> {
        self.change_members(MemberChange::Remove(id)).await
    }

    /// Promotes a learner to a voter once it has caught up; returns the members.
    pub async fn member_promote(&self, id: u64) -> Result<Vec<Member>> {
        self.change_members(MemberChange::Promote(id)).await
    }

    async fn change_members(&self, change: MemberChange) -> Result<Vec<Member>> {
        let (respond, answer) = oneshot::channel();
        self.send(Input::ConfChange(change, respond))?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }
}

/// Nanoseconds since the Unix epoch; 0 on a clock set before it.
fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
