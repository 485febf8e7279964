//! The client side of skiff's API: typed `Api<K>` handles, informers (list,
//! then watch, into an indexed cache), rate-limited work queues and Lease-based
//! leader election. The scheduler, controllers and kubelet are built from these.
//!
//! # Layout
//! Empty so far: the API server's issue fills this room.
//!
//! # Where to start
//! docs/architecture.md.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
