#!/usr/bin/env bash
# Output of a multi-node job whose stdout is a pipe that nobody reads for
# 12 s (a paused terminal, a slow link): the job must go on (writing output
# never stops the head's heartbeats, 5 s of silence would end the job), and
# every byte must arrive. Two nodes on loopback (DROVER_NODE_NAME), and,
# where namespaces can be made, two emulated nodes with and without --label
# (with it, node 0's output goes through the head too). Each node writes
# more than its credit and the pipes hold, so its writers must wait.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"
BYTES=$((768 * 1024)) # per node, in lines of 64 bytes
PAUSE=12

netns=1
[ -z "$(dvn_why_not)" ] || netns=0
if [ "$netns" = 1 ]; then
    dvn_setup 2 || exit 1
    TMPD=$DVN_DIR
    dvn_enter_script "$DVN_DIR/enter.sh"
    printf 'node1\nnode2\n' >"$DVN_DIR/hosts"
else
    echo "emulated nodes unavailable: $(dvn_why_not); loopback only"
    TMPD=$(mktemp -d)
    trap 'rm -rf "$TMPD"' EXIT
fi
DROVER_TMPDIR=$TMPD/tmp
mkdir -p "$DROVER_TMPDIR"
export DROVER_TMPDIR DROVER_GRACE=1
printf 'lo-a\nlo-b\n' >"$TMPD/lohosts"

# slow NAME CMD...: CMD's stdout into a pipe read only after the pause
# (into NAME.out); its stderr in NAME.err, its status in NAME.rc.
slow() {
    local name=$1
    shift
    { "$@" 2>"$TMPD/$name.err"; echo $? >"$TMPD/$name.rc"; } |
        { sleep "$PAUSE"; cat >"$TMPD/$name.out"; }
}

slow lo env DROVER_NODE_NAME=lo-a timeout 120 "$D" run --hostfile "$TMPD/lohosts" \
    --launch-cmd "env DROVER_NODE_NAME={host} {cmd}" \
    --network-prefix 127.0.0.0/8 --job-id "mo$$lo" -- "$J" flood "$BYTES"
cases=lo
if [ "$netns" = 1 ]; then
    for c in plain label; do
        l=""
        [ "$c" = plain ] || l=--label
        slow "$c" timeout 120 $(dvn_nsenter_prefix 1) "$D" run \
            --hostfile "$DVN_DIR/hosts" --launch-cmd "$DVN_DIR/enter.sh {host} {cmd}" \
            $l --job-id "mo$$$c" -- "$J" flood "$BYTES"
    done
    cases="lo plain label"
fi

lines=$((BYTES / 64))
for c in $cases; do
    rc=$(cat "$TMPD/$c.rc" 2>/dev/null)
    [ "$rc" = 0 ] || bad "$c: exit ${rc:-?}: $(head -c 600 "$TMPD/$c.err")"
    got=$(wc -c <"$TMPD/$c.out")
    if [ "$c" = label ]; then
        for i in 1 2; do
            k=$(grep -cE "^\[node$i\] f$((i - 1))\.+$" "$TMPD/$c.out")
            [ "$k" = "$lines" ] || bad "$c: node$i: $k lines of $lines"
        done
        want=$((2 * (BYTES + lines * 8)))
    else
        want=$((2 * BYTES))
    fi
    [ "$got" = "$want" ] || bad "$c: $got bytes of $want"
    job_gone "mo$$$c(-n[0-9]+)?" || bad "$c: processes of the job left"
    ls /dev/shm | grep -qE "^drover\.mo$$$c[.-]" && bad "$c: shared memory left"
done
[ "$fail" -eq 0 ] && echo "all passed"
exit "$fail"
