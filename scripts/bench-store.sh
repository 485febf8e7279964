#!/usr/bin/env bash
# Side-by-side benchmark of etcd and skiff-store on this machine, in one run.
#
# Builds skiff in release, starts a real etcd and `skiff store` on their own temporary data
# directories, drives both with the same `skiff bench kv` workloads, loads a million keys into
# each and reads each process's resident memory. Prints a markdown table on stdout; progress
# and the raw reports go to stderr. See docs/benchmarks.md for what each row means.
#
# Environment:
#   BENCH_DURATION     seconds per timed workload              (default 10)
#   BENCH_LOAD_KEYS    keys of the memory load                 (default 1000000)
#   BENCH_VALUE_SIZE   bytes per value                         (default 256)
#   BENCH_WATCH_RATE   puts per second in the watch workload   (default 1000)
#   BENCH_TARGETS      which stores to run: "etcd skiff", "etcd" or "skiff" (default both)
#   ETCD               the etcd binary                         (default etcd, Debian's etcd-server)
#   SKIFF_BIN          use this skiff binary instead of building one in release
#   BENCH_ETCD_PORT, BENCH_ETCD_PEER_PORT, BENCH_SKIFF_PORT   ports (23790, 23800, 23791)
set -euo pipefail

BENCH_DURATION=${BENCH_DURATION:-10}
BENCH_LOAD_KEYS=${BENCH_LOAD_KEYS:-1000000}
BENCH_VALUE_SIZE=${BENCH_VALUE_SIZE:-256}
BENCH_WATCH_RATE=${BENCH_WATCH_RATE:-1000}
BENCH_TARGETS=${BENCH_TARGETS:-etcd skiff}
ETCD=${ETCD:-etcd}

ETCD_PORT=${BENCH_ETCD_PORT:-23790}
ETCD_PEER_PORT=${BENCH_ETCD_PEER_PORT:-23800}
SKIFF_PORT=${BENCH_SKIFF_PORT:-23791}
ETCD_URL=http://127.0.0.1:$ETCD_PORT
ETCD_PEER_URL=http://127.0.0.1:$ETCD_PEER_PORT
SKIFF_URL=http://127.0.0.1:$SKIFF_PORT

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench.XXXXXX")
PIDS=()

