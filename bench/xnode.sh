#!/usr/bin/env bash
# Cross-node benchmarks between emulated nodes (network + UTS namespaces of
# tests/integration/netns.sh; needs root). Every connection goes from one
# node's namespace to another's, never from the root namespace.
# names: xnode_queue_bw_8MiB xnode_rtt_64B wireup_64 wireup_256 wireup_1024
#   xnode_queue_bw_8MiB  one-way bandwidth of 8 MiB messages node1 -> node2
#   xnode_rtt_64B        64-byte round trip node1 <-> node2
#   wireup_64            seconds from launching 64 agents (one per node,
#                        through nsenter) until the head has welcomed all
#   wireup_256           seconds from drover run over 256 nodes to its
#   wireup_1024          main process (every agent welcomed), the agents
#                        emulated on loopback (no namespaces, no root: the
#                        launch template names each node: --node-name);
#                        drover's tree of agents (DROVER_TREE_FANOUT default)
#                        against the star (DROVER_TREE_FANOUT=0) in the
#                        same run, with the head's own CPU seconds and the
#                        control-plane bytes it sent per agent
#                        (DROVER_WIREUP_STATS). XNODE_RUNS: runs of each
#                        (default 3; the median is shown).
# Baseline: plain TCP (TCP_NODELAY) between the same namespaces, same run.
# Drover side: a real job (`drover run --hostfile` inside node 1, agents
# started through nsenter) using queues of node 1 from node 2
# (bench/xnode_queue.c); for wireup_64, 64 agents, then one process started
# and joined on each node. The bare CURVE transport is shown for reference.
# Each side prints the median of 3 runs.
# DROVER_BENCH_HOGS=N: N busy processes run for the whole benchmark (both
# sides), to see how each side copes with CPUs others want.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bench/xnode.sh NAME}
if [ "$name" = xnode ]; then # all of them
    for n in xnode_rtt_64B xnode_queue_bw_8MiB wireup_64; do bash "$0" "$n"; done
    exit
fi
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# One wire-up on loopback: N FANOUT -> "seconds head-cpu bytes-per-agent".
# The main process prints the time it started.
wireup_once() {
    local n=$1 k=$2 hf=$wdir/hosts out t0 t1 st
    seq -f "wu-%g" 1 "$n" >"$hf"
    t0=$(date +%s.%N)
    out=$(DROVER_TREE_FANOUT=$k DROVER_WIREUP_STATS=1 DROVER_NODE_NAME=wu-1 \
        DROVER_TMPDIR=$wdir timeout 120 "$drv" run --hostfile "$hf" \
        --launch-cmd "{cmd} --node-name {host}" \
        --network-prefix 127.0.0.1/32 -- /bin/date +%s.%N 2>&1) ||
        { echo "drover: bench: wireup_$n: $(tail -n 2 <<<"$out")" >&2; exit 1; }
    t1=$(grep -m1 -E '^[0-9]+\.[0-9]+$' <<<"$out")
    st=$(grep -m1 'wire-up: welcomed' <<<"$out")
    awk -v a="$t0" -v b="$t1" -v s="$st" 'BEGIN {
        match(s, /head cpu [0-9.]+/); c = substr(s, RSTART + 9, RLENGTH - 9)
        match(s, /[0-9]+ bytes per agent/); p = substr(s, RSTART, RLENGTH - 16)
        printf "%.3f %s %s\n", b - a, c, p }'
}

