#!/usr/bin/env bash
# `drover run` on a host outside the host file's node set (4 emulated
# nodes; drover run in node1, the host file lists node2..node4): it only
# launches; node 0 is node2, where the main process runs; its output,
# --label, exit code (also of a signal) and arguments of any bytes come
# back; SIGINT and SIGTERM of drover run end the job on every node, nothing
# left. Also: the launching host listed but not first (an agent of its
# own), listed first by address (node 0 here, as before), --node0 first
# and here, and a node 0 that cannot be launched.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"

dvn_setup 4 || exit 1
DROVER_TMPDIR=$DVN_DIR/tmp
mkdir -p "$DROVER_TMPDIR"
export DROVER_TMPDIR DROVER_GRACE=1
dvn_enter_script "$DVN_DIR/enter.sh"
printf 'node2\nnode3\nnode4\n' >"$DVN_DIR/hosts"
LAUNCH="$DVN_DIR/enter.sh {host} {cmd}"
# run HOSTFILE ARGS...: drover run inside node1; output in $DVN_DIR/out.
run() {
    local hf=$1
    shift
    timeout 60 $(dvn_nsenter_prefix 1) "$D" run --hostfile "$hf" \
        --launch-cmd "$LAUNCH" "$@" >"$DVN_DIR/out" 2>&1
}
out() { cat "$DVN_DIR/out"; }
check_clean() {
    local job=$1 what=$2
    job_gone "$job(-n[0-9]+)?" || bad "$what: processes of job $job left"
    ls /dev/shm | grep -qE "^drover\.$job[.-]" && bad "$what: shared memory left"
    ls "$DROVER_TMPDIR" | grep -qE "drover\.$job([.-]|$)" && bad "$what: runtime dir left"
}

# The node table: node2 first, node1 nowhere.
run "$DVN_DIR/hosts" --job-id ml1 -- "$J" table || bad "table: exit $?: $(out)"
out | grep -q "^nodes 3$" || bad "table: $(out)"
for i in 2 3 4; do
    out | grep -qE "^node $((i - 2)) node$i $(dvn_addr "$i") cpus" ||
        bad "table: node$i is not node $((i - 2)): $(out)"
done
out | grep -q " node1 " && bad "table: node1 is a node: $(out)"
check_clean ml1 table

# Processes on every node, their output labelled, the codes back.
run "$DVN_DIR/hosts" --label --job-id ml2 -- "$J" spread 6 || bad "spread: exit $?: $(out)"
for i in 0 1 2 3 4 5; do
    out | grep -q "^\[node2\] placed $i node$((i % 3 + 2)) code $i$" ||
        bad "spread: process $i: $(out)"
done
check_clean ml2 spread

