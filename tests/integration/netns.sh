#!/usr/bin/env bash
# Emulated nodes for multi-node tests: each node is a network namespace plus
# a UTS namespace (its own address and hostname), all joined by veth pairs to
# a bridge that lives in a namespace of its own, so the root namespace gets no
# interface on the test network at all.
#
# Traffic rule: a node's address is only ever contacted from inside another
# node's namespace. As a guard, the instance's subnet is blackholed in the
# root namespace, so a mistake never leaves the machine. Adding that route is
# also how an instance claims its subnet: `ip route add` fails when another
# instance holds it, so concurrent tests pick distinct subnets 10.213.X.0/24.
#
# Library (source it):
#   dvn_setup N [NAMEPREFIX]  create nodes 1..N named NAMEPREFIX1.. (node1..);
#                             installs a trap that tears everything down
#   dvn_exec I CMD...         run CMD inside node I, in the foreground
#   dvn_spawn I CMD...        run CMD inside node I in the background; the
#                             PID goes to $DVN_PID and is killed at teardown
#   dvn_addr I / dvn_host I   the node's IPv4 address / hostname
#   dvn_netns I / dvn_utsfile I   what nsenter needs (--net= / --uts=)
#   dvn_nsenter_prefix I      "nsenter --net=... --uts=... --" as one string
#   dvn_atexit CMD            run CMD (eval'd) first at teardown
#   dvn_teardown              remove everything (idempotent)
#   dvn_skip_unless_possible  exit 77 with a reason when netns can't work here
# CLI:
#   netns.sh up N [PREFIX]   create nodes and leave them; prints the state dir
#   netns.sh exec DIR I CMD...   run CMD inside node I of that instance
#   netns.sh down DIR        tear down an instance made by `up`
#   netns.sh check           say whether namespaces can be made here (0 / 77)
#   netns.sh cleanup         remove instances whose test was killed (SIGKILL
#                            leaves no chance for the trap); not `up` ones

DVN_NET_PREFIX=${DVN_NET_PREFIX:-10.213}
DVN_GRACE_S=${DVN_GRACE_S:-2}

dvn__log() { echo "netns: $*" >&2; }

# Why emulated nodes cannot be made here, or nothing when they can.
dvn_why_not() {
    if [ "$(id -u)" -ne 0 ]; then echo "needs root"; return; fi
    local t
    for t in ip nsenter unshare mount umount; do
        command -v "$t" >/dev/null 2>&1 || { echo "missing $t"; return; }
    done
    local probe="dvprobe$$"
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "cannot create network namespaces"
        return
    fi
    if ! ip -n "$probe" link add "${probe}b" type bridge 2>/dev/null; then
        ip netns del "$probe" 2>/dev/null
        echo "cannot create bridge devices"
        return
    fi
    ip netns del "$probe" 2>/dev/null
    if ! unshare --uts true 2>/dev/null; then
        echo "cannot create UTS namespaces"
    fi
}

dvn_skip_unless_possible() {
    local why
    why=$(dvn_why_not)
    if [ -n "$why" ]; then
        echo "SKIP: emulated nodes unavailable: $why"
        exit 77
    fi
}

# Claim a free subnet by adding its blackhole route; sets DVN_X.
dvn__claim_subnet() {
    local start=$(($$ % 200 + 1)) k x
    for ((k = 0; k < 250; k++)); do
        x=$(((start + k - 1) % 250 + 1))
        if ip route add blackhole "$DVN_NET_PREFIX.$x.0/24" 2>/dev/null; then
            DVN_X=$x
            echo "$DVN_NET_PREFIX.$x.0/24" >"$DVN_DIR/route"
            return 0
        fi
    done
    dvn__log "no free subnet under $DVN_NET_PREFIX.0.0/16"
    return 1
}

