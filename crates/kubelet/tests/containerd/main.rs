//! The containerd runtime against a real containerd, runc and the CNI
//! plugins: each test starts its own containerd (own root, state and socket
//! in a temporary directory, overlayfs snapshots), imports a busybox image
//! built from the node's `/bin/busybox`, and runs real pods on a bridge of
//! its own; the kubelet tests add an API server and the real kubelet. Needs
//! root; run with
//! `cargo test -p skiff-kubelet --features containerd-tests --test containerd`.
//!
//! Every test cleans up after itself, even when it fails: [`node::Node`]'s drop
//! removes the pods (network namespaces, CNI allocations), kills the shims
//! and containerd it started, unmounts what is left and deletes the bridge.
//!
//! - `node`: the containerd of a test and its cleanup.
//! - `runtime`: the runtime alone, call by call.
//! - `exec`: interactive exec alone: a conversation on FIFOs, a terminal
//!   with a resize.
//! - `kubelet`: the whole path — an API server, the real kubelet, a pod from
//!   creation to deletion, `pods/log` and `pods/exec`, a kubelet restart.
//! - `limits`: a pod's resource limits as cgroups, OOMKilled in its status.
//! - `bad_input`: a missing image, a missing command, a hanging probe, a
//!   tarball that is not OCI.

mod bad_input;
// The API server of the kubelet suite; not every helper is used here.
#[allow(dead_code)]
#[path = "../kubelet/common.rs"]
mod common;
mod exec;
mod kubelet;
mod limits;
mod node;
mod runtime;
