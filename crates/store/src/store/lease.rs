//! Leases on the handle: etcd's `Lease` service. Grants and revokes go
//! through the log; the deadlines, and what a keep-alive does to them, are
//! the lease module's (`crate::lease`).

use std::sync::{Arc, Mutex};

use skiff_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseGrantResponse, LeaseKeepAliveRequest, LeaseLeasesResponse,
    LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse,
};
use skiff_proto::store::{log_entry, LogEntry};

use super::{unexpected, Store};
use crate::error::Result;
use crate::lease::expiry::expire_leases;
use crate::lease::Leases;
use crate::mvcc::Response;
use crate::node::{Input, Proposal};
use crate::shared::{lock, read, Shared};

impl Store {
    /// Grants a lease (etcd's `LeaseGrant`): ID 0 lets the store choose one; a TTL
    /// below the minimum is raised to it.
    pub async fn lease_grant(&self, req: LeaseGrantRequest) -> Result<LeaseGrantResponse> {
        let shared = &self.inner.shared;
        let req =
            self.inner
                .leases
                .prepare_grant(req, shared.config.min_lease_ttl, &shared.mvcc)?;
        let (id, ttl) = (req.id, req.ttl);
        let resp = propose_as!(self, log_entry::Request::LeaseGrant(req), LeaseGrant)?;
        self.inner.leases.granted(id, ttl)?;
        Ok(resp)
    }

    /// Revokes a lease, deleting its keys (etcd's `LeaseRevoke`).
    pub async fn lease_revoke(&self, req: LeaseRevokeRequest) -> Result<LeaseRevokeResponse> {
        propose_as!(self, log_entry::Request::LeaseRevoke(req), LeaseRevoke)
    }

    /// Renews a lease to its full TTL (one `LeaseKeepAlive` message); returns
    /// the TTL. In a cluster the renewal goes through the log, so that the
    /// leader, which alone expires leases, hears of it wherever it arrived.
    pub async fn lease_keep_alive(&self, id: i64) -> Result<i64> {
        if !self.raft_status().single_voter {
            let request = log_entry::Request::LeaseKeepAlive(LeaseKeepAliveRequest { id });
            return match self.propose(request).await? {
                (Response::LeaseKeepAlive(ttl), _) => Ok(ttl),
                (other, _) => Err(unexpected(other)),
            };
        }
        self.inner
            .leases
            .keep_alive_local(&self.inner.shared.mvcc, id)
    }

    /// A lease's remaining and granted TTL, and optionally its keys (etcd's
    /// `LeaseTimeToLive`). An unknown lease has TTL -1, as in etcd.
    pub fn lease_time_to_live(
        &self,
        req: &LeaseTimeToLiveRequest,
    ) -> Result<LeaseTimeToLiveResponse> {
        let mvcc = read(&self.inner.shared.mvcc)?;
        let header = self.header(mvcc.current_revision());
        self.inner.leases.time_to_live(&mvcc, req, header)
    }

    /// Every live lease (etcd's `LeaseLeases`).
    pub fn lease_leases(&self) -> Result<LeaseLeasesResponse> {
        let mvcc = read(&self.inner.shared.mvcc)?;
        let header = self.header(mvcc.current_revision());
        Ok(Leases::list(&mvcc, header))
    }
}

/// Starts the leader's lease check (`crate::lease::expiry`), which proposes
/// the revokes of expired leases to the raft thread through `inputs`.
pub(super) fn spawn_lease_expiry(
    shared: &Arc<Shared>,
    leases: Arc<Leases>,
    inputs: std::sync::mpsc::Sender<Input>,
) {
    let proposer = shared.identity.member_id;
    let inputs = Mutex::new(inputs);
    // A revoke nobody waits on.
    let propose_revoke = move |id: i64| {
        let proposal = Proposal {
            entry: LogEntry {
                id: 0,
                proposer,
                request: Some(log_entry::Request::LeaseRevoke(LeaseRevokeRequest { id })),
            },
            respond: None,
        };
        lock(&inputs)
            .map(|tx| tx.send(Input::Propose(proposal)).is_ok())
            .unwrap_or(false)
    };
    tokio::spawn(expire_leases(
        Arc::downgrade(shared),
        leases,
        propose_revoke,
    ));
}
