#!/usr/bin/env bash
# End to end: `sluice run` against a local nginx serving a canned completion over TLS
# keep-alive, side by side with wrk (and h2load --h1 when installed) against the same nginx with
# the same connection count. Every sluice response is parsed and written to the output file.
#
# The machine is shared and noisy, so: nginx is pinned to one core and every client to another
# (taskset), the clients take turns within each round and the rounds are interleaved, and the
# figure to compare is CPU per request (user + system time of the client over its requests),
# printed beside the rate. With --baseline, a second sluice binary (an earlier build) runs in
# every round too, for a before/after comparison in one run.
#
# usage: bench/e2e/vs_wrk.sh [--sluice PATH] [--baseline PATH] [--lines N] [--connections C]
#                            [--rounds R] [--wrk-seconds S] [--threads T]
#                            [--server-core K] [--client-core K] [--profile PERF_DATA]
#                            [--callgrind "N1 N2"] [--plain]
# --profile: after the rounds, one more `sluice run` under `perf record` (Debian linux-perf),
# written to PERF_DATA, and its top symbols printed (self time, 1% and above).
# --callgrind "N1 N2": instead of the rounds, `sluice run` under valgrind's callgrind on N1 then
# N2 lines, and the instructions per line from the difference (start-up and handshakes cancel
# out): the figure that stays steady on a shared, noisy machine. With SLUICE_CALLGRIND_OUT=FILE
# the N2 run's profile is kept there and the N1 run's in FILE.first (callgrind_annotate FILE;
# bench/e2e/callgrind_diff.py FILE.first FILE N2-N1 for the cost per line of each function).
# h2load (N1 then N2 requests) and wrk (5 s then 15 s) are counted the same way after it (with
# SLUICE_CALLGRIND_OUT, wrk's two profiles are kept in FILE.wrk5 and FILE.wrk15).
# --plain: nginx serves plain HTTP (http://) instead of TLS, for every client.
# Build first: cmake --preset bench && cmake --build --preset bench
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sluice="$root/build/bench/sluice"
baseline=""
lines=200000
connections=64
rounds=3
wrk_seconds=10
threads=1
profile=""
callgrind=""
plain=0
server_core=0
client_core=1
while [ $# -gt 0 ]; do
    case "$1" in
        --sluice) sluice=$2; shift 2 ;;
        --baseline) baseline=$2; shift 2 ;;
        --lines) lines=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --wrk-seconds) wrk_seconds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --server-core) server_core=$2; shift 2 ;;
        --client-core) client_core=$2; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        --callgrind) callgrind=$2; shift 2 ;;
        --plain) plain=1; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
. "$here/lib.sh"
require_tools nginx wrk openssl python3 taskset
require_sluice "$sluice" ${baseline:+"$baseline"}
have_h2load=0
command -v h2load >/dev/null && have_h2load=1

setup_workdir
body='{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how can I help?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20},"system_fingerprint":"fp_bench"}'
sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@BODY@|$body|" "$here/nginx.conf.in" > "$dir/nginx.conf"
if [ "$plain" -eq 1 ]; then
    sed -i -e "s|listen 127.0.0.1:$port ssl;|listen 127.0.0.1:$port;|" -e '/ssl_certificate/d' "$dir/nginx.conf"
fi
start_nginx "$server_core"

python3 - "$lines" > "$dir/in.jsonl" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say hello to line {i}"}], "max_tokens": 16}
    print(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}, separators=(",", ":")))
PY
printf '%s' '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello to line 1"}],"max_tokens":16}' > "$dir/post.json"

url="https://127.0.0.1:$port/v1"
[ "$plain" -eq 1 ] && url="http://127.0.0.1:$port/v1"
echo "nginx on $url (1 worker, core $server_core); clients on core $client_core; $connections connections"
echo "sluice: $lines lines per run; wrk: ${wrk_seconds} s per run; $rounds interleaved rounds; $(nproc) cores"

# wrk trusts every response it reads; so does sluice here (no quiet period on reused
# connections: pool.reuse_quiet_period_ms, docs/architecture.md#misbehaving-servers), or the
# comparison would time a check wrk does not make. SLUICE_ARGS="--config other.toml" overrides.
printf '[pool]\nreuse_quiet_period_ms = 0\n' > "$dir/trusted.toml"

