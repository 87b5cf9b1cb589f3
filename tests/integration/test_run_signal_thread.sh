#!/usr/bin/env bash
# drover run never misses the end of its main process, even when a library
# it loads (NVML, through the GPU count) keeps a thread with every signal
# unblocked, which takes the SIGCHLD the supervision waits for: 300 runs of
# `drover run -- true` with the NVML test double's such thread, none hangs.
# And the signals are blocked before NVML is first called.
set -u
. "$(dirname "$0")/rt_lib.sh"
export DROVER_NVML_LIBRARY=$B/lib/libdv_fake_nvml_thread.so DV_FAKE_NVML=thread
export DROVER_RSMI_LIBRARY=/nonexistent.so
# Under TSan: no second of sleep at each exit (the double's thread lives).
export TSAN_OPTIONS="${TSAN_OPTIONS:-} atexit_sleep_ms=0"
[ -e "$DROVER_NVML_LIBRARY" ] || bad "no NVML test double at $DROVER_NVML_LIBRARY"
hung=0
for i in $(seq 300); do
    timeout -s KILL 20 "$D" run --job-id "sigthr$$-$i" -- /bin/true \
        </dev/null >/dev/null 2>"$DROVER_TMPDIR/../sigthr$$.err"
    rc=$?
    if [ "$rc" -ne 0 ]; then
        bad "run $i: exit $rc$([ "$rc" -eq 137 ] && echo ' (hung)'): $(cat "$DROVER_TMPDIR/../sigthr$$.err")"
        hung=$((hung + 1))
        rm -f /dev/shm/drover.sigthr$$-$i.* 2>/dev/null
        rm -rf "$DROVER_TMPDIR/drover.sigthr$$-$i"
        [ "$hung" -ge 2 ] && break
    fi
done
rm -f "$DROVER_TMPDIR/../sigthr$$.err"
# A main process that lives a little: its end is seen at once too.
t0=$(date +%s%N)
timeout -s KILL 20 "$D" run --job-id "sigthr$$-s" -- sleep 0.3 </dev/null ||
    bad "sleep 0.3: exit $?"
t1=$(date +%s%N)
[ $(((t1 - t0) / 1000000)) -lt 5000 ] || bad "sleep 0.3 took $(((t1 - t0) / 1000000)) ms"
no_leftovers "sigthr$$-s"
# The signals are blocked before NVML is first called, so that the threads
# it starts (which inherit the mask) leave them to the supervision.
mask=$DROVER_TMPDIR/../sigthr$$.mask
DV_FAKE_NVML=two DV_FAKE_NVML_MASK=$mask timeout -s KILL 20 "$D" run \
    --job-id "sigthr$$-m" -- /bin/true </dev/null || bad "mask: exit $?"
[ "$(cat "$mask" 2>/dev/null)" = blocked ] ||
    bad "NVML called with the signals $(cat "$mask" 2>/dev/null || echo '(not called)')"
rm -f "$mask"
no_leftovers "sigthr$$-m"
finish
