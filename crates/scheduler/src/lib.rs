//! skiff's scheduler: picks a Node for every Pod without one.
//!
//! A scheduling cycle runs filter plugins, then score plugins, then binds; the
//! plugins are Kubernetes' own (NodeResourcesFit, TaintToleration, …) and Amazon
//! ECS's placement strategies (binpack, spread, random, distinctInstance, memberOf).
//!
//! Data comes in from informers on Pods, Nodes and PodDisruptionBudgets
//! (through skiff-client) into the [`cache`] and the [`queue`]; it goes out as
//! Bindings (`pods/binding`), PodScheduled conditions, FailedScheduling
//! Events, and, when preemption runs, deleted victims and
//! `status.nominatedNodeName`.
//!
//! # Layout
//! - [`framework`]: the extension points as traits, `NodeInfo`, `Snapshot`,
//!   `Status`, and the runtime that runs one profile over a snapshot.
//! - [`plugins`]: Kubernetes' plugins, one module each, and their registry.
//! - [`ecs`]: ECS placement strategies and constraints, with the cluster
//!   query language.
//! - [`profile`]: the YAML configuration (KubeSchedulerConfiguration's profiles).
//! - [`queue`]: the scheduling queue (active, backoff, unschedulable).
//! - [`cache`]: nodes and pods, assumed pods, and incremental snapshots.
//! - [`scheduler`]: the shell — informers, the cycle loop, binding, events,
//!   leader election — with [`run`].
//! - [`bench`]: the `skiff bench scheduler` workload.
//!
//! # Where to start
//! [`framework::Framework::schedule`] is one cycle; [`scheduler`] is the loop
//! around it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bench;
pub mod cache;
pub mod ecs;
mod error;
pub mod framework;
pub mod plugins;
pub mod profile;
pub mod queue;
pub mod scheduler;
#[cfg(test)]
mod testing;

pub use error::Error;
pub use scheduler::{run, Config};
