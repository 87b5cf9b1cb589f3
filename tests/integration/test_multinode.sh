#!/usr/bin/env bash
# Multi-node jobs on 4 emulated nodes (network + UTS namespaces) through the
# hostfile launcher, with `drover run` itself inside node1: the node table,
# round-robin placement, remote join/exit code/kill, output with --label,
# a queue fed from every node, maxsize across nodes, events across nodes,
# a pool over the nodes,
# bad host files and launchers, and a node whose agent dies or hangs.
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
# The launch template's helper: host name -> that node's namespaces.
dvn_enter_script "$DVN_DIR/enter.sh"
printf '# four nodes\nnode1\nnode2\n\nnode3\nnode4\n' >"$DVN_DIR/hosts"
LAUNCH="$DVN_DIR/enter.sh {host} {cmd}"
# run HOSTFILE ARGS...: drover run inside node1; output in $DVN_DIR/out.
run() {
    local hf=$1
    shift
    timeout 60 $(dvn_nsenter_prefix 1) "$D" run --hostfile "$hf" \
        --launch-cmd "$LAUNCH" "$@" >"$DVN_DIR/out" 2>&1
}
out() { cat "$DVN_DIR/out"; }

# No process, shared memory or runtime dir of job $1 is left on any node.
check_clean() {
    local job=$1 what=$2
    job_gone "$job(-n[0-9]+)?" || bad "$what: processes of job $job left"
    ls /dev/shm | grep -qE "^drover\.$job[.-]" && bad "$what: shared memory left"
    ls "$DROVER_TMPDIR" | grep -qE "drover\.$job([.-]|$)" && bad "$what: runtime dir left"
}

# The node table lists the 4 hostnames, node1 first.
run "$DVN_DIR/hosts" --job-id mt1 -- "$J" table || bad "table: exit $?: $(out)"
out | grep -q "^nodes 4$" || bad "table: $(out)"
for i in 1 2 3 4; do
    out | grep -qE "^node $((i - 1)) node$i $(dvn_addr "$i") cpus [0-9]+ gpus [0-9]+$" ||
        bad "table: node$i missing: $(out)"
done
check_clean mt1 table

# GPU counts: every agent counts its node's GPUs as the telemetry samplers
# do. Node1 (the head) and node2 see the NVML test double (2 GPUs), node4
# the ROCm SMI one (1 GPU), node3 no library (0).
cat >"$DVN_DIR/gpus.sh" <<EOS
#!/bin/bash
h=\$1; shift
export DROVER_NVML_LIBRARY=$B/lib/libdv_fake_nvml.so DROVER_RSMI_LIBRARY=/nonexistent.so
case \$h in
node3) export DROVER_NVML_LIBRARY=/nonexistent.so ;;
node4) export DROVER_NVML_LIBRARY=/nonexistent.so DROVER_RSMI_LIBRARY=$B/lib/libdv_fake_rsmi.so ;;
esac
exec "$DVN_DIR/enter.sh" "\$h" "\$@"
EOS
chmod +x "$DVN_DIR/gpus.sh"
DROVER_NVML_LIBRARY=$B/lib/libdv_fake_nvml.so DROVER_RSMI_LIBRARY=/nonexistent.so \
    DV_FAKE_NVML=two run "$DVN_DIR/hosts" --job-id mt14 \
    --launch-cmd "$DVN_DIR/gpus.sh {host} {cmd}" -- "$J" table ||
    bad "gpus: exit $?: $(out)"
for i in 1:2 2:2 3:0 4:1; do
    out | grep -qE "^node $((${i%:*} - 1)) node${i%:*} [0-9.]+ cpus [0-9]+ gpus ${i#*:}$" ||
        bad "gpus: node${i%:*} should have ${i#*:}: $(out)"
done
check_clean mt14 gpus

