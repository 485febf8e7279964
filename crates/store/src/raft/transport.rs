//! The peer transport: raft messages and snapshots between members over gRPC
//! (`skiff.raft.v1`).
