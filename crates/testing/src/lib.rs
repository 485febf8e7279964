//! A whole skiff control plane inside a test process: start a `TestCluster`,
//! point a client at it, and tear it down when the test ends.
//!
//! # Layout
//! Empty so far: it grows as the store and the API server land.
//!
//! # Where to start
//! docs/architecture.md.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
