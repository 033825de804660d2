#!/usr/bin/env bash
# Many connections at once: `sluice run --concurrency C` (10,000 by default) against nginx
# serving a canned completion over TLS (a closed loop: the pool opens what the load needs),
# then against `sluice mock` answering after --hold-ms, whole and streamed, so that all C
# connections hold a request at once.
# Prints, for each: requests that succeeded, the rate, the connections opened, and the
# client's peak RSS and CPU per request, so that memory per connection can be read off.
#
# The certificate is ECDSA (P-256, lib.sh), so that the 10,000 handshakes measure the client
# rather than nginx's RSA signatures. The script raises its own soft open-file limit; the
# hard limit must allow about C + 200 (`ulimit -Hn`). nginx and the mock are pinned to one
# core and the client to the other.
#
# usage: bench/e2e/connections.sh [--sluice PATH] [--connections C] [--lines N]
#                                 [--stream-lines N] [--hold-ms MS] [--server-core K]
#                                 [--client-core K] [--only nginx|mock|stream] [--plain]
#   --only L   run one of the three loads (nginx, mock: whole answers held, stream: streamed
#              answers held), e.g. to measure a change to the streamed path alone
#   --plain    the mock loads over plain HTTP instead of TLS: what a connection costs sluice
#              itself, without OpenSSL's share
# Build first: cmake --preset bench && cmake --build --preset bench
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sluice="$root/build/bench/sluice"
connections=10000
lines=50000
stream_lines=20000
hold_ms=2000
server_core=0
client_core=1
only=""
plain=""
while [ $# -gt 0 ]; do
    case "$1" in
        --sluice) sluice=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --lines) lines=$2; shift 2 ;;
        --stream-lines) stream_lines=$2; shift 2 ;;
        --hold-ms) hold_ms=$2; shift 2 ;;
        --server-core) server_core=$2; shift 2 ;;
        --client-core) client_core=$2; shift 2 ;;
        --only) only=$2; shift 2 ;;
        --plain) plain=1; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$only" in
    "" | nginx | mock | stream) ;;
    *) echo "--only takes nginx, mock or stream" >&2; exit 2 ;;
esac
wants() { [ -z "$only" ] || [ "$only" = "$1" ]; }
. "$here/lib.sh"
require_tools nginx openssl python3 taskset
require_sluice "$sluice"

need=$((connections + 200))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    echo "the hard open-file limit is $hard; $need are needed (ulimit -Hn, limits.conf)" >&2
    exit 2
fi
# nginx gets twice as many: connections the client gave up on (a timed-out connect, a closed
# one) still hold a slot there until it reads their end, and a full nginx closes live ones.
server_need=$((2 * connections + 200))
if [ "$hard" != unlimited ] && [ "$hard" -lt "$server_need" ]; then
    server_need=$hard
fi
ulimit -Sn "$server_need" # for nginx; sluice raises its own

setup_workdir
body='{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how can I help?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20},"system_fingerprint":"fp_bench"}'
sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@BODY@|$body|" \
    -e "s|worker_connections 4096;|worker_connections $server_need;|" \
    -e "s|^worker_processes 1;|worker_processes 1;\nworker_rlimit_nofile $server_need;|" \
    -e "s|listen 127.0.0.1:$port ssl;|listen 127.0.0.1:$port ssl backlog=4096;|" \
    "$here/nginx.conf.in" > "$dir/nginx.conf"
start_nginx "$server_core"

make_input() { # lines stream(0|1) file
    python3 - "$1" "$2" > "$3" <<'PY'
import json, sys
stream = sys.argv[2] == "1"
for i in range(int(sys.argv[1])):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say hello to line {i}"}], "max_tokens": 16}
    if stream:
        body["stream"] = True
    print(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}, separators=(",", ":")))
PY
}
make_input "$lines" 0 "$dir/in.jsonl"
make_input "$stream_lines" 1 "$dir/stream.jsonl"
printf '[pool]\nreuse_quiet_period_ms = 0\n' > "$dir/trusted.toml"

