#!/usr/bin/env bash
# The seed's Python program (bench/seed/telemetry_full.py) with the drover
# start method under a real Slurm on 4 emulated nodes: `drover run` inside
# `salloc -N 4` on node1 starts its agents with srun. The same checks as on
# the hostfile launcher (seed_py_lib.sh), with the telemetry shown as tqdm
# bars (--bars): 4 nodes, one monitor per node placed by host name, bars of
# the 4 hosts, both jobs finished, the final accuracies, exit 0, nothing of
# the job left.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=slurm.sh
. "$here/slurm.sh"
dvs_skip_unless_possible
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"
# shellcheck source=test_telemetry_full_lib.sh
. "$here/test_telemetry_full_lib.sh"
# shellcheck source=seed_py_lib.sh
. "$here/seed_py_lib.sh"
"$SEED_PY" -c 'import tqdm' 2>/dev/null ||
    { echo "SKIP: $SEED_PY lacks tqdm (scripts/deps test)"; exit 77; }
small_mnist "$WORK/data" 640 200
dvs_setup 4 || { dvs_logs; exit 1; }
trap 'dvn_teardown; rm -rf "$WORK"' EXIT
DROVER_TMPDIR=$DVN_DIR/tmp
mkdir -p "$DROVER_TMPDIR"
export DROVER_TMPDIR DROVER_GRACE=1
job=seedpys_$$
# shellcheck disable=SC2046
dvs_exec 1 timeout 200 salloc -N 4 --job-name=drover-seed "$D" run --label \
    --job-id "$job" -- $(seed_py_cmd "$WORK/data" --bars) >"$WORK/all" 2>"$WORK/err"
rc=$?
[ "$rc" -eq 0 ] || bad "exit $rc"
grep -v '^salloc: ' "$WORK/all" >"$WORK/out"
grep -v '^salloc: ' "$WORK/err" >"$WORK/err2"
check_seed_py "$WORK/out" "$WORK/err2" 4 bars
job_gone "$job" || bad "processes of job $job left"
compgen -G "/dev/shm/drover.$job*" >/dev/null && bad "shared memory of the job left"
compgen -G "$DROVER_TMPDIR/drover.$job*" >/dev/null && bad "runtime directory of the job left"
[ "$fail" -eq 0 ] || dvs_logs
exit "$fail"
