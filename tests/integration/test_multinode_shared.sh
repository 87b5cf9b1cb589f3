#!/usr/bin/env bash
# Shared memory blocks across two nodes emulated on one host without
# namespaces (as test_multinode_loopback.sh): a block of node 0 used from
# node 1 and one of node 1 used from node 0, through the agents' data
# ports (tests/integration/mn_shared.c).
set -u
. "$(dirname "$0")/rt_lib.sh"
S=$B/bin/dv_mn_shared
printf 'lo-a\nlo-b\n' >"$DROVER_TMPDIR/hosts"
run2() {
    DROVER_NODE_NAME=lo-a timeout 90 "$D" run --hostfile "$DROVER_TMPDIR/hosts" \
        --launch-cmd "env DROVER_NODE_NAME={host} {cmd}" \
        --network-prefix 127.0.0.0/8 --job-id "sh$$$1" -- "${@:2}" 2>&1
}
for m in there home; do
    out=$(run2 "$m" "$S" "$m") || bad "$m: $out"
    [ "$out" = "$m ok" ] || bad "$m: $out"
done
for j in "sh$$there" "sh$$home"; do
    ls /dev/shm | grep -q "^drover\.$j" && bad "$j: shared memory left"
done
finish
