//! The controllers against a real in-process API server, through the client.

mod common;
mod garbagecollector;
mod namespaces;
mod nodes;
mod workloads;
