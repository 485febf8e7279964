//! The scheduler's errors, as its callers see them.

use std::path::PathBuf;

/// What can go wrong running the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile file could not be read.
    #[error("reading scheduler config {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The profile file is not valid: it names the file and the field.
    #[error("invalid scheduler config {path}: {field}: {message}")]
    InvalidConfig {
        /// The file ("<inline>" when the config was given as text).
        path: String,
        /// The field at fault, as a path (`profiles[0].plugins.score.enabled[1].weight`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A call to the API server failed.
    #[error(transparent)]
    Client(#[from] skiff_client::Error),
}
