#!/usr/bin/env bash
# Teardown: SIGINT or SIGTERM to drover run (or to a program that runs its
# own private runtime) ends every process of the job within 5 s, also
# tasks that ignore SIGTERM; a killed drover run takes its job with it.
set -u
. "$(dirname "$0")/rt_lib.sh"

# interrupt JOB SIGNAL WANT CMD...: start CMD, wait for "ready", send
# SIGNAL, check the status, the time taken and what is left.
interrupt() {
    local job=$1 sig=$2 want=$3 out="$DROVER_TMPDIR/../$1.out"
    shift 3
    DROVER_JOB_ID=$job "$@" >"$out" 2>&1 &
    local pid=$!
    if ! wait_for "$out" ready; then
        bad "$job: never ready: $(cat "$out")"
        kill -KILL "$pid"
        return
    fi
    local t0 t1 rc
    t0=$(date +%s%N)
    kill -"$sig" "$pid"
    wait "$pid"
    rc=$?
    t1=$(date +%s%N)
    [ "$rc" -eq "$want" ] || bad "$job: exit $rc, want $want"
    [ $(((t1 - t0) / 1000000)) -lt 5000 ] ||
        bad "$job: took $(((t1 - t0) / 1000000)) ms"
    # shellcheck disable=SC2046
    no_leftovers "$job" $(sed -n 's/^pids://p' "$out")
    rm -f "$out"
}

interrupt int1 INT 130 "$D" run --job-id int1 -- "$H" sleep 4
interrupt term1 TERM 143 "$D" run --job-id term1 -- "$H" sleep 4
interrupt hup1 HUP 129 "$D" run --job-id hup1 -- "$H" sleep 2
interrupt stub1 INT 130 "$D" run --job-id stub1 -- "$H" stubborn 3
interrupt stub2 TERM 143 "$D" run --job-id stub2 --grace 0.2 -- "$H" stubborn 3
# A private runtime: the program's own pid is its agent; it ends as its
# main process did (killed by the signal).
interrupt solo1 INT 130 "$H" sleep 3
interrupt solo2 TERM 143 "$H" stubborn 2

# SIGKILL to drover run: its main process and the tasks die with it.
out="$DROVER_TMPDIR/../kill1.out"
"$D" run --job-id kill1 -- "$H" sleep 3 >"$out" 2>&1 &
pid=$!
if wait_for "$out" ready; then
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    sleep 0.5
    # shellcheck disable=SC2046
    for p in $(sed -n 's/^pids://p' "$out") $(job_procs kill1); do
        alive "$p" && bad "kill1: process $p survived its drover run"
    done
else
    bad "kill1: never ready"
fi
rm -f "$out" /dev/shm/drover.kill1.* 2>/dev/null
rm -rf "$DROVER_TMPDIR"/drover.kill1

# drover run whose parent dies: it tears its job down (parent-death signal).
out="$DROVER_TMPDIR/../orphan1.out"
sh -c '"$0" run --job-id orphan1 -- "$1" sleep 3; echo never' "$D" "$H" \
    >"$out" 2>&1 &
pid=$!
if wait_for "$out" ready; then
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    # shellcheck disable=SC2046
    no_leftovers orphan1 $(sed -n 's/^pids://p' "$out")
else
    bad "orphan1: never ready"
fi
rm -f "$out"
finish
