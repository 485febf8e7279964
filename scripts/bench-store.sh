#!/usr/bin/env bash
# Side-by-side benchmark of etcd and skiff-store on this machine, in one run.
#
# Builds skiff in release, starts a real etcd and `skiff store` on their own temporary data
# directories, drives both with the same `skiff bench kv` workloads, loads a million keys into
# each and reads each process's resident memory. Prints a markdown table on stdout; progress
# and the raw reports go to stderr. See docs/benchmarks.md for what each row means.
#
# The timed workloads run in rounds, and within a round each workload runs against one store
# and then at once against the other (the first store alternates between rounds), so that
# both columns of a row see the machine in the same state; the table gives each row's median
# round. On a shared machine speed drifts by tens of percent over minutes.
#
# Environment:
#   BENCH_DURATION     seconds per timed workload              (default 10)
#   BENCH_ROUNDS       rounds of the timed workloads           (default 3)
#   BENCH_SETTLE       seconds of rest before each workload    (default 2)
#   BENCH_LOAD_KEYS    keys of the memory load                 (default 1000000)
#   BENCH_VALUE_SIZE   bytes per value                         (default 256)
#   BENCH_WATCH_RATE   puts per second in the watch workload   (default 1000)
#   BENCH_TARGETS      which stores to run: "etcd skiff", "etcd" or "skiff" (default both)
#   ETCD               the etcd binary                         (default etcd, Debian's etcd-server)
#   SKIFF_BIN          use this skiff binary instead of building one in release
#   BENCH_ETCD_PORT, BENCH_ETCD_PEER_PORT, BENCH_SKIFF_PORT   ports (23790, 23800, 23791)
set -euo pipefail

BENCH_DURATION=${BENCH_DURATION:-10}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SETTLE=${BENCH_SETTLE:-2}
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

# Stops a process this script started: a store once it is weighed (so that its work after the
# load does not run beside the other store's load), and everything left at exit.
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
# shellcheck source=scripts/bench-rounds.sh
source "$ROOT/scripts/bench-rounds.sh"
declare -A RESULT # "target/row/round" -> "throughput|p50|p99|errors"; "target/load" etc.
ROWS=(
    "put, 16 clients"
    "put, 64 clients"
    "get, 64 clients"
    "get-serializable, 64 clients"
    "txn, 16 clients"
    "watch, 16 watchers, $BENCH_WATCH_RATE puts/s"
)
# The `skiff bench kv` arguments of each row, in the order of ROWS.
ROW_ARGS=(
    "--op put --clients 16"
    "--op put --clients 64"
    "--op get --clients 64"
    "--op get-serializable --clients 64"
    "--op txn --clients 16"
    "--op watch --clients 16 --put-rate $BENCH_WATCH_RATE"
)
declare -A URL

# Runs one workload, keeps its report on stderr and its numbers in RESULT.
measure() {
    local target=$1 row=$2 round=$3
    # Let the previous workload's deferred work (a backend commit, a snapshot) finish first.
    sleep "$BENCH_SETTLE"
    log "round $round, $target: ${ROWS[$row]}"
    local report
    # shellcheck disable=SC2086 # ROW_ARGS holds several arguments
    report=$(bench --endpoints "${URL[$target]}" --duration "$BENCH_DURATION" ${ROW_ARGS[$row]})
    echo "$report" >&2
    local throughput p50 p99 errors
    throughput=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$report")
    errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$report")
    p50=$(sed -n 's/^latency p50=\([^ ]*\).*/\1/p' <<<"$report")
    p99=$(sed -n 's/^latency.* p99=\([^ ]*\).*/\1/p' <<<"$report")
    RESULT["$target/$row/$round"]="$throughput|$p50|$p99|$errors"
}

