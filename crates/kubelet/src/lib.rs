//! skiff's node agent: registers its Node, renews its Lease, and runs the pods
//! bound to it through a container runtime (containerd with the runc v2 shim, plain
//! processes, or a hollow simulation for scale tests).
//!
//! # Layout
//! - [`runtime`]: the [`runtime::Runtime`] trait every container runtime implements
//!   (CRI's calls: sandboxes, containers, exec), and its error and status types.
//!
//! # Where to start
//! docs/architecture.md.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod runtime;