# Round-robin: successive starts cycle through the nodes; codes come back.
run "$DVN_DIR/hosts" --label --job-id mt2 -- "$J" spread 8 || bad "spread: exit $?: $(out)"
for i in 0 1 2 3 4 5 6 7; do
    out | grep -q "^\[node1\] placed $i node$((i % 4 + 1)) code $i$" || bad "spread: process $i: $(out)"
done
for i in 1 2 3 4; do
    out | grep -q "^\[node$i\] on node$i index" || bad "spread: no labelled output of node$i"
done
check_clean mt2 spread

# Kill a process on another node: it ends as killed by SIGKILL.
run "$DVN_DIR/hosts" --job-id mt3 -- "$J" kill || bad "kill: exit $?: $(out)"
out | grep -q "^killed code -9$" || bad "kill: $(out)"
check_clean mt3 kill

# A queue of node1 fed by producers on all 4 nodes, drained on node1.
run "$DVN_DIR/hosts" --job-id mt6 -- "$J" queue 100000 || bad "queue: exit $?: $(out)"
out | grep -q "^moved 100000 bad 0$" || bad "queue: $(out)"
check_clean mt6 queue
# maxsize holds for a producer on another node.
run "$DVN_DIR/hosts" --job-id mt7 -- "$J" maxsize || bad "maxsize: exit $?: $(out)"
out | grep -q "^accepted 2 size 2$" || bad "maxsize: $(out)"
# A queue of node4 used from node1 through its handle.
run "$DVN_DIR/hosts" --job-id mt13 -- "$J" rqueue || bad "rqueue: exit $?: $(out)"
out | grep -q "^rqueue bad 0 code 0$" || bad "rqueue: $(out)"
check_clean mt13 rqueue
# GPU affinity of a process placed on another node.
run "$DVN_DIR/hosts" --job-id mt11 -- "$J" gpu || bad "gpu: exit $?: $(out)"
out | grep -q "^gpu env 1 1 on node 1$" || bad "gpu: $(out)"
# Events across nodes.
run "$DVN_DIR/hosts" --job-id mt8 -- "$J" event || bad "event: exit $?: $(out)"
out | grep -q "^event bad 0$" || bad "event: $(out)"
check_clean mt8 event

# A pool over the 4 nodes; a worker dying on another node fails its item.
run "$DVN_DIR/hosts" --job-id mt9 -- "$J" pool || bad "pool: exit $?: $(out)"
out | grep -q "^pool hosts 4: node1 node2 node3 node4$" || bad "pool: $(out)"
out | grep -q "^item 103 failed: killed by signal 9$" || bad "pool: $(out)"
check_clean mt9 pool
# A remote worker's proxy killed (pool terminated) while its executor is
# idle, then while it runs an item: the executor ends within 10 s, not at
# the end of the job; it ran on its node with the pool's GPU; the queues
# of proxy and executor are gone with the pool, not at the end of the job.
run "$DVN_DIR/hosts" --job-id mt15 -- "$J" orphan || bad "orphan: exit $?: $(out)"
for s in idle busy; do
    out | grep -q "^orphan $s: node 2 gpu 1 executor gone$" || bad "orphan $s: $(out)"
    out | grep -q "^orphan $s: segments left 0$" || bad "orphan $s: $(out)"
done
out | grep "executor gone after"
check_clean mt15 orphan

# Bad input: an unknown host, a duplicate hostname, a malformed host file.
printf 'node1\nnode2\nnode9\n' >"$DVN_DIR/h9"
t0=$(date +%s)
run "$DVN_DIR/h9" -- "$J" table && bad "unknown host: exit 0"
out | grep -q "^drover: run: node9: launch failed: enter: no such host node9$" ||
    bad "unknown host: $(out)"
[ $(($(date +%s) - t0)) -le 10 ] || bad "unknown host: took over 10 s"
printf 'node1\nnode2\nnode3\n' >"$DVN_DIR/h3"
timeout 60 $(dvn_nsenter_prefix 1) "$D" run --hostfile "$DVN_DIR/h3" \
    --launch-cmd "$DVN_DIR/enter.sh node2 {cmd}" -- "$J" table >"$DVN_DIR/out" 2>&1 &&
    bad "duplicate hostname: exit 0"
