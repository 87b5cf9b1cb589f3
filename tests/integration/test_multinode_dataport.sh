#!/usr/bin/env bash
# Strangers at the data port, on 3 emulated nodes (network + UTS
# namespaces) with `drover run` inside node1; the stranger
# (data_intruder.py) runs inside node3's namespace, the recorder inside
# node2's, never in the root namespace.
#  - 1,100 idle connections to node 0's data port (and 200 to node 1's),
#    held for the whole job (reopened when the port closes them), while
#    producers on every node feed a queue of node 0: the job succeeds, the
#    refused peers are logged (by the head and through node 1's agent), at
#    most 10 lines a second plus a summary.
#  - The bytes of a connection that put one message (recorded from node2)
#    replayed on 50 new connections from node3: none gets an answer, the
#    queue holds the one message, and the refusals are logged.
# Forged, changed, reordered and replayed frames inside a connection and a
# wrong token are covered by tests/unit/test_data_link.c.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
# shellcheck source=mn_lib.sh
. "$here/mn_lib.sh"

dvn_setup 3 || exit 1
DROVER_TMPDIR=$DVN_DIR/tmp
mkdir -p "$DROVER_TMPDIR"
export DROVER_TMPDIR DROVER_GRACE=1
dvn_enter_script "$DVN_DIR/enter.sh"
printf 'node1\nnode2\nnode3\n' >"$DVN_DIR/hosts"
INTRUDER="$here/data_intruder.py"
out() { cat "$DVN_DIR/out"; }

# start_job JOB ARGS...: drover run inside node1 in the background (its
# output in $DVN_DIR/out, exit status in $DVN_DIR/rc, PID in $job_pid).
start_job() {
    local id=$1
    shift
    rm -f "$DVN_DIR/rc"
    (
        timeout -s KILL 120 $(dvn_nsenter_prefix 1) "$D" run \
            --hostfile "$DVN_DIR/hosts" --launch-cmd "$DVN_DIR/enter.sh {host} {cmd}" \
            --job-id "$id" -- "$J" "$@" >"$DVN_DIR/out" 2>&1
        echo $? >"$DVN_DIR/rc"
    ) &
    job_pid=$!
}

# wait_file PATH [SECONDS]: until PATH exists (30 s by default).
wait_file() {
    local t
    for ((t = 0; t < ${2:-30} * 10; t++)); do
        [ -e "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# dport JOB NODE: the data port of node NODE, from the job's node table.
dport() {
    local f=$DROVER_TMPDIR/drover.$1/nodes
    wait_file "$f" && sleep 0.2
    awk -v n="$2" '$1 == n { print $7 }' "$f"
}

check_clean() {
    job_gone "$1(-n[0-9]+)?" || bad "$2: processes of job $1 left"
    ls /dev/shm | grep -qE "^drover\.$1[.-]" && bad "$2: shared memory left"
}

# ---- 1,100 idle strangers while the job works ----
rm -f "$DVN_DIR/go" "$DVN_DIR/ready0" "$DVN_DIR/ready1"
start_job dp1 after "$DVN_DIR/go" queue 30000
p0=$(dport dp1 0)
p1=$(dport dp1 1)
[ -n "$p0" ] && [ -n "$p1" ] || bad "flood: no node table: $(out)"
dvn_spawn 3 python3 "$INTRUDER" flood "$(dvn_addr 1)" "$p0" 1100 60 \
    "$DVN_DIR/ready0" >"$DVN_DIR/flood0"
flood0=$DVN_PID
dvn_spawn 3 python3 "$INTRUDER" flood "$(dvn_addr 2)" "$p1" 200 60 \
    "$DVN_DIR/ready1" >"$DVN_DIR/flood1"
flood1=$DVN_PID
wait_file "$DVN_DIR/ready0" && wait_file "$DVN_DIR/ready1" ||
    bad "flood: the strangers could not connect"
t0=$(date +%s)
touch "$DVN_DIR/go"
wait "$job_pid"
took=$(($(date +%s) - t0))
kill -TERM "$flood0" "$flood1" 2>/dev/null
wait "$flood0" "$flood1" 2>/dev/null
echo "flood: job took ${took} s; node 0: $(cat "$DVN_DIR/flood0"); node 1: $(cat "$DVN_DIR/flood1")"
[ "$(cat "$DVN_DIR/rc")" = 0 ] || bad "flood: exit $(cat "$DVN_DIR/rc"): $(out | tail -5)"
out | grep -q "^moved 30000 bad 0$" || bad "flood: $(out | grep -v 'data port' | tail -5)"
s3="$(dvn_addr 3 | sed 's/\./\\./g'):[0-9]+"
out | grep -qE "^drover: run: data port: refused $s3: (too many connections waiting to authenticate|no answer to the challenge within 3 s)$" ||
    bad "flood: node 0's refusals not logged: $(out | head -5)"
out | grep -qE "^drover: agent: node 1: data port: refused $s3: " ||
    bad "flood: node 1's refusals not logged: $(out | head -5)"
out | grep -qE "^drover: run: data port: [0-9]+ more refused connections? not shown$" ||
    bad "flood: no summary of the lines not shown"
lines=$(out | grep -c "data port: refused")
[ "$lines" -le $(((took + 2) * 22)) ] || bad "flood: $lines lines in $took s (more than 10 a second per port)"
[ -z "${DV_KEEP_OUT:-}" ] || cp "$DVN_DIR/out" "$DV_KEEP_OUT.flood"
check_clean dp1 flood

# ---- a recorded connection replayed ----
cap=$DVN_DIR/cap
mkdir -p "$cap"
dvn_spawn 2 python3 "$INTRUDER" capture "$(dvn_addr 1)" "$cap/stop" "$cap/s"
sniffer=$DVN_PID
wait_file "$cap/s.ready" || bad "replay: the recorder did not start"
start_job dp2 replay "$cap"
port=$(dport dp2 0)
wait_file "$cap/put-done" 60 || bad "replay: no put: $(out)"
touch "$cap/stop"
wait "$sniffer"
stream=$(ls "$cap"/s."$port".* 2>/dev/null | head -n1)
if [ -n "$stream" ] && [ -s "$stream" ]; then
    r=$(dvn_exec 3 python3 "$INTRUDER" replay "$(dvn_addr 1)" "$port" "$stream" 50)
    echo "replay: recorded $(wc -c <"$stream") bytes; $r"
    [ "$r" = "replay accepted 0 of 50" ] || bad "replay: $r"
else
    bad "replay: nothing recorded to port $port: $(ls "$cap")"
fi
touch "$cap/replayed"
wait "$job_pid"
[ "$(cat "$DVN_DIR/rc")" = 0 ] || bad "replay: exit $(cat "$DVN_DIR/rc"): $(out | tail -5)"
out | grep -q "^replay queued 1$" || bad "replay: $(out | grep -v 'data port' | tail -5)"
out | grep -qE "^drover: run: data port: refused $s3: wrong token$" ||
    bad "replay: refusals not logged: $(out | head -5)"
check_clean dp2 replay

[ -z "${DV_KEEP_OUT:-}" ] || cp "$DVN_DIR/out" "$DV_KEEP_OUT"
exit $fail