dvn_netns() { echo "dv${DVN_X}n$1"; }
dvn_utsfile() { echo "$DVN_DIR/uts/$1"; }
dvn_addr() { echo "$DVN_NET_PREFIX.$DVN_X.$1"; }
dvn_host() { echo "${DVN_NAME_PREFIX}$1"; }
dvn_nsenter_prefix() {
    echo "nsenter --net=/run/netns/$(dvn_netns "$1") --uts=$(dvn_utsfile "$1") --"
}

# dvn_enter_script PATH: write an executable PATH that runs `PATH HOST
# CMD...` inside node HOST's namespaces (a launch template's helper:
# "PATH {host} {cmd}"); an unknown host exits 255 with a one-line error.
dvn_enter_script() {
    local ns
    ns=/run/netns/$(dvn_netns 1)
    ns=${ns%n1}
    cat >"$1" <<EOS
#!/bin/bash
h=\$1; shift
i=\${h#${DVN_NAME_PREFIX}}
[ -e "${ns}n\$i" ] || { echo "enter: no such host \$h" >&2; exit 255; }
exec nsenter --net=${ns}n\$i --uts=$DVN_DIR/uts/\$i -- "\$@"
EOS
    chmod +x "$1"
}

dvn__write_state() {
    {
        echo "DVN_X=$DVN_X"
        echo "DVN_N=$DVN_N"
        echo "DVN_NAME_PREFIX=$DVN_NAME_PREFIX"
        echo "DVN_NET_PREFIX=$DVN_NET_PREFIX"
        # 0: made by `netns.sh up`, never stale.
        if [ -n "${DVN_NO_TRAP:-}" ]; then echo "DVN_OWNER=0"; else echo "DVN_OWNER=$DVN_OWNER"; fi
    } >"$DVN_DIR/state"
}

# The UTS files are bind mounts; their directory is a private mount of its
# own so that they do not propagate elsewhere.
dvn__make_uts_dir() {
    mkdir -p "$DVN_DIR/uts" &&
        mount --bind "$DVN_DIR/uts" "$DVN_DIR/uts" &&
        mount --make-private "$DVN_DIR/uts" &&
        echo 1 >"$DVN_DIR/uts.mounted"
}

dvn__make_node() {
    local i=$1 ns uts
    ns=$(dvn_netns "$i")
    uts=$(dvn_utsfile "$i")
    ip netns add "$ns" || return 1
    echo "$ns" >>"$DVN_DIR/namespaces"
    ip -n "$ns" link set lo up || return 1
    # Both ends are created directly in their namespaces: nothing appears
    # in the root namespace, not even for a moment.
    ip link add eth0 netns "$ns" type veth peer name "p$i" \
        netns "$DVN_BRNS" || return 1
    ip -n "$DVN_BRNS" link set "p$i" master br0 up || return 1
    ip -n "$ns" addr add "$(dvn_addr "$i")/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up || return 1
    touch "$uts" || return 1
    unshare --uts="$uts" hostname "$(dvn_host "$i")" || return 1
    echo "$uts" >>"$DVN_DIR/utsfiles"
}

# dvn_setup N [NAMEPREFIX]: N nodes, hostnames NAMEPREFIX1..NAMEPREFIXN.
dvn_setup() {
    local n=$1 i
    DVN_N=$n
    DVN_NAME_PREFIX=${2:-node}
    if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 250 ]; then
        dvn__log "node count must be 1..250, not '$n'"
        return 1
    fi
    DVN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/drover-nodes.XXXXXX") || return 1
    DVN_PIDS=()
    DVN_ATEXIT=()
    DVN_OWNER=$BASHPID
    if [ -z "${DVN_NO_TRAP:-}" ]; then
        trap dvn_teardown EXIT
        trap 'dvn__on_signal 130' INT
        trap 'dvn__on_signal 143' TERM
    fi
    dvn__claim_subnet || return 1
    dvn__write_state
    DVN_BRNS="dv${DVN_X}br"
    ip netns add "$DVN_BRNS" || return 1
    echo "$DVN_BRNS" >>"$DVN_DIR/namespaces"
    ip -n "$DVN_BRNS" link add br0 type bridge || return 1
    ip -n "$DVN_BRNS" link set br0 up || return 1
    dvn__make_uts_dir || return 1
    for ((i = 1; i <= n; i++)); do
        dvn__make_node "$i" || {
            dvn__log "cannot create node $i"
            return 1
        }
    done
    dvn__write_state
}