# The main process's stdout, stderr, exit code; killed by a signal.
run "$DVN_DIR/hosts" --label --job-id ml3 -- sh -c 'echo out; echo err >&2; exit 3'
rc=$?
[ "$rc" -eq 3 ] || bad "exit code: $rc: $(out)"
[ "$(out | sort | tr '\n' ' ')" = "[node2] err [node2] out " ] || bad "output: $(out)"
run "$DVN_DIR/hosts" --job-id ml4 -- sh -c 'echo $(hostname); kill -SEGV $$'
rc=$?
[ "$rc" -eq 139 ] || bad "signal: exit $rc: $(out)"
[ "$(out)" = node2 ] || bad "signal: $(out)"
# Arguments with blanks, quotes, $ and newlines reach node 0 unchanged.
run "$DVN_DIR/hosts" --job-id ml5 -- printf '<%s>' 'a b' "it's" '$HOME' '`x`;' "l1
l2" || bad "arguments: exit $?: $(out)"
[ "$(out)" = "<a b><it's><\$HOME><\`x\`;><l1
l2>" ] || bad "arguments: $(out)"
check_clean ml5 arguments

# SIGINT, SIGTERM of drover run: every node's processes end, exit 128 + N.
for s in INT:130 TERM:143; do
    job=ml6${s%:*}
    rm -f "$DVN_DIR/out"
    (run "$DVN_DIR/hosts" --job-id "$job" -- "$J" hang) &
    bg=$!
    for _ in $(seq 100); do
        grep -q ready "$DVN_DIR/out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q ready "$DVN_DIR/out" || bad "$s: not ready: $(out)"
    pid=$(pgrep -f "^$D run --hostfile $DVN_DIR/hosts .*--job-id $job ")
    [ -n "$pid" ] || bad "$s: no drover run"
    kill -"${s%:*}" $pid
    wait $bg
    rc=$?
    [ "$rc" -eq "${s#*:}" ] || bad "$s: exit $rc: $(out)"
    check_clean "$job" "$s"
done

# Node 0's output has no reader any more (ssh's end, its remote side
# still there): node 0's drover run ends the job everywhere.
cat >"$DVN_DIR/pipe.sh" <<EOS
#!/bin/bash
"$DVN_DIR/enter.sh" "\$@" 2>&1 | cat
EOS
chmod +x "$DVN_DIR/pipe.sh"
rm -f "$DVN_DIR/out"
(timeout 60 $(dvn_nsenter_prefix 1) "$D" run --hostfile "$DVN_DIR/hosts" \
    --launch-cmd "$DVN_DIR/pipe.sh {host} {cmd}" --job-id ml12 -- "$J" hang \
    >"$DVN_DIR/out" 2>&1) &
bg=$!
for _ in $(seq 100); do
    grep -q ready "$DVN_DIR/out" 2>/dev/null && break
    sleep 0.1
done
grep -q ready "$DVN_DIR/out" || bad "no reader: not ready: $(out)"
pipe=$(pgrep -f "^/bin/bash $DVN_DIR/pipe.sh node2 ")
for p in $(pgrep -P "$pipe" -x cat); do kill -9 "$p"; done
for _ in $(seq 100); do
    job_left "ml12(-n[0-9]+)?" || break
    sleep 0.1
done
check_clean ml12 "no reader"
wait $bg

# This host listed, not first: node2 is node 0, node1 a node of its own.
printf 'node2\nnode1\n' >"$DVN_DIR/h21"
run "$DVN_DIR/h21" --job-id ml7 -- "$J" table || bad "listed second: exit $?: $(out)"
out | grep -q "^node 0 node2 " && out | grep -q "^node 1 node1 " ||
    bad "listed second: $(out)"
check_clean ml7 "listed second"
# Listed first by its address: node 0 here, as before.
printf '%s\nnode2\n' "$(dvn_addr 1)" >"$DVN_DIR/haddr"
run "$DVN_DIR/haddr" --job-id ml8 -- "$J" table || bad "address: exit $?: $(out)"
out | grep -q "^node 0 node1 $(dvn_addr 1) " && out | grep -q "^node 1 node2 " ||
    bad "address: $(out)"
# --node0 first: node 0 launched even though node1 is the first host (the
# template notes every host it starts something on).
cat >"$DVN_DIR/note.sh" <<EOS
#!/bin/bash
echo "\$1" >>"$DVN_DIR/launched"
exec "$DVN_DIR/enter.sh" "\$@"
EOS
chmod +x "$DVN_DIR/note.sh"
printf 'node1\nnode2\n' >"$DVN_DIR/h12"
timeout 60 $(dvn_nsenter_prefix 1) "$D" run --hostfile "$DVN_DIR/h12" --node0 first \
    --launch-cmd "$DVN_DIR/note.sh {host} {cmd}" --job-id ml9 -- "$J" table \
    >"$DVN_DIR/out" 2>&1 || bad "--node0 first: exit $?: $(out)"
out | grep -q "^node 0 node1 " && out | grep -q "^node 1 node2 " || bad "--node0 first: $(out)"
[ "$(tr '\n' ' ' <"$DVN_DIR/launched")" = "node1 node2 " ] ||
    bad "--node0 first: launched on $(cat "$DVN_DIR/launched")"
# --node0 here: this host is node 0 under the first host's line (as before).
run "$DVN_DIR/hosts" --node0 here --job-id ml10 -- "$J" table ||
    bad "--node0 here: exit $?: $(out)"
out | grep -q "^node 0 node1 " && out | grep -q "^nodes 3$" || bad "--node0 here: $(out)"
run "$DVN_DIR/hosts" --node0 there -- true && bad "--node0 there: exit 0"
[ "$(out)" = "drover: run: --node0: 'there' is not here, first or auto" ] ||
    bad "--node0 there: $(out)"
# A node 0 that cannot be launched: its launcher's error, exit non-zero.
printf 'node9\nnode2\n' >"$DVN_DIR/h9"
run "$DVN_DIR/h9" --job-id ml11 -- "$J" table && bad "node 0 unknown: exit 0"
out | grep -q "^enter: no such host node9$" || bad "node 0 unknown: $(out)"
check_clean ml11 "node 0 unknown"
exit "$fail"