results="$dir/results" # one line per run: tool rps cpu_us_per_request rss_kib user_us sys_us
: > "$results"

# Runs a command on the client core under GNU time; leaves "elapsed user sys maxrss" in $dir/t.
timed() {
    /usr/bin/time -f "%e %U %S %M" -o "$dir/t" taskset -c "$client_core" "$@"
}

record() { # tool requests
    read -r elapsed user sys rss < "$dir/t"
    python3 - "$1" "$2" "$elapsed" "$user" "$sys" "$rss" >> "$results" <<'PY'
import sys
tool, n, e, u, s, rss = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
print(f"{tool} {n / e:.0f} {(u + s) / n * 1e6:.2f} {rss:.0f} {u / n * 1e6:.2f} {s / n * 1e6:.2f}")
PY
    tail -n 1 "$results" | awk '{printf "  %-16s %9s req/s %8s us CPU/request (user %s, system %s) %9s KiB peak RSS\n", $1, $2, $3, $5, $6, $4}'
}

run_wrk() {
    timed wrk -t1 -c"$connections" -d"${wrk_seconds}s" -s "$here/post.lua" "$url/chat/completions" > "$dir/wrk.out"
    local n
    n=$(awk '/requests in/ {print $1}' "$dir/wrk.out")
    record wrk "$n"
}

run_h2load() {
    timed h2load --h1 -n "$lines" -c "$connections" -m 1 -d "$dir/post.json" \
        -H 'content-type: application/json' -H 'authorization: Bearer sk-bench' \
        "$url/chat/completions" > "$dir/h2load.out"
    local n
    n=$(awk '/^requests:/ {print $8}' "$dir/h2load.out") # "requests: N total, N started, N done, N succeeded"
    record h2load "$n"
}

run_sluice() { # name binary
    rm -f "$dir/out.jsonl"
    timed "$2" run "$dir/in.jsonl" -o "$dir/out.jsonl" \
        --base-url "$url" --ca-file "$dir/cert.pem" --concurrency "$connections" --threads "$threads" \
        --config "$dir/trusted.toml" ${SLUICE_ARGS:-} 2> "$dir/summary"
    local out_lines
    out_lines=$(wc -l < "$dir/out.jsonl")
    [ "$out_lines" -eq "$lines" ] || { echo "$1 wrote $out_lines lines for $lines" >&2; cat "$dir/summary" >&2; exit 1; }
    grep -q "succeeded $lines," "$dir/summary" || { echo "$1: not every request succeeded" >&2; cat "$dir/summary" >&2; exit 1; }
    record "$1" "$lines"
}

# callgrind's instruction count for `sluice run` on the first N lines of the input.
callgrind_ir() { # lines
    head -n "$1" "$dir/in.jsonl" > "$dir/cg.jsonl"
    rm -f "$dir/out.jsonl"
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$sluice" run "$dir/cg.jsonl" \
        -o "$dir/out.jsonl" --base-url "$url" --ca-file "$dir/cert.pem" \
        --concurrency "$connections" --threads 1 --config "$dir/trusted.toml" ${SLUICE_ARGS:-} \
        2> "$dir/summary"
    grep -q "succeeded $1," "$dir/summary" || { echo "not every request succeeded" >&2; cat "$dir/summary" >&2; exit 1; }
    awk '/^summary:/ {print $2}' "$dir/cg.out"
}