# Reload an instance made by `netns.sh up` (for the CLI).
dvn_load() {
    DVN_DIR=$1
    [ -f "$DVN_DIR/state" ] || {
        dvn__log "$DVN_DIR: not a node set"
        return 1
    }
    # shellcheck disable=SC1091
    . "$DVN_DIR/state"
    DVN_BRNS="dv${DVN_X}br"
    DVN_PIDS=()
    DVN_ATEXIT=()
    DVN_OWNER=$BASHPID
}

dvn_exec() {
    local i=$1
    shift
    nsenter --net="/run/netns/$(dvn_netns "$i")" --uts="$(dvn_utsfile "$i")" -- "$@"
}

dvn_spawn() {
    local i=$1
    shift
    # The child must not run the harness's traps: it becomes CMD at once.
    (
        trap - EXIT INT TERM
        exec nsenter --net="/run/netns/$(dvn_netns "$i")" \
            --uts="$(dvn_utsfile "$i")" -- "$@"
    ) &
    DVN_PID=$!
    # Return once the child is inside the node (so no longer a copy of this
    # shell with its traps); give up waiting after about 5 s.
    local self t
    self=$(readlink /proc/self/ns/net)
    for ((t = 0; t < 500; t++)); do
        [ "$(readlink "/proc/$DVN_PID/ns/net" 2>/dev/null)" = "$self" ] || break
        sleep 0.01
    done
    DVN_PIDS+=("$DVN_PID")
    echo "$DVN_PID" >>"$DVN_DIR/pids"
}

