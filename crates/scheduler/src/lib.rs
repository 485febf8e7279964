//! skiff's scheduler: picks a Node for every Pod without one.
//!
//! A scheduling cycle runs filter plugins, then score plugins, then binds; the
//! plugins are Kubernetes' own (NodeResourcesFit, TaintToleration, …) and Amazon
//! ECS's placement strategies (binpack, spread, random, distinctInstance, memberOf).
//!
//! # Layout
//! Empty so far: the scheduler's issue fills this room.
//!
//! # Where to start
//! docs/architecture.md.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
