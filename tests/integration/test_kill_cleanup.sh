#!/usr/bin/env bash
# A SIGKILLed `drover run` leaves nothing: within a few seconds its job's
# processes (also an orphan it never started), /dev/shm segments and
# runtime directory (with the token) are gone, cleaned by the job's
# surviving cleaner (a start of the same job meanwhile waits for it). When that cleaner is killed too, the next start of a
# job sweeps what the dead job left, and only that.
set -u
. "$(dirname "$0")/rt_lib.sh"

# gone JOB PIDS...: nothing of JOB is left within 5 s.
gone() {
    local job=$1 i left
    shift
    for i in $(seq 50); do
        left=""
        for p in "$@"; do alive "$p" && left="$left $p"; done
        left="$left $(job_procs "$job")"
        left="$left $(ls /dev/shm 2>/dev/null | grep "^drover\.$job\." || true)"
        [ -e "$DROVER_TMPDIR/drover.$job" ] && left="$left drover.$job"
        [ -z "${left// /}" ] && return 0
        sleep 0.1
    done
    bad "job $job left:$left"
}

# start JOB: a job with queues in shared memory; sets pid, out.
start() {
    out="$DROVER_TMPDIR/../$1.out"
    "$D" run --job-id "$1" -- "$H" queues 3 >"$out" 2>&1 &
    pid=$!
    if ! wait_for "$out" ready; then
        bad "$1: never ready: $(cat "$out")"
        kill -KILL "$pid"
        return 1
    fi
    local n
    n=$(ls /dev/shm | grep -c "^drover\.$1\.")
    [ "$n" -gt 0 ] || bad "$1: no shared memory to leave behind"
    [ -e "$DROVER_TMPDIR/drover.$1/agent.lock" ] || bad "$1: no agent.lock"
}

# The cleaner takes the job down; the same job started again at once
# waits for it.
j=kc$$
if start "$j"; then
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null
    expect 0 "$j again" "$D" run --job-id "$j" -- /bin/true
    # shellcheck disable=SC2046
    gone "$j" $(sed -n 's/^pids://p' "$out")
fi
rm -f "$out"

# Its cleaner killed too (a whole-session kill): the next job's start
# sweeps the dead job's directory and segments; a live job's stay.
j=ks$$
live=kl$$
if start "$j"; then
    c=$(pgrep -P "$pid" -x drover-cleaner)
    [ -n "$c" ] || bad "$j: no cleaner"
    procs=$(sed -n 's/^pids://p' "$out")
    kill -KILL "$pid" $c
    wait "$pid" 2>/dev/null
    sleep 0.5
    [ -e "$DROVER_TMPDIR/drover.$j" ] || bad "$j: gone with no cleaner"
    lout=$out
    "$D" run --job-id "$live" -- "$H" sleep 0 >"$DROVER_TMPDIR/../$live.out" 2>&1 &
    lpid=$!
    wait_for "$DROVER_TMPDIR/../$live.out" ready || bad "$live: never ready"
    # shellcheck disable=SC2086
    gone "$j" $procs
    [ -e "$DROVER_TMPDIR/drover.$live/agent.lock" ] || bad "$live: swept while alive"
    kill -TERM "$lpid"
    wait "$lpid"
    no_leftovers "$live"
    rm -f "$lout" "$DROVER_TMPDIR/../$live.out"
fi

# Directories as they may be found: dead agent (swept with its segments),
# an older drover's (agent.pid of a dead process: swept), one being made
# (no agent.pid yet: kept), another user's (kept).
true &
dead=$!
wait $dead
mk() {
    mkdir -m 700 "$DROVER_TMPDIR/drover.$1"
    [ -n "$2" ] && echo "$dead" >"$DROVER_TMPDIR/drover.$1/agent.pid"
    [ -n "$3" ] && : >"$DROVER_TMPDIR/drover.$1/agent.lock"
    printf 'tok' >"$DROVER_TMPDIR/drover.$1/token"
    : >"/dev/shm/drover.$1.q1"
}
mk sd$$ pid lock
mk so$$ pid ""
mk sm$$ "" lock
mk su$$ pid lock
chown -R nobody "$DROVER_TMPDIR/drover.su$$" 2>/dev/null || rm -rf "$DROVER_TMPDIR/drover.su$$"
expect 0 "a job after dead ones" "$D" run --job-id sw$$ -- /bin/true
for k in sd so; do
    [ -e "$DROVER_TMPDIR/drover.$k$$" ] && bad "$k: dead job's directory kept"
    [ -e "/dev/shm/drover.$k$$.q1" ] && bad "$k: dead job's segment kept"
done
[ -e "$DROVER_TMPDIR/drover.sm$$" ] || bad "sm: a directory being made was swept"
[ -e /dev/shm/drover.sm$$.q1 ] || bad "sm: its segment was swept"
if [ -e "$DROVER_TMPDIR/drover.su$$" ]; then
    [ -e /dev/shm/drover.su$$.q1 ] || bad "su: another user's segment was swept"
fi
rm -rf "$DROVER_TMPDIR"/drover.s[mu]$$
rm -f /dev/shm/drover.s[dmou]$$.q1
finish