# wireup_N: the tree and the star, XNODE_RUNS each, alternating.
wireup_loopback() {
    local n=$1 runs=${XNODE_RUNS:-3} i
    drv=${DROVER_BUILD:-$PWD/build}/bin/drover
    [ -x "$drv" ] || { echo "drover: bench: $drv: not built" >&2; exit 1; }
    wdir=$(mktemp -d)
    trap 'rm -rf "$wdir"' EXIT
    : >"$wdir/tree"
    : >"$wdir/star"
    for ((i = 0; i < runs; i++)); do
        wireup_once "$n" "${DROVER_TREE_FANOUT:-16}" >>"$wdir/tree"
        wireup_once "$n" 0 >>"$wdir/star"
    done
    local d b dc bc dp bp
    d=$(cut -d' ' -f1 "$wdir/tree" | median)
    b=$(cut -d' ' -f1 "$wdir/star" | median)
    dc=$(cut -d' ' -f2 "$wdir/tree" | median)
    bc=$(cut -d' ' -f2 "$wdir/star" | median)
    dp=$(cut -d' ' -f3 "$wdir/tree" | median)
    bp=$(cut -d' ' -f3 "$wdir/star" | median)
    awk -v n="$n" -v d="$d" -v b="$b" 'BEGIN {
        printf "wireup_%d: drover %.3f s, baseline %.3f s, ratio %.2f\n",
            n, d, b, b / d }'
    echo "  wireup_$n: drover: tree of agents (fanout ${DROVER_TREE_FANOUT:-16})," \
        "head cpu $dc s, $dp bytes sent per agent; baseline: the star" \
        "(DROVER_TREE_FANOUT=0) in the same run, head cpu $bc s, $bp bytes" \
        "per agent; $n loopback nodes, median of $runs; target (1024) <= 3 s"
}

case $name in
xnode_rtt_64B | xnode_queue_bw_8MiB | wireup_64) ;;
wireup_256 | wireup_1024)
    wireup_loopback "${name#wireup_}"
    exit
    ;;
*)
    echo "drover: bench: xnode: no benchmark '$name'" >&2
    exit 2
    ;;
esac
bin=${DROVER_BUILD:-$PWD/build}/bin/xnode_bench
[ -x "$bin" ] || { echo "drover: bench: $bin: not built" >&2; exit 1; }
. tests/integration/netns.sh
why=$(dvn_why_not)
[ -z "$why" ] || { echo "$name: skipped: emulated nodes unavailable: $why"; exit 0; }

qbin=${DROVER_BUILD:-$PWD/build}/bin/xnode_queue
drv=${DROVER_BUILD:-$PWD/build}/bin/drover
[ -x "$qbin" ] && [ -x "$drv" ] || { echo "drover: bench: $qbin: not built" >&2; exit 1; }

# After dvn_setup: the busy processes of DROVER_BENCH_HOGS, ended with it.
start_hogs() {
    local i
    for ((i = 0; i < ${DROVER_BENCH_HOGS:-0}; i++)); do
        sha256sum /dev/zero &
        dvn_atexit "kill $!"
    done
}

DROVER_KEYS=$("$bin" keygen)
export DROVER_KEYS
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

# One client/server measurement: PORT KIND MODE ARGS... (server in node 2;
# each run its own port, since these run in subshells).
measure() {
    local port=$1 kind=$2 mode=$3
    shift 3
    dvn_spawn 2 "$bin" serve "$kind" "$(dvn_addr 2)" "$port"
    local server=$DVN_PID out
    out=$(dvn_exec 1 "$bin" "$mode" "$kind" "$(dvn_addr 2)" "$port" "$@")
    wait "$server"
    echo "$out"
}

series() { # PORT KIND MODE ARGS...: median of 3 runs on PORT, +1, +2
    local p=$1 a b c
    shift
    a=$(measure "$p" "$@")
    b=$(measure $((p + 1)) "$@")
    c=$(measure $((p + 2)) "$@")
    median3 "$a" "$b" "$c"
}

# drover_job N ARGS...: `drover run` inside node 1 over nodes 1..N, the
# agents started through nsenter by the hostfile launcher.
drover_job() {
    local n=$1 i ent=$DVN_DIR/enter.sh hf=$DVN_DIR/hosts.$1 ns
    shift
    ns=$(dvn_netns 1)
    ns=${ns%1}
    cat >"$ent" <<EOS
#!/bin/bash
h=\$1
shift
i=\$(cat $DVN_DIR/index.\$h)
exec nsenter --net=/run/netns/$ns\$i --uts=$DVN_DIR/uts/\$i -- "\$@"
EOS
    chmod +x "$ent"
    : >"$hf"
    for ((i = 1; i <= n; i++)); do
        dvn_host "$i" >>"$hf"
        echo "$i" >"$DVN_DIR/index.$(dvn_host "$i")"
    done
    dvn_exec 1 "$drv" run --hostfile "$hf" --launch-cmd "$ent {host} {cmd}" -- "$@"
}

