//! The kubelet's error type.

use crate::runtime::RuntimeError;

/// What can stop the kubelet or one of its steps.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("API request failed: {0}")]
    Api(#[from] skiff_client::Error),
    /// The container runtime failed.
    #[error("container runtime: {0}")]
    Runtime(#[from] RuntimeError),
    /// A file under the kubelet's root directory could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The kubelet's server could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
