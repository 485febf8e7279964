//! The state the store's handle and its raft node share: the configuration,
//! the state machine behind its lock, the watch hub, the stop signal and the
//! raft status the node publishes.
//!
//! The handle ([`crate::Store`]) builds one [`Shared`] and gives the raft
//! thread an `Arc` of it; neither reaches into the other for anything else.
//! The lock helpers turn a poisoned lock (a panic while it was held) into a
//! storage error rather than a second panic.
//!
//! # Caveats
//! The state machine sits behind one `RwLock`: applies take it for writing,
//! reads for reading. There is no finer-grained locking.

use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use skiff_proto::store::Member;
use tokio_util::sync::CancellationToken;

use crate::config::{MemberIdentity, StoreConfig};
use crate::error::{Result, StoreError};
use crate::mvcc::Mvcc;
use crate::watch::WatchHub;

/// What the handle and the raft thread both hold.
pub(crate) struct Shared {
    pub(crate) config: StoreConfig,
    pub(crate) identity: MemberIdentity,
    pub(crate) mvcc: Arc<RwLock<Mvcc>>,
    pub(crate) hub: WatchHub,
    /// Cancelled when the member stops: closed, removed, or unable to write its log.
    pub(crate) stop: CancellationToken,
    /// Published by the raft thread after every turn.
    pub(crate) raft_status: Mutex<RaftStatus>,
    /// The members a member joining a running cluster talks to until the
    /// leader's snapshot brings the member list: the list it learned its ID
    /// from, else those `--initial-cluster` names.
    pub(crate) initial_peers: Vec<Member>,
}

impl Shared {
    /// The raft status as last published.
    pub(crate) fn raft_status(&self) -> RaftStatus {
        self.raft_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What the raft thread publishes after every turn, for headers and `Status`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftStatus {
    /// This member's ID.
    pub member_id: u64,
    /// The leader's ID as this member knows it; 0 when there is none.
    pub leader: u64,
    /// The current raft term.
    pub term: u64,
    /// The highest index known committed.
    pub commit_index: u64,
    /// The highest index applied to the state machine.
    pub applied_index: u64,
    /// The last index in this member's log.
    pub last_index: u64,
    /// Whether this member is a learner.
    pub is_learner: bool,
    /// Whether this member is the only voter, leads, and has applied everything
    /// committed (then every read is served locally).
    pub single_voter: bool,
}

impl RaftStatus {
    /// Whether this member leads.
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.member_id
    }
}

/// The state machine, for reading.
pub(crate) fn read(mvcc: &RwLock<Mvcc>) -> Result<RwLockReadGuard<'_, Mvcc>> {
    mvcc.read()
        .map_err(|_| StoreError::Storage("state machine lock poisoned by a panic".into()))
}

/// The state machine, for applying.
pub(crate) fn write(mvcc: &RwLock<Mvcc>) -> Result<RwLockWriteGuard<'_, Mvcc>> {
    mvcc.write()
        .map_err(|_| StoreError::Storage("state machine lock poisoned by a panic".into()))
}

/// Any other lock.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| StoreError::Storage("a lock was poisoned by a panic".into()))
}