out | grep -q "duplicate hostname 'node2'" || bad "duplicate hostname: $(out)"
printf 'node1\nno de2\n' >"$DVN_DIR/hbad"
run "$DVN_DIR/hbad" -- "$J" table && bad "malformed host file: exit 0"
[ "$(out | wc -l)" -eq 1 ] && out | grep -q "line 2" || bad "malformed host file: $(out)"
printf '#!/bin/bash\nexec sleep 30\n' >"$DVN_DIR/hang.sh"
chmod +x "$DVN_DIR/hang.sh"
run "$DVN_DIR/hosts" --wireup-timeout 2 --launch-cmd "$DVN_DIR/hang.sh {host} {cmd}" \
    -- "$J" table && bad "silent nodes: exit 0"
out | grep -q "node2, node3, node4: no answer within 2 s" || bad "silent nodes: $(out)"

# From node2, without the job's keys or token: garbage to the head's CURVE
# port, a wrong answer to the data port's challenge and a request. Nothing
# answers but the challenge, the job goes on (its agent still runs
# afterwards), and both refusals are logged.
INTRUDER='
import socket, struct, sys
host, cport, dport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection((host, cport), timeout=2)
c.sendall(b"\xff" * 10 + b"\x7fGARBAGE" * 100)
c.settimeout(1)
try:
    got = c.recv(100)
except (socket.timeout, ConnectionResetError):
    got = b""
d = socket.create_connection((host, dport), timeout=2)
d.sendall(b"x" * 32 + struct.pack("<IIdQ", 0x44564451, 3, 0.0, 0) + b"\0" * 64)
d.settimeout(2)
ans = b""
try:
    while True:
        k = d.recv(4096)
        if not k:
            break
        ans += k
except socket.timeout:
    ans += b"(timeout)"
except ConnectionResetError:
    pass
if ans[:4] == b"DVDL" and len(ans) >= 40:
    ans = ans[40:]  # the challenge, all a stranger gets
