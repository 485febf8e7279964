//! skiff's API server: the only component that talks to the store.
//!
//! Requests are decoded, validated, defaulted, admitted, stored and watched by a
//! transport-agnostic registry; a gRPC service (and later a REST front end) sits on top.
//!
//! # Layout
//! Empty so far: the API server's issue fills this room.
//!
//! # Where to start
//! docs/architecture.md traces a pod from `skiff apply` to the store.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
