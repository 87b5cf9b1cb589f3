#!/usr/bin/env bash
# telemetry_full on 4 emulated nodes through the hostfile launcher, with
# `drover run` inside node1: the node count, one monitor per node with
# telemetry lines from the 4 hostnames, the MNIST final tests and the
# summary, exit 0, and nothing of the job left on any node.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
. "$here/rt_lib.sh"
. "$here/test_telemetry_full_lib.sh"
small_mnist "$WORK/data" 640 200
dvn_setup 4 || exit 1
trap 'dvn_teardown; rm -rf "$DROVER_TMPDIR" "$WORK"' EXIT
dvn_enter_script "$WORK/enter.sh"
printf 'node1\nnode2\nnode3\nnode4\n' >"$WORK/hosts"
job=tf_mn_$$
timeout 150 $(dvn_nsenter_prefix 1) "$D" run --label --job-id "$job" \
    --hostfile "$WORK/hosts" --launch-cmd "$WORK/enter.sh {host} {cmd}" -- \
    "$TF" --epochs 1 --mem 4194304 --size 256 --interval 0.5 \
    --data-dir "$WORK/data" >"$WORK/out" 2>"$WORK/err"
rc=$?
[ "$rc" -eq 0 ] || bad "exit $rc: $(cat "$WORK/err")"
# With --label every line names its node; the checks read them without.
for i in 1 2 3 4; do
    grep -q "^\[node$i\] This is a telemetry process on node node$i\.$" "$WORK/out" ||
        bad "node$i's monitor line is not labelled node$i"
done
sed 's/^\[node[0-9]*\] //' "$WORK/out" >"$WORK/plain"
f=$WORK/plain
grep -q "^Number of nodes: 4$" "$f" || bad "node count: $(head -5 "$f")"
for i in 1 2 3 4; do
    grep -qE "^This is a telemetry process on node node$i\.$" "$f" ||
        bad "no monitor on node$i"
    grep -qE "^nodename: node$i cpu load average 1 minute: [0-9.]+" "$f" ||
        bad "no telemetry from node$i"
    grep -qE "^Telemetry process on node node$i exiting \.\.\.$" "$f" ||
        bad "the monitor of node$i did not end"
done
[ "$(grep -c "^Final test for learning rate" "$f")" -eq 2 ] || bad "not 2 final tests"
check_order "$f" "^Launching scipy and mnist jobs$" "^Shutting down procs$" \
    "^Post process is exiting$" "^Summary:$" "^  conv2d job: 64 of 64 images"
no_leftovers "$job"
ls /dev/shm | grep -q "^drover\.$job-n" && bad "shared memory of other nodes left"
[ "$fail" -eq 0 ] || { echo "--- out"; cat "$f"; echo "--- err"; cat "$WORK/err"; }
exit "$fail"
