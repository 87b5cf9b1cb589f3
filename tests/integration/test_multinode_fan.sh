#!/usr/bin/env bash
# Many relays share a connection per process and home node: 8 processes on
# node 2 put into 200 queues of node 1 each (tests/integration/mn_fan.c)
# with 1,024 open files allowed to every process of the job, agents
# included (1,600 relays: one connection each ran the home agent out of
# files and connections). A home agent out of files refusing with the
# reason is tests/unit/test_remote_mux.c's.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"
F=$B/bin/dv_mn_fan

dvn_setup 2 || exit 1
DROVER_TMPDIR=$DVN_DIR/tmp
mkdir -p "$DROVER_TMPDIR"
export DROVER_TMPDIR DROVER_GRACE=1
dvn_enter_script "$DVN_DIR/enter.sh"
printf '%s\n' "$(dvn_host 1)" "$(dvn_host 2)" >"$DVN_DIR/hosts"
job=mf$$
out=$(
    ulimit -n 1024
    timeout 150 $(dvn_nsenter_prefix 1) "$D" run --hostfile "$DVN_DIR/hosts" \
        --launch-cmd "$DVN_DIR/enter.sh {host} {cmd}" --job-id "$job" \
        -- "$F" 8 200 2 2>&1
) || bad "fan: exit $?: $out"
echo "$out" | grep -q "^fan moved 3200 bad 0$" || bad "fan: $out"
job_gone "$job(-n[0-9]+)?" || bad "fan: processes left"
ls /dev/shm | grep -qE "^drover\.$job[.-]" && bad "fan: shared memory left"
dvn_teardown
[ "$fail" = 0 ] && echo "multinode fan: ok"
exit "$fail"
