#!/usr/bin/env bash
# Ctrl-C during telemetry_full's jobs: SIGINT to `drover run`, and to a
# telemetry_full started directly. Every process of the job stops within
# 5 s, the exit status is non-zero and nothing is left behind.
set -u
. "$(dirname "$0")/rt_lib.sh"
. "$(dirname "$0")/test_telemetry_full_lib.sh"
# Job control: background commands get their own process group and do not
# ignore SIGINT (a shell without it starts them ignoring SIGINT).
set -m

small_mnist "$WORK/data" 640 200
args=(--epochs 20 --mem 65536 --size 64 --interval 0.5 --data-dir "$WORK/data")

# interrupt JOB PID: Ctrl-C to PID once the jobs run; everything must stop.
interrupt() {
    local job=$1 pid=$2 left
    wait_for "$WORK/$job.out" "^Launching scipy and mnist jobs" ||
        bad "$job: the jobs did not launch"
    sleep 1
    [ -n "$(job_procs "$job")" ] || bad "$job: no process of the job runs"
    kill -INT "$pid"
    for _ in $(seq 50); do
        left="$(job_procs "$job")"
        alive "$pid" || [ -n "$left" ] || break
        sleep 0.1
    done
    if alive "$pid" || [ -n "$left" ]; then
        bad "$job: still running 5 s after SIGINT: $pid $left"
        kill -KILL "$pid" $left 2>/dev/null
    fi
    wait "$pid"
    local rc=$?
    [ "$rc" -ne 0 ] || bad "$job: exit 0 after SIGINT"
    grep -q "^Final test for learning rate" "$WORK/$job.out" &&
        bad "$job: ran to the end despite SIGINT"
    no_leftovers "$job" "$pid"
}

"$D" run --job-id tf_int1_$$ -- "$TF" "${args[@]}" >"$WORK/tf_int1_$$.out" 2>&1 &
interrupt tf_int1_$$ $!
DROVER_JOB_ID=tf_int2_$$ "$TF" "${args[@]}" >"$WORK/tf_int2_$$.out" 2>&1 &
interrupt tf_int2_$$ $!
finish