# wireup_64's drover side: seconds from drover run to its main process
# (agents welcomed, node table read); the seconds until one process was
# started and joined on every node go to $DVN_DIR/joined.
spawn64() {
    XNODE_T0=$(date +%s.%N) drover_job 64 "$qbin" spawn >"$DVN_DIR/spawn"
    sed -n 's/^ready //p' "$DVN_DIR/spawn"
    sed -n 's/^joined //p' "$DVN_DIR/spawn" >>"$DVN_DIR/joined"
}

# Start a head in node 1, launch 64 agents, print seconds until all are in.
wireup() { # KIND N PORT
    local kind=$1 n=$2 port=$3 i out t0 t1
    out=$DVN_DIR/head.$kind.$port
    mkfifo "$out.fifo"
    exec {fd}<>"$out.fifo" # open both ends first: a plain open would block
    dvn_spawn 1 "$bin" head "$kind" "$(dvn_addr 1)" "$port" "$n" >"$out.fifo"
    local head=$DVN_PID
    local line
    read -r -t 30 -u "$fd" line
    [ "$line" = ready ] || { echo "drover: bench: head did not start" >&2; exit 1; }
    local pids=()
    t0=$(date +%s.%N)
    for ((i = 1; i <= n; i++)); do
        nsenter --net="/run/netns/$(dvn_netns "$i")" --uts="$(dvn_utsfile "$i")" \
            -- "$bin" agent "$kind" "$(dvn_addr 1)" "$port" &
        pids+=($!)
    done
    read -r -t 60 -u "$fd" t1
    exec {fd}<&-
    wait "${pids[@]}" "$head"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'
}

case $name in
xnode_rtt_64B)
    dvn_setup 2
    start_hogs
    d=$(drover_job 2 "$qbin" rtt 10000)
    b=$(series 7111 tcp rtt 10000)
    c=$(series 7101 curve rtt 10000)
    z=$(series 7121 zmq rtt 10000)
    awk -v d="$d" -v b="$b" -v c="$c" -v z="$z" 'BEGIN {
        printf "xnode_rtt_64B: drover %.1f us, baseline %.1f us, ratio %.2f\n",
            d, b, b / d
        printf "  xnode_rtt_64B: drover: put on node1, get and put (sent " \
            "ahead) from node2, get on node1; CURVE transport alone " \
            "%.1f us, ZeroMQ without CURVE %.1f us\n", c, z }'
    ;;
xnode_queue_bw_8MiB)
    dvn_setup 2
    start_hogs
    d=$(drover_job 2 "$qbin" bw 8 100)
    b=$(series 7111 tcp bw 8 100)
    c=$(series 7101 curve bw 8 100)
    z=$(series 7121 zmq bw 8 100)
    awk -v d="$d" -v b="$b" -v c="$c" -v z="$z" 'BEGIN {
        printf "xnode_queue_bw_8MiB: drover %.2f GB/s, baseline %.2f GB/s, " \
            "ratio %.2f\n", d, b, d / b
        printf "  xnode_queue_bw_8MiB: drover: puts on node1, gets from " \
            "node2; CURVE transport alone %.2f GB/s, ZeroMQ without CURVE " \
            "%.2f GB/s\n", c, z }'
    ;;
wireup_64)
    dvn_setup 64
    start_hogs
    : >"$DVN_DIR/joined"
    d=$(median3 "$(spawn64)" "$(spawn64)" "$(spawn64)")
    j=$(median3 $(cat "$DVN_DIR/joined"))
    b=$(median3 "$(wireup tcp 64 7111)" "$(wireup tcp 64 7112)" \
        "$(wireup tcp 64 7113)")
    awk -v d="$d" -v b="$b" 'BEGIN {
        printf "wireup_64: drover %.3f s, baseline %.3f s, ratio %.2f\n",
            d, b, b / d }'
    echo "  wireup_64: drover: from drover run (64 hosts, nsenter launcher)" \
        "to its main process with the node table; with one process started" \
        "and joined on each node: $j s; baseline: the same 64 hellos over" \
        "plain TCP; target <= 1 s"
    ;;
esac
