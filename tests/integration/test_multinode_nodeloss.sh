#!/usr/bin/env bash
# A node lost mid-job on 4 emulated nodes (hostfile launcher, drover run
# inside node1; tests/integration/mn_nodeloss.c): node3's agent is killed
# during a 1,000-item pool map. With --keep-going every item completes,
# the ones that ran on node3 run again elsewhere and say so (each run
# records where it started: they started on node3 first, or were lost
# before), a pool told not to run items again fails those with the same
# reason, node3's queue fails with a clear error, its process ends as
# killed, placement skips it, and the job exits 0; the same when the node
# hangs instead (every process in node3's namespace stopped, SIGSTOP).
# Without --keep-going the job ends as before: the node named, exit
# status 1. Nothing is left behind either way.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"
P=$B/bin/dv_mn_nodeloss

dvn_setup 4 || exit 1
DROVER_TMPDIR=$DVN_DIR/tmp
mkdir -p "$DROVER_TMPDIR"
export DROVER_TMPDIR DROVER_GRACE=1
dvn_enter_script "$DVN_DIR/enter.sh"
printf 'node1\nnode2\nnode3\nnode4\n' >"$DVN_DIR/hosts"
out() { cat "$DVN_DIR/out"; }
# What a re-run item says: it was sent to node3, and completed elsewhere.
rerun_line='^rerun [0-9]+: node lost: node3, started on (node3|\(no start recorded\)), ran on node[124]$'

# The processes in the network namespace of process $1 (node3's).
node_pids() { dvn_pids_in_ns_ids "$(readlink "/proc/$1/ns/net")"; }

# lose SIG N JOB [OPTIONS]: run the program on N items, send SIG to
# node3's agent at "ready" (STOP: to every process of node3); sets rc.
lose() {
    local sig=$1 n=$2 job=$3 ap="" i
    shift 3
    rm -f "$DVN_DIR/out"
    (timeout 90 $(dvn_nsenter_prefix 1) "$D" run --hostfile "$DVN_DIR/hosts" \
        --launch-cmd "$DVN_DIR/enter.sh {host} {cmd}" --job-id "$job" "$@" \
        -- "$P" "$n" >"$DVN_DIR/out" 2>&1) &
    local bg=$!
    for i in $(seq 300); do
        grep -q ready "$DVN_DIR/out" 2>/dev/null && break
        sleep 0.1
    done
    ap=$(pgrep -f "drover agent .*--job $job --index 2$")
    [ -n "$ap" ] || bad "$job: no agent of node3: $(out)"
    local frozen=$ap
    [ "$sig" != STOP ] || frozen=$(node_pids "$ap")
    # shellcheck disable=SC2086 # the PIDs are words
    kill "-$sig" $frozen
    wait $bg
    rc=$?
    # shellcheck disable=SC2086
    kill -9 $frozen 2>/dev/null
    # The dead node's own runtime dir is its leftover, not a survivor's.
    rm -rf "$DROVER_TMPDIR/drover.$job-n2"
    rm -f /dev/shm/drover."$job"-n2.*
    job_gone "$job(-n[0-9]+)?" || bad "$job: processes left"
    ls /dev/shm | grep -qE "^drover\.$job[.-]" && bad "$job: shared memory left"
    ls "$DROVER_TMPDIR" | grep -qE "drover\.$job([.-]|$)" && bad "$job: runtime dir left"
}

lose KILL 1000 nl1 --keep-going
[ "$rc" -eq 0 ] || bad "keep-going: exit $rc: $(out)"
out | grep -q "^drover: run: node3: agent exited.* (node lost, the job goes on)$" ||
    bad "keep-going: loss not reported: $(out)"
out | grep -qE "^survive ok 1000 of 1000 reruns [1-9][0-9]* bad 0$" ||
    bad "keep-going: $(out)"
# The items sent to node3 ran again on the others; each says
# where it first ran.
reruns=$(out | grep -c "^rerun ")
[ "$reruns" -ge 1 ] && [ "$reruns" -le 2 ] || bad "keep-going: $reruns reruns: $(out)"
out | grep "^rerun " | grep -vqE "$rerun_line" &&
    bad "keep-going: a rerun line: $(out | grep '^rerun ')"
out | grep -q "^item .*failed" && bad "keep-going: an item failed: $(out)"
# A pool that never runs an item again: those that ran on node3 fail.
out | grep -qE "^no-retry item [0-9]+ failed: node lost: node3$" ||
    bad "keep-going: no-retry pool: $(out)"
out | grep "^no-retry item" | grep -vqE "^no-retry item [0-9]+ failed: node lost: node3$" &&
    bad "keep-going: no-retry pool: $(out)"
out | grep -qE "^blocked get: (EHOSTDOWN|ENOTCONN): queue get: .*node 2 \(node3\)" ||
    bad "keep-going: blocked get: $(out)"
out | grep -q "^queue after loss: EHOSTDOWN: queue get: node 2 (node3) is lost$" ||
    bad "keep-going: queue after loss: $(out)"
out | grep -q "^holder code -9 lost 1$" || bad "keep-going: holder: $(out)"
out | grep -qE "^placed after loss: ([013] ){7}[013]$" || bad "keep-going: placement: $(out)"
out | grep -q "^start on lost node: placement: node 2 (node3) is lost$" ||
    bad "keep-going: start on the lost node: $(out)"
out | grep -E "^rerun |^no-retry"

# Without --keep-going: as before, the node named and the job torn down.
lose KILL 1000 nl2
[ "$rc" -eq 1 ] || bad "no keep-going: exit $rc: $(out)"
out | grep -q "^drover: run: node3: agent exited" || bad "no keep-going: $(out)"
out | grep -qE "node lost|^survive|^rerun" && bad "no keep-going: the job went on: $(out)"

# A node that hangs (its processes stopped) rather than dies: lost after
# 5 s without heartbeats; the get blocked on its queue fails then, the
# items its executors were running at that moment run again elsewhere,
# and the no-retry pool's fails.
lose STOP 3000 nl3 --keep-going
[ "$rc" -eq 0 ] || bad "hang: exit $rc: $(out)"
out | grep -q "^drover: run: node3: agent stopped answering .* (node lost, the job goes on)$" ||
    bad "hang: loss not reported: $(out)"
out | grep -qE "^survive ok 3000 of 3000 reruns [1-9][0-9]* bad 0$" || bad "hang: $(out)"
out | grep -qE "^no-retry item [0-9]+ failed: node lost: node3$" || bad "hang: no-retry pool: $(out)"
out | grep -q "^blocked get: EHOSTDOWN: queue get: node 2 (node3) is lost$" ||
    bad "hang: blocked get: $(out)"
out | grep "^rerun " | grep -vqE "$rerun_line" &&
    bad "hang: a rerun line: $(out | grep '^rerun ')"

dvn_teardown
[ "$fail" = 0 ] && echo "multinode node loss: ok"
exit "$fail"
