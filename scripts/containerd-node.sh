#!/usr/bin/env bash
# A containerd of skiff's own on this machine, for running the kubelet's containerd
# runtime by hand: its own root, state and socket under one directory, the overlayfs
# snapshotter, CRI disabled, so it neither uses nor disturbs a containerd the system runs.
# Needs root, containerd and runc (Debian: containerd runc containernetworking-plugins).
#
# Usage:
#   scripts/containerd-node.sh start [DIR]   start it (DIR defaults to /var/lib/skiff/containerd)
#   scripts/containerd-node.sh stop [DIR]    stop it and its shims
#   scripts/containerd-node.sh status [DIR]
# The socket is DIR/containerd.sock, containerd's log DIR/containerd.log. Pods live in
# the containerd namespace "skiff"; `ctr --address DIR/containerd.sock -n skiff containers ls`
# shows them.
set -euo pipefail

command=${1:-}
dir=${2:-/var/lib/skiff/containerd}
socket="$dir/containerd.sock"
pidfile="$dir/containerd.pid"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
    if running; then
        echo "containerd already runs (pid $(cat "$pidfile")), socket $socket"
        return
    fi
    mkdir -p "$dir"
    cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$socket"
TOML
    containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
        [ -S "$socket" ] && break
        running || { echo "containerd exited; see $dir/containerd.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "containerd runs (pid $(cat "$pidfile")), socket $socket"
}

stop() {
    # The shims name the socket on their command line. Remove the pods first
    # (through the kubelet): a container whose shim is killed here may outlive it.
    local pid
    for pid in $(pgrep -f -- "-address $socket" || true); do
        kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
    done
    if running; then
        kill "$(cat "$pidfile")"
    fi
    rm -f "$pidfile"
    echo "stopped"
}

case "$command" in
start) start ;;
stop) stop ;;
status) if running; then echo "running (pid $(cat "$pidfile")), socket $socket"; else echo "not running"; fi ;;
*)
    sed -n '2,13p' "$0" >&2
    exit 2
    ;;
esac