report() { # name lines
    local elapsed user sys rss
    # GNU time writes "Command exited with non-zero status N" first when the run failed.
    read -r elapsed user sys rss < <(tail -n 1 "$dir/t")
    local out_lines ok opened
    out_lines=$(wc -l < "$dir/out.jsonl")
    ok=$(grep -o 'succeeded [0-9]*' "$dir/summary" | awk '{print $2}')
    opened=$(grep -o 'connections: [0-9]* opened' "$dir/summary" | awk '{print $2}')
    python3 - "$1" "$2" "$out_lines" "${ok:-0}" "${opened:-0}" "$elapsed" "$user" "$sys" "$rss" <<'PY'
import sys
name, n, out, ok, opened = sys.argv[1], *map(int, sys.argv[2:6])
e, u, s, rss = map(float, sys.argv[6:])
print(f"{name}: {ok}/{n} succeeded ({out} records), {n / e:.0f} req/s, {opened} connections opened, "
      f"peak RSS {rss / 1024:.1f} MiB ({rss * 1024 / max(opened, 1) / 1000:.1f} kB per connection opened), "
      f"{(u + s) / n * 1e6:.1f} us CPU/request")
PY
    if [ "$out_lines" -ne "$2" ] || [ "${ok:-0}" -ne "$2" ]; then
        echo "$1: not every request succeeded:" >&2
        cat "$dir/summary" >&2
        echo "server log (last lines):" >&2
        tail -n 5 "$dir/error.log" "$dir/mock.log" 2>/dev/null >&2 || true
        exit 1
    fi
}

if wants nginx; then
    echo "nginx on 127.0.0.1:$port (ECDSA P-256, core $server_core); sluice on core $client_core; $connections connections"
    rm -f "$dir/out.jsonl"
    /usr/bin/time -f "%e %U %S %M" -o "$dir/t" taskset -c "$client_core" "$sluice" run "$dir/in.jsonl" \
        -o "$dir/out.jsonl" --base-url "https://127.0.0.1:$port/v1" --ca-file "$dir/cert.pem" \
        --concurrency "$connections" --config "$dir/trusted.toml" ${SLUICE_ARGS:-} 2> "$dir/summary" || true
    report "nginx, $lines lines" "$lines"
fi

# The mock answers after --hold-ms, so that every connection holds a request in flight at
# once: the connections the pool opens are the ones asked for, and the peak RSS is theirs.
start_mock() { # extra mock flags...
    local tls=(--tls --write-cert "$dir/mock.pem")
    [ -z "$plain" ] || tls=()
    taskset -c "$server_core" "$sluice" mock "${tls[@]}" --port 0 "$@" > "$dir/mock.log" 2>&1 &
    mock_pid=$!
    trap 'kill $mock_pid 2>/dev/null || true; cleanup' EXIT
    mock_url=""
    for _ in $(seq 100); do
        mock_url=$(grep -Eo 'https?://[0-9.:]*' "$dir/mock.log" 2>/dev/null | head -n 1) && [ -n "$mock_url" ] && break
        sleep 0.05
    done
    [ -n "$mock_url" ] || { echo "sluice mock did not start:" >&2; cat "$dir/mock.log" >&2; exit 1; }
}
stop_mock() {
    kill "$mock_pid" 2>/dev/null || true
    wait "$mock_pid" 2>/dev/null || true
}
run_against_mock() { # name input lines
    rm -f "$dir/out.jsonl"
    local ca=(--ca-file "$dir/mock.pem")
    [ -z "$plain" ] || ca=()
    /usr/bin/time -f "%e %U %S %M" -o "$dir/t" taskset -c "$client_core" "$sluice" run "$2" \
        -o "$dir/out.jsonl" --base-url "$mock_url/v1" "${ca[@]}" \
        --concurrency "$connections" --config "$dir/trusted.toml" ${SLUICE_ARGS:-} 2> "$dir/summary" || true
    report "$1" "$3"
}

if wants mock; then
    start_mock --latency-ms "$hold_ms"
    run_against_mock "sluice mock${plain:+ (plain HTTP)}, answers after $hold_ms ms, $lines lines" "$dir/in.jsonl" "$lines"
    stop_mock
fi
# Streams: the head after --hold-ms, then 16 chunks 50 ms apart.
if wants stream; then
    start_mock --latency-ms "$hold_ms" --chunk-ms 50
    run_against_mock "sluice mock${plain:+ (plain HTTP)}, streamed, $stream_lines lines" "$dir/stream.jsonl" "$stream_lines"
    stop_mock
fi
