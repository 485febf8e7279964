//! The Kubernetes resource model that skiff serves: which kinds exist, their
//! group/version/resource, scope, key layout in the store, validation,
//! defaulting and the fields that field selectors may name.
//!
//! # Layout
//! Empty so far: the API server's issue fills this room.
//!
//! # Where to start
//! docs/architecture.md shows where this crate sits between the store and the API server.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
