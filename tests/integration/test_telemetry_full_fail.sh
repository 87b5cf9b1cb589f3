#!/usr/bin/env bash
# telemetry_full whose outputs or monitor fail: stdout on /dev/full, the
# JSONL log on /dev/full, and a monitor that cannot open /proc/loadavg for
# want of descriptors (EMFILE, injected by strace on that one path). Each
# run exits non-zero at once with a `drover: ` line naming the cause, and
# leaves nothing behind.
set -u
. "$(dirname "$0")/rt_lib.sh"
. "$(dirname "$0")/test_telemetry_full_lib.sh"

small_mnist "$WORK/data" 64 16
ok=(--epochs 1 --mem 65536 --size 64 --tail 0 --data-dir "$WORK/data")
n=0
# failed WHAT CAUSE OUT CMD...: CMD, its stdout on OUT, exits non-zero
# within 15 s, a line of its stderr naming CAUSE.
failed() {
    local what=$1 cause=$2 out=$3 t0 t1 rc
    shift 3
    t0=$(date +%s%N)
    timeout 120 "$@" >"$out" 2>"$WORK/err"
    rc=$?
    t1=$(date +%s%N)
    [ "$rc" -ne 0 ] || bad "$what: exit 0"
    [ "$rc" -ne 124 ] || bad "$what: still running after 120 s"
    grep -q "^drover: telemetry_full: .*$cause" "$WORK/err" ||
        bad "$what: stderr does not name '$cause': $(cat "$WORK/err")"
    [ $(((t1 - t0) / 1000000)) -lt 15000 ] ||
        bad "$what: took $(((t1 - t0) / 1000000)) ms"
}

n=$((n + 1))
DROVER_JOB_ID=tf_fail${n}_$$ failed "stdout on /dev/full" \
    "stdout: No space left on device" /dev/full "$TF" "${ok[@]}"
no_leftovers tf_fail${n}_$$

n=$((n + 1))
failed "log on /dev/full" "/dev/full: No space left on device" "$WORK/out" \
    "$D" run --job-id tf_fail${n}_$$ -- "$TF" "${ok[@]}" \
    --telemetry-log /dev/full
grep -q "post-processing process ended early" "$WORK/err" ||
    bad "log on /dev/full: the main process did not fail the run: $(cat "$WORK/err")"
no_leftovers tf_fail${n}_$$

n=$((n + 1))
if ! command -v strace >/dev/null; then
    echo "not run: a monitor out of descriptors (no strace)"
elif ! strace -f -qq --seccomp-bpf -o /dev/null true 2>/dev/null; then
    echo "not run: a monitor out of descriptors (strace cannot trace here)"
else
    # LeakSanitizer cannot run under a tracer.
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        DROVER_JOB_ID=tf_fail${n}_$$ failed "monitor out of descriptors" \
        "/proc/loadavg: Too many open files" "$WORK/out" \
        strace -f -qq --seccomp-bpf -o /dev/null -e trace=openat \
        -e inject=openat:error=EMFILE -P /proc/loadavg "$TF" "${ok[@]}"
    grep -q "monitor of node 0 ended early" "$WORK/err" ||
        bad "monitor out of descriptors: the run is not failed with it: $(cat "$WORK/err")"
    no_leftovers tf_fail${n}_$$
fi
finish
