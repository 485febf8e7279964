//! The kubelet end to end: a real API server in-process, the kubelet's
//! `run`, and pods going through their lives on the process and hollow
//! runtimes; interactive exec on the process runtime (`exec`).

mod common;
mod exec;
mod hollow;
mod process;
mod scale;
