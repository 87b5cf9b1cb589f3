#!/usr/bin/env bash
# Semaphores and barriers across two nodes emulated on loopback (as
# test_multinode_loopback.sh): the objects on node 0, used from node 1
# through relays (tests/integration/mn_sync.c).
set -u
. "$(dirname "$0")/rt_lib.sh"
S=$B/bin/dv_mn_sync
printf 'ls-a\nls-b\n' >"$DROVER_TMPDIR/hosts"
run2() {
    DROVER_NODE_NAME=ls-a timeout 90 "$D" run --hostfile "$DROVER_TMPDIR/hosts" \
        --launch-cmd "env DROVER_NODE_NAME={host} {cmd}" \
        --network-prefix 127.0.0.0/8 --job-id "ls$$$1" -- "${@:2}" 2>&1
}
for m in sem:"sem code 0" lock:"lock rounds 600 bad 0" \
    barrier:"barrier passes 50 actions 50 bad 0" killed:"killed code 0"; do
    out=$(run2 "${m%%:*}" "$S" "${m%%:*}") || bad "${m%%:*}: $out"
    [ "$out" = "${m#*:}" ] || bad "${m%%:*}: $out"
done
for j in sem lock barrier killed; do
    ls /dev/shm | grep -q "^drover\.ls$$$j" && bad "$j: shared memory left"
done
finish
