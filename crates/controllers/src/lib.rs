//! skiff's controllers: ReplicaSet, Deployment, Job, Endpoints (with
//! EndpointSlices), CronJob, node lifecycle, ServiceAccount, the garbage
//! collector and the namespace controller, each a level-triggered reconcile loop
//! over shared informers, run together by a controller manager under
//! Lease-based leader election.
//!
//! Data comes in through skiff-client's informers (list, then watch, into
//! caches) and goes out through its typed `Api<K>` writes; nothing else.
//!
//! # Layout
//! - [`manager`]: [`run`], the controller manager: leader election, then
//!   every enabled controller.
//! - `context`: [`Config`] and what each controller is built from;
//!   `informers`: one informer per kind, shared by the controllers; `worker`:
//!   the loop that takes keys off a queue and reconciles them; `clock`: now;
//!   `metadata`: objects of any resource with their metadata only.
//! - [`replicaset`]: keeps `replicas` pods of a template running.
//! - [`deployment`]: rolls templates out through ReplicaSets (ECS's services).
//! - [`job`]: runs pods to completion, counted exactly once.
//! - [`endpoints`]: the addresses behind each Service, as Endpoints and EndpointSlices.
//! - [`cronjob`]: Jobs on a cron schedule in a time zone (ECS's scheduled tasks).
//! - [`namespace`]: empties a Terminating namespace of every discovered
//!   namespaced resource, then finalizes it.
//! - [`nodelifecycle`]: nodes whose Lease went quiet become Unknown, are
//!   tainted, and their pods evicted, at a limited rate.
//! - [`garbagecollector`]: deletes dependents of deleted owners over the
//!   owner-reference graph of every discovered resource (Background,
//!   Foreground, Orphan).
//! - [`serviceaccount`]: a `default` ServiceAccount in each namespace.
//! - [`meta`], [`pods`], [`expectations`]: what the controllers share —
//!   owner references and adoption, pod predicates and ordering, and the
//!   record of writes not yet seen in the cache.
//! - `events`, `writes`, `error`: Warning Events, shared writes, [`Error`].
//!
//! # Where to start
//! Each controller is a pure `reconcile(observed, now) -> Plan` in its
//! module's `mod.rs`, table-tested beside it, and a thin `controller.rs`
//! that feeds it from informers and applies its plan. Read
//! `replicaset/mod.rs`, then `replicaset/controller.rs`.
//!
//! # Caveats
//! Each module lists what it leaves out.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod clock;
mod context;
pub mod cronjob;
pub mod deployment;
pub mod endpoints;
mod error;
mod events;
pub mod expectations;
pub mod garbagecollector;
mod informers;
pub mod job;
pub mod manager;
pub mod meta;
mod metadata;
pub mod namespace;
pub mod nodelifecycle;
pub mod pods;
pub mod replicaset;
pub mod serviceaccount;
mod worker;
mod writes;

pub use context::{Config, CONTROLLERS};
pub use error::Error;
pub use manager::run;

#[cfg(test)]
mod fixtures;
