#!/usr/bin/env bash
# Side-by-side benchmark of a three-member etcd and a three-member skiff-store on this
# machine, in one run.
#
# Starts three etcd members and three `skiff store` members (each on 127.0.0.1 with its own
# ports and data directory), drives both clusters with the same `skiff bench kv` put workload
# over all three endpoints, in rounds (within a round one cluster runs right after the other,
# the first alternating between rounds; the table gives each side's median round), then
# measures leader failover: while three clients (one per
# member) write in a loop, the leader is killed with SIGKILL and the longest gap between
# successful writes of any client is taken as the failover time (kill to first successful
# write, plus at most one write's latency).
# Prints a markdown table on stdout; progress and the raw reports go to stderr.
#
# Environment:
#   BENCH_DURATION     seconds per throughput run                  (default 10)
#   BENCH_ROUNDS       rounds of the throughput runs               (default 3)
#   BENCH_SETTLE       seconds of rest before each throughput run  (default 2)
#   BENCH_CLIENTS      clients of the throughput runs              (default 64)
#   BENCH_VALUE_SIZE   bytes per value                             (default 256)
#   BENCH_TARGETS      "etcd skiff", "etcd" or "skiff"             (default both)
#   ETCD               the etcd binary                             (default etcd)
#   ETCDCTL            the etcdctl binary                          (default etcdctl)
#   SKIFF_BIN          use this skiff binary instead of building one in release
#   BENCH_BASE_PORT    first of the 12 ports used                  (default 24000)
set -euo pipefail

BENCH_DURATION=${BENCH_DURATION:-10}
BENCH_ROUNDS=${BENCH_ROUNDS:-3}
BENCH_SETTLE=${BENCH_SETTLE:-2}
BENCH_CLIENTS=${BENCH_CLIENTS:-64}
BENCH_VALUE_SIZE=${BENCH_VALUE_SIZE:-256}
BENCH_TARGETS=${BENCH_TARGETS:-etcd skiff}
ETCD=${ETCD:-etcd}
ETCDCTL=${ETCDCTL:-etcdctl}
BASE=${BENCH_BASE_PORT:-24000}
# etcd's defaults, used by both clusters.
HEARTBEAT_MS=100
ELECTION_MS=1000

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/skiff-bench-cluster.XXXXXX")
declare -A PID # "target/i" -> pid

log() { echo "bench-cluster: $*" >&2; }
die() {
    log "$*"
    exit 1
}

# Stop only the processes this script started, then remove its temporary directory.
cleanup() {
    local pid
    for pid in "${PID[@]}"; do
        if kill "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -n ${SKIFF_BIN:-} ]]; then
    SKIFF=$SKIFF_BIN
else
    log "building skiff (release)"
    (cd "$ROOT" && cargo build --release --quiet -p skiff)
    SKIFF="${CARGO_TARGET_DIR:-$ROOT/target}/release/skiff"
fi
[[ -x $SKIFF ]] || die "no skiff binary at $SKIFF"

# Ports: etcd clients BASE+0..2, etcd peers BASE+3..5, skiff clients BASE+6..8, skiff peers BASE+9..11.
client_port() { case $1 in etcd) echo $((BASE + $2)) ;; skiff) echo $((BASE + 6 + $2)) ;; esac; }
peer_port() { case $1 in etcd) echo $((BASE + 3 + $2)) ;; skiff) echo $((BASE + 9 + $2)) ;; esac; }
client_url() { echo "http://127.0.0.1:$(client_port "$1" "$2")"; }
peer_url() { echo "http://127.0.0.1:$(peer_port "$1" "$2")"; }
endpoints() { echo "$(client_url "$1" 0),$(client_url "$1" 1),$(client_url "$1" 2)"; }
initial_cluster() { echo "m0=$(peer_url "$1" 0),m1=$(peer_url "$1" 1),m2=$(peer_url "$1" 2)"; }

start_member() {
    local target=$1 i=$2 bin
    port_in_use "$(client_port "$target" "$i")" && die "port $(client_port "$target" "$i") is in use"
    port_in_use "$(peer_port "$target" "$i")" && die "port $(peer_port "$target" "$i") is in use"
    local flags=(--name "m$i" --data-dir "$TMP/$target-$i"
        --listen-client-urls "$(client_url "$target" "$i")"
        --advertise-client-urls "$(client_url "$target" "$i")"
        --listen-peer-urls "$(peer_url "$target" "$i")"
        --initial-advertise-peer-urls "$(peer_url "$target" "$i")"
        --initial-cluster "$(initial_cluster "$target")"
        --initial-cluster-state new --initial-cluster-token "bench-$target"
        --heartbeat-interval "$HEARTBEAT_MS" --election-timeout "$ELECTION_MS")
    if [[ $target == etcd ]]; then
        "$ETCD" "${flags[@]}" >>"$TMP/$target-$i.log" 2>&1 &
    else
        "$SKIFF" store "${flags[@]}" >>"$TMP/$target-$i.log" 2>&1 &
    fi
    PID[$target/$i]=$!
}

