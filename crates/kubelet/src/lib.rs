//! skiff's node agent: registers its Node, renews its Lease, and runs the pods
//! bound to it through a container runtime (containerd with the runc v2 shim, plain
//! processes, or a hollow simulation for scale tests).
//!
//! # Layout
//! Empty so far: the kubelet's issue fills this room.
//!
//! # Where to start
//! docs/architecture.md.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
