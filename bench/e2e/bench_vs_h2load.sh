#!/usr/bin/env bash
# `sluice bench` as a load generator, beside h2load --h1 against the same local nginx (TLS
# keep-alive, one worker), nginx pinned to one core and the clients to another:
#   1. closed loop, whole answers: requests/s of each (the rate h2load reaches is the bar);
#   2. closed loop, a canned 200-chunk SSE answer: requests/s of each, sluice timing every
#      event (target: sluice >= 0.8x h2load);
#   3. open loop: sluice bench --rate R at rising rates, the send lag p99 at each (target: the
#      highest rate held with send lag p99 under 1 ms is at least h2load's closed-loop rate),
#      with at most as many requests in flight, and so connections, as h2load has connections.
#      (A cap of 4x that let the first moments open 256 connections at once: their handshakes
#      left a backlog that a loop near its capacity had not cleared when the warm-up ended.)
# Every run is bounded in requests; CPU per request (user + system of the client) is printed
# beside each rate, since the machine is shared and rates swing. In part 3, rates above
# 50,000/s have gaps under `sluice bench`'s busy wait (20 us), polled rather than slept: the
# client's core is busy throughout, and its CPU per request is about 1/rate.
#
# usage: bench/e2e/bench_vs_h2load.sh [--sluice PATH] [--requests N] [--connections C]
#                                     [--rates "R1 R2 ..."] [--server-core K] [--client-core K]
#                                     [--only "whole stream open"] [--rounds R]
#                                     [--callgrind "N1 N2" [--whole] [--open RATE]]
#                                     [--profile PERF_DATA]
# --only: run only the listed parts (1 = whole, 2 = stream, 3 = open).
# --rounds R: run the parts R times, interleaved (h2load and sluice, every rate, then again), and
#   judge the targets by the medians across rounds: a 10 ms stall of a shared host during one
#   run pushes that run's p99 send lag over 1 ms whatever the client does.
# --callgrind "N1 N2": instead of the parts, `sluice bench --stream` under valgrind's callgrind
#   for N1 then N2 requests (8 connections), and the instructions per streamed request and per
#   event from the difference (start-up and handshakes cancel out): the figure that stays
#   steady on a shared, noisy machine (valgrind from Debian). With SLUICE_CALLGRIND_OUT=FILE,
#   the N2 run's profile is kept there and the N1 run's in FILE.first (callgrind_annotate FILE;
#   bench/e2e/callgrind_diff.py FILE.first FILE N2-N1 for each function's cost per request);
#   SLUICE_CALLGRIND_ARGS adds options to valgrind (such as --dump-instr=yes). With --whole,
#   the same for whole answers (`sluice bench --no-stream`, the answer of part 1): instructions
#   per request. With --open RATE (implies --whole), the open loop of part 3 instead, at RATE
#   (constant arrivals, at most 8 in flight): pick a rate valgrind holds (a few hundred a
#   second), or the loop falls behind and runs as a closed one; and N1 of at least 1,000 (the
#   distinct prompts, all built before the first request), or the difference counts the
#   building of the prompts N2 has more of. Instructions only: a timer's wake-up costs the
#   kernel, not the process, so compare CPU per request of part 3 as well.
# --profile PERF_DATA: after the parts, one more `sluice bench --stream` under `perf record`
#   (Debian linux-perf), and its top symbols.
# Build first: cmake --preset bench && cmake --build --preset bench
set -euo pipefail
usage() { sed -n '/^# usage:/,/^# Build first/p' "$0" | sed 's/^# \{0,1\}//'; }
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sluice="$root/build/bench/sluice"
requests=50000
connections=64
rates="5000 10000 20000 30000 40000"
server_core=0
client_core=1
only="whole stream open"
callgrind=""
whole=0
open_rate=""
profile=""
rounds=1
while [ $# -gt 0 ]; do
    case "$1" in
        --sluice) sluice=$2; shift 2 ;;
        --requests) requests=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --rates) rates=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --server-core) server_core=$2; shift 2 ;;
        --client-core) client_core=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --callgrind) callgrind=$2; shift 2 ;;
        --whole) whole=1; shift ;;
        --open) open_rate=$2; whole=1; shift 2 ;;
        --profile) profile=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
