#!/usr/bin/env bash
# Signals and silence while a multi-node job wires up, on one host (agents
# named with DROVER_NODE_NAME, on loopback as --network-prefix asks):
# - an agent whose head is unreachable (nothing listens there, or a
#   listener never answers) says so and exits non-zero within 10 s;
# - SIGTERM, SIGINT or SIGHUP ends an agent waiting for its node table
#   within 5 s (at once, but under ASan on two loaded CPUs a teardown has
#   taken 2 s; unfixed, it waited out 120 s);
# - an agent up early hears from the head while the head launches the
#   others (a long launch loop) or waits for a late one;
# - SIGTERM to drover run during a long launch loop ends the job within
#   5 s (as above) and leaves no launched process;
# - a head that fails to start leaves nothing its launchers started.
set -u
. "$(dirname "$0")/rt_lib.sh"
z=0000000000000000000000000000000000000000
KEYS="drover-keys-1 $z $z $z $z"
ms() { echo $(($(date +%s%N) / 1000000)); }
TMO=$(command -v timeout)
W=$(mktemp -d) # the launcher, host files (not the job's: DROVER_TMPDIR)

# A port nothing listens on, and a listener that never answers.
free_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
time.sleep(120)' >"$DROVER_TMPDIR/../silent$$" &
silent_pid=$!
trap 'kill $silent_pid 2>/dev/null; rm -rf "$DROVER_TMPDIR" "$W" "$DROVER_TMPDIR/../silent$$"' EXIT
for _ in $(seq 50); do
    [ -s "$DROVER_TMPDIR/../silent$$" ] && break
    sleep 0.1
done
silent_port=$(cat "$DROVER_TMPDIR/../silent$$")

# agent PORT JOB: a node agent for a head on 127.0.0.1:PORT, in the
# background (pid in $apid, stderr in $aerr).
agent() {
    aerr=$DROVER_TMPDIR/../$2.err
    printf '%s\n' "$KEYS" | DROVER_NODE_NAME=$2 timeout -s KILL 60 "$D" agent \
        --head "tcp://127.0.0.1:$1" --job "$2" --index 1 \
        --network-prefix 127.0.0.0/8 2>"$aerr" &
    apid=$!
}

for p in "$free_port:unused" "$silent_port:silent"; do
    job=ua${p#*:}$$
    t0=$(ms)
    agent "${p%%:*}" "$job"
    wait $apid
    rc=$?
    took=$(($(ms) - t0))
    [ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] || bad "${p#*:} head: agent exit $rc"
    [ "$took" -lt 10000 ] || bad "${p#*:} head: agent took $took ms"
    grep -q "^drover: agent: node 1: head tcp://127.0.0.1:${p%%:*} unreachable" "$aerr" ||
        bad "${p#*:} head: $(cat "$aerr")"
    grep -q Sanitizer "$aerr" && bad "${p#*:} head: $(cat "$aerr")"
    rm -f "$aerr"
done

for sig in TERM INT HUP; do
    job=us$sig$$
    agent "$silent_port" "$job"
    sleep 1
    t0=$(ms)
    kill -$sig $apid
    wait $apid
    rc=$?
    took=$(($(ms) - t0))
    [ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] || bad "SIG$sig: agent exit $rc"
    [ "$took" -lt 5000 ] || bad "SIG$sig: agent took $took ms"
    grep -q "^drover: agent: node 1: stopped by SIG$sig while waiting" "$aerr" ||
        bad "SIG$sig: $(cat "$aerr")"
    grep -q Sanitizer "$aerr" && bad "SIG$sig: $(cat "$aerr")"
    rm -f "$aerr"
done

# A slow launcher: found at the end of a long PATH (each launch searches
# it); node la-up's starts an agent, the others just wait. la-late's
# agent starts 7 s late. la-o's leaves a process behind and fails.
mkdir "$W/bin"
cat >"$W/bin/slowlaunch" <<'EOS'
#!/bin/sh
TAG=@TAG@
h=$1
shift
case $h in
la-up) exec /usr/bin/env DROVER_NODE_NAME=$h "$@" ;;
la-late) /bin/sleep 7; exec /usr/bin/env DROVER_NODE_NAME=$h "$@" ;;
la-o)
    /bin/sleep 60 </dev/null >/dev/null 2>&1 &
    echo "cannot reach $h" >&2
    exit 1 ;;
