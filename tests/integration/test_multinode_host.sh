#!/usr/bin/env bash
# The node's host on 2 emulated nodes (tests/integration/mn_host.c): the
# processes node 1 starts for node 0, from the first on (it waits for the
# host to come up), are forks of the host's fork server, with the main
# process's environment and directory, their exit codes, kills and GPU
# placement as for an exec;
# a host that dies takes its processes along, reported killed, and the
# next start is an exec again; so does a host that stops (SIGSTOP), seen
# by a start or by a process's end it never reports, before node 1 would
# be taken as lost; nothing is left.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"

dvn_setup 2 || exit 1
DROVER_TMPDIR=$DVN_DIR/tmp
mkdir -p "$DROVER_TMPDIR" "$DVN_DIR/work"
export DROVER_TMPDIR DROVER_GRACE=1
dvn_enter_script "$DVN_DIR/enter.sh"
printf '%s\n' "$(dvn_host 1)" "$(dvn_host 2)" >"$DVN_DIR/hosts"
job=mh$$
out=$(cd "$DVN_DIR/work" && DV_TEST_ORIGIN=yes DV_TEST_CWD=$DVN_DIR/work \
    timeout 120 $(dvn_nsenter_prefix 1) "$D" run --hostfile "$DVN_DIR/hosts" \
    --launch-cmd "$DVN_DIR/enter.sh {host} {cmd}" --job-id "$job" \
    -- "$B/bin/dv_mn_host" 2>&1) || bad "exit $?: $out"
for want in '^hosted after 0 \(1\)$' '^hosted 20 of 20$' '^code 7$' \
    '^kill -9 term -15$' '^gpu 1$' '^churn 400 of 400$' '^host gone -(9|15) -(9|15)$' \
    '^after host 2$'; do
    echo "$out" | grep -qE "$want" || bad "no line $want: $out"
done
left() {
    job_gone "$1(-n[0-9]+)?" || bad "$1: processes left"
    ls /dev/shm | grep -qE "^drover\.$1[.-]" && bad "$1: shared memory left"
    ls "$DROVER_TMPDIR" | grep -qE "drover\.$1([.-]|$)" &&
        bad "$1: runtime dir left"
}
left "$job"
for mode in stop-join stop-start; do
    job=ms$$${mode#stop-}
    out=$(cd "$DVN_DIR/work" && DV_TEST_ORIGIN=yes DV_TEST_CWD=$DVN_DIR/work \
        timeout 120 $(dvn_nsenter_prefix 1) "$D" run --hostfile \
        "$DVN_DIR/hosts" --launch-cmd "$DVN_DIR/enter.sh {host} {cmd}" \
        --job-id "$job" -- "$B/bin/dv_mn_host" "$mode" 2>&1) ||
        bad "$mode: exit $?: $out"
    echo "$out" | grep -qE '^stopped host -9 2$' || bad "$mode: $out"
    left "$job"
done
dvn_teardown
[ "$fail" = 0 ] && echo "multinode host: ok"
exit "$fail"
