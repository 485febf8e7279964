//! The store's errors, named for what went wrong from the caller's side.
//!
//! The texts are etcd's own, because etcd clients (etcdctl, clientv3, the
//! `etcd-client` crate) recognise errors by their message. The mapping to gRPC
//! status codes lives in one place: `grpc::status`.

/// Everything a store operation can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A request named no key.
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    /// `ignore_value` or `ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// `ignore_value` together with a value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// `ignore_lease` together with a lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// A txn with more operations than the store allows.
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    /// Two writes to the same key in one txn branch.
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// The encoded request is larger than the store accepts.
    #[error("etcdserver: request is too large")]
    RequestTooLarge,
    /// A read or watch at a revision that compaction has dropped.
    #[error("mvcc: required revision has been compacted")]
    Compacted {
        /// The revision the store is compacted to.
        compact_revision: i64,
    },
    /// A read at a revision the store has not reached.
    #[error("mvcc: required revision is a future revision")]
    FutureRevision,
    /// A lease ID that no live lease has.
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    /// A grant with an ID already in use.
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    /// A grant with a TTL above the maximum.
    #[error("etcdserver: too large lease TTL")]
    LeaseTtlTooLarge,
    /// The disk refused a write (full, read-only, failing); nothing was applied.
    #[error("etcdserver: write to the log failed, nothing was applied: {0}")]
    LogWrite(String),
    /// No member is leader (an election is running, or this member is cut off).
    #[error("etcdserver: no leader")]
    NoLeader,
    /// The leader changed while the request was in flight; its outcome is unknown.
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    /// The request was not applied in time; its outcome is unknown.
    #[error("etcdserver: request timed out")]
    Timeout,
    /// Only the leader can do this.
    #[error("etcdserver: not leader")]
    NotLeader,
    /// A learner serves only serializable reads.
    #[error("etcdserver: rpc not supported for learner")]
    NotSupportedForLearner,
    /// A membership change named a member that is not in the cluster.
    #[error("etcdserver: member not found")]
    MemberNotFound,
    /// A member with this ID is already in the cluster.
    #[error("etcdserver: member ID already exist")]
    MemberExists,
    /// Another member already uses one of these peer URLs.
    #[error("etcdserver: Peer URLs already exists")]
    PeerUrlExists,
    /// Promotion of a member that is not a learner.
    #[error("etcdserver: can only promote a learner member")]
    MemberNotLearner,
    /// Promotion of a learner whose log is still far behind the leader's.
    #[error("etcdserver: can only promote a learner member which is in sync with leader")]
    LearnerNotReady,
    /// Another membership change has not finished yet.
    #[error("etcdserver: another membership change is in progress; retry when it is applied")]
    ConfChangeInProgress,
    /// The store is shutting down or its apply loop stopped.
    #[error("etcdserver: server stopped")]
    Stopped,
    /// The on-disk state could not be read or written.
    #[error("etcdserver: storage error: {0}")]
    Storage(String),
    /// A malformed request that fits none of the cases above.
    #[error("etcdserver: {0}")]
    InvalidRequest(String),
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        StoreError::Storage(err.to_string())
    }
}

/// Results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
