#!/usr/bin/env bash
# Multi-node jobs under a real Slurm on 4 emulated nodes: `drover run`
# inside `salloc -N 4` on node1 starts its agents with srun. The node
# table, round-robin placement, a queue fed from every node, events, a
# pool, telemetry_full, --nodes (a subset; more than the allocation is an
# error), and an agent killed mid-job.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=slurm.sh
. "$here/slurm.sh"
dvs_skip_unless_possible
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"
# The telemetry_full helpers (its program, a small MNIST set) set their
# own exit trap; the harness's, set by dvs_setup, takes its place.
# shellcheck source=test_telemetry_full_lib.sh
. "$here/test_telemetry_full_lib.sh"
dvs_setup 4 || { dvs_logs; exit 1; }
DROVER_TMPDIR=$DVN_DIR/tmp
mkdir -p "$DROVER_TMPDIR"
export DROVER_TMPDIR DROVER_GRACE=1
# run ARGS...: drover run inside an allocation of the 4 nodes, from node1.
run() {
    dvs_exec 1 timeout 90 salloc -N 4 --job-name=drover-test "$D" run "$@" \
        >"$DVN_DIR/out" 2>&1
}
out() { grep -v '^salloc: ' "$DVN_DIR/out"; }
# check_clean JOB WHAT: nothing of JOB is left once the job has ended.
check_clean() {
    job_gone "$1" || bad "$2: processes of job $1 left"
    ls /dev/shm | grep -qE "^drover\.$1[.-]" && bad "$2: shared memory left"
    ls "$DROVER_TMPDIR" | grep -qE "drover\.$1([.-]|$)" && bad "$2: runtime dir left"
}

run --job-id ms1 -- "$J" table || bad "table: exit $?: $(out)"
out | grep -q "^nodes 4$" || bad "table: $(out)"
for i in 1 2 3 4; do
    out | grep -qE "^node [0-3] node$i $(dvn_addr "$i") cpus" || bad "table: no node$i: $(out)"
done
out | grep -qE "^node 0 node1 " || bad "table: node1 is not node 0"
check_clean ms1 table

run --label --job-id ms2 -- "$J" spread 8 || bad "spread: exit $?: $(out)"
for i in 0 1 2 3 4 5 6 7; do
    out | grep -qE "^\[node1\] placed $i node[1-4] code $i$" || bad "spread: process $i: $(out)"
done
[ "$(out | grep '^\[node1\] placed [0-3] ' | awk '{print $4}' | sort -u | wc -l)" -eq 4 ] ||
    bad "spread: the first 4 processes are not on 4 nodes: $(out)"
check_clean ms2 spread

run --job-id ms3 -- "$J" queue 100000 || bad "queue: exit $?: $(out)"
out | grep -q "^moved 100000 bad 0$" || bad "queue: $(out)"
run --job-id ms4 -- "$J" event || bad "event: exit $?: $(out)"
out | grep -q "^event bad 0$" || bad "event: $(out)"
run --job-id ms5 -- "$J" pool || bad "pool: exit $?: $(out)"
out | grep -qE "^pool hosts 4: " || bad "pool: $(out)"
out | grep -q "^item 103 failed: killed by signal 9$" || bad "pool: $(out)"
check_clean ms5 pool

# The demo: one monitor on each of the 4 nodes, telemetry from all 4.
small_mnist "$DVN_DIR/data" 640 200
run --job-id ms9 -- "$TF" --epochs 1 --mem 4194304 --size 256 \
    --interval 0.5 --data-dir "$DVN_DIR/data" || bad "telemetry_full: exit $?: $(out)"
out | grep -q "^Number of nodes: 4$" || bad "telemetry_full: $(out)"
for i in 1 2 3 4; do
    out | grep -q "^This is a telemetry process on node node$i\.$" ||
        bad "telemetry_full: no monitor on node$i"
    out | grep -qE "^nodename: node$i cpu load average 1 minute: [0-9.]+" ||
        bad "telemetry_full: no telemetry from node$i"
done
[ "$(out | grep -c "^Final test for learning rate")" -eq 2 ] ||
    bad "telemetry_full: not 2 final tests: $(out)"
check_clean ms9 telemetry_full
rm -rf "$WORK"

run --nodes 2 --job-id ms6 -- "$J" table || bad "--nodes 2: exit $?: $(out)"
out | grep -q "^nodes 2$" || bad "--nodes 2: $(out)"
run --nodes 5 --job-id ms7 -- "$J" table && bad "--nodes 5: exit 0"
[ "$(out)" = "drover: run: --nodes 5: the allocation has 4 nodes" ] ||
    bad "--nodes 5: $(out)"

# Python processes on 2 of the nodes (tests/python/multinode_prog.py): round
# robin, placement by host name and index, a Queue and an Event across
# nodes, exit codes, signals, an exception, a nested start.
if [ -d "$B/python/drover" ]; then
    P=$(cd "$here/../python" && pwd)
    run --nodes 2 --job-id ms10 -- env PYTHONPATH="$B/python" /usr/bin/python3 \
        "$P/multinode_prog.py" an-arg || bad "python: exit $?: $(out)"
    out | grep '^RESULT ' | cut -c8- | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
assert [n[1] for n in r["nodes"]] == ["node1", "node2"], r["nodes"]
assert r["procs"] == [10, 11, 12, 13, 20, 30] and r["node"] == 0, r["procs"]
assert sorted(d["node"] for d in r["seen"]) == [0, 0, 0, 1, 1, 1], r["seen"]
assert all(d["argv"] == ["an-arg"] for d in r["seen"]), r["seen"]
assert r["signals"] == [["terminate", 1, -15], ["kill", 1, -9]], r
assert r["fail"] == [1, 1] and r["nest"][:2] == [1, 0], r
' || bad "python: $(out)"
    check_clean ms10 python
fi

# An agent killed mid-job: the job ends with a one-line error naming it.
rm -f "$DVN_DIR/out"
(run --job-id ms8 -- "$J" hang) &
bg=$!
for _ in $(seq 100); do
    grep -q ready "$DVN_DIR/out" 2>/dev/null && break
    sleep 0.1
done
victim=""
for p in $(pgrep -f "drover agent .*--job ms8$"); do
    grep -qz "^SLURMD_NODENAME=node3$" "/proc/$p/environ" 2>/dev/null && victim=$p
done
[ -n "$victim" ] || bad "kill: no agent on node3"
kill -9 $victim
wait $bg
rc=$?
[ "$rc" -eq 1 ] || bad "kill: exit $rc: $(out)"
out | grep -q "^drover: run: node3: agent stopped answering" || bad "kill: $(out)"
[ "$(out | grep -c '^drover: ')" -eq 1 ] || bad "kill: not one error line: $(out)"
rm -rf "$DROVER_TMPDIR"/drover.ms8-n*
rm -f /dev/shm/drover.ms8-n*
check_clean ms8 kill
[ "$fail" -eq 0 ] || dvs_logs
exit "$fail"
