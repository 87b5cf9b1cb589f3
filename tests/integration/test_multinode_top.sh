#!/usr/bin/env bash
# `drover top` on 4 emulated nodes through the hostfile launcher, started
# inside node1: 3 samples of every node as the seed's lines (--plain), from
# the 4 hostnames, exit 0, and nothing of the job left on any node. Then
# without a count: SIGINT to drover top's main process ends it with 0.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
. "$here/rt_lib.sh"
[ -x "$B/bin/drover-top-job" ] || { echo "SKIP: drover-top-job not built"; exit 77; }
WORK=$(mktemp -d)
dvn_setup 4 || exit 1
trap 'dvn_teardown; rm -rf "$DROVER_TMPDIR" "$WORK"' EXIT
dvn_enter_script "$WORK/enter.sh"
printf 'node1\nnode2\nnode3\nnode4\n' >"$WORK/hosts"
job=top_mn_$$
timeout 60 $(dvn_nsenter_prefix 1) "$D" top --job-id "$job" \
    --hostfile "$WORK/hosts" --launch-cmd "$WORK/enter.sh {host} {cmd}" \
    -n 3 -i 0.2 --plain >"$WORK/out" 2>"$WORK/err"
rc=$?
[ "$rc" -eq 0 ] || bad "exit $rc: $(cat "$WORK/err")"
for i in 1 2 3 4; do
    n=$(grep -cE "^nodename: node$i cpu load average 1 minute: [0-9.]+" "$WORK/out")
    [ "$n" -eq 3 ] || bad "node$i: $n sample lines, want 3"
done
grep -vqE "^nodename: node[1-4] " "$WORK/out" && bad "other lines in the output"
no_leftovers "$job"
ls /dev/shm | grep -q "^drover\.$job-n" && bad "shared memory of other nodes left"

# No count: it runs until SIGINT reaches its main process (drover-top-job).
job2=top_mn2_$$
timeout 60 $(dvn_nsenter_prefix 1) "$D" top --job-id "$job2" \
    --hostfile "$WORK/hosts" --launch-cmd "$WORK/enter.sh {host} {cmd}" \
    -i 0.2 --plain >"$WORK/out2" 2>"$WORK/err2" &
top_pid=$!
for i in 1 2 3 4; do
    wait_for "$WORK/out2" "^nodename: node$i " || bad "node$i never shown"
done
# The main process: drover-top-job, not forked by another drover-top-job
# (node1's monitors) nor started for a task (the other nodes' monitors).
main=""
for p in $(job_procs "$job2"); do
    pp=$(sed 's/.*) //' "/proc/$p/stat" | cut -d' ' -f2)
    [ "$(readlink "/proc/$p/exe")" = "$B/bin/drover-top-job" ] &&
        [ "$(readlink "/proc/$pp/exe")" != "$B/bin/drover-top-job" ] &&
        ! grep -qz "^DROVER_TASK=" "/proc/$p/environ" && main="$main $p"
done
[ "$(echo $main | wc -w)" -eq 1 ] || bad "main processes found: '$main'"
[ -n "$main" ] && kill -INT $main
wait "$top_pid"
rc=$?
[ "$rc" -eq 0 ] || bad "after SIGINT: exit $rc: $(cat "$WORK/err2")"
no_leftovers "$job2"
ls /dev/shm | grep -q "^drover\.$job2-n" && bad "shared memory of other nodes left"

# --keep-going: node3's agent killed; node3 shows as lost, the others go
# on, and SIGINT still ends it with 0.
job3=top_mn3_$$
timeout 60 $(dvn_nsenter_prefix 1) "$D" top --job-id "$job3" --keep-going \
    --hostfile "$WORK/hosts" --launch-cmd "$WORK/enter.sh {host} {cmd}" \
    -i 0.2 --plain >"$WORK/out3" 2>"$WORK/err3" &
top_pid=$!
wait_for "$WORK/out3" "^nodename: node3 " || bad "keep-going: node3 never shown"
kill -9 $(pgrep -f "drover agent .*--job $job3 --index 2$")
wait_for "$WORK/out3" "^nodename: node3 note: node lost$" ||
    bad "keep-going: node3 not shown as lost"
n=$(wc -l <"$WORK/out3")
tail -n +"$((n + 1))" "$WORK/out3" >"$WORK/after"
for i in 1 2 4; do # the others go on after the loss
    for _ in $(seq 50); do
        tail -n +"$((n + 1))" "$WORK/out3" >"$WORK/after"
        grep -q "^nodename: node$i " "$WORK/after" && break
        sleep 0.1
    done
    grep -q "^nodename: node$i " "$WORK/after" || bad "keep-going: node$i stopped"
done
main=""
for p in $(job_procs "$job3"); do
    pp=$(sed 's/.*) //' "/proc/$p/stat" | cut -d' ' -f2)
    [ "$(readlink "/proc/$p/exe")" = "$B/bin/drover-top-job" ] &&
        [ "$(readlink "/proc/$pp/exe")" != "$B/bin/drover-top-job" ] &&
        ! grep -qz "^DROVER_TASK=" "/proc/$p/environ" && main="$main $p"
done
[ -n "$main" ] && kill -INT $main
wait "$top_pid"
rc=$?
[ "$rc" -eq 0 ] || bad "keep-going: after SIGINT: exit $rc: $(cat "$WORK/err3")"
rm -rf "$DROVER_TMPDIR/drover.$job3-n2"
rm -f /dev/shm/drover."$job3"-n2.*
no_leftovers "$job3"
ls /dev/shm | grep -q "^drover\.$job3-n" && bad "keep-going: shared memory of other nodes left"
[ "$fail" -eq 0 ] || { echo "--- out"; cat "$WORK/out"; echo "--- err"; cat "$WORK/err" "$WORK/err2" "$WORK/err3"; cat "$WORK/out3"; }
exit "$fail"
