//! The client side of skiff's API: typed `Api<K>` handles, informers (list,
//! then watch, into an indexed cache), rate-limited work queues and Lease-based
//! leader election. The scheduler, controllers and kubelet are built from these.
//!
//! Data comes in from the API server's `skiff.api.v1.Api` gRPC service (over
//! TCP, or in-process with `skiff_apiserver::grpc::in_process_channel`) as
//! Kubernetes JSON, decoded into k8s-openapi types.
//!
//! # Layout
//! - [`client`]: [`Client`], one gRPC channel to the API server.
//! - [`api`]: [`Api<K>`], the typed verbs of one resource — get, list, create,
//!   replace, replace_status, patch, delete, watch — and [`WatchEvent`].
//! - [`params`]: the options of each verb ([`ListParams`], [`PostParams`],
//!   [`Patch`], [`DeleteParams`], [`WatchParams`]).
//! - [`error`]: [`Error`], carrying the Kubernetes Status of a refused request.
//! - [`informer`]: [`Informer`], list then watch into an indexed [`Store`], with
//!   handlers and a change stream; resumes and re-lists as client-go's reflector.
//! - [`queue`]: [`WorkQueue`], de-duplicating keys with per-key backoff.
//! - [`leader_election`]: [`LeaderElector`], one leader among candidates via a Lease.
//!
//! # Where to start
//! A controller is `Informer` → handlers add `ObjectKey`s to a `WorkQueue` →
//! workers `get` a key, read the `Store`, reconcile through an `Api<K>`, and
//! `done`/`forget` or `requeue_rate_limited` the key. The tests under
//! `tests/client/` show each piece against a real in-process API server.
//!
//! # Caveats
//! No authentication, no REST transport, no shared informer factory; each
//! module lists its own.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod client;
pub mod error;
pub mod informer;
pub mod leader_election;
pub mod params;
pub mod queue;

pub use api::{Api, DeleteOutcome, Object, ObjectList, WatchEvent};
pub use client::Client;
pub use error::Error;
pub use informer::{Change, Informer, InformerConfig, InformerStats, ObjectKey, Store};
pub use leader_election::{LeaderElectionConfig, LeaderElector};
pub use params::{
    DeleteParams, FieldValidation, ListParams, Patch, PostParams, PropagationPolicy, WatchParams,
};
pub use queue::{QueueConfig, TokenBucket, WorkQueue};
