# Helpers for the runtime's integration scripts (sourced).
B=${DROVER_BUILD:?DROVER_BUILD must name the build tree}
D=$B/bin/drover
H=$B/bin/dv_job_helper
fail=0
DROVER_TMPDIR=$(mktemp -d)
export DROVER_TMPDIR
trap 'rm -rf "$DROVER_TMPDIR"' EXIT

bad() {
    echo "FAIL: $*"
    fail=1
}

# expect CODE WHAT CMD...: CMD must exit with CODE.
expect() {
    local want=$1 what=$2
    shift 2
    "$@" >/dev/null 2>&1 </dev/null
    local got=$?
    [ "$got" -eq "$want" ] || bad "$what: exit $got, want $want"
}

# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/stat" ] || return 1
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# job_procs JOB: pids of live processes whose environment names JOB.
job_procs() {
    local f p
    for f in $(grep -lzx "DROVER_JOB_ID=$1" /proc/[0-9]*/environ 2>/dev/null); do
        p=${f#/proc/}
        p=${p%/environ}
        [ "$p" != "$$" ] && alive "$p" && echo "$p"
    done
}

# no_leftovers JOB [PIDS...]: nothing of JOB remains (after up to 2 s).
no_leftovers() {
    local job=$1 i left
    shift
    for i in $(seq 20); do
        left=""
        for p in "$@"; do alive "$p" && left="$left $p"; done
        left="$left $(job_procs "$job")"
        left="$left $(ls /dev/shm 2>/dev/null | grep "^drover\.$job\." || true)"
        left="$left $(ls -A "$DROVER_TMPDIR")"
        [ -z "${left// /}" ] && return 0
        sleep 0.1
    done
    bad "job $job left:$left"
}

# wait_for FILE TEXT: until FILE holds TEXT (10 s at most).
wait_for() {
    local i
    for i in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

finish() {
    [ "$fail" -eq 0 ] && echo "all passed"
    exit "$fail"
}
