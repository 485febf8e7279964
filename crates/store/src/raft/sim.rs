//! A deterministic simulation of raft clusters.
