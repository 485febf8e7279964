#!/usr/bin/env bash
# Two builds of skiff side by side: the same workloads against each, in interleaved
# rounds, with one load generator, so that a change can be shown to leave the servers
# no slower (or to make them faster).
#
#   scripts/bench-builds.sh BEFORE_BINARY AFTER_BINARY
#
# Each round starts a fresh server of each build (a store for `kv`, `skiff up` with only
# the store and the API server for the `api-*` workloads), runs one workload against it
# and stops it. The load generator is AFTER_BINARY's `skiff bench` unless BENCH_CLIENT
# names another binary. Prints each workload's rounds and the median of each build.
#
# Environment: BENCH_ROUNDS (default 3), BENCH_DURATION (default 8s), BENCH_WORKLOADS
# (default "kv api-create api-list api-watch").
set -euo pipefail

[[ $# -eq 2 ]] || {
    echo "usage: $0 BEFORE_BINARY AFTER_BINARY" >&2
    exit 2
}
BEFORE=$1
AFTER=$2
CLIENT=${BENCH_CLIENT:-$AFTER}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-8s}
WORKLOADS=${BENCH_WORKLOADS:-kv api-create api-list api-watch}
STORE_PORT=${BENCH_STORE_PORT:-23791}
API_PORT=${BENCH_API_PORT:-36443}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/bench-rounds.sh
source "$ROOT/scripts/bench-rounds.sh"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/skiff-builds.XXXXXX")
SERVER_PID=

log() { echo "bench-builds: $*" >&2; }

stop_server() {
    if [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for binary in "$BEFORE" "$AFTER" "$CLIENT"; do
    [[ -x $binary ]] || {
        log "$binary is not an executable"
        exit 2
    }
done

# Waits until something accepts connections on port $1 of 127.0.0.1.
wait_port() {
    local _
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# Starts the server build $1 needs for workload $2, in a fresh data directory.
start_server() {
    local binary=$1 workload=$2 dir
    dir=$(mktemp -d "$TMP/data.XXXXXX")
    if [[ $workload == kv ]]; then
        "$binary" store --data-dir "$dir" --listen-client-urls "http://127.0.0.1:$STORE_PORT" \
            >"$dir.log" 2>&1 &
        SERVER_PID=$!
        wait_port "$STORE_PORT"
    else
        local extra=()
        # Builds with more components than the store and the API server can leave them out.
        if "$binary" up --help | grep -q -- '--disable'; then
            extra=(--disable scheduler,controller-manager,kubelet)
        fi
        "$binary" up --data-dir "$dir" --listen "127.0.0.1:$API_PORT" \
            --listen-client-urls "http://127.0.0.1:$STORE_PORT" "${extra[@]}" \
            >"$dir.log" 2>&1 &
        SERVER_PID=$!
        wait_port "$API_PORT"
    fi
}

# Runs workload $1 against the running server; prints "throughput|p50|p99".
measure() {
    local json
    case $1 in
    kv) json=$("$CLIENT" bench kv --endpoints "http://127.0.0.1:$STORE_PORT" --op put \
        --clients 16 --duration "$DURATION" --output json) ;;
    api-create) json=$("$CLIENT" bench api --server "http://127.0.0.1:$API_PORT" \
        --workload create --duration "$DURATION" --output json) ;;
    api-list) json=$("$CLIENT" bench api --server "http://127.0.0.1:$API_PORT" \
        --workload list --output json 2>/dev/null) ;;
    api-watch) json=$("$CLIENT" bench api --server "http://127.0.0.1:$API_PORT" \
        --workload watch --duration "$DURATION" --output json) ;;
    esac
    python3 -c '
import json, sys
r = json.loads(sys.argv[1])
lat = r.get("latency") or {}
print("%.1f|%s|%s" % (r["throughput"], lat.get("p50_us", "?"), lat.get("p99_us", "?")))
' "$json"
}

declare -A RESULT
for round in $(seq 1 "$BENCH_ROUNDS"); do
    for workload in $WORKLOADS; do
        for build in $(round_order "$round" before after); do
            binary=$BEFORE
            [[ $build == after ]] && binary=$AFTER
            if ! start_server "$binary" "$workload"; then
                log "the $build build's server did not start for $workload"
                stop_server
                continue
            fi
            if result=$(measure "$workload"); then
                RESULT["$build/$workload/$round"]=$result
                log "round $round $workload $build: $result"
            else
                log "round $round $workload $build: the benchmark failed"
            fi
            stop_server
        done
    done
done

echo "workload | build | median throughput/s | p50 µs | p99 µs | rounds (throughput)"
for workload in $WORKLOADS; do
    for build in before after; do
        series="$build/$workload"
        rounds=$(for r in $(seq 1 "$BENCH_ROUNDS"); do
            v=${RESULT["$series/$r"]:-}
            [[ -n $v ]] && printf '%s ' "${v%%|*}"
        done)
        median=$(median_round "$series")
        if [[ -n $median ]]; then
            IFS='|' read -r tp p50 p99 <<<"${RESULT["$series/$median"]}"
            echo "$workload | $build | $tp | $p50 | $p99 | $rounds"
        else
            echo "$workload | $build | - | - | - | (no result)"
        fi
    done
done
