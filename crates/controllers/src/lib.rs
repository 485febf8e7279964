//! skiff's controllers: ReplicaSet, Deployment, Job, Endpoints, node
//! lifecycle, garbage collection, namespaces, CronJob and ServiceAccount, each
//! a level-triggered reconcile loop over informers, run together by a
//! controller manager under leader election.
//!
//! # Layout
//! - [`meta`]: owner references, adoption and release, label selectors.
//! - [`pods`]: pod predicates (active, ready, available), the deletion order,
//!   the pod a template makes.
//! - [`replicaset`]: keeps `replicas` pods of a template running.
//!
//! # Where to start
//! Each controller is a pure `reconcile(observed, now) -> Plan` in its
//! module's `mod.rs`, table-tested beside it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod deployment;
pub mod endpoints;
pub mod expectations;
pub mod job;
pub mod meta;
pub mod pods;
pub mod replicaset;

#[cfg(test)]
mod fixtures;
