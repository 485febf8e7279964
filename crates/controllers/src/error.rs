//! The controllers' error type.

/// What can stop a controller's step or the manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused a request or could not be reached.
    #[error(transparent)]
    Api(#[from] skiff_client::Error),
    /// Leader election could not be set up.
    #[error("leader election: {0}")]
    LeaderElection(skiff_client::Error),
    /// Some of a reconcile's writes failed; the key is retried.
    #[error("{failed} of {attempted} {what} failed, the first: {first}")]
    Partial {
        /// What was being written ("pod creations").
        what: &'static str,
        /// How many failed.
        failed: usize,
        /// How many were tried.
        attempted: usize,
        /// The first failure.
        first: skiff_client::Error,
    },
}
