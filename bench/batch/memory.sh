#!/usr/bin/env bash
# Memory of a batch job against its input size: `sluice run --mock` on a 100,000-line and a
# 1,000,000-line input, side by side. Prints wall time, rate and peak RSS of each, and the
# ratio of the peaks (target: under 1.2, since memory is bounded by the in-flight window and
# not by the input). Each output is checked to hold one record per line before timing counts.
#
# usage: bench/batch/memory.sh [--sluice PATH] [--small N] [--large N] [--concurrency C]
# Build first: cmake --preset bench && cmake --build --preset bench
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sluice="$root/build/bench/sluice"
small=100000
large=1000000
concurrency=64
while [ $# -gt 0 ]; do
    case "$1" in
        --sluice) sluice=$2; shift 2 ;;
        --small) small=$2; shift 2 ;;
        --large) large=$2; shift 2 ;;
        --concurrency) concurrency=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/time ] || { echo "missing GNU time (run .ci/install-deps)" >&2; exit 2; }
[ -x "$sluice" ] || { echo "no sluice binary at $sluice (cmake --build --preset bench)" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

make_input() {
    awk -v n="$1" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "{\"custom_id\":\"r%d\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\",\"content\":\"Question %d: what is the answer?\"}],\"max_tokens\":16}}\n", i, i
    }' > "$2"
}

# The embedded mock is trusted: no quiet period on reused connections, so that wall times stay
# a measure of the batch path (with the default 10 ms each connection answers at most ~100
# requests a second against a sub-millisecond server).
printf '[pool]\nreuse_quiet_period_ms = 0\n' > "$dir/trusted.toml"

# Prints "lines wall_seconds peak_rss_kib".
measure() {
    local n=$1 input="$dir/in-$1.jsonl" output="$dir/out-$1.jsonl"
    make_input "$n" "$input"
    /usr/bin/time -f "%e %M" -o "$dir/time-$n" \
        "$sluice" run "$input" -o "$output" --mock --concurrency "$concurrency" -q \
        --config "$dir/trusted.toml"
    local records
    records=$(wc -l < "$output")
    if [ "$records" -ne "$n" ]; then
        echo "output of the $n-line run has $records records" >&2
        exit 1
    fi
    echo "$n $(cat "$dir/time-$n")"
}

read -r s_lines s_wall s_rss < <(measure "$small")
read -r l_lines l_wall l_rss < <(measure "$large")
printf '%-10s %10s %10s %14s\n' lines "wall s" "req/s" "peak RSS MiB"
for row in "$s_lines $s_wall $s_rss" "$l_lines $l_wall $l_rss"; do
    read -r n wall rss <<< "$row"
    awk -v n="$n" -v w="$wall" -v r="$rss" \
        'BEGIN { printf "%-10d %10.2f %10.0f %14.1f\n", n, w, (w > 0 ? n / w : 0), r / 1024 }'
done
awk -v a="$s_rss" -v b="$l_rss" -v sl="$s_lines" -v ll="$l_lines" \
    'BEGIN { printf "peak RSS ratio, %d lines / %d lines: %.3f (target < 1.2)\n", ll, sl, b / a }'
