//! skiff's controllers: node lifecycle, Job, Endpoints, ReplicaSet, Deployment,
//! garbage collection, namespaces and CronJob, each a level-triggered reconcile
//! loop over informers, run together by a controller manager.
//!
//! # Layout
//! Empty so far: the controllers' issue fills this room.
//!
//! # Where to start
//! docs/architecture.md.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
