#!/usr/bin/env bash
# drover run from a Slurm login node: node1 runs slurmctld and `salloc -N
# 3` but is no compute node (salloc's default: the shell stays where it
# is), the allocation is node2..node4. drover run only launches: node 0 is
# node2, where the main process runs; its output, --label, exit code (also
# of a signal) and arguments come back; SIGINT and SIGTERM of drover run
# end the job on every node, nothing left. Also --nodes 2, --node0 here
# (as before: the step that excludes node1 is refused), and drover run in
# a step on the first node (use_interactive_step) or in sbatch's batch
# script there: node 0 itself.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=slurm.sh
. "$here/slurm.sh"
dvs_skip_unless_possible
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"
dvs_setup 4 login || { dvs_logs; exit 1; }
DROVER_TMPDIR=$DVN_DIR/tmp
mkdir -p "$DROVER_TMPDIR"
export DROVER_TMPDIR DROVER_GRACE=1
# run ARGS...: drover run inside an allocation of 3 nodes, from node1.
run() {
    dvs_exec 1 timeout 90 salloc -N 3 --job-name=drover-test "$D" run "$@" \
        >"$DVN_DIR/out" 2>&1
}
out() { grep -v '^salloc: ' "$DVN_DIR/out"; }
check_clean() {
    job_gone "$1(-n[0-9]+)?" || bad "$2: processes of job $1 left"
    ls /dev/shm | grep -qE "^drover\.$1[.-]" && bad "$2: shared memory left"
    ls "$DROVER_TMPDIR" | grep -qE "drover\.$1([.-]|$)" && bad "$2: runtime dir left"
}

run --job-id sl1 -- "$J" table || bad "table: exit $?: $(out)"
out | grep -q "^nodes 3$" || bad "table: $(out)"
for i in 2 3 4; do
    out | grep -qE "^node [0-2] node$i $(dvn_addr "$i") cpus" || bad "table: no node$i: $(out)"
done
out | grep -qE "^node 0 node2 " || bad "table: node2 is not node 0: $(out)"
check_clean sl1 table

run --label --job-id sl2 -- "$J" spread 6 || bad "spread: exit $?: $(out)"
for i in 0 1 2 3 4 5; do
    out | grep -qE "^\[node2\] placed $i node[2-4] code $i$" || bad "spread: process $i: $(out)"
done
[ "$(out | grep '^\[node2\] placed [0-2] ' | awk '{print $4}' | sort -u | wc -l)" -eq 3 ] ||
    bad "spread: the first 3 processes are not on 3 nodes: $(out)"
check_clean sl2 spread

run --label --job-id sl3 -- sh -c 'echo out; echo err >&2; exit 3'
rc=$?
[ "$rc" -eq 3 ] || bad "exit code: $rc: $(out)"
[ "$(out | sort | tr '\n' ' ')" = "[node2] err [node2] out " ] || bad "output: $(out)"
run --job-id sl4 -- sh -c 'echo $(hostname); kill -SEGV $$'
rc=$?
[ "$rc" -eq 139 ] || bad "signal: exit $rc: $(out)"
[ "$(out)" = node2 ] || bad "signal: $(out)"
run --job-id sl5 -- printf '<%s>\n' 'a b' "it's" '$HOME' || bad "arguments: exit $?: $(out)"
[ "$(out | tr -d '\n')" = "<a b><it's><\$HOME>" ] || bad "arguments: $(out)"

run --nodes 2 --job-id sl6 -- "$J" table || bad "--nodes 2: exit $?: $(out)"
out | grep -q "^nodes 2$" && out | grep -q "^node 0 node2 " || bad "--nodes 2: $(out)"
check_clean sl6 "--nodes 2"

# SIGINT, SIGTERM of drover run: every node's processes end, exit 128 + N.
for s in INT:130 TERM:143; do
    job=sl7${s%:*}
    rm -f "$DVN_DIR/out"
    (run --job-id "$job" -- "$J" hang) &
    bg=$!
    for _ in $(seq 150); do
        grep -q ready "$DVN_DIR/out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q ready "$DVN_DIR/out" || bad "$s: not ready: $(out)"
    pid=$(pgrep -f "^$D run --job-id $job ")
    [ -n "$pid" ] || bad "$s: no drover run"
    kill -"${s%:*}" $pid
    wait $bg
    rc=$?
    [ "$rc" -eq "${s#*:}" ] || bad "$s: exit $rc: $(out)"
    check_clean "$job" "$s"
done
# The allocations are over, no step is left.
for _ in $(seq 50); do
    [ -z "$(dvs_exec 1 squeue -h -o %i)" ] && break
    sleep 0.2
done
[ -z "$(dvs_exec 1 squeue -h -o %i)" ] || bad "jobs left: $(dvs_exec 1 squeue)"

# --node0 here: drover run is node 0 where it is, as before; Slurm
# refuses the step that would exclude node1.
run --node0 here --job-id sl8 -- "$J" table && bad "--node0 here: exit 0"
out | grep -q "Invalid node name" || bad "--node0 here: $(out)"
check_clean sl8 "--node0 here"

# In a step on the first node (as salloc's use_interactive_step puts the
# shell): drover run is node 0 itself, its agents' srun is a step in a step
# (whose SLURM_NTASKS=1 must not limit it).
dvs_exec 1 timeout 90 salloc -N 3 srun -N 1 -n 1 --overlap "$D" run --job-id sl10 -- \
    "$J" table >"$DVN_DIR/out" 2>&1 || bad "interactive step: exit $?: $(out)"
out | grep -q "^nodes 3$" && out | grep -q "^node 0 node2 " || bad "interactive step: $(out)"
check_clean sl10 "interactive step"

# sbatch: the batch host (node2) is the first node, drover run is node 0.
dvs_exec 1 timeout 90 sbatch --wait -N 3 -o "$DVN_DIR/sbatch.out" \
    --wrap "$D run --job-id sl9 -- $J table" >/dev/null 2>&1 ||
    bad "sbatch: exit $?: $(cat "$DVN_DIR/sbatch.out")"
grep -q "^nodes 3$" "$DVN_DIR/sbatch.out" && grep -q "^node 0 node2 " "$DVN_DIR/sbatch.out" ||
    bad "sbatch: $(cat "$DVN_DIR/sbatch.out")"
check_clean sl9 sbatch
[ "$fail" -eq 0 ] || dvs_logs
exit "$fail"
