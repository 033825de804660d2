#!/usr/bin/env bash
# Adaptive admission against a server that says only 429 (docs/benchmarks.md, "Adaptive
# admission"): `sluice mock` enforcing an RPM limit with --hide-limits (no x-ratelimit-*
# headers, no retry-after, no "try again in"), and `sluice run` told no limit at all, so that
# it must find the rate from the 429s.
#
#   bench/admission/adaptive.sh [--rpm N] [--seconds S] [--concurrency C] [--latency-ms L]
#                               [--no-adaptive] [--sluice PATH]
#
# Defaults: 3,000 RPM (a bucket of one second), a job of 60 seconds at that rate (3,000 lines),
# 64 connections (sluice's default), no added latency. Prints the served rate against the
# limit (the mock's answers beyond its first bucket, over the client's wall time), the share
# of requests answered 429, the rate sluice found (its summary) and the verdict against the
# target: at least 90% of the limit with under 2% of the requests refused. Exit status 0
# when the target is met, 1 otherwise. Both processes listen and talk on 127.0.0.1 only and
# are stopped by their PIDs. --no-adaptive runs the client with adaptation off, for contrast.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rpm=3000
seconds=60
concurrency=64
latency_ms=0
client_flags=()
sluice=""
while [ $# -gt 0 ]; do
    case "$1" in
    --rpm) rpm=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --latency-ms) latency_ms=$2; shift 2 ;;
    --no-adaptive) client_flags+=(--no-adaptive); shift ;;
    --sluice) sluice=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "adaptive.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$sluice" ]; then
    for candidate in "$root/build/release/sluice" "$root/build/dev/sluice"; do
        if [ -x "$candidate" ]; then
            sluice=$candidate
            break
        fi
    done
fi
if [ -z "$sluice" ] || [ ! -x "$sluice" ]; then
    echo "adaptive.sh: no sluice binary (build the release or dev preset, or give --sluice)" >&2
    exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-adaptive-XXXXXX")"
mock_pid=""
stop_all() {
    if [ -n "$mock_pid" ]; then
        kill "$mock_pid" 2>/dev/null || true
        wait "$mock_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop_all EXIT

"$sluice" mock --port 0 --rpm "$rpm" --hide-limits --latency-ms "$latency_ms" \
    >"$work/mock.log" 2>&1 &
mock_pid=$!
base_url=""
for _ in $(seq 100); do
    base_url=$(sed -n 's/^sluice mock listening on \(http[^ ]*\).*/\1/p' "$work/mock.log")
    [ -n "$base_url" ] && break
    kill -0 "$mock_pid" 2>/dev/null || break
    sleep 0.1
done
case "$base_url" in
http://127.0.0.1:*) ;;
*) echo "adaptive.sh: the mock did not start on loopback:" >&2; cat "$work/mock.log" >&2; exit 1 ;;
esac

lines=$((rpm * seconds / 60))
awk -v n="$lines" 'BEGIN {
    for (i = 1; i <= n; i++)
        printf "{\"custom_id\":\"a-%d\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\",\"content\":\"Line %d.\"}]}}\n", i, i
}' >"$work/in.jsonl"

echo "adaptive: $lines lines, mock at $rpm RPM without headers or hints ($base_url)," \
    "$concurrency connections, latency ${latency_ms} ms, sluice told no limit" \
    ${client_flags[@]+"${client_flags[@]}"}
start=$(date +%s.%N)
status=0
OPENAI_API_KEY=sk-bench "$sluice" run "$work/in.jsonl" -o "$work/out.jsonl" \
    --base-url "$base_url" --concurrency "$concurrency" --max-attempts 10 \
    --summary "$work/summary.json" ${client_flags[@]+"${client_flags[@]}"} \
    >"$work/client.log" 2>&1 || status=$?
end=$(date +%s.%N)
kill -INT "$mock_pid"
wait "$mock_pid" 2>/dev/null || true
mock_pid=""

if [ "$status" -ne 0 ]; then
    echo "adaptive.sh: sluice run exited with status $status:" >&2
    tail -20 "$work/client.log" >&2
    exit 1
fi
# "sluice mock: R requests, K ok, L rate limited, ..."
counters=$(sed -n 's/^sluice mock: \([0-9]*\) requests, \([0-9]*\) ok, \([0-9]*\) rate limited.*/\1 \2 \3/p' \
    "$work/mock.log")
read -r requests ok limited <<<"$counters"
found=$(sed -n 's/.*adaptive rate \([0-9]*\) requests\/min.*/\1/p' "$work/client.log" | tail -1)
awk -v start="$start" -v end="$end" -v rpm="$rpm" -v requests="$requests" -v ok="$ok" \
    -v limited="$limited" -v found="${found:-?}" 'BEGIN {
    wall = end - start
    burst = rpm / 60                       # the mock bucket of one second, full at the start
    served = (ok - burst) / wall * 60      # per minute, beyond the first bucket
    share = served / rpm
    refused = limited / requests
    printf "wall %.1f s; mock: %d requests, %d ok, %d answered 429\n", wall, requests, ok, limited
    printf "served %.0f RPM beyond the first bucket = %.1f%% of the limit; 429s %.2f%% of requests\n",
        served, 100 * share, 100 * refused
    printf "rate found by sluice at the end: %s requests/min\n", found
    ok_target = share >= 0.9 && refused < 0.02
    printf "target (>= 90%% of the limit, < 2%% 429s): %s\n", ok_target ? "met" : "NOT met"
    exit ok_target ? 0 : 1
}'
