#!/usr/bin/env bash
# telemetry_full with a full /dev/shm: run in a mount namespace of its own
# (unshare -m) with a tiny tmpfs on /dev/shm, it fails within seconds with
# a `drover: ` line saying there is no space in /dev/shm, not after a 60 s
# wait and not by SIGBUS. Skipped (77) where such a namespace cannot be
# made (it needs root or a user namespace).
set -u
. "$(dirname "$0")/rt_lib.sh"
. "$(dirname "$0")/test_telemetry_full_lib.sh"

command -v unshare >/dev/null || { echo "SKIP: no unshare"; exit 77; }
unshare -m sh -c 'mount -t tmpfs -o size=4k tmpfs /dev/shm' 2>/dev/null ||
    { echo "SKIP: cannot mount a tmpfs on /dev/shm in a mount namespace"; exit 77; }
small_mnist "$WORK/data" 64 16
ok="--epochs 1 --mem 65536 --size 64 --tail 0 --data-dir $WORK/data"
# 4k: the first segment takes the only page; 64k: the segments are made,
# a monitor's first sample finds no room in the queue.
for size in 4k 64k; do
    job=tf_shm_${size}_$$
    t0=$(date +%s%N)
    DROVER_JOB_ID=$job timeout 120 unshare -m sh -c \
        "mount -t tmpfs -o size=$size tmpfs /dev/shm && exec \"\$0\" $ok" \
        "$TF" >"$WORK/out" 2>"$WORK/err"
    rc=$?
    t1=$(date +%s%N)
    [ "$rc" -ne 0 ] || bad "$size: exit 0"
    [ "$rc" -lt 128 ] || bad "$size: exit $rc (a signal): $(cat "$WORK/err")"
    grep -q "^drover: telemetry_full: .*no space in /dev/shm" "$WORK/err" ||
        bad "$size: stderr does not say 'no space in /dev/shm': $(cat "$WORK/err")"
    [ $(((t1 - t0) / 1000000)) -lt 15000 ] ||
        bad "$size: took $(((t1 - t0) / 1000000)) ms"
    no_leftovers "$job"
done
finish
