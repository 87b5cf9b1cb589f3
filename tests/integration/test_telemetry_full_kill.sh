#!/usr/bin/env bash
# An MNIST worker of telemetry_full killed with SIGKILL mid-run: the run
# reports it with its learning rate, the other worker finishes and prints
# its final test, the telemetry ends cleanly, the exit status is non-zero
# and nothing of the job is left.
set -u
. "$(dirname "$0")/rt_lib.sh"
. "$(dirname "$0")/test_telemetry_full_lib.sh"

small_mnist "$WORK/data" 640 200
"$D" run --job-id tf_kill1_$$ -- "$TF" --epochs 8 --mem 65536 --size 64 \
    --interval 0.5 --data-dir "$WORK/data" >"$WORK/out" 2>"$WORK/err" &
run=$!
wait_for "$WORK/out" "^Launching scipy and mnist jobs" ||
    bad "the jobs did not launch"
# The MNIST workers are the job's processes that use the CPU: wait until
# one has used a second of it, then kill the busiest.
victim=""
for _ in $(seq 300); do
    best=0
    for p in $(job_procs tf_kill1_$$); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = telemetry_full ] || continue
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f12)
        if [ "${t:-0}" -gt "$best" ]; then
            best=$t
            victim=$p
        fi
    done
    [ "$best" -ge "$(getconf CLK_TCK)" ] && break
    victim=""
    sleep 0.1
done
if [ -z "$victim" ]; then
    bad "no busy MNIST worker found"
    kill -INT "$run"
else
    echo "killing $victim ($best ticks of CPU; parent $(cut -d' ' -f4 "/proc/$victim/stat"))"
    ps -o pid,ppid,stat,time,args -p "$(job_procs tf_kill1_$$ | paste -sd, -)" 2>/dev/null | cut -c1-80
    kill -KILL "$victim"
fi
for _ in $(seq 1200); do alive "$run" || break; sleep 0.1; done
alive "$run" && { bad "the run did not end in 120 s"; kill -KILL "$run"; }
wait "$run"
rc=$?
[ "$rc" -ne 0 ] || bad "exit 0 after a worker was killed"
lr=$(sed -n 's/^drover: telemetry_full: MNIST worker for learning rate \([0-9.]*\) failed.*/\1/p' "$WORK/err")
case $lr in
0.5) other=1.5 ;;
1.5) other=0.5 ;;
*) bad "the killed worker is not reported with its learning rate: $(cat "$WORK/err")" ;;
esac
if [ -n "${other:-}" ]; then
    grep -q "^Final test for learning rate $other: loss: [0-9.e+-]* accuracy: [0-9.]*$" \
        "$WORK/out" || bad "the other worker ($other) did not finish"
    grep -q "^Final test for learning rate $lr:" "$WORK/out" &&
        bad "a final test for the killed worker ($lr)"
fi
check_order "$WORK/out" "^Shutting down procs$" \
    "^Telemetry process on node .* exiting \.\.\.$" "^Post process is exiting$"
no_leftovers tf_kill1_$$ "$victim"
[ "$fail" -eq 0 ] && [ -z "${TF_SHOW:-}" ] || { echo "--- stdout:"; cat "$WORK/out"; echo "--- stderr:"; cat "$WORK/err"; }
finish
