#!/usr/bin/env bash
# names: pool_empty_tasks
# Pools: empty tasks with chunksize 1, one worker per usable CPU, drover's
# pool (bench/pool_bench.c) beside multiprocessing.Pool with the spawn
# start method (bench/pool_baseline.py), best of 3 timed maps each.
# Usage: bash bench/pool.sh pool_empty_tasks  (scripts/bench runs it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${DROVER_BUILD:-$here/../build}
name=${1:-pool_empty_tasks}
case "$name" in
pool_empty_tasks) ;;
*) echo "drover: bench/pool.sh: no benchmark '$name'" >&2; exit 2 ;;
esac
prog=$build/bin/bench_pool
[ -x "$prog" ] || { echo "drover: bench/pool.sh: $prog missing (build first)" >&2; exit 1; }
python=/usr/bin/python3
[ -x "$python" ] || python=python3
read -r ours _ _ < <("$prog" 500000 3)
read -r theirs _ _ < <("$python" "$here/pool_baseline.py" 100000 3)
ratio=$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.1f", a / b }')
echo "pool_empty_tasks: drover $ours tasks/s, baseline $theirs tasks/s, ratio $ratio"
