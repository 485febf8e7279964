//! skiff-client against a real API server running in this process: a
//! Registry over a Store in a temporary directory, reached over gRPC through
//! an in-memory connection that a test can cut and heal.

mod api;
mod common;
mod events;
mod informer;
mod kubelet;
mod leader_election;
mod pod;
