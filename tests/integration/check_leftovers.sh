#!/usr/bin/env bash
# Run after every other test: no process, shared-memory segment or runtime
# directory of any drover job may remain (waits up to 5 s for stragglers).
set -u
tmp=${DROVER_TMPDIR:-${TMPDIR:-/tmp}}
for i in $(seq 50); do
    left=""
    for f in /dev/shm/drover.*; do
        [ -e "$f" ] && left="$left $f"
    done
    for d in "$tmp"/drover.*; do
        [ -d "$d" ] && left="$left $d"
    done
    for f in $(grep -lz '^DROVER_RUNTIME_DIR=' /proc/[0-9]*/environ 2>/dev/null); do
        p=${f#/proc/}
        p=${p%/environ}
        st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
        [ -n "$st" ] && [ "$st" != Z ] && [ "$p" != $$ ] &&
            left="$left pid:$p($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null))"
    done
    [ -z "$left" ] && {
        echo "no leftovers"
        exit 0
    }
    sleep 0.1
done
echo "FAIL: left behind by the suite:$left"
exit 1