# Loads BENCH_LOAD_KEYS keys, each written once, then reads the process's resident memory.
load_and_weigh() {
    local target=$1 pid=$2 data_dir=$3
    log "$target: loading $BENCH_LOAD_KEYS keys of $BENCH_VALUE_SIZE bytes"
    local report
    report=$(bench --endpoints "${URL[$target]}" --op put --clients 64 --total "$BENCH_LOAD_KEYS" \
        --sequential-keys --key-space "$BENCH_LOAD_KEYS" --key-prefix /load/)
    echo "$report" >&2
    RESULT["$target/load"]=$(sed -n 's/.*ops=\([0-9]*\) errors=\([0-9]*\) throughput=\([0-9.]*\).*/\1 keys, \2 errors, \3 puts\/s/p' <<<"$report")
    RESULT["$target/rss"]=$(awk '/^VmRSS:/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$pid/status")
    RESULT["$target/disk"]=$(du -sm "$data_dir" | awk '{ print $1 " MiB" }')
}

declare -A PID DATA_DIR
TARGETS=()
for target in $BENCH_TARGETS; do
    case $target in
    etcd)
        command -v "$ETCD" >/dev/null || die "no etcd binary (apt-get install etcd-server, or set ETCD)"
        start_etcd
        PID[etcd]=$ETCD_PID DATA_DIR[etcd]=$TMP/etcd-data URL[etcd]=$ETCD_URL
        ;;
    skiff)
        start_skiff
        PID[skiff]=$SKIFF_PID DATA_DIR[skiff]=$TMP/skiff-data URL[skiff]=$SKIFF_URL
        ;;
    *) die "unknown target $target (use etcd and/or skiff)" ;;
    esac
    TARGETS+=("$target")
done

for round in $(seq 1 "$BENCH_ROUNDS"); do
    mapfile -t order < <(round_order "$round" "${TARGETS[@]}")
    for row in "${!ROWS[@]}"; do
        for target in "${order[@]}"; do
            measure "$target" "$row" "$round"
        done
    done
done

# The memory rows: one store at a time, each stopped once weighed.
for target in "${TARGETS[@]}"; do
    load_and_weigh "$target" "${PID[$target]}" "${DATA_DIR[$target]}"
    stop "${PID[$target]}"
done

# ---- 4. the table --------------------------------------------------------------------------
cell() { # throughput with any errors, p50, p99 of a target's median round of a row
    local round
    round=$(median_round "$1/$2")
    if [[ -z $round ]]; then
        printf ' – | – | –'
        return
    fi
    local throughput p50 p99 errors
    IFS='|' read -r throughput p50 p99 errors <<<"${RESULT["$1/$2/$round"]}"
    [[ $errors == 0 ]] || throughput="$throughput ($errors errors)"
    printf ' %s | %s | %s' "$throughput" "$p50" "$p99"
}

ratio() { # skiff's median throughput over etcd's
    local e s
    e=$(median_round "etcd/$1") s=$(median_round "skiff/$1")
    if [[ -z $e || -z $s ]]; then
        printf '–'
        return
    fi
    awk -v e="${RESULT["etcd/$1/$e"]%%|*}" -v s="${RESULT["skiff/$1/$s"]%%|*}" \
        'BEGIN { if (e > 0) printf "%.2fx", s / e; else printf "–" }'
}

echo "Machine: $(nproc) CPUs, $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo);" \
    "$BENCH_DURATION s per workload, $BENCH_VALUE_SIZE-byte values, median of $BENCH_ROUNDS rounds;" \
    "$(date -u +%Y-%m-%d)."
echo
echo "| workload | etcd ops/s | etcd p50 | etcd p99 | skiff ops/s | skiff p50 | skiff p99 | skiff / etcd |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for row in "${!ROWS[@]}"; do
    echo "| ${ROWS[$row]} |$(cell etcd "$row") |$(cell skiff "$row") | $(ratio "$row") |"
done
echo
echo "Every round's ops/s (etcd; skiff):"
echo
for row in "${!ROWS[@]}"; do
    echo "- ${ROWS[$row]}: $(rounds "etcd/$row"); $(rounds "skiff/$row")"
done
echo
echo "| after loading $BENCH_LOAD_KEYS keys | etcd | skiff |"
echo "|---|---:|---:|"
echo "| load | ${RESULT[etcd/load]:-–} | ${RESULT[skiff/load]:-–} |"
echo "| resident memory (VmRSS) | ${RESULT[etcd/rss]:-–} | ${RESULT[skiff/rss]:-–} |"
echo "| data directory | ${RESULT[etcd/disk]:-–} | ${RESULT[skiff/disk]:-–} |"
