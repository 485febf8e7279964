//! The client side of skiff's API, and the one way in to it: `Api<K>`
//! handles, discovery, informers (list, then watch, into an indexed cache),
//! rate-limited work queues and Lease-based leader election. The CLI, `skiff
//! bench api`, the scheduler, controllers and kubelet are built from these.
//!
//! It speaks kube-rs's vocabulary through kube-core: `K` is a
//! [`kube_core::Resource`] (every k8s-openapi type, or a [`DynamicObject`]
//! over a discovered [`ApiResource`]), and the verbs take and answer
//! kube-core's [`ListParams`], [`PostParams`], [`PatchParams`]/[`Patch`],
//! [`DeleteParams`], [`WatchParams`], [`ObjectList`] and [`WatchEvent`], so
//! code written against kube-rs ports with little change.
//!
//! Data comes in from the API server's `skiff.api.v1.Api` gRPC service (over
//! TCP, or in-process with `skiff_apiserver::grpc::in_process_channel`) as
//! Kubernetes JSON; a refused request's Kubernetes Status is read back with
//! `skiff_api::status::grpc`, the mapping the server encodes with.
//!
//! # Layout
//! - [`client`]: [`Client`], one gRPC channel to the API server, with the
//!   connect timeout and message limits of a [`ClientConfig`].
//! - [`api`]: [`Api<K>`], the verbs of one resource — get, list, create,
//!   replace, replace_status, patch, patch_status, delete, watch, and the
//!   `binding`, `status` and namespaces' `finalize` subresources.
//! - [`discovery`]: [`Discovery`], what the server serves and which resource
//!   a typed name (`po`, `deploy.apps`) or a kind means.
//! - `params`: how kube-core's verb options travel in skiff's requests.
//! - [`pod`]: a pod's `log` and `exec` ([`Api::logs`], [`Api::log_stream`],
//!   [`Api::exec`] → [`AttachedProcess`]), proxied by the API server to the kubelet.
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
//! ```no_run
//! use k8s_openapi::api::core::v1::Pod;
//! use skiff_client::{Api, Client, Informer, InformerConfig, ObjectKey, QueueConfig, WorkQueue};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn controller() -> Result<(), skiff_client::Error> {
//! let client = Client::connect("http://127.0.0.1:6443").await?;
//! let pods: Api<Pod> = Api::all(client);
//! let queue = WorkQueue::<ObjectKey>::new(QueueConfig::default());
//! let (on_add, on_update) = (queue.clone(), queue.clone());
//! let mut informer = Informer::new(pods, InformerConfig::default())
//!     .on_add(move |pod| on_add.add(ObjectKey::of(pod.as_ref())))
//!     .on_update(move |_, pod| on_update.add(ObjectKey::of(pod.as_ref())));
//! let cache = informer.store();
//! tokio::spawn(informer.run(CancellationToken::new()));
//! cache.wait_for_sync().await;
//! while let Some(key) = queue.get().await {
//!     // Level-triggered: look at the pod as it is now, whatever the event was.
//!     match cache.get_key(&key) {
//!         Some(pod) => tracing::info!(%key, phase = ?pod.status.as_ref().and_then(|s| s.phase.as_ref())),
//!         None => tracing::info!(%key, "gone"),
//!     }
//!     queue.forget(&key);
//!     queue.done(&key);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Caveats
//! No authentication, no REST transport, no shared informer factory, no
//! kubeconfig; each module lists its own.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod client;
pub mod discovery;
pub mod error;
pub mod events;
pub mod informer;
pub mod leader_election;
pub(crate) mod params;
pub mod pod;
pub mod queue;

pub use api::{Api, Object, RawEvent};
pub use client::{Client, ClientConfig};
pub use discovery::{Discovery, Served};
pub use either::Either;
pub use error::Error;
pub use events::{EventType, Occurrence, Recorder, Reporter};
pub use informer::{Change, Informer, InformerConfig, InformerStats, ObjectKey, Store};
pub use kube_core;
pub use kube_core::params::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
    ValidationDirective, WatchParams,
};
pub use kube_core::subresource::{AttachParams, LogParams};
pub use kube_core::{
    ApiResource, DynamicObject, GroupVersionKind, ObjectList, Resource, ResourceExt, Status,
    WatchEvent,
};
pub use leader_election::{LeaderElectionConfig, LeaderElector};
pub use pod::{AttachedProcess, StdinWriter, TerminalSize};
pub use queue::{QueueConfig, TokenBucket, WorkQueue};
