//! Container images without a registry: OCI image layout tarballs imported
//! into containerd, and a builder for tiny images made from a few files.
//!
//! An image is a manifest naming a configuration (how to run it, and the
//! digest of each uncompressed layer, its *diff ID*) and a stack of layer
//! tars. containerd keeps the blobs in its content store, the name → manifest
//! link as an image record, and each unpacked layer stack as a snapshot named
//! by its chain ID ([`digest::chain_ids`]); a container's root is a writable
//! snapshot prepared on top of the image's.
//!
//! # Layout
//! - [`reference`]: image names in full (`busybox` → `docker.io/library/busybox:latest`).
//! - [`digest`]: SHA-256 digests and chain IDs.
//! - [`oci`]: the OCI JSON documents (index, manifest, config).
//! - [`layout`]: reading an OCI image layout tarball (pure).
//! - [`build`]: building one from a few files, such as a busybox (pure).
//! - [`store`]: the containerd side: import (Content Write, Images.Create,
//!   Diff.Apply onto prepared snapshots) and resolve.
//!
//! # Where to start
//! [`ImageStore::import`] for the import, [`build_oci_tarball`] for the builder.
//!
//! # Caveats
//! No registry pulls yet: an image not imported is `ErrImageNeverPull`. The
//! tarball is read into memory whole. A docker-archive (`manifest.json`
//! without `index.json`) is refused with a message saying so. Only the first
//! image of a layout's index is imported.

pub mod build;
pub mod digest;
pub mod layout;
pub mod oci;
pub mod reference;
pub mod store;

use std::path::Path;

pub use build::{build_oci_tarball, busybox_rootfs, busybox_tarball, ImageBuild, RootfsEntry};
pub use store::{ImageStore, ResolvedImage};

use crate::containerd::{ConnectError, Connection};

/// What reading, importing or resolving an image can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The tarball is not an OCI image layout.
    #[error("not an OCI image layout: {0}")]
    NotALayout(String),
    /// The tarball could not be read or written.
    #[error("image tarball: {0}")]
    Tar(#[from] std::io::Error),
    /// A JSON document of the image is malformed.
    #[error("invalid {what} JSON: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The parser's complaint.
        source: serde_json::Error,
    },
    /// A blob the image refers to is not in the tarball.
    #[error("blob {0} is referenced but missing")]
    MissingBlob(String),
    /// A blob does not hash to the digest it is named by.
    #[error("blob {path} does not match its name: its digest is {actual}")]
    DigestMismatch {
        /// The blob's path in the tarball.
        path: String,
        /// What it actually hashes to.
        actual: String,
    },
    /// No manifest for this machine's platform.
    #[error("no image for platform {0}")]
    NoPlatform(String),
    /// The image is inconsistent or not usable.
    #[error("{0}")]
    Invalid(String),
    /// containerd has no image by this name.
    #[error("image {0:?} is not present")]
    NotPresent(String),
    /// containerd could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// containerd refused a call.
    #[error("containerd {what}: {message}")]
    Containerd {
        /// The call.
        what: &'static str,
        /// containerd's message.
        message: String,
    },
}

impl ImageError {
    pub(crate) fn containerd(what: &'static str, status: tonic::Status) -> ImageError {
        ImageError::Containerd {
            what,
            message: status.message().to_string(),
        }
    }
}

impl ImageStore {
    /// Connects to containerd's socket for the images of `namespace` (for
    /// `skiff image import`, outside a kubelet).
    pub async fn connect(socket: &Path, namespace: &str) -> Result<ImageStore, ImageError> {
        let connection = Connection::connect(socket, namespace).await?;
        Ok(ImageStore::new(connection))
    }

    /// Imports one OCI image layout tarball file; returns the image's name.
    pub async fn import_file(&self, file: &Path) -> Result<String, ImageError> {
        let tarball = tokio::fs::read(file).await?;
        self.import(&tarball).await
    }

    /// Imports every `*.tar` file in `directory` (the kubelet's image
    /// directory), in name order; returns the names of the images imported.
    pub async fn import_directory(&self, directory: &Path) -> Result<Vec<String>, ImageError> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(directory)? {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "tar") {
                files.push(path);
            }
        }
        files.sort();
        let mut names = Vec::with_capacity(files.len());
        for file in files {
            names.push(self.import_file(&file).await?);
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests;
