#!/usr/bin/env bash
# The cost of sharing a budget through Redis for one process at full speed: `sluice run`
# against a local `sluice mock` (plain HTTP, no limits enforced) with a limit configured far
# above what the process reaches (so the leases are taken but never bind), with `--redis` and
# without, in interleaved rounds. Prints requests/s and CPU per request of each, their ratio
# (target: >= 0.95x), and Redis round trips per 1,000 requests (target: < 20), counted by
# Redis itself (INFO commandstats: EVALSHA and EVAL calls).
#
# usage: bench/admission/shared_budget.sh [--sluice PATH] [--lines N] [--rounds R]
#            [--rpm RPM] [--server-core K] [--client-core K]
# Build first: cmake --preset bench && cmake --build --preset bench
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sluice="$root/build/bench/sluice"
lines=50000
rounds=3
rpm=60000000 # a million a second: never reached, so only the leases' own cost shows
server_core=0
client_core=1
while [ $# -gt 0 ]; do
    case "$1" in
        --sluice) sluice=$2; shift 2 ;;
        --lines) lines=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --rpm) rpm=$2; shift 2 ;;
        --server-core) server_core=$2; shift 2 ;;
        --client-core) client_core=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/time ] || { echo "missing GNU time (run .ci/install-deps)" >&2; exit 2; }
[ -x /usr/bin/redis-server ] || { echo "missing redis-server (run .ci/install-deps)" >&2; exit 2; }
[ -x "$sluice" ] || { echo "no sluice binary at $sluice (cmake --build --preset bench)" >&2; exit 2; }

dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT

# redis-server on a free loopback port, no persistence; stopped by PID at exit.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c "$server_core" redis-server --bind 127.0.0.1 --port "$port" --save '' \
    --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis_calls() {
    redis-cli -p "$port" info commandstats |
        awk -F'[=,:]' '/^cmdstat_(evalsha|eval):/ { n += $3 } END { print n + 0 }'
}

taskset -c "$server_core" "$sluice" mock > "$dir/mock.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$dir/mock.out" && break; sleep 0.05; done
url=$(sed -n 's/.*listening on //p' "$dir/mock.out")

awk -v n="$lines" 'BEGIN {
    for (i = 0; i < n; i++)
        printf "{\"custom_id\":\"r%d\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Question %d: what is the answer?\"}],\"max_tokens\":16}}\n", i, i
}' > "$dir/in.jsonl"
# The mock is trusted: no quiet period on reused connections (see bench/batch/memory.sh).
printf '[pool]\nreuse_quiet_period_ms = 0\n' > "$dir/trusted.toml"

# One run; prints "requests wall_seconds cpu_seconds redis_calls".
run_once() {
    local extra=$1
    rm -f "$dir/out.jsonl"
    local before
    before=$(redis_calls)
    /usr/bin/time -f "%e %U %S" -o "$dir/time" taskset -c "$client_core" \
        "$sluice" run "$dir/in.jsonl" -o "$dir/out.jsonl" --base-url "$url" --rpm "$rpm" \
        --config "$dir/trusted.toml" -q $extra
    local records
    records=$(wc -l < "$dir/out.jsonl")
    [ "$records" -eq "$lines" ] || { echo "output has $records records, not $lines" >&2; exit 1; }
    read -r wall user sys < "$dir/time"
    echo "$lines $wall $(echo "$user + $sys" | bc -l) $(( $(redis_calls) - before ))"
}

printf '%-8s %-10s %10s %12s %14s\n' round mode "req/s" "CPU us/req" "Redis/1k req"
sum_plain=0; sum_redis=0; cpu_plain=0; cpu_redis=0; calls=0
for r in $(seq "$rounds"); do
    for mode in plain redis; do
        extra=""
        [ "$mode" = redis ] && extra="--redis redis://127.0.0.1:$port --budget-key bench-$r"
        read -r n wall cpu c < <(run_once "$extra")
        rate=$(echo "$n / $wall" | bc -l)
        us=$(echo "$cpu * 1000000 / $n" | bc -l)
        per_k=$(echo "$c * 1000 / $n" | bc -l)
        printf '%-8s %-10s %10.0f %12.1f %14.2f\n' "$r" "$mode" "$rate" "$us" "$per_k"
        if [ "$mode" = plain ]; then
            sum_plain=$(echo "$sum_plain + $rate" | bc -l); cpu_plain=$(echo "$cpu_plain + $us" | bc -l)
        else
            sum_redis=$(echo "$sum_redis + $rate" | bc -l); cpu_redis=$(echo "$cpu_redis + $us" | bc -l)
            calls=$(echo "$calls + $per_k" | bc -l)
        fi
    done
done
printf '\nwith --redis / without: req/s %.3fx (target >= 0.95), CPU per request %.3fx; Redis round trips per 1,000 requests %.2f (target < 20)\n' \
    "$(echo "$sum_redis / $sum_plain" | bc -l)" "$(echo "$cpu_redis / $cpu_plain" | bc -l)" \
    "$(echo "$calls / $rounds" | bc -l)"