bench() { "$SKIFF" bench kv --value-size "$BENCH_VALUE_SIZE" "$@"; }

wait_ready() {
    local target=$1 n
    for n in $(seq 1 150); do
        if bench --endpoints "$(endpoints "$target")" --op put --total 3 --clients 1 \
            --key-prefix /bench-ready/ --output json 2>/dev/null | grep -q '"errors":0'; then
            return 0
        fi
        sleep 0.2
    done
    die "the $target cluster did not become ready; logs: $(tail -n 5 "$TMP/$target-"*.log)"
}

# The member index of the current leader, from etcdctl's endpoint status.
leader_index() {
    local target=$1 i
    local status
    status=$("$ETCDCTL" --endpoints "$(endpoints "$target" | sed 's#http://##g')" \
        endpoint status -w json 2>/dev/null) || return 1
    python3 - "$status" <<'EOF'
import json, sys
rows = json.loads(sys.argv[1])
for i, row in enumerate(rows):
    if row["Status"]["header"]["member_id"] == row["Status"]["leader"]:
        print(i)
        break
else:
    sys.exit(1)
EOF
}

field() { python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }

# shellcheck source=scripts/bench-rounds.sh
source "$ROOT/scripts/bench-rounds.sh"
declare -A RESULT # "target/put/round" -> "throughput|p50_us|p99_us|errors"; "target/failover"
TARGETS=()
for target in $BENCH_TARGETS; do
    log "starting a three-member $target cluster"
    for i in 0 1 2; do start_member "$target" "$i"; done
    wait_ready "$target"
    TARGETS+=("$target")
done

for round in $(seq 1 "$BENCH_ROUNDS"); do
    mapfile -t order < <(round_order "$round" "${TARGETS[@]}")
    for target in "${order[@]}"; do
        sleep "$BENCH_SETTLE"
        log "round $round, $target: put, $BENCH_CLIENTS clients, ${BENCH_DURATION}s over all three endpoints"
        json=$(bench --endpoints "$(endpoints "$target")" --op put --clients "$BENCH_CLIENTS" \
            --duration "${BENCH_DURATION}s" --output json)
        echo "$json" >&2
        RESULT[$target/put/$round]=$(echo "$json" | field '"%.0f|%s|%s|%d" % (r["throughput"], r["latency"]["p50_us"], r["latency"]["p99_us"], r["errors"])')
    done
done

for target in "${TARGETS[@]}"; do
    log "$target: failover: three writers, one per member, the leader killed after 3 s"
    leader=$(leader_index "$target") || die "no leader found in the $target cluster"
    bench --endpoints "$(endpoints "$target")" --op put --clients 3 --conns 3 --duration 10s \
        --key-prefix /bench-failover/ --output json >"$TMP/failover-$target.json" &
    writer=$!
    sleep 3
    kill -9 "${PID[$target/$leader]}"
    wait "${PID[$target/$leader]}" 2>/dev/null || true
    unset "PID[$target/$leader]"
    wait "$writer"
    cat "$TMP/failover-$target.json" >&2
    RESULT[$target/failover]=$(field '"%.0f" % r["longest_gap_ms"]' <"$TMP/failover-$target.json")
    for key in "${!PID[@]}"; do
        if [[ $key == $target/* ]]; then
            kill "${PID[$key]}" 2>/dev/null || true
            wait "${PID[$key]}" 2>/dev/null || true
            unset "PID[$key]"
        fi
    done
done

median() { # target -> the median round's "throughput|p50|p99|errors"
    local round
    round=$(median_round "$1/put")
    echo "${RESULT["$1/put/${round:-none}"]:-0|0|0|0}"
}
us_to_ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
echo "Machine: $(nproc) CPUs; $BENCH_DURATION s per run, $BENCH_VALUE_SIZE-byte values, median of" \
    "$BENCH_ROUNDS rounds; $(date -u +%Y-%m-%d)."
echo
echo "| workload | etcd | skiff | skiff / etcd |"
echo "|---|---|---|---|"
IFS='|' read -r et ep50 ep99 eerr <<<"$(median etcd)"
IFS='|' read -r st sp50 sp99 serr <<<"$(median skiff)"
ratio=$(awk -v a="$st" -v b="$et" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "n/a" }')
echo "| put, $BENCH_CLIENTS clients, 3 members (ops/s) | $et | $st | $ratio |"
echo "| put p50 / p99 | $(us_to_ms "$ep50") / $(us_to_ms "$ep99") | $(us_to_ms "$sp50") / $(us_to_ms "$sp99") | |"
echo "| put errors | $eerr | $serr | |"
echo "| put, every round (ops/s) | $(rounds etcd/put) | $(rounds skiff/put) | |"
echo "| failover: leader killed → next successful write | ${RESULT[etcd/failover]:-n/a} ms | ${RESULT[skiff/failover]:-n/a} ms | election timeout ${ELECTION_MS} ms |"
