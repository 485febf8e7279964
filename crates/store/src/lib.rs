//! skiff-store: an etcd-compatible MVCC key-value store.
//!
//! # Layout
//! Filled by the store's issue.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