# The kernel ids ("net:[INODE]") of this instance's network namespaces,
# one a line, and the PIDs of all processes in the given ones: how a test
# checks, after teardown, that nothing survived in a namespace it made.
dvn_ns_ids() {
    local ns
    while read -r ns; do
        echo "net:[$(stat -L -c %i "/run/netns/$ns")]"
    done <"$DVN_DIR/namespaces"
}
dvn_pids_in_ns_ids() {
    local f id want
    for f in /proc/[0-9]*/ns/net; do
        id=$(readlink "$f" 2>/dev/null) || continue
        for want in "$@"; do
            [ "$id" != "$want" ] || { f=${f#/proc/}; echo "${f%%/*}"; }
        done
    done
}

dvn_atexit() { DVN_ATEXIT+=("$1"); }

# Signal the given PIDs, wait up to the grace period, then SIGKILL them.
dvn__kill_pids() {
    local p left t
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null
    for ((t = 0; t < DVN_GRACE_S * 10; t++)); do
        left=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && left=1; done
        [ "$left" -eq 1 ] || return 0
        sleep 0.1
    done
    kill -KILL "$@" 2>/dev/null
    sleep 0.1
}

# Every process still inside one of this instance's namespaces: all of them
# were started by this harness, since nothing else enters these namespaces.
dvn__ns_pids() {
    local ns
    [ -f "$DVN_DIR/namespaces" ] || return 0
    while read -r ns; do
        ip netns pids "$ns" 2>/dev/null
    done <"$DVN_DIR/namespaces"
}

# A forked child (a subshell about to exec) may get the signal before it
# can drop the traps it inherited: only the shell that made the nodes tears
# them down.
dvn__on_signal() {
    [ "$BASHPID" != "${DVN_OWNER:-}" ] || dvn_teardown
    exit "$1"
}

dvn_teardown() {
    local rc=$? c ns f p
    local -
    set +e
    [ -n "${DVN_DIR:-}" ] && [ -d "$DVN_DIR" ] || return $rc
    [ "$BASHPID" = "${DVN_OWNER:-$BASHPID}" ] || return $rc
    trap - EXIT INT TERM
    for c in "${DVN_ATEXIT[@]}"; do eval "$c" || true; done
    DVN_ATEXIT=()
    local pids=()
    # A stale instance's recorded PIDs may belong to others by now: then
    # only the sweep of its namespaces below is safe.
    [ -f "$DVN_DIR/pids" ] && [ -z "${DVN_STALE:-}" ] && mapfile -t pids <"$DVN_DIR/pids"
    dvn__kill_pids "${pids[@]}"
    # A daemon may fork while it shuts down (slurmd starts slurmstepd for a
    # job's end): sweep until the namespaces are empty.
    local round
    for ((round = 0; round < 5; round++)); do
        mapfile -t pids < <(dvn__ns_pids)
        [ ${#pids[@]} -gt 0 ] || break
        dvn__kill_pids "${pids[@]}"
    done
    # Reap only the children this shell still has (a caller may have
    # waited for some already).
    local live
    live=" $(jobs -p | tr '\n' ' ') "
    for p in "${DVN_PIDS[@]}"; do
        [[ "$live" != *" $p "* ]] || wait "$p" 2>/dev/null
    done
    if [ -f "$DVN_DIR/utsfiles" ]; then
        while read -r f; do umount "$f" 2>/dev/null; done <"$DVN_DIR/utsfiles"
    fi
    [ -f "$DVN_DIR/uts.mounted" ] && umount "$DVN_DIR/uts" 2>/dev/null
    if [ -f "$DVN_DIR/namespaces" ]; then
        # Deleting a namespace removes the veth ends and the bridge in it.
        while read -r ns; do ip netns del "$ns" 2>/dev/null; done <"$DVN_DIR/namespaces"
    fi
    [ -f "$DVN_DIR/route" ] && ip route del blackhole "$(cat "$DVN_DIR/route")" 2>/dev/null
    rm -rf "$DVN_DIR"
    DVN_DIR=
    return $rc
}

# Instances under $TMPDIR whose owning shell is gone.
dvn_cleanup_stale() {
    local d owner
    for d in "${TMPDIR:-/tmp}"/drover-nodes.*; do
        [ -f "$d/state" ] || continue
        owner=$(sed -n 's/^DVN_OWNER=//p' "$d/state")
        [ -n "$owner" ] && [ "$owner" != 0 ] || continue
        ! kill -0 "$owner" 2>/dev/null || continue
        (
            dvn_load "$d" && DVN_STALE=1 dvn_teardown
        ) && dvn__log "removed stale node set $d"
    done
}

dvn__main() {
    local cmd=${1:-}
    shift || true
    case "$cmd" in
    up)
        [ $# -ge 1 ] || { dvn__log "usage: netns.sh up N [PREFIX]"; return 2; }
        DVN_NO_TRAP=1
        if ! dvn_setup "$@"; then
            dvn_teardown
            return 1
        fi
        echo "$DVN_DIR"
        ;;
    exec)
        [ $# -ge 3 ] || { dvn__log "usage: netns.sh exec DIR I CMD..."; return 2; }
        dvn_load "$1" || return 1
        local i=$2
        shift 2
        dvn_exec "$i" "$@"
        ;;
    down)
        [ $# -eq 1 ] || { dvn__log "usage: netns.sh down DIR"; return 2; }
        dvn_load "$1" || return 1
        dvn_teardown
        ;;
    cleanup)
        dvn_cleanup_stale
        ;;
    check)
        local why
        why=$(dvn_why_not)
        [ -z "$why" ] || { echo "unavailable: $why"; return 77; }
        echo "available"
        ;;
    *)
        dvn__log "usage: netns.sh up|exec|down|check|cleanup ..."
        return 2
        ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    dvn__main "$@"
    exit $?
fi
