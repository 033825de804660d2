#!/usr/bin/env bash
# Soak test: `sluice run` for a long time against `sluice mock` with faults and limits on,
# watching the client's memory and open file descriptors for growth (docs/testing.md, "Soak").
#
#   bench/soak/soak.sh [--minutes N] [--sluice PATH] [--keep DIR]
#
# The mock (127.0.0.1, ephemeral port) enforces 2,400 RPM with a bucket of 0.1 s (so bursts
# get 429s even though the client paces itself by the mock's x-ratelimit headers) and injects
# 500s, 503s, resets, truncated and malformed bodies, failed and cut streams, and a
# Connection: close every 50 answers. The client reads an endless generated input from a FIFO
# (every other line streamed), paced by its own RPM limit a little above the mock's, with the
# output on disk. Its RSS (VmRSS) and open descriptors are sampled every 5 s in runs shorter
# than 10 minutes, else every minute, and printed. At the end the client is stopped with
# SIGINT, then the mock and the generator, each by its PID, and the verdict printed:
#
#   growth: for RSS, the largest sample of the last third of the run is above the largest of
#   the first third by more than 8 MiB or 10%, whichever is larger; for descriptors, the
#   smallest sample of the last third is above the smallest of the first third by more than 4.
#   Descriptors are compared by their floor: how many connections are open at one moment
#   swings with the load (up to --concurrency 16 of them), while a leak raises the floor.
#
# --keep DIR keeps the logs and the samples. Exit status 0 when neither grew and the client
# handled requests throughout, 1 otherwise.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
minutes=10
sluice=""
keep=""
while [ $# -gt 0 ]; do
    case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    --sluice) sluice=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
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
    echo "soak.sh: no sluice binary (build the release or dev preset, or give --sluice)" >&2
    exit 2
fi

seconds=$((minutes * 60))
interval=60
if [ "$seconds" -lt 600 ]; then
    interval=5
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-soak-XXXXXX")"
mock_pid=""
gen_pid=""
client_pid=""
stop_all() {
    for pid in $client_pid $gen_pid $mock_pid; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $client_pid $gen_pid $mock_pid; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$keep" ]; then
        mkdir -p "$keep" && cp "$work"/*.log "$work"/samples.tsv "$keep"/ 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop_all EXIT

# The mock: limits and every fault it has, on a loopback port of its own choosing.
"$sluice" mock --port 0 --rpm 2400 --bucket-seconds 0.1 --close-every 50 \
    --fault-500 0.02 --fault-503 0.02 --fault-reset 0.02 --fault-truncated 0.01 \
    --fault-malformed 0.01 --fault-stream-error 0.02 --fault-stream-cut 0.02 \
    --latency-ms 5 --exponential-latency --seed 7 >"$work/mock.log" 2>&1 &
mock_pid=$!
base_url=""
for _ in $(seq 100); do
    base_url=$(sed -n 's/^sluice mock listening on \(http[^ ]*\).*/\1/p' "$work/mock.log")
    [ -n "$base_url" ] && break
    kill -0 "$mock_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$base_url" ]; then
    echo "soak.sh: the mock did not start:" >&2
    cat "$work/mock.log" >&2
    exit 1
fi
case "$base_url" in
http://127.0.0.1:*) ;;
*) echo "soak.sh: the mock is not on loopback: $base_url" >&2; exit 1 ;;
esac

# The input: endless, one line at a time as the client takes it (the FIFO holds it back).
mkfifo "$work/input.fifo"
awk 'BEGIN {
    for (i = 1; ; i++) {
        stream = (i % 2 == 0) ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : ""
        printf "{\"custom_id\":\"soak-%d\",\"method\":\"POST\",\"url\":\"/v1/chat/completions\",\"body\":{\"model\":\"gpt-4o-mini\",\"max_tokens\":16%s,\"messages\":[{\"role\":\"user\",\"content\":\"Soak line %d: say something.\"}]}}\n", i, stream, i
    }
}' >"$work/input.fifo" 2>/dev/null &
gen_pid=$!