. "$here/lib.sh"
require_tools nginx h2load openssl python3 taskset pgrep getconf
require_sluice "$sluice"

setup_workdir
# The config: a whole completion at /v1, the same answer as 200 SSE chunks at /sse/v1.
python3 - "$dir" "$port" > "$dir/nginx.conf" <<'PY'
import json, sys
d, port = sys.argv[1], sys.argv[2]
whole = json.dumps({"id": "chatcmpl-bench", "object": "chat.completion", "created": 1,
    "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
    "content": "Hello there, how can I help?"}, "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20}},
    separators=(",", ":"))
def chunk(delta, finish=None):
    return "data: " + json.dumps({"id": "chatcmpl-bench", "object": "chat.completion.chunk",
        "created": 1, "model": "m", "choices": [{"index": 0, "delta": delta,
        "finish_reason": finish}]}, separators=(",", ":")) + "\n\n"
events = [chunk({"role": "assistant", "content": ""})]
events += [chunk({"content": " word%d" % i}) for i in range(198)]
events += [chunk({}, "stop"), "data: [DONE]\n\n"]
sse = "".join(events)
assert "'" not in whole
# Too long for a config string: served as a static file. nginx answers a POST to a static
# file with 405; error_page sends it on as a GET of the same file, answered 200.
import os
os.makedirs(f"{d}/sse/v1/chat", exist_ok=True)
open(f"{d}/sse/v1/chat/completions", "w").write(sse)
print(f"""worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_body_buffer_size 1m;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        location = /v1/chat/completions {{
            default_type application/json;
            return 200 '{whole}';
        }}
        location = /sse/v1/chat/completions {{
            default_type text/event-stream;
            root {d};
            error_page 405 =200 $uri;
        }}
    }}
}}""")
PY
# Workers run as an unprivileged user when started by root: they must be able to read the file.
chmod a+rx "$dir"
chmod -R a+rX "$dir/sse"
start_nginx "$server_core"
printf '%s' '{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":8}' > "$dir/post.json"
printf '%s' '{"model":"m","stream":true,"messages":[{"role":"user","content":"hello"}],"max_tokens":8}' > "$dir/post-sse.json"
url="https://127.0.0.1:$port"
echo "nginx on $url (1 worker, core $server_core); clients on core $client_core; $connections connections, $requests requests a run"

# Runs a client on its core under GNU time, and notes how busy nginx was meanwhile.
timed() {
    local before
    before=$(server_ticks)
    /usr/bin/time -f "%e %U %S" -o "$dir/t" taskset -c "$client_core" "$@"
    echo "$before $(server_ticks)" > "$dir/server"
}
server_busy() { # the share of one core nginx used during the last timed run, in percent
    local elapsed before after
    read -r elapsed _ < "$dir/t"
    read -r before after < "$dir/server"
    python3 -c "print(f'{($after - $before) / $(getconf CLK_TCK) / $elapsed * 100:.0f}')"
}
cpu_us() { # requests -> CPU us per request of the last timed run
    read -r _ user sys < "$dir/t"
    python3 -c "print(f'{($user + $sys) / $1 * 1e6:.1f}')"
}

h2load_rps() { # path body-file
    timed h2load --h1 -n "$requests" -c "$connections" -m 1 -d "$2" \
        -H 'content-type: application/json' "$url$1" > "$dir/h2load.out"
    local ok rps
    ok=$(awk '/^requests:/ {print $8}' "$dir/h2load.out")
    rps=$(awk '/^finished in/ {gsub(",", "", $4); print $4}' "$dir/h2load.out")
    [ "$ok" -eq "$requests" ] || { echo "h2load: $ok of $requests succeeded" >&2; cat "$dir/h2load.out" >&2; exit 1; }
    echo "$rps $(cpu_us "$requests") $(server_busy)"
}

