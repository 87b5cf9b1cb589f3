#!/usr/bin/env bash
# Puts sent ahead across nodes keep the program's order and report their
# errors (tests/integration/mn_order.c), on 2 emulated nodes through the
# hostfile launcher, with `drover run` inside node1.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"
O=$B/bin/dv_mn_order

dvn_setup 2 || exit 1
DROVER_TMPDIR=$DVN_DIR/tmp
mkdir -p "$DROVER_TMPDIR"
export DROVER_TMPDIR DROVER_GRACE=1
dvn_enter_script "$DVN_DIR/enter.sh"
printf '%s\n' "$(dvn_host 1)" "$(dvn_host 2)" >"$DVN_DIR/hosts"
job=mo$$
for mode in event exit pool late; do
    out=$(timeout 60 $(dvn_nsenter_prefix 1) "$D" run --hostfile "$DVN_DIR/hosts" \
        --launch-cmd "$DVN_DIR/enter.sh {host} {cmd}" --job-id "$job$mode" \
        -- "$O" "$mode" 2>&1) || bad "$mode: exit $?: $out"
    case $mode in
    event | exit) want="^$mode moved 2000 bad 0$" ;;
    pool) want="^pool moved 16 bad 0$" ;;
    late) want="^late code 0$" ;;
    esac
    echo "$out" | grep -q "$want" || bad "$mode: $out"
    [ "$(echo "$out" | wc -l)" = 1 ] || bad "$mode: more than one line: $out"
    job_gone "$job$mode(-n[0-9]+)?" || bad "$mode: processes left"
done
dvn_teardown
[ "$fail" = 0 ] && echo "multinode order: ok"
exit "$fail"