OPENAI_API_KEY=sk-soak "$sluice" run - -o "$work/out.jsonl" --base-url "$base_url" \
    --rpm 3000 --concurrency 16 --max-attempts 4 --grace-period 5 --progress-interval 3600 \
    <"$work/input.fifo" >"$work/client.log" 2>&1 &
client_pid=$!

echo "soak: ${minutes} min against $base_url, client PID $client_pid, a sample every ${interval}s"
printf 'elapsed_s\trss_kib\tfds\trecords\n' >"$work/samples.tsv"
printf '%9s %10s %5s %9s\n' elapsed_s rss_kib fds records
start=$(date +%s)
next=$((start + interval))
while :; do
    now=$(date +%s)
    if [ "$now" -lt "$next" ]; then
        sleep $((next - now))
    fi
    if ! kill -0 "$client_pid" 2>/dev/null; then
        echo "soak.sh: the client exited early:" >&2
        tail -20 "$work/client.log" >&2
        exit 1
    fi
    elapsed=$(($(date +%s) - start))
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$client_pid/status")
    fds=$(find "/proc/$client_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    records=$(wc -l <"$work/out.jsonl" 2>/dev/null || echo 0)
    printf '%s\t%s\t%s\t%s\n' "$elapsed" "$rss" "$fds" "$records" >>"$work/samples.tsv"
    printf '%9s %10s %5s %9s\n' "$elapsed" "$rss" "$fds" "$records"
    next=$((next + interval))
    if [ "$elapsed" -ge "$seconds" ]; then
        break
    fi
done

# Stop the client as a user would (SIGINT: requests in flight finish, the rest not attempted).
kill -INT "$client_pid"
status=0
wait "$client_pid" || status=$?
client_pid=""
echo "soak: client exit status $status (130: interrupted, as asked); its summary:"
grep -v '^sluice run: [0-9]* lines so far' "$work/client.log" | tail -25 | sed 's/^/  /'
kill -INT "$mock_pid" 2>/dev/null || true
wait "$mock_pid" 2>/dev/null || true
mock_pid=""
echo "soak: the mock's counters (what it did to the client):"
grep -v 'listening on' "$work/mock.log" | tail -20 | sed 's/^/  /'

awk -F'\t' -v status="$status" '
NR > 1 { n++; t[n] = $1; rss[n] = $2; fds[n] = $3; rec[n] = $4 }
END {
    if (n < 3) { print "soak: verdict FAIL (fewer than 3 samples)"; exit 1 }
    third = int(n / 3)
    fds_first = fds[1]
    fds_last = fds[n]
    for (i = 1; i <= third; i++) {
        if (rss[i] > rss_first) rss_first = rss[i]
        if (fds[i] < fds_first) fds_first = fds[i]
    }
    for (i = n - third + 1; i <= n; i++) {
        if (rss[i] > rss_last) rss_last = rss[i]
        if (fds[i] < fds_last) fds_last = fds[i]
    }
    allowance = rss_first / 10
    if (allowance < 8192) allowance = 8192
    fail = 0
    printf "soak: RSS max %d KiB in the first third, %d KiB in the last (allowed %d)\n", rss_first, rss_last, rss_first + allowance
    printf "soak: descriptors min %d in the first third, %d in the last (allowed %d)\n", fds_first, fds_last, fds_first + 4
    if (rss_last > rss_first + allowance) { print "soak: RSS grew"; fail = 1 }
    if (fds_last > fds_first + 4) { print "soak: descriptors grew"; fail = 1 }
    # Work went on to the end: records were written in the last third.
    if (rec[n] <= rec[n - third]) { print "soak: no records written in the last third"; fail = 1 }
    if (status != 130 && status != 0) { print "soak: the client failed"; fail = 1 }
    printf "soak: %d records in %d s\n", rec[n], t[n]
    print (fail ? "soak: verdict FAIL" : "soak: verdict PASS (no growth)")
    exit fail
}' "$work/samples.tsv"
