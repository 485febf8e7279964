//! skiff's node agent: registers its Node, renews its Lease, and runs the pods
//! bound to it through a container runtime (containerd with the runc v2 shim, plain
//! processes, or a hollow simulation for scale tests).
//!
//! # Layout
//! - [`runtime`]: the [`runtime::Runtime`] trait every container runtime implements
//!   (CRI's calls: sandboxes, containers, exec), and its error and status types;
//!   [`runtime::containerd`] runs pods as real containers through containerd.
//! - [`image`]: OCI image layout tarballs, imported into containerd, and a
//!   builder for tiny ones.
//! - [`cni`]: pod networking through the standard CNI plugins.
//!
//! # Where to start
//! docs/architecture.md.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cni;
pub mod image;
pub mod runtime;
