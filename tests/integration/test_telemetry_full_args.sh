#!/usr/bin/env bash
# telemetry_full's bad command lines and inputs: one `drover: ` line on
# stderr, exit 2, nothing printed on stdout (no process of the demo
# started), quickly, and nothing left behind. And -h.
set -u
. "$(dirname "$0")/rt_lib.sh"
. "$(dirname "$0")/test_telemetry_full_lib.sh"

small_mnist "$WORK/data" 64 16
mkdir -p "$WORK/empty" "$WORK/badnpy" "$WORK/ro"
echo "not an array" >"$WORK/badnpy/a.npy"
ok=(--epochs 1 --mem 65536 --size 64 --data-dir "$WORK/data")
n=0
# refused WHAT ARGS...: the run must be refused as described above.
refused() {
    local what=$1 t0 t1 rc lines
    shift
    n=$((n + 1))
    t0=$(date +%s%N)
    DROVER_JOB_ID=tf_args${n}_$$ timeout 30 "$TF" "$@" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    t1=$(date +%s%N)
    lines=$(wc -l <"$WORK/err")
    [ "$rc" -eq 2 ] || bad "$what: exit $rc, want 2"
    [ "$lines" -eq 1 ] && grep -q '^drover: telemetry_full: ' "$WORK/err" ||
        bad "$what: stderr is not one 'drover: telemetry_full: ' line: $(cat "$WORK/err")"
    [ -s "$WORK/out" ] && bad "$what: printed on stdout: $(head -n3 "$WORK/out")"
    [ $(((t1 - t0) / 1000000)) -lt 5000 ] || bad "$what: took $(((t1 - t0) / 1000000)) ms"
    no_leftovers tf_args${n}_$$
}

refused "negative scipy workers" "${ok[@]}" --scipy_workers -1
refused "zero scipy workers" "${ok[@]}" --scipy_workers 0
refused "zero MNIST workers" "${ok[@]}" --mnist_workers 0
refused "negative MNIST workers" "${ok[@]}" --mnist_workers=-2
refused "one MNIST worker" "${ok[@]}" --mnist_workers 1
refused "size 0" "${ok[@]}" --size 0
refused "mem below size squared" --epochs 1 --size 64 --mem 4095 --data-dir "$WORK/data"
refused "huge size" "${ok[@]}" --size 99999999
refused "not a number" "${ok[@]}" --epochs many
refused "zero epochs" "${ok[@]}" --epochs 0
refused "bad gamma" "${ok[@]}" --gamma x
refused "zero interval" "${ok[@]}" --interval 0
refused "unknown flag" "${ok[@]}" --frobnicate
refused "stray argument" "${ok[@]}" stray
refused "missing value" "${ok[@]}" --seed
refused "bad images kind" "${ok[@]}" --images pictures
refused "missing data dir" "${ok[@]}" --data-dir "$WORK/nonexistent"
refused "data dir without MNIST" "${ok[@]}" --data-dir "$WORK/empty"
refused "missing images dir" "${ok[@]}" --images file:"$WORK/nonexistent"
refused "images dir without .npy" "${ok[@]}" --images file:"$WORK/empty"
refused "broken .npy" "${ok[@]}" --images file:"$WORK/badnpy"
refused "log in a missing dir" "${ok[@]}" --telemetry-log "$WORK/nonexistent/t.jsonl"
refused "plot in a missing dir" "${ok[@]}" --telemetry-plot "$WORK/nonexistent/t.svg"
if [ "$(id -u)" -ne 0 ]; then # root writes anywhere
    chmod 555 "$WORK/ro"
    refused "unwritable log" "${ok[@]}" --telemetry-log "$WORK/ro/t.jsonl"
fi
refused "log is a directory" "${ok[@]}" --telemetry-log "$WORK/ro"
out=$("$D" run --job-id tf_args_run_$$ -- "$TF" "${ok[@]}" --mnist_workers 1 2>&1)
rc=$?
[ "$rc" -eq 2 ] || bad "through drover run: exit $rc, want 2"
grep -q '^drover: telemetry_full: argument --mnist_workers' <<<"$out" ||
    bad "through drover run: $out"
no_leftovers tf_args_run_$$

help=$("$TF" -h)
rc=$?
[ "$rc" -eq 0 ] || bad "-h: exit $rc"
for flag in --scipy_workers --mnist_workers --bars --no-cuda --size --mem \
    --batch-size --test-batch-size --epochs --gamma --seed --data-dir \
    --images --interval --tail --telemetry-log --telemetry-plot; do
    grep -q -- "$flag" <<<"$help" || bad "-h does not mention $flag"
done
grep -q '^usage: telemetry_full' <<<"$help" || bad "-h: no usage line"
finish
