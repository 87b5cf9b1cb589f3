#!/usr/bin/env bash
# Run after every other test: nothing of an ended drover job may remain.
# Left behind means: a /dev/shm/drover.* segment no live process maps or
# holds open, a runtime directory whose agent (agent.pid) is gone, or a
# process whose job's runtime directory is gone. (Jobs that still run, e.g. other
# test runs on the same machine, are not counted, nor is what is older than
# the run that started this check: ctest, our parent.) Waits up to 5 s.
set -u
tmp=${DROVER_TMPDIR:-${TMPDIR:-/tmp}}
run_start=$(($(date +%s) - $(ps -o etimes= -p "$PPID")))

# Whether path $1 was made or changed since the run began.
from_this_run() {
    local m
    m=$(stat -c %Y "$1" 2>/dev/null) || return 1
    [ "$m" -ge "$run_start" ]
}

scan() {
    local used dirs f p d st
    used=$({
        cat /proc/[0-9]*/maps 2>/dev/null | grep -o '/dev/shm/drover\.[^ ]*'
        find /proc/[0-9]*/fd -lname '/dev/shm/drover.*' -printf '%l\n' \
            2>/dev/null
    } | sed 's/ (deleted)$//' | sort -u)
    dirs=""
    for f in $(grep -lz '^DROVER_RUNTIME_DIR=' /proc/[0-9]*/environ \
        2>/dev/null); do
        p=${f#/proc/}
        p=${p%/environ}
        st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
        [ -z "$st" ] || [ "$st" = Z ] || [ "$p" = $$ ] && continue
        d=$(tr '\0' '\n' 2>/dev/null <"$f" | sed -n 's/^DROVER_RUNTIME_DIR=//p')
        if [ -n "$d" ] && [ ! -d "$d" ]; then
            echo "pid:$p($(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline"))"
        fi
        dirs="$dirs $d"
    done
    for f in /dev/shm/drover.*; do
        [ -e "$f" ] && from_this_run "$f" && ! grep -qxF "$f" <<<"$used" &&
            echo "$f"
    done
    for d in "$tmp"/drover.*; do
        [ -d "$d" ] || continue
        from_this_run "$d" || continue
        p=$(cat "$d/agent.pid" 2>/dev/null)
        [ -n "$p" ] && [ -d "/proc/$p" ] && continue
        [[ " $dirs " != *" $d "* ]] && echo "$d"
    done
}

for i in $(seq 50); do
    left=$(scan)
    if [ -z "$left" ]; then
        echo "no leftovers since $(date -d "@$run_start" +%T)"
        exit 0
    fi
    sleep 0.1
done
echo "FAIL: left behind by the suite:"
echo "$left"
exit 1
