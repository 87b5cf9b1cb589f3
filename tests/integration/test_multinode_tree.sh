#!/usr/bin/env bash
# The tree of agents (DROVER_TREE_FANOUT=2, 7 loopback nodes: the head
# launches nodes 1 and 2, node 1 nodes 3 and 4, node 2 nodes 5 and 6):
# who launched whom, the node table and processes on every node, output
# of the deepest nodes, a lost inner agent (its subtree goes, the job
# fails, nothing left), a failed launch two levels down (named at once),
# a bad fanout.
set -u
. "$(dirname "$0")/rt_lib.sh"
J=$B/bin/dv_mn_job
W=$(mktemp -d)
trap 'rm -rf "$DROVER_TMPDIR" "$W"' EXIT
for i in 1 2 3 4 5 6 7; do echo "tr-$i"; done >"$W/hosts"
# The launcher logs "host parent-pid" and names the agent's node (its
# --node-name); tr-fail's launch fails.
cat >"$W/launch" <<EOS
#!/bin/sh
h=\$1
shift
echo "\$h \$PPID" >>"$W/launches"
[ "\$h" = "\${TREE_FAIL:-}" ] && { echo "cannot reach \$h" >&2; exit 1; }
exec "\$@" --node-name "\$h"
EOS
chmod +x "$W/launch"
# tree JOB FANOUT ARGS...: drover run over the 7 hosts.
tree() {
    rm -f "$W/launches"
    DROVER_TREE_FANOUT=$2 DROVER_NODE_NAME=tr-1 timeout 60 "$D" run \
        --hostfile "$W/hosts" --launch-cmd "$W/launch {host} {cmd}" \
        --network-prefix 127.0.0.0/8 --job-id "$1" -- "${@:3}" 2>&1
}
parents() { cut -d' ' -f2 "$W/launches" | sort -u | wc -l; }

out=$(tree tt$$ 2 "$J" table) || bad "table: $out"
for i in 0 1 2 3 4 5 6; do
    grep -qx "node $i tr-$((i + 1)) 127.0.0.1 cpus [0-9]* gpus [0-9]*" <<<"$out" ||
        bad "table: node $i: $out"
done
# Three launchers: the head (tr-2, tr-3), node 1 (tr-4, tr-5), node 2.
[ "$(wc -l <"$W/launches")" = 6 ] && [ "$(parents)" = 3 ] ||
    bad "tree: launches: $(cat "$W/launches")"
for h in tr-4 tr-5; do
    p=$(grep "^$h " "$W/launches" | cut -d' ' -f2)
    p1=$(grep "^tr-2 " "$W/launches" | cut -d' ' -f2)
    [ "$p" != "$p1" ] || bad "tree: $h launched by the head"
done
no_leftovers tt$$
# The star: the head launches all six.
out=$(tree ts$$ 0 "$J" table) || bad "star: $out"
[ "$(parents)" = 1 ] || bad "star: launches: $(cat "$W/launches")"
no_leftovers ts$$

# A process on every node, joined; their output (labelled) comes back.
out=$(tree tp$$ 2 "$J" spread 7) || bad "spread: $out"
for i in 0 1 2 3 4 5 6; do
    grep -q "^placed $i tr-$((i + 1)) code $i$" <<<"$out" || bad "spread: $i: $out"
done
no_leftovers tp$$

# lost NODE HOST JOB: node NODE's agent killed mid-job: named (HOST),
# the job fails, every agent and process goes (its subtree too).
lost() {
    rm -f "$W/out"
    (tree "$3" 2 "$J" hang >"$W/out") &
    local bg=$! a rc
    for _ in $(seq 300); do
        grep -q ready "$W/out" 2>/dev/null && break
        sleep 0.1
    done
    a=$(pgrep -f "drover agent .*--job $3 .*--index $1( |$)")
    [ -n "$a" ] || bad "lost $1: no agent"
    kill -KILL $a
    wait $bg
    rc=$?
    [ "$rc" = 1 ] || bad "lost $1: exit $rc: $(cat "$W/out")"
    grep -q "^drover: run: $2: agent exited" "$W/out" || bad "lost $1: $(cat "$W/out")"
    no_leftovers "$3"
}
# Node 1 (tr-2: the head's child, parent of nodes 3 and 4); node 4 (tr-5:
# its parent, node 1, tells the head).
lost 1 tr-2 tk$$
lost 4 tr-5 tl$$

# A launch two levels down fails: named, at once, nothing left.
t0=$(date +%s)
out=$(TREE_FAIL=tr-6 tree tf$$ 2 /bin/true)
rc=$?
took=$(($(date +%s) - t0))
[ "$rc" = 1 ] || bad "failed launch: exit $rc: $out"
grep -q "^drover: run: tr-6: launch failed: cannot reach tr-6$" <<<"$out" ||
    bad "failed launch: $out"
[ "$took" -lt 15 ] || bad "failed launch: took $took s"
no_leftovers tf$$

out=$(tree tb$$ x /bin/true)
rc=$?
[ "$rc" != 0 ] && [ "$(wc -l <<<"$out")" = 1 ] &&
    grep -q "DROVER_TREE_FANOUT=x" <<<"$out" || bad "bad fanout: $rc: $out"
finish
