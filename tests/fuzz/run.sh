#!/usr/bin/env bash
# Runs sluice's libFuzzer targets (docs/testing.md, "Fuzzing and sanitizers").
#
#   tests/fuzz/run.sh [--minutes N | --seconds N] [--bin DIR] [--out DIR] [TARGET...]
#
# Each TARGET (default: all, one after the other) runs for the given time (default 10
# minutes each; hours are fine: --minutes 240) from a copy of its seed corpus in
# tests/fuzz/corpus/TARGET, in OUT/corpus/TARGET (the repository is never written; a later run
# with the same --out goes on from what the earlier one found). Crash inputs are kept in
# OUT/crashes/TARGET. Long runs (a minute or more) go on after a crash, in libFuzzer's fork
# mode, so one run collects every crash it can; short ones (ctest's) stop at the first.
# Exit status: 0 when no target crashed in this run, 1 otherwise.
#
# Build first: cmake --preset fuzz && cmake --build --preset fuzz (binaries in build/fuzz/fuzz).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seconds=600
bin="$root/build/fuzz/fuzz"
out="${TMPDIR:-/tmp}/sluice-fuzz"
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --minutes) seconds=$(($2 * 60)); shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    for dir in "$here"/corpus/*/; do
        targets+=("$(basename "$dir")")
    done
fi

crashed=()
for t in "${targets[@]}"; do
    exe="$bin/fuzz_$t"
    if [ ! -x "$exe" ]; then
        echo "run.sh: no $exe (cmake --preset fuzz && cmake --build --preset fuzz)" >&2
        exit 2
    fi
    corpus="$out/corpus/$t"
    crashes="$out/crashes/$t"
    mkdir -p "$corpus" "$crashes"
    cp -n "$here/corpus/$t"/* "$corpus"/ 2>/dev/null || true
    before=$(find "$crashes" -type f | wc -l)
    mode=()
    if [ "$seconds" -ge 60 ]; then
        mode=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    echo "== fuzz_$t: ${seconds}s, corpus $corpus, crashes to $crashes"
    # -timeout: one input taking 10 s is a finding (a hang); -rss_limit_mb: so is 2 GB.
    # The scratch files some targets write go to a directory of their own under $out.
    status=0
    TMPDIR="$out" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
        UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
        "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$crashes/" "${mode[@]}" "$corpus" || status=$?
    after=$(find "$crashes" -type f | wc -l)
    if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
        crashed+=("$t")
    fi
done

if [ ${#crashed[@]} -eq 0 ]; then
    echo "run.sh: no crash in ${targets[*]}"
    exit 0
fi
echo
echo "run.sh: crashes in ${crashed[*]}; inputs kept in $out/crashes/<target>/:"
for t in "${crashed[@]}"; do
    ls -t "$out/crashes/$t" | head -10 | sed "s|^|  $out/crashes/$t/|"
done
cat <<TEXT

To turn one into a regression test:
  1. Replay it:     $bin/fuzz_TARGET CRASH_FILE   (prints the stack or the broken invariant)
     Shrink it:     $bin/fuzz_TARGET -minimize_crash=1 -runs=10000 CRASH_FILE
  2. Fix the code in src/ (its own commit), and check the replay passes.
  3. Keep the input: cp CRASH_FILE tests/fuzz/corpus/TARGET/regress-SHORT-NAME
  4. Add a unit test that feeds the same bytes to the same function in the stage's test file
     (tests/unit/<stage>/..._test.cpp) and asserts the right behaviour, not only no crash.
TEXT
exit 1
