//! The controllers against a real in-process API server, through the client.

mod common;
mod garbagecollector;
mod leader_election;
mod namespaces;
mod nodes;
mod workloads;