if [ -n "$callgrind" ]; then
    require_tools valgrind
    read -r n1 n2 <<< "$callgrind"
    [ "$n2" -le "$lines" ] || { echo "--callgrind: N2 ($n2) is more than --lines ($lines)" >&2; exit 2; }
    ir1=$(callgrind_ir "$n1")
    if [ -n "${SLUICE_CALLGRIND_OUT:-}" ]; then cp "$dir/cg.out" "$SLUICE_CALLGRIND_OUT.first"; fi
    ir2=$(callgrind_ir "$n2")
    if [ -n "${SLUICE_CALLGRIND_OUT:-}" ]; then cp "$dir/cg.out" "$SLUICE_CALLGRIND_OUT"; fi
    python3 -c "d = ($ir2 - $ir1) / ($n2 - $n1); print(f'callgrind, sluice run: {$ir1} instructions for $n1 lines, {$ir2} for $n2: {d:,.0f} per line')"
    # The references on the same server, counted the same way: h2load on N1 then N2 requests,
    # wrk (which runs for a time, not a count) for 5 s then 15 s, divided by the requests between.
    cg_h2load() { # requests
        valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" h2load --h1 -n "$1" \
            -c "$connections" -m 1 -d "$dir/post.json" -H 'content-type: application/json' \
            "$url/chat/completions" > "$dir/h2load.out" 2> /dev/null
        echo "$(awk '/^requests:/ {print $8}' "$dir/h2load.out") $(awk '/^summary:/ {print $2}' "$dir/cg.out")"
    }
    cg_wrk() { # seconds
        valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" wrk -t1 -c"$connections" --timeout 60s \
            -d"${1}s" -s "$here/post.lua" "$url/chat/completions" > "$dir/wrk.out" 2> /dev/null
        if [ -n "${SLUICE_CALLGRIND_OUT:-}" ]; then cp "$dir/cg.out" "$SLUICE_CALLGRIND_OUT.wrk$1"; fi
        echo "$(awk '/requests in/ {print $1}' "$dir/wrk.out") $(awk '/^summary:/ {print $2}' "$dir/cg.out")"
    }
    per_request() { # name "n1 ir1" "n2 ir2"
        read -r a1 b1 <<< "$2"
        read -r a2 b2 <<< "$3"
        python3 -c "print(f'callgrind, $1: {($b2 - $b1) / ($a2 - $a1):,.0f} per request ($a1 and $a2 requests)')"
    }
    [ "$have_h2load" -eq 1 ] && per_request h2load "$(cg_h2load "$n1")" "$(cg_h2load "$n2")"
    per_request wrk "$(cg_wrk 5)" "$(cg_wrk 15)"
    exit 0
fi

for r in $(seq "$rounds"); do
    echo "round $r"
    run_wrk
    [ "$have_h2load" -eq 1 ] && run_h2load
    run_sluice sluice "$sluice"
    [ -n "$baseline" ] && run_sluice baseline "$baseline"
done

echo
python3 - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    tool, rps, cpu, rss, user, system = line.split()
    runs.setdefault(tool, []).append((float(rps), float(cpu), float(rss), float(user), float(system)))
def med(tool, i):
    return statistics.median(r[i] for r in runs[tool])
print(f"{'client':10} {'req/s (min-max)':>22} {'CPU us/request (min-max)':>26} {'user / system (medians)':>24} {'peak RSS MiB':>13}")
for tool, rs in runs.items():
    rps = [r[0] for r in rs]; cpu = [r[1] for r in rs]
    split = f"{med(tool, 3):.2f} / {med(tool, 4):.2f}"
    print(f"{tool:10} {min(rps):10.0f}-{max(rps):<10.0f} {min(cpu):12.2f}-{max(cpu):<12.2f} {split:>24} {max(r[2] for r in rs) / 1024:13.1f}")
print()
print("medians, as ratios (targets: CPU <= 1.25x wrk; req/s >= 0.9x wrk and >= 1.0x h2load)")
for other in [t for t in runs if t != "sluice"]:
    print(f"  sluice / {other:9} CPU per request {med('sluice', 1) / med(other, 1):5.2f}x"
          f"   req/s {med('sluice', 0) / med(other, 0):5.2f}x")
PY

if [ -n "$profile" ]; then
    require_tools perf
    echo
    echo "profile of one more sluice run: $profile"
    rm -f "$dir/out.jsonl"
    taskset -c "$client_core" perf record -q -g -o "$profile" -- "$sluice" run "$dir/in.jsonl" \
        -o "$dir/out.jsonl" --base-url "$url" --ca-file "$dir/cert.pem" \
        --concurrency "$connections" --threads "$threads" --config "$dir/trusted.toml" \
        ${SLUICE_ARGS:-} 2> "$dir/summary"
    perf report -i "$profile" --no-children -g none --percent-limit 1 --stdio --sort dso,symbol 2>/dev/null |
        grep -E '^ +[0-9]' | sed -E 's/ +- +- *$//; s/ {2,}/  /g' | cut -c1-150 | head -40
fi
