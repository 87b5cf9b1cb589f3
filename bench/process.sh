#!/usr/bin/env bash
# names: process_start
# process_start: processes started and joined per second, one after
# another, each running an empty task: drover (bench/bench_process.c under
# drover run) against Python's multiprocessing with the spawn start method
# (bench/process_start.py), in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${DROVER_BUILD:-$PWD/build}
name=${1:-process_start}
case $name in
process | process_start) ;;
*)
    echo "drover: bench: process.sh: no benchmark '$name'" >&2
    exit 2
    ;;
esac
secs=${DROVER_BENCH_SECONDS:-3}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
base=$("$py" bench/process_start.py "$secs")
dv=$("$B/bin/drover" run -- "$B/bin/bench_process" "$secs" | awk '{print $1}')
ratio=$(awk -v a="$dv" -v b="$base" 'BEGIN { printf "%.1f", a / b }')
echo "process_start: drover $dv processes/s, baseline $base processes/s, ratio $ratio"