esac
exec /bin/sleep 60.$TAG
EOS
sed -i "s/@TAG@/$$/" "$W/bin/slowlaunch"
chmod +x "$W/bin/slowlaunch"
slow_path=$(seq -f "/n/%g" 1 14000 | paste -sd:):$W/bin
hosts() {
    { echo la-h; printf '%s\n' "$@"; } >"$W/hosts"
}
# launch JOB ARGS...: drover run over $DROVER_TMPDIR/hosts, in the
# background (pid in $rpid, output in $rout).
launch() {
    rout=$DROVER_TMPDIR/../$1.out
    DROVER_NODE_NAME=la-h PATH=$slow_path "$TMO" -s KILL 120 "$D" run \
        --hostfile "$W/hosts" --launch-cmd "slowlaunch {host} {cmd}" \
        --network-prefix 127.0.0.0/8 --job-id "$1" "${@:2}" >"$rout" 2>&1 &
    rpid=$!
}
# settled JOB: nothing of JOB is left.
settled() {
    grep -q Sanitizer "$rout" && bad "$1: $(grep -m3 -A5 Sanitizer "$rout")"
    no_leftovers "$1"
    rm -f "$DROVER_TMPDIR/../$1.out"
}

# 120 launches after la-up's: its agent waits well over 5 s and must not
# take the head for gone (the job then fails on the silent nodes). A star
# (DROVER_TREE_FANOUT=0): in a tree the head itself launches 16.
hosts la-up $(seq -f "la-s%g" 1 120)
DROVER_TREE_FANOUT=0 launch ll$$ --wireup-timeout 1 -- /bin/true
up=""
for _ in $(seq 1200); do
    a=$(pgrep -f "drover agent --head .* --job ll$$ --index 1 " | head -n1)
    [ -n "$a" ] && up=$a
    [ -n "$up" ] && ! alive "$up" && break
    [ "$(pgrep -c -xf "/bin/sleep 60.$$")" -ge 120 ] && break
    sleep 0.1
done
[ -n "$up" ] && alive "$up" || bad "long launch: la-up's agent ended before the launch"
wait $rpid
rc=$?
[ "$rc" -eq 1 ] || bad "long launch: exit $rc: $(tail -c 300 "$rout")"
# The silent nodes are named (the list is cut short), la-up is not.
grep -q "^drover: run: la-s1, la-s2, " "$rout" || bad "long launch: $(tail -c 300 "$rout")"
grep -q "la-up\|unreachable\|lost the head" "$rout" &&
    bad "long launch: the early agent gave up: $(grep -m1 'la-up\|unreachable\|lost' "$rout")"
settled ll$$

# A late node: the early one waits for it.
hosts la-up la-late
launch lt$$ -- /bin/true
wait $rpid
rc=$?
[ "$rc" -eq 0 ] || bad "late node: exit $rc: $(cat "$rout")"
settled lt$$

# SIGTERM in the launch loop (timeout passes it to its whole process
# group, as Ctrl-C reaches a terminal's: the launchers end too).
hosts la-up $(seq -f "la-s%g" 1 120)
launch lk$$ -- /bin/true
# Stopped once a few launches are done, well before the last of 120.
for _ in $(seq 600); do
    [ "$(pgrep -c -xf "/bin/sleep 60.$$")" -ge 3 ] && break
    sleep 0.01
done
t0=$(ms)
kill -TERM $rpid
wait $rpid
rc=$?
took=$(($(ms) - t0))
[ "$rc" -ne 0 ] && [ "$rc" -ne 137 ] || bad "SIGTERM in the launch: exit $rc"
[ "$took" -lt 5000 ] || bad "SIGTERM in the launch: took $took ms"
grep -q "^drover: run: interrupted during the launch" "$rout" ||
    bad "SIGTERM in the launch: $(tail -c 300 "$rout")"
settled lk$$

# A failed start: what its launcher left is killed too.
hosts la-o
launch lo$$ -- /bin/true
wait $rpid
rc=$?
[ "$rc" -eq 1 ] || bad "failed start: exit $rc: $(cat "$rout")"
grep -q "la-o: launch failed: cannot reach la-o" "$rout" || bad "failed start: $(cat "$rout")"
settled lo$$
finish