# sluice bench with the given flags; prints "rps send_lag_p99_ms cpu_us"
sluice_bench() {
    timed "$sluice" bench --base-url "$1" --ca-file "$dir/cert.pem" --model m \
        --input-tokens 4 --output-tokens 8 -n "$requests" -q --json "$dir/b.json" \
        "${@:2}" > /dev/null
    python3 - "$dir/b.json" "$requests" "$dir/sent" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["completed"] == int(sys.argv[2]), f"completed {r['completed']} failed {r.get('failed')}"
print(f"{r['request_throughput']:.0f} {r['p99_send_lag_ms']:.3f}", end=" ")
# The CPU was spent on the warm-up's requests too.
open(sys.argv[3], "w").write(str(r["completed"] + r.get("warmup_requests", 0)))
PY
    echo "$(cpu_us "$(cat "$dir/sent")") $(server_busy)"
}

has_part() { case " $only " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# callgrind's instruction count for `sluice bench --stream` of N requests (8 connections, one
# thread: valgrind runs the threads one at a time anyway).
callgrind_ir() { # requests
    local mode=(--base-url "$url/sse/v1" --stream)
    if [ "$whole" = 1 ]; then mode=(--base-url "$url/v1" --no-stream); fi
    if [ -n "$open_rate" ]; then mode+=(--rate "$open_rate" --arrivals constant); fi
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" ${SLUICE_CALLGRIND_ARGS:-} "$sluice" bench \
        "${mode[@]}" --ca-file "$dir/cert.pem" --model m --input-tokens 4 \
        --output-tokens 8 -n "$1" -c 8 -q --json "$dir/b.json" > /dev/null 2> "$dir/cg.log"
    python3 - "$dir/b.json" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["completed"] == int(sys.argv[2]), f"completed {r['completed']} failed {r.get('failed')}"
PY
    awk '/^summary:/ {print $2}' "$dir/cg.out"
}

if [ -n "$callgrind" ]; then
    require_tools valgrind
    read -r n1 n2 <<< "$callgrind"
    events=$(grep -c '^data:' "$dir/sse/v1/chat/completions")
    ir1=$(callgrind_ir "$n1")
    if [ -n "${SLUICE_CALLGRIND_OUT:-}" ]; then cp "$dir/cg.out" "$SLUICE_CALLGRIND_OUT.first"; fi
    ir2=$(callgrind_ir "$n2")
    if [ -n "${SLUICE_CALLGRIND_OUT:-}" ]; then cp "$dir/cg.out" "$SLUICE_CALLGRIND_OUT"; fi
    if [ -n "$open_rate" ]; then
        python3 -c "d = ($ir2 - $ir1) / ($n2 - $n1); print(f'callgrind, sluice bench --no-stream --rate $open_rate: {$ir1} instructions for $n1 requests, {$ir2} for $n2: {d:,.0f} per request')"
        exit 0
    fi
    if [ "$whole" = 1 ]; then
        python3 -c "d = ($ir2 - $ir1) / ($n2 - $n1); print(f'callgrind, sluice bench --no-stream: {$ir1} instructions for $n1 requests, {$ir2} for $n2: {d:,.0f} per request')"
        exit 0
    fi
    python3 -c "d = ($ir2 - $ir1) / ($n2 - $n1); print(f'callgrind, sluice bench --stream: {$ir1} instructions for $n1 requests, {$ir2} for $n2: {d:,.0f} per streamed request, {d / $events:,.0f} per event ($events events a request)')"
    exit 0
fi

# Each round runs every part once, so that h2load and sluice meet the same moments of a shared
# machine; with several rounds the verdicts are taken from the medians (a stall of the host
# during one run of one level fails that run, not the level).
: > "$dir/closed"   # round h2load_rps sluice_rps
: > "$dir/stream"   # round h2load_rps sluice_rps
: > "$dir/open"     # round rate rps lag
for round in $(seq "$rounds"); do
    [ "$rounds" -gt 1 ] && echo && echo "round $round of $rounds"
    if has_part whole; then
        echo "1. closed loop, whole answers ($connections in flight)"
        read -r h_rps h_cpu h_busy <<< "$(h2load_rps /v1/chat/completions "$dir/post.json")"
        read -r s_rps _ s_cpu s_busy <<< "$(sluice_bench "$url/v1" -c "$connections" --no-stream)"
        printf "  %-22s %9s req/s %8s us CPU/request  nginx %4s%% busy\n" "h2load --h1" "$h_rps" "$h_cpu" "$h_busy" "sluice bench" "$s_rps" "$s_cpu" "$s_busy"
        echo "$round $h_rps $s_rps" >> "$dir/closed"
    fi
    if has_part stream; then
        echo "2. closed loop, 200-chunk SSE answers ($connections in flight)"
        read -r h_rps h_cpu h_busy <<< "$(h2load_rps /sse/v1/chat/completions "$dir/post-sse.json")"
        read -r s_rps _ s_cpu s_busy <<< "$(sluice_bench "$url/sse/v1" -c "$connections" --stream)"
        printf "  %-22s %9s req/s %8s us CPU/request  nginx %4s%% busy\n" "h2load --h1" "$h_rps" "$h_cpu" "$h_busy" "sluice bench --stream" "$s_rps" "$s_cpu" "$s_busy"
        python3 -c "print(f'  sluice / h2load = {$s_rps / $h_rps:.2f}x (target >= 0.8)')"
        echo "$round $h_rps $s_rps" >> "$dir/stream"
    fi
    if has_part open; then
        echo "3. open loop, whole answers, constant arrivals (at most $connections in flight, as h2load's connections; 2 s warm-up not recorded)"
        for r in $rates; do
            read -r s_rps lag s_cpu s_busy <<< "$(sluice_bench "$url/v1" --rate "$r" --arrivals constant -c "$connections" --warmup 2 --no-stream)"
            printf "  rate %6s: %9s req/s  send lag p99 %7s ms  %6s us CPU/request  nginx %4s%% busy\n" "$r" "$s_rps" "$lag" "$s_cpu" "$s_busy"
            echo "$round $r $s_rps $lag $s_busy" >> "$dir/open"
        done
    fi
done

echo
python3 - "$dir" "$rounds" <<'PY'
import statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
def rows(name):
    return [line.split() for line in open(f"{d}/{name}") if line.strip()]
med = statistics.median
closed, stream, open_ = rows("closed"), rows("stream"), rows("open")
what = "medians of %d rounds" % rounds if rounds > 1 else "one round"
print(f"summary ({what})")
h2load_closed = None
if closed:
    h2load_closed = med(float(r[1]) for r in closed)
    s = med(float(r[2]) for r in closed)
    print(f"  closed loop, whole answers: h2load {h2load_closed:.0f} req/s, sluice {s:.0f} req/s ({s / h2load_closed:.2f}x)")
if stream:
    ratio = med(float(r[2]) / float(r[1]) for r in stream)
    print(f"  closed loop, SSE: sluice / h2load = {ratio:.2f}x (target >= 0.8)")
if open_:
    rates = sorted({int(r[1]) for r in open_})
    best = 0
    for rate in rates:
        lags = [float(r[3]) for r in open_ if int(r[1]) == rate]
        busy = med(float(r[4]) for r in open_ if int(r[1]) == rate)
        lag = med(lags)
        if lag < 1.0:
            best = rate
        print(f"  open loop at {rate}/s: send lag p99 {lag:.3f} ms, nginx {busy:.0f}% busy" +
              (f" (p99 by round: {', '.join(f'{x:.3f}' for x in lags)})" if rounds > 1 else ""))
    line = f"  highest rate held with send lag p99 < 1 ms: {best}/s"
    if h2load_closed:
        line += f"; h2load closed loop: {h2load_closed:.0f}/s ({best / h2load_closed:.2f}x, target >= 1)"
    print(line)
PY

if [ -n "$profile" ]; then
    require_tools perf
    echo
    echo "profile of one more sluice bench --stream: $profile"
    taskset -c "$client_core" perf record -q -g -o "$profile" -- "$sluice" bench \
        --base-url "$url/sse/v1" --ca-file "$dir/cert.pem" --model m --input-tokens 4 \
        --output-tokens 8 -n "$requests" -c "$connections" -q --stream > /dev/null
    perf report -i "$profile" --no-children -g none --percent-limit 0.7 --stdio --sort dso,symbol 2>/dev/null |
        grep -E '^ +[0-9]' | sed -E 's/ +- +- *$//; s/ {2,}/  /g' | cut -c1-150 | head -50
fi
