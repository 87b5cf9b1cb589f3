#!/usr/bin/env bash
# `drover top` (through drover-telemetry, which links no libzmq) with the
# NVML test double: plain lines off a terminal, bars on a pseudo-terminal,
# the log and plot options, and bad input (one clear line, exit 2).
set -euo pipefail
tool=$1 fake=$2
export DROVER_NVML_LIBRARY=$fake DROVER_RSMI_LIBRARY=/nonexistent.so
export DROVER_NODE_NAME=topnode DV_FAKE_NVML=two
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$tool" top -n 2 -i 0.05)
[ "$(echo "$out" | grep -c 'device # 1 utilization: 87.00%')" = 2 ] ||
    fail "plain lines: $out"
echo "$out" | grep -q '^nodename: topnode cpu load average 1 minute: [0-9.]* device # 0 utilization: 9.00%$' ||
    fail "line format: $out"

if command -v script >/dev/null; then
    script -qec "$tool top -n 3 -i 0.05" /dev/null >"$tmp/tty" </dev/null
    grep -q 'topnode device 1 util:  87%|████████▋ | 87/100 \[00:00\]' "$tmp/tty" ||
        fail "bars: $(cat -v "$tmp/tty")"
    grep -q $'\x1b\\[3A' "$tmp/tty" || fail "no redraw in place"
fi

"$tool" top -n 3 -i 0.05 --telemetry-log "$tmp/l.jsonl" \
    --telemetry-plot "$tmp/p.svg" >/dev/null
[ "$(wc -l <"$tmp/l.jsonl")" = 3 ] || fail "log lines"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$tmp/l.jsonl"
xmllint --noout "$tmp/p.svg"

set +e
"$tool" top --telemetry-plot /nonexistent/dir/p.svg -n 1 >"$tmp/o" 2>"$tmp/e"
rc=$?
set -e
[ $rc = 2 ] || fail "unwritable plot: rc $rc"
grep -qx 'drover: top: --telemetry-plot: /nonexistent/dir/p.svg: No such file or directory' "$tmp/e" ||
    fail "message: $(cat "$tmp/e")"
[ ! -s "$tmp/o" ] || fail "sampled before checking the plot path"
for bad in "-i 0" "-i x" "-n -1" "--bogus" "extra"; do
    set +e
    "$tool" top $bad >/dev/null 2>"$tmp/e"
    rc=$?
    set -e
    [ $rc = 2 ] || fail "top $bad: rc $rc"
    [ "$(wc -l <"$tmp/e")" = 1 ] && grep -q '^drover: top: ' "$tmp/e" ||
        fail "top $bad: $(cat "$tmp/e")"
done

DV_FAKE_NVML=initfail "$tool" top -n 2 -i 0.05 >"$tmp/o"
grep -q '^nodename: topnode note: unavailable: nvml: Driver Not Loaded' \
    "$tmp/o" || fail "failing driver note"
[ "$(grep -c 'cpu load average 1 minute' "$tmp/o")" = 2 ] || fail "cpu-only"

# stdout closed under it (a pipe whose reader went away): a clear error
set +e
"$tool" top -i 0.05 2>"$tmp/e" | head -c 1 >/dev/null
rc=${PIPESTATUS[0]}
set -e
[ $rc = 1 ] && grep -q '^drover: top: bars: write: Broken pipe$' "$tmp/e" ||
    fail "closed stdout: rc $rc: $(cat "$tmp/e")"
echo ok
