#!/usr/bin/env bash
# End-to-end throughput: `sluice run` against a local nginx serving a canned completion over
# TLS keep-alive, side by side with wrk against the same nginx with the same connection count.
# Every sluice response is parsed and written to the output file. Prints both rates, the
# ratio (target: sluice >= 0.8x wrk) and sluice's peak RSS.
#
# usage: bench/e2e/vs_wrk.sh [--sluice PATH] [--lines N] [--connections C] [--wrk-seconds S]
#                            [--threads T]
# Build first: cmake --preset bench && cmake --build --preset bench
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
sluice="$root/build/bench/sluice"
lines=200000
connections=64
wrk_seconds=10
threads=1
while [ $# -gt 0 ]; do
    case "$1" in
        --sluice) sluice=$2; shift 2 ;;
        --lines) lines=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --wrk-seconds) wrk_seconds=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
for tool in nginx wrk openssl python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (run .ci/install-deps)" >&2; exit 2; }
done
[ -x "$sluice" ] || { echo "no sluice binary at $sluice (cmake --build --preset bench)" >&2; exit 2; }

dir=$(mktemp -d)
nginx_pid=""
cleanup() {
    if [ -n "$nginx_pid" ]; then
        kill "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
body='{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how can I help?","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20},"system_fingerprint":"fp_bench"}'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@BODY@|$body|" "$here/nginx.conf.in" > "$dir/nginx.conf"
nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" &
nginx_pid=$!
for _ in $(seq 100); do
    (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
done

python3 - "$lines" > "$dir/in.jsonl" <<'PY'
import json, sys
for i in range(int(sys.argv[1])):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say hello to line {i}"}], "max_tokens": 16}
    print(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}, separators=(",", ":")))
PY

url="https://127.0.0.1:$port/v1"
echo "nginx on $url (1 worker), $lines lines, $connections connections, $(nproc) cores"

wrk_out=$(wrk -t2 -c"$connections" -d"${wrk_seconds}s" -s "$here/post.lua" "$url/chat/completions")
wrk_rps=$(echo "$wrk_out" | awk '/Requests\/sec/ {print $2}')

# wrk trusts every response it reads; so does sluice here (no quiet period on reused
# connections: pool.reuse_quiet_period_ms, docs/architecture.md#misbehaving-servers), or the
# comparison would time a check wrk does not make. SLUICE_ARGS="--config other.toml" overrides.
printf '[pool]\nreuse_quiet_period_ms = 0\n' > "$dir/trusted.toml"
/usr/bin/time -f "%M" -o "$dir/rss" "$sluice" run "$dir/in.jsonl" -o "$dir/out.jsonl" \
    --base-url "$url" --ca-file "$dir/cert.pem" --concurrency "$connections" --threads "$threads" \
    --config "$dir/trusted.toml" \
    ${SLUICE_ARGS:-} \
    2> "$dir/summary"
out_lines=$(wc -l < "$dir/out.jsonl")
[ "$out_lines" -eq "$lines" ] || { echo "sluice wrote $out_lines lines for $lines" >&2; cat "$dir/summary" >&2; exit 1; }
grep -q "succeeded $lines," "$dir/summary" || { echo "not every request succeeded" >&2; cat "$dir/summary" >&2; exit 1; }
sluice_rps=$(sed -n 's/.*(\([0-9.]*\) req\/s).*/\1/p' "$dir/summary")
rss_kb=$(cat "$dir/rss")

printf "%-28s %12s\n" "wrk -t2 req/s" "$wrk_rps"
printf "%-28s %12s\n" "sluice run req/s" "$sluice_rps"
printf "%-28s %12s\n" "ratio sluice/wrk" "$(python3 -c "print(f'{$sluice_rps/$wrk_rps:.2f}')")"
printf "%-28s %12s\n" "sluice peak RSS (MiB)" "$(python3 -c "print(f'{$rss_kb/1024:.1f}')")"
sed 's/^/  /' "$dir/summary"
