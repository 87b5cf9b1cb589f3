#!/usr/bin/env bash
# The Slurm harness itself: 4 emulated nodes each running a slurmd, and an
# allocation of all 4 made from inside node 1 that runs one task per node,
# which must print the 4 hostnames; then nothing is left running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=slurm.sh
. "$here/slurm.sh"
dvs_skip_unless_possible

fail() {
    echo "FAIL: $*" >&2
    dvs_logs >&2 || true
    exit 1
}

dvs_setup 4 || fail "Slurm did not come up"
out=$(dvs_exec 1 timeout 60 salloc -N 4 --job-name=drover-test \
    srun --nodes=4 --ntasks-per-node=1 --cpu-bind=none hostname 2>&1) ||
    fail "salloc/srun failed: $out"
hosts=$(echo "$out" | grep -E '^node[0-9]+$' | sort | tr '\n' ' ')
[ "$hosts" = "node1 node2 node3 node4 " ] ||
    fail "srun saw hosts '$hosts'; output: $out"
echo "ok: salloc -N 4 from node1, srun ran on $hosts"

daemons=("${DVN_PIDS[@]}")
dir=$DVN_DIR
mapfile -t ids < <(dvn_ns_ids)
dvn_teardown
left=$(dvn_pids_in_ns_ids "${ids[@]}")
[ -z "$left" ] || fail "processes left in the nodes' namespaces: $left"
for p in "${daemons[@]}"; do
    ! kill -0 "$p" 2>/dev/null || fail "daemon $p survived teardown"
done
[ ! -e "$dir" ] || fail "state directory $dir left"
echo "ok: daemons stopped, state removed"