print("curve-greeting", len(got) <= 64, "data-answer", len(ans))
'
intruder() {
    local job=$1 ap=$2 ep cport dport
    ep=$(tr '\0' ' ' <"/proc/$ap/cmdline" | sed 's/.*--head tcp:[/][/]\([^ ]*\).*/\1/')
    cport=${ep##*:}
    dport=$(awk '$1 == 0 { print $7 }' "$DROVER_TMPDIR/drover.$job/nodes")
    local r
    r=$(dvn_exec 2 python3 -c "$INTRUDER" "$(dvn_addr 1)" "$cport" "$dport" 2>&1)
    [ "$r" = "curve-greeting True data-answer 0" ] || bad "intruder: $r"
    alive_agent=$(pgrep -f "drover agent .*--job $job --index 2$")
    [ "$alive_agent" = "$ap" ] || bad "intruder: the job lost an agent"
    intruded=1
}

# An agent of another drover version: both versions named, nothing left.
cat >"$DVN_DIR/other.sh" <<EOS
#!/bin/bash
h=\$1; shift; shift; shift # host, drover, agent
if [ "\$h" = node3 ]; then
    exec "$DVN_DIR/enter.sh" "\$h" "$B/bin/dv_mn_fake_agent" agent "\$@"
fi
exec "$DVN_DIR/enter.sh" "\$h" "$D" agent "\$@"
EOS
chmod +x "$DVN_DIR/other.sh"
run "$DVN_DIR/hosts" --job-id mt12 --launch-cmd "$DVN_DIR/other.sh {host} {cmd}" \
    -- "$J" table && bad "version: exit 0"
# (An agent still in its CURVE handshake while the head stops is logged
# as a refused connection: not part of the answer.)
[ "$(out | grep -v '^drover: run: refused connection on ')" = "drover: run: node3: runs drover 0.0.0-other, this is drover $("$D" --version | cut -d' ' -f2)" ] ||
    bad "version: $(out)"
sleep 0.5
pgrep -f "dv_mn_fake_agent|drover agent .*--job mt12 " && bad "version: agents left"
check_clean mt12 version

# A node whose agent dies mid-job: named, the job torn down, nothing left.
# MODE lose: a pool item running on that node is reported as failed first
# (lose1: by a pool that lives on node2, which hears of the loss from the
# head).
agent_test() {
    local sig=$1 want=$2 job=$3 mode=${4:-hang}
    rm -f "$DVN_DIR/out"
    (run "$DVN_DIR/hosts" --job-id "$job" -- "$J" "$mode") &
    local bg=$! i ap=""
    for i in $(seq 100); do
        grep -q ready "$DVN_DIR/out" 2>/dev/null && break
        sleep 0.1
    done
    ap=$(pgrep -f "drover agent .*--job $job --index 2$")
    [ -n "$ap" ] || bad "agent $sig: no agent of node3"
    [ "$sig" = KILL ] && intruder "$job" "$ap"
    local t0=$(date +%s.%N)
    kill "-$sig" $ap
    wait $bg
    local rc=$? took
    took=$(echo "$(date +%s.%N) - $t0" | bc)
    [ "$rc" -eq 1 ] || bad "agent $sig: exit $rc: $(out)"
    out | grep -q "^drover: run: node3: $want" || bad "agent $sig: $(out)"
    [ "$mode" = hang ] || out | grep "^last item failed: " ||
        bad "agent $sig $mode: no failed item: $(out)"
    # The stranger of intruder() was logged: its wrong token (data port)
    # and its garbage (CURVE port), each with its address.
    if [ -n "${intruded:-}" ]; then
        out | grep -qE "^drover: run: data port: refused $(dvn_addr 2 | sed 's/[.]/[.]/g'):[0-9]+: wrong token$" ||
            bad "intruder: data port refusal not logged: $(out)"
        out | grep -qE "^drover: run: refused connection " ||
            bad "intruder: CURVE refusal not logged: $(out)"
        intruded=
    fi
    echo "agent $sig: job ended ${took} s after the signal"
    [ "$(echo "$took < 10" | bc)" = 1 ] || bad "agent $sig: took $took s"
    kill -9 $ap 2>/dev/null
    # The dead node's own runtime dir is its leftover, not a survivor's.
    rm -rf "$DROVER_TMPDIR/drover.$job-n2"
    rm -f /dev/shm/drover."$job"-n2.*
    check_clean "$job" "agent $sig"
}
agent_test KILL "agent exited" mt4
agent_test STOP "agent stopped answering" mt5 lose
agent_test KILL "agent exited" mt16 lose1

# drover run killed outright: every other node's agent notices (its
# launcher is gone, or the head's heartbeats stop) and cleans its node up.
rm -f "$DVN_DIR/out"
(run "$DVN_DIR/hosts" --job-id mt10 -- "$J" hang) &
for _ in $(seq 100); do
    grep -q ready "$DVN_DIR/out" 2>/dev/null && break
    sleep 0.1
done
head_pid=$(pgrep -f "drover run --hostfile .* --job-id mt10 ")
[ -n "$head_pid" ] || bad "head kill: no drover run"
kill -9 $head_pid
wait
for _ in $(seq 80); do
    pgrep -f "drover agent .*--job mt10 " >/dev/null || break
    sleep 0.1
done
pgrep -f "drover agent .*--job mt10 " >/dev/null && bad "head kill: agents still run after 8 s"
# Node 1's own runtime dir is the killed head's; the other nodes' must be gone.
ls "$DROVER_TMPDIR" | grep -q "drover\.mt10-n" && bad "head kill: an agent left its runtime dir"
ls /dev/shm | grep -q "^drover\.mt10-n" && bad "head kill: an agent left shared memory"
rm -rf "$DROVER_TMPDIR/drover.mt10"
rm -f /dev/shm/drover.mt10.*
check_clean mt10 "head kill"

exit $fail
