#!/usr/bin/env bash
# The seed's Python program (bench/seed/telemetry_full.py) with the drover
# start method on 4 emulated nodes (network + UTS namespaces, so each node
# has its own host name) through the hostfile launcher, `drover run` inside
# node1: the node count, one monitor per node placed by host name, telemetry
# lines from the 4 hosts, both jobs finished, the final accuracies, exit 0,
# and nothing of the job left in /dev/shm or on any node.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
# shellcheck source=rt_lib.sh
. "$here/rt_lib.sh"
# shellcheck source=test_telemetry_full_lib.sh
. "$here/test_telemetry_full_lib.sh"
# shellcheck source=seed_py_lib.sh
. "$here/seed_py_lib.sh"
small_mnist "$WORK/data" 640 200
dvn_setup 4 || exit 1
trap 'dvn_teardown; rm -rf "$DROVER_TMPDIR" "$WORK"' EXIT
dvn_enter_script "$WORK/enter.sh"
printf 'node1\nnode2\nnode3\nnode4\n' >"$WORK/hosts"
job=seedpy_$$
# shellcheck disable=SC2046
timeout 200 $(dvn_nsenter_prefix 1) "$D" run --label --job-id "$job" \
    --hostfile "$WORK/hosts" --launch-cmd "$WORK/enter.sh {host} {cmd}" -- \
    $(seed_py_cmd "$WORK/data") >"$WORK/out" 2>"$WORK/err"
rc=$?
[ "$rc" -eq 0 ] || bad "exit $rc"
check_seed_py "$WORK/out" "$WORK/err" 4
no_leftovers "$job"
compgen -G "/dev/shm/drover.$job*" >/dev/null && bad "shared memory of the job left"
exit "$fail"
