//! skiff's API server: the only component that talks to the store.
//!
//! Requests are decoded, defaulted, validated, stored and watched by a
//! transport-agnostic [`Registry`]; a gRPC service and Kubernetes' REST API
//! sit on top of it, on one port.
//!
//! # Layout
//! - [`registry`]: every verb of every served resource — create, get, list,
//!   update, patch, delete, watch, pods/binding — over a [`Storage`], written
//!   once for all kinds; what a kind does differently (status on create,
//!   Service addresses, graceful pod deletion, namespace termination) is its
//!   strategy in `registry/strategy/`. A deleted namespace stays Terminating
//!   until the controller manager's namespace controller has emptied it and
//!   calls its `finalize` subresource.
//! - [`storage`]: the [`Storage`] trait and its two implementations: an
//!   in-process [`skiff_store::Store`] ([`LocalStorage`]) and a remote etcd v3
//!   endpoint list ([`EtcdStorage`]).
//! - [`watch_cache`]: one store watch per resource, fanned out to every client watch.
//! - [`grpc`]: the `skiff.api.v1.Api` service, with server reflection, on TCP
//!   or over an in-memory pipe (`grpc::in_process_channel`).
//! - `watch_rpc`: the `Watch` RPC written straight onto HTTP/2, one buffer per
//!   event; it knows the service only through its `OpenWatches` trait, so
//!   `grpc` depends on it and not the other way round.
//! - [`server`]: `skiff apiserver` — `run(config, shutdown)` on TCP; `serve`
//!   for a registry the caller built (`skiff up`). One port: TLS or plain TCP
//!   by the first byte, then gRPC or REST by each request's content type; the
//!   cluster CA and certificates (`server::pki`). Its connections' bytes go to
//!   the socket in batches (`skiff_proto::conn`): a change fanned out to many
//!   watchers costs a few system calls, not one per watcher.
//! - [`rest`]: Kubernetes' REST API on the same registry — request info,
//!   verbs and their query parameters, watch streams, Tables, discovery and
//!   health — for kubectl, client-go and kube-rs.
//! - `node_proxy`: `pods/log` and `pods/exec`, proxied to the pod's kubelet
//!   over HTTP/1.1 (the kubelet's contract is in its doc).
//! - `object`: decoding bodies (apiVersion/kind, unknown fields, size) and
//!   metadata helpers; `clock`: injected time and randomness.
//!
//! # Where to start
//! A create travels: gRPC `Create` ([`grpc`]) → [`Registry::create`] → decode →
//! the kind's strategy (`prepare_for_create`, then `skiff_api::admission`'s
//! defaults and validation, then allocation) → a txn "create if absent" in
//! the store → the resource's watch cache sees the event → every watcher gets ADDED.
//! Objects are kept under Kubernetes' etcd key layout (see
//! `skiff_api::resources`), so etcdctl shows what it would for Kubernetes.
//!
//! # Caveats
//! No authentication, authorization, admission webhooks, server-side apply,
//! or pods/exec over REST yet; the registry's and watch cache's
//! own caveats are in their docs.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
pub mod grpc;
mod node_proxy;
mod object;
pub mod registry;
pub mod rest;
pub mod server;
pub mod storage;
pub mod watch_cache;
mod watch_rpc;

pub use object::{EncodedObject, FieldValidation};
pub use registry::write::PatchType;
pub use registry::{
    DeleteOptions, ListOptions, Registry, RegistryConfig, Reply, WatchOptions, WriteOptions,
};
pub use storage::{EtcdStorage, LocalStorage, Storage, StorageError};
