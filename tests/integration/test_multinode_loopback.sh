#!/usr/bin/env bash
# Two nodes emulated on one host without namespaces: agents named with
# DROVER_NODE_NAME by the launch template, listening on loopback as
# --network-prefix asks. Node table, GPU counts (the NVML test double) and
# GPU placement against them, and queues across the nodes
# (tests/integration/mn_order.c; mn_fan.c: a process whose relays share
# its connection, one of them blocked in a get; mn_joinable.c: task_done,
# join, holders and wait from the other node).
set -u
. "$(dirname "$0")/rt_lib.sh"
O=$B/bin/dv_mn_order
printf 'lo-a\nlo-b\n' >"$DROVER_TMPDIR/hosts"
run2() {
    DROVER_NODE_NAME=lo-a DROVER_NVML_LIBRARY=$B/lib/libdv_fake_nvml.so \
        DV_FAKE_NVML=two DROVER_RSMI_LIBRARY=/nonexistent.so \
        timeout 60 "$D" run --hostfile "$DROVER_TMPDIR/hosts" \
        --launch-cmd "env DROVER_NODE_NAME={host} {cmd}" \
        --network-prefix 127.0.0.0/8 --job-id "lo$$$1" -- "${@:2}" 2>&1
}
out=$(run2 t "$B/bin/dv_mn_job" table) || bad "table: $out"
for i in 0:a 1:b; do
    grep -qx "node ${i%:*} lo-${i#*:} 127.0.0.1 cpus [0-9]* gpus 2" <<<"$out" ||
        bad "table: node ${i%:*}: $out"
done
# GPU placement: within the node's count (the double's 2), and past it.
out=$(run2 g1 "$B/bin/dv_mn_job" gpu 1) || bad "gpu 1: $out"
grep -q "^gpu env 1 1 on node 1$" <<<"$out" || bad "gpu 1: $out"
# A program named without a path: every node execs what PATH gives here.
out=$(PATH="$B/bin:$PATH" run2 p1 dv_mn_job gpu 1) || bad "by name: $out"
grep -q "^gpu env 1 1 on node 1$" <<<"$out" || bad "by name: $out"
out=$(run2 g2 "$B/bin/dv_mn_job" gpu 2) && bad "gpu 2 accepted: $out"
grep -q "gpu 2, but lo-b has 2 GPUs" <<<"$out" || bad "gpu 2: $out"
for m in event:"event moved 2000 bad 0" exit:"exit moved 2000 bad 0" \
    pool:"pool moved 16 bad 0" late:"late code 0"; do
    out=$(run2 "${m%%:*}" "$O" "${m%%:*}") || bad "${m%%:*}: $out"
    [ "$out" = "${m#*:}" ] || bad "${m%%:*}: $out"
done
# One writer: the queues' slots are reused once node 0 took their message,
# a synchronisation ThreadSanitizer cannot see in the home agent when
# several writers' threads put into one queue.
out=$(run2 fan "$B/bin/dv_mn_fan" 1 100 2) || bad "fan: $out"
[ "$out" = "fan moved 200 bad 0" ] || bad "fan: $out"
# Joinable queues and holders of node 0 used from node 1 (mn_joinable.c).
out=$(run2 join "$B/bin/dv_mn_joinable") || bad "joinable: $out"
[ "$out" = "joinable done 40 bad 0" ] || bad "joinable: $out"
# Without a loopback prefix, agents keep off loopback (no other address
# here means a clear error, not a silent loopback job).
out=$(DROVER_NODE_NAME=lo-a timeout 30 "$D" run --hostfile "$DROVER_TMPDIR/hosts" \
    --launch-cmd "env DROVER_NODE_NAME={host} {cmd}" --network-prefix 10.255.255.0/24 \
    -- /bin/true 2>&1)
[ $? = 1 ] && grep -q "^drover: run: no IPv4 address in 10.255.255.0/24" <<<"$out" ||
    bad "no address: $out"
for j in "lo$$t" "lo$$g1" "lo$$p1" "lo$$g2" "lo$$event" "lo$$exit" "lo$$pool" "lo$$late" \
    "lo$$fan" "lo$$join"; do
    ls /dev/shm | grep -q "^drover\.$j" && bad "$j: shared memory left"
done
finish
