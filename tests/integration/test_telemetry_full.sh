#!/usr/bin/env bash
# telemetry_full on one node, through `drover run` and started directly: the
# seed's output lines in order, one final test per learning rate, the
# summary, a checksum that repeats with the seed and changes with --seed,
# exit 0, and nothing of the job left behind.
set -u
. "$(dirname "$0")/rt_lib.sh"
. "$(dirname "$0")/test_telemetry_full_lib.sh"

small_mnist "$WORK/data" 640 200
host=$(uname -n | sed 's/[.]/\\./g')
args=(--epochs 1 --mem 4194304 --size 256 --interval 0.5
    --data-dir "$WORK/data")

"$D" run --job-id tf_run1_$$ -- "$TF" "${args[@]}" >"$WORK/run.out" 2>"$WORK/run.err"
rc=$?
[ "$rc" -eq 0 ] || bad "drover run: exit $rc: $(cat "$WORK/run.err")"
check_seed_output "$WORK/run.out" "$host" 2 2 64
no_leftovers tf_run1_$$

DROVER_JOB_ID=tf_direct1_$$ "$TF" "${args[@]}" --scipy_workers 1 \
    --mnist_workers 3 >"$WORK/direct.out" 2>"$WORK/direct.err"
rc=$?
[ "$rc" -eq 0 ] || bad "direct: exit $rc: $(cat "$WORK/direct.err")"
check_seed_output "$WORK/direct.out" "$host" 1 3 64
no_leftovers tf_direct1_$$

DROVER_JOB_ID=tf_seed2_$$ "$TF" "${args[@]}" --seed 2 >"$WORK/seed2.out" 2>&1 ||
    bad "--seed 2: exit $?"
no_leftovers tf_seed2_$$

a=$(checksum "$WORK/run.out") b=$(checksum "$WORK/direct.out")
c=$(checksum "$WORK/seed2.out")
[ -n "$a" ] && [ "$a" = "$b" ] || bad "checksum differs with the same seed: '$a' '$b'"
[ -n "$c" ] && [ "$c" != "$a" ] || bad "checksum the same with --seed 2: '$a' '$c'"
# The summary: one line per MNIST worker with its epochs and rates.
[ "$(grep -c '^    learning rate .*: 1 epochs in .* epochs/s, .* images/s, on ' \
    "$WORK/direct.out")" -eq 3 ] || bad "summary: not 3 worker lines"
# Stderr holds at most the telemetry's notes (no GPU here, for example).
if grep -v '^drover: telemetry: ' "$WORK/run.err" | grep -q .; then
    bad "unexpected stderr: $(cat "$WORK/run.err")"
fi
[ "$fail" -eq 0 ] || { echo "--- output of the drover run:"; cat "$WORK/run.out"; }
finish