log() { echo "bench-store: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# Stops a store this script started once its rows are measured, so that its background work
# (a snapshot, a backend commit after the load) does not run beside the other store's rows.
stop() {
    local pid=$1
    if kill "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
    fi
}

# Stop only the processes this script started, then remove its temporary directory.
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop "$pid"
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- 1. the skiff binary -------------------------------------------------------------------
if [[ -n ${SKIFF_BIN:-} ]]; then
    SKIFF=$SKIFF_BIN
else
    log "building skiff (release)"
    (cd "$ROOT" && cargo build --release --quiet -p skiff)
    SKIFF="${CARGO_TARGET_DIR:-$ROOT/target}/release/skiff"
fi
[[ -x $SKIFF ]] || die "no skiff binary at $SKIFF"

bench() { "$SKIFF" bench kv --value-size "$BENCH_VALUE_SIZE" "$@"; }

# ---- 2. the stores -------------------------------------------------------------------------
# Waits until the store at $2 answers a put, and fails if process $1 died meanwhile (which
# also catches another process already holding the port).
wait_ready() {
    local pid=$1 url=$2 name=$3 i
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || die "$name exited; its log: $(tail -n 20 "$TMP/$name.log")"
        if bench --endpoints "$url" --op put --total 1 --clients 1 --key-prefix /bench-ready/ \
            --output json 2>/dev/null | grep -q '"errors":0'; then
            return 0
        fi
        sleep 0.2
    done
    die "$name did not become ready at $url; its log: $(tail -n 20 "$TMP/$name.log")"
}

start_etcd() {
    port_in_use "$ETCD_PORT" && die "port $ETCD_PORT is in use; stop whatever holds it"
    port_in_use "$ETCD_PEER_PORT" && die "port $ETCD_PEER_PORT is in use; stop whatever holds it"
    "$ETCD" --name bench --data-dir "$TMP/etcd-data" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls "$ETCD_PEER_URL" --initial-advertise-peer-urls "$ETCD_PEER_URL" \
        --initial-cluster "bench=$ETCD_PEER_URL" >"$TMP/etcd.log" 2>&1 &
    ETCD_PID=$!
    PIDS+=("$ETCD_PID")
    wait_ready "$ETCD_PID" "$ETCD_URL" etcd
    log "etcd ($("$ETCD" --version | head -n 1)) is up as pid $ETCD_PID"
}

start_skiff() {
    port_in_use "$SKIFF_PORT" && die "port $SKIFF_PORT is in use; stop whatever holds it"
    "$SKIFF" store --data-dir "$TMP/skiff-data" --listen-client-urls "$SKIFF_URL" \
        >"$TMP/skiff.log" 2>&1 &
    SKIFF_PID=$!
    PIDS+=("$SKIFF_PID")
    wait_ready "$SKIFF_PID" "$SKIFF_URL" skiff
    log "skiff store ($("$SKIFF" version)) is up as pid $SKIFF_PID"
}

# ---- 3. the workloads ----------------------------------------------------------------------
declare -A RESULT # "target/row" -> "throughput|p50|p99|errors"
ROWS=(
    "put, 16 clients"
    "put, 64 clients"
    "get, 64 clients"
    "get-serializable, 64 clients"
    "txn, 16 clients"
    "watch, 16 watchers, $BENCH_WATCH_RATE puts/s"
)

# Runs one workload, keeps its report on stderr and its numbers in RESULT.
measure() {
    local target=$1 url=$2 row=$3
    shift 3
    log "$target: $row"
    local report
    report=$(bench --endpoints "$url" --duration "$BENCH_DURATION" "$@")
    echo "$report" >&2
    local throughput p50 p99 errors
    throughput=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$report")
    errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$report")
    p50=$(sed -n 's/^latency p50=\([^ ]*\).*/\1/p' <<<"$report")
    p99=$(sed -n 's/^latency.* p99=\([^ ]*\).*/\1/p' <<<"$report")
    RESULT["$target/$row"]="$throughput|$p50|$p99|$errors"
}

run_workloads() {
    local target=$1 url=$2
    measure "$target" "$url" "${ROWS[0]}" --op put --clients 16
    measure "$target" "$url" "${ROWS[1]}" --op put --clients 64
    measure "$target" "$url" "${ROWS[2]}" --op get --clients 64
    measure "$target" "$url" "${ROWS[3]}" --op get-serializable --clients 64
    measure "$target" "$url" "${ROWS[4]}" --op txn --clients 16
    measure "$target" "$url" "${ROWS[5]}" --op watch --clients 16 --put-rate "$BENCH_WATCH_RATE"
}

# Loads BENCH_LOAD_KEYS keys, each written once, then reads the process's resident memory.
load_and_weigh() {
    local target=$1 url=$2 pid=$3 data_dir=$4
    log "$target: loading $BENCH_LOAD_KEYS keys of $BENCH_VALUE_SIZE bytes"
    local report
    report=$(bench --endpoints "$url" --op put --clients 64 --total "$BENCH_LOAD_KEYS" \
        --sequential-keys --key-space "$BENCH_LOAD_KEYS" --key-prefix /load/)
    echo "$report" >&2
    RESULT["$target/load"]=$(sed -n 's/.*ops=\([0-9]*\) errors=\([0-9]*\) throughput=\([0-9.]*\).*/\1 keys, \2 errors, \3 puts\/s/p' <<<"$report")
    RESULT["$target/rss"]=$(awk '/^VmRSS:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$pid/status")
    RESULT["$target/disk"]=$(du -sm "$data_dir" | awk '{ print $1 " MiB" }')
}

for target in $BENCH_TARGETS; do
    case $target in
    etcd)
        command -v "$ETCD" >/dev/null || die "no etcd binary (apt-get install etcd-server, or set ETCD)"
        start_etcd
        run_workloads etcd "$ETCD_URL"
        load_and_weigh etcd "$ETCD_URL" "$ETCD_PID" "$TMP/etcd-data"
        stop "$ETCD_PID"
        ;;
    skiff)
        start_skiff
        run_workloads skiff "$SKIFF_URL"
        load_and_weigh skiff "$SKIFF_URL" "$SKIFF_PID" "$TMP/skiff-data"
        stop "$SKIFF_PID"
        ;;
    *) die "unknown target $target (use etcd and/or skiff)" ;;
    esac
done

# ---- 4. the table --------------------------------------------------------------------------
cell() { # throughput with any errors, p50, p99 of one target and row
    local value=${RESULT["$1/$2"]:-}
    if [[ -z $value ]]; then
        printf ' – | – | –'
        return
    fi
    local throughput p50 p99 errors
    IFS='|' read -r throughput p50 p99 errors <<<"$value"
    [[ $errors == 0 ]] || throughput="$throughput ($errors errors)"
    printf ' %s | %s | %s' "$throughput" "$p50" "$p99"
}

echo "Machine: $(nproc) CPUs, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo);" \
    "$BENCH_DURATION s per workload, $BENCH_VALUE_SIZE-byte values; $(date -u +%Y-%m-%d)."
echo
echo "| workload | etcd ops/s | etcd p50 | etcd p99 | skiff ops/s | skiff p50 | skiff p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
    echo "| $row |$(cell etcd "$row") |$(cell skiff "$row") |"
done
echo
echo "| after loading $BENCH_LOAD_KEYS keys | etcd | skiff |"
echo "|---|---:|---:|"
echo "| load | ${RESULT[etcd/load]:-–} | ${RESULT[skiff/load]:-–} |"
echo "| resident memory (VmRSS) | ${RESULT[etcd/rss]:-–} | ${RESULT[skiff/rss]:-–} |"
echo "| data directory | ${RESULT[etcd/disk]:-–} | ${RESULT[skiff/disk]:-–} |"
