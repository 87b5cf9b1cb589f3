#!/usr/bin/env bash
# The emulated-node harness itself: 4 nodes with their own hostnames and
# addresses, node1 reaches node2 (ICMP and a TCP echo, both from inside the
# namespaces), and teardown leaves nothing behind, also when the script
# using the harness fails half-way.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=netns.sh
. "$here/netns.sh"
dvn_skip_unless_possible
for t in ping python3; do
    command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 77; }
done

# Running (a zombie waiting for a slow init to reap it is not).
alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Everything an instance owns, one item a line; empty once torn down.
leftovers() {
    local x=$1 dir=$2
    ip netns list | awk '{print $1}' | grep -E "^dv${x}(n[0-9]+|br)$" || true
    ip route show type blackhole | grep -F "10.213.$x.0/24" || true
    grep -F " $dir/" /proc/self/mountinfo || true
    [ ! -e "$dir" ] || echo "$dir"
}

TCP_ECHO_SERVER='
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7001)); s.listen(1)
c, _ = s.accept()
c.sendall(c.recv(100))
'
TCP_ECHO_CLIENT='
import socket, sys, time
for _ in range(50):
    try:
        c = socket.create_connection((sys.argv[1], 7001), timeout=2); break
    except OSError:
        time.sleep(0.1)
c.sendall(b"hello-from-" + socket.gethostname().encode())
print(c.recv(100).decode())
'

test_four_nodes() {
    dvn_setup 4
    local x=$DVN_X dir=$DVN_DIR i h
    [ "$(hostname)" != node1 ] || fail "root namespace hostname changed"
    for i in 1 2 3 4; do
        h=$(dvn_exec "$i" hostname)
        [ "$h" = "node$i" ] || fail "node $i has hostname '$h'"
        dvn_exec "$i" ip -4 -o addr show dev eth0 | grep -F "$(dvn_addr "$i")/24" >/dev/null ||
            fail "node $i lacks address $(dvn_addr "$i")"
        dvn_exec "$i" ip -o link show lo | grep "UP" >/dev/null || fail "node $i: lo down"
    done
    ip route show type blackhole | grep -F "10.213.$x.0/24" >/dev/null || fail "no guard route"
    dvn_exec 1 ping -c 1 -W 2 "$(dvn_addr 2)" >/dev/null || fail "node1 cannot ping node2"
    dvn_spawn 2 python3 -c "$TCP_ECHO_SERVER" "$(dvn_addr 2)"
    local server=$DVN_PID reply
    reply=$(dvn_exec 1 timeout 10 python3 -c "$TCP_ECHO_CLIENT" "$(dvn_addr 2)")
    [ "$reply" = "hello-from-node1" ] || fail "TCP echo from node1 to node2 gave '$reply'"
    wait "$server" || fail "echo server failed"
    # A process left running inside a node must be killed at teardown.
    dvn_spawn 3 sleep 300
    local sleeper=$DVN_PID ids
    mapfile -t ids < <(dvn_ns_ids)
    dvn_teardown
    [ -z "$(dvn_pids_in_ns_ids "${ids[@]}")" ] || fail "processes left in namespaces"
    ! alive "$sleeper" || fail "process in node3 survived teardown"
    local left
    left=$(leftovers "$x" "$dir")
    [ -z "$left" ] || fail "teardown left: $left"
    echo "ok: 4 nodes, hostnames, ping and TCP echo node1 -> node2, clean teardown"
}

# A script that fails with set -e after making nodes must clean up too.
test_teardown_on_failure() {
    local out x dir
    out=$(bash -c '
        set -euo pipefail
        . "$1"
        dvn_setup 2
        echo "$DVN_X $DVN_DIR"
        dvn_spawn 2 sleep 300
        echo "$DVN_PID"
        false
        echo unreachable' _ "$here/netns.sh" || true)
    read -r x dir <<<"$(echo "$out" | sed -n 1p)"
    local sleeper
    sleeper=$(echo "$out" | sed -n 2p)
    [ -n "$x" ] && [ -n "$sleeper" ] || fail "failing script printed '$out'"
    ! echo "$out" | grep -q unreachable || fail "set -e did not stop the script"
    ! alive "$sleeper" || fail "process survived a failing script"
    local left
    left=$(leftovers "$x" "$dir")
    [ -z "$left" ] || fail "failing script left: $left"
    echo "ok: teardown after a failing script"
}

# A test killed with SIGKILL (a CTest timeout) runs no trap: `netns.sh
# cleanup` removes what it left.
test_cleanup_after_kill() {
    local out x dir sleeper
    out=$(bash -c '
        . "$1"
        dvn_setup 2
        echo "$DVN_X $DVN_DIR"
        dvn_spawn 2 sleep 300 >/dev/null 2>&1
        echo "$DVN_PID"
        kill -KILL $$' _ "$here/netns.sh" || true)
    read -r x dir <<<"$(echo "$out" | sed -n 1p)"
    sleeper=$(echo "$out" | sed -n 2p)
    [ -n "$x" ] && [ -n "$sleeper" ] || fail "killed script printed '$out'"
    [ -n "$(leftovers "$x" "$dir")" ] || fail "SIGKILL left nothing to clean?"
    bash "$here/netns.sh" cleanup 2>/dev/null
    ! alive "$sleeper" || fail "process survived cleanup"
    local left
    left=$(leftovers "$x" "$dir")
    [ -z "$left" ] || fail "cleanup left: $left"
    echo "ok: netns.sh cleanup after a SIGKILLed script"
}

test_cli() {
    local dir h
    dir=$(bash "$here/netns.sh" up 2 host)
    h=$(bash "$here/netns.sh" exec "$dir" 2 hostname)
    local x
    x=$(sed -n 's/^DVN_X=//p' "$dir/state")
    bash "$here/netns.sh" down "$dir"
    [ "$h" = host2 ] || fail "CLI exec gave hostname '$h'"
    local left
    left=$(leftovers "$x" "$dir")
    [ -z "$left" ] || fail "CLI down left: $left"
    echo "ok: CLI up / exec / down"
}

test_four_nodes
test_teardown_on_failure
test_cleanup_after_kill
test_cli
