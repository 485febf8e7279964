//! The kubelet end to end: a real API server in-process, the kubelet's
//! `run`, and pods going through their lives on the process and hollow
//! runtimes.

mod common;
mod hollow;
mod process;
mod scale;
