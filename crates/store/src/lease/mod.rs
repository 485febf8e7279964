//! Leases: TTLs that keys hang on, as etcd's `server/lease`. When a lease
//! ends — revoked by a client, or expired — every key attached to it is
//! deleted, in one revision, on every member.
//!
//! A lease's existence, granted TTL and keys are replicated state, applied
//! from the log by the state machine (`mvcc::lease`, with its records in the
//! backend). Its *deadline* is not: the [`Leases`] here keep deadlines in
//! memory ([`lessor::Lessor`]), move one forward on every keep-alive, and the
//! leader's expiry check ([`expiry::expire_leases`]) proposes a revoke for
//! every lease past its deadline, so the deletion goes through the log like
//! any write. See <https://etcd.io/docs/v3.5/learning/api/#lease-api>.
//!
//! The raft node tells the leases what it applied ([`Leases::applied`]): a
//! keep-alive that came through the log renews the deadline on every member,
//! so that the leader, which alone expires leases, hears of keep-alives sent
//! to any member.
//!
//! # Layout
//! - [`Leases`] (here): grant, keep-alive, time-to-live and list, as the
//!   store's handle serves them.
//! - [`lessor`]: the deadlines, a plain value driven by the caller's clock.
//! - [`expiry`]: the periodic check that revokes expired leases through the log.
//!
//! # Caveats
//! - etcd checkpoints remaining TTLs so a new leader can continue them;
//!   skiff, like etcd without `--experimental-enable-lease-checkpoint`, gives
//!   every lease its full TTL again after a restart or a change of leader.
//! - Keep-alives renew the deadline on the member that receives them; with
//!   more than one voter they go through the log, so that the leader hears.

pub(crate) mod expiry;
pub(crate) mod lessor;

use std::sync::{Mutex, RwLock};

use skiff_proto::etcdserverpb::{
    LeaseGrantRequest, LeaseLeasesResponse, LeaseStatus, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse, ResponseHeader,
};
use skiff_proto::store::{log_entry, LogEntry};
use tokio::time::Instant;

use crate::error::{Result, StoreError};
use crate::mvcc::{Applied, Mvcc, Response, MAX_LEASE_TTL};
use crate::shared::{lock, read};
use lessor::Lessor;

/// The deadlines of the live leases, shared by the store's handle, the raft
/// node and the expiry check.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    lessor: Mutex<Lessor>,
}

impl Leases {
    /// Checks a grant request and completes it: a TTL below `min_ttl` is
    /// raised to it, and ID 0 gets an ID no live lease has.
    pub(crate) fn prepare_grant(
        &self,
        mut req: LeaseGrantRequest,
        min_ttl: i64,
        mvcc: &RwLock<Mvcc>,
    ) -> Result<LeaseGrantRequest> {
        if req.ttl > MAX_LEASE_TTL {
            return Err(StoreError::LeaseTtlTooLarge);
        }
        if req.id < 0 {
            return Err(StoreError::InvalidRequest(format!(
                "lease ID {} is negative",
                req.id
            )));
        }
        req.ttl = req.ttl.max(min_ttl);
        if req.id == 0 {
            req.id = unused_lease_id(&*read(mvcc)?);
        }
        Ok(req)
    }

    /// A lease was granted: its countdown starts from its full TTL.
    pub(crate) fn granted(&self, id: i64, ttl: i64) -> Result<()> {
        lock(&self.lessor)?.renew(id, ttl, Instant::now());
        Ok(())
    }

    /// What the raft node applied: a keep-alive that went through the log
    /// renews the lease here, whoever proposed it.
    pub(crate) fn applied(&self, entry: &LogEntry, result: &Result<Applied>) {
        if let (
            Some(log_entry::Request::LeaseKeepAlive(req)),
            Ok(Applied {
                response: Response::LeaseKeepAlive(ttl),
                ..
            }),
        ) = (&entry.request, result)
        {
            if let Ok(mut lessor) = self.lessor.lock() {
                lessor.renew(req.id, *ttl, Instant::now());
            }
        }
    }

    /// Renews lease `id` to its full TTL without going through the log (a
    /// lone voter); returns the TTL.
    pub(crate) fn keep_alive_local(&self, mvcc: &RwLock<Mvcc>, id: i64) -> Result<i64> {
        let ttl = {
            let mvcc = read(mvcc)?;
            mvcc.leases()
                .get(&id)
                .map(|l| l.ttl)
                .ok_or(StoreError::LeaseNotFound)?
        };
        lock(&self.lessor)?.renew(id, ttl, Instant::now());
        Ok(ttl)
    }

    /// A lease's remaining and granted TTL, and optionally its keys (etcd's
    /// `LeaseTimeToLive`). An unknown lease has TTL -1, as in etcd.
    pub(crate) fn time_to_live(
        &self,
        mvcc: &Mvcc,
        req: &LeaseTimeToLiveRequest,
        header: ResponseHeader,
    ) -> Result<LeaseTimeToLiveResponse> {
        let header = Some(header);
        let Some(lease) = mvcc.leases().get(&req.id) else {
            return Ok(LeaseTimeToLiveResponse {
                header,
                id: req.id,
                ttl: -1,
                ..Default::default()
            });
        };
        let remaining = lock(&self.lessor)?
            .remaining(req.id, Instant::now())
            .unwrap_or(lease.ttl);
        Ok(LeaseTimeToLiveResponse {
            header,
            id: req.id,
            ttl: remaining,
            granted_ttl: lease.ttl,
            keys: if req.keys {
                lease.keys.iter().cloned().collect()
            } else {
                Vec::new()
            },
        })
    }

    /// Every live lease (etcd's `LeaseLeases`).
    pub(crate) fn list(mvcc: &Mvcc, header: ResponseHeader) -> LeaseLeasesResponse {
        LeaseLeasesResponse {
            header: Some(header),
            leases: mvcc.leases().keys().map(|&id| LeaseStatus { id }).collect(),
        }
    }
}

/// A random positive lease ID no live lease has.
fn unused_lease_id(mvcc: &Mvcc) -> i64 {
    loop {
        let id = rand::random::<i64>() & i64::MAX;
        if id != 0 && !mvcc.leases().contains_key(&id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use skiff_proto::etcdserverpb::LeaseKeepAliveRequest;

    use super::*;

    fn keep_alive(id: i64) -> LogEntry {
        LogEntry {
            id: 1,
            proposer: 1,
            request: Some(log_entry::Request::LeaseKeepAlive(LeaseKeepAliveRequest {
                id,
            })),
        }
    }

    fn applied(response: Response) -> Result<Applied> {
        Ok(Applied {
            revision: 1,
            response,
            events: Vec::new(),
        })
    }

    fn remaining(leases: &Leases, id: i64) -> Option<i64> {
        let lessor = leases.lessor.lock().expect("the lessor lock");
        lessor.remaining(id, Instant::now())
    }

    #[test]
    fn a_keep_alive_applied_from_the_log_renews_its_lease_on_every_member() {
        let leases = Leases::default();
        leases.applied(&keep_alive(7), &applied(Response::LeaseKeepAlive(30)));
        assert_eq!(remaining(&leases, 7), Some(30));
    }

    #[test]
    fn a_keep_alive_of_an_unknown_lease_renews_nothing() {
        let leases = Leases::default();
        leases.applied(&keep_alive(7), &Err(StoreError::LeaseNotFound));
        assert_eq!(remaining(&leases, 7), None);
    }
}
