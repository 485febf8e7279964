# Shared by scripts/bench-store.sh and scripts/bench-cluster.sh (sourced, not run): the
# bookkeeping of workloads measured in interleaved rounds.
#
# The caller keeps each round's result in the associative array RESULT under
# "<series>/<round>" (rounds 1..BENCH_ROUNDS), as "throughput|..." with the throughput
# first, where a series is one target's one workload, e.g. "skiff/0" or "etcd/put".

# The targets in the order they run in round $1: as given in the rest of the arguments in
# odd rounds, reversed in even ones, so that neither side always goes first.
round_order() {
    local round=$1 i
    shift
    local targets=("$@")
    if ((round % 2 == 0)); then
        for ((i = ${#targets[@]} - 1; i >= 0; i--)); do echo "${targets[$i]}"; done
    else
        printf '%s\n' "${targets[@]}"
    fi
}

# The round of series $1 with the median throughput (the lower middle one for an even
# count), or nothing when the series has no result.
median_round() {
    local round value
    for round in $(seq 1 "$BENCH_ROUNDS"); do
        value=${RESULT["$1/$round"]:-}
        [[ -n $value ]] && echo "${value%%|*} $round"
    done | sort -g | awk '{ rounds[NR] = $2 } END { if (NR) print rounds[int((NR + 1) / 2)] }'
}

# Every round's throughput of series $1, separated by slashes.
rounds() {
    local round value out=()
    for round in $(seq 1 "$BENCH_ROUNDS"); do
        value=${RESULT["$1/$round"]:-}
        out+=("${value%%|*}")
    done
    (IFS=/ && echo "${out[*]}")
}
