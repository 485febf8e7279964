//! The Kubernetes resource model that skiff serves: which kinds exist, their
//! group/version/resource, scope, key layout in the store, validation,
//! defaulting and the fields that field selectors may name.
//!
//! Everything here is free of transport and storage: objects are Kubernetes
//! JSON (`serde_json::Value`) and the functions are pure, so the gRPC service,
//! a later REST front end and tests all share them.
//!
//! # Layout
//! - [`resources`]: the served resources (group, version, resource, kind,
//!   scope, short names) and where each is kept in the store.
//! - [`status`]: [`status::ApiError`], a Kubernetes `Status` with its reason;
//!   [`status::grpc`], its gRPC form, shared by the API server, the client and the CLI.
//! - [`admission`]: defaulting and validation, with field paths in messages.
//! - [`labels`] and [`fields`]: label and field selectors.
//! - `names`: the name and key formats (RFC 1123 labels and subdomains,
//!   qualified names, label values, port names) that admission and label
//!   selectors both check.
//! - [`patch`]: JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic
//!   merge patch, and the table of how each kind's lists merge.
//! - [`clock`]: injected wall-clock time, shared by the API server and the kubelet.
//!
//! # Where to start
//! [`resources::RESOURCES`], the table of served kinds; then
//! [`admission::default`] and [`admission::validate`], which the API server's
//! registry runs on every write.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admission;
pub mod clock;
pub mod fields;
pub mod labels;
pub(crate) mod names;
pub mod patch;
pub mod printers;
pub mod resources;
pub mod status;
