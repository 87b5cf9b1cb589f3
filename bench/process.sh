#!/usr/bin/env bash
# names: process_start process_start_2nodes
# process_start: processes started and joined per second, one after
# another, each running an empty task, three sides interleaved (5 rounds):
# drover (bench/bench_process.c under drover run), fork + waitpid in the
# same C program, and Python's multiprocessing with the forkserver start
# method (bench/process_start.py). Medians of each and of the rounds'
# ratios. process_start_2nodes: drover's side across two nodes emulated on
# loopback, every child on node 1 (the baselines have one node).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${DROVER_BUILD:-$PWD/build}
name=${1:-process_start}
case $name in
process | process_start | process_start_2nodes) ;;
*)
    echo "drover: bench: process.sh: no benchmark '$name'" >&2
    exit 2
    ;;
esac
secs=${DROVER_BENCH_SECONDS:-1}
rounds=${DROVER_BENCH_ROUNDS:-5}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
out=$(mktemp)
hosts=$(mktemp)
trap 'rm -f "$out" "$hosts"' EXIT
printf 'bench-a\nbench-b\n' >"$hosts"
drover_side() {
    if [ "$name" = process_start_2nodes ]; then
        DROVER_NODE_NAME=bench-a DROVER_BENCH_NODE=1 "$B/bin/drover" run \
            --hostfile "$hosts" --launch-cmd "env DROVER_NODE_NAME={host} {cmd}" \
            --network-prefix 127.0.0.0/8 -- "$B/bin/bench_process" "$secs"
    else
        "$B/bin/drover" run -- "$B/bin/bench_process" "$secs"
    fi
}
for ((r = 0; r < rounds; r++)); do
    d=$(drover_side | awk '{print $1}')
    f=$("$B/bin/bench_process" "$secs" fork | awk '{print $1}')
    p=$("$py" bench/process_start.py "$secs" forkserver)
    echo "$d $f $p" >>"$out"
done
awk -v name="$name" '
    function median(a, k,    i, j, t) {
        for (i = 1; i <= k; i++)
            for (j = i + 1; j <= k; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    { k++; d[k] = $1; f[k] = $2; p[k] = $3; rf[k] = $1 / $2; rp[k] = $1 / $3 }
    END {
        printf "%s: drover %.0f processes/s, fork + waitpid %.0f, " \
            "Python forkserver %.1f; ratio %.2f of fork + waitpid, %.1fx " \
            "forkserver\n", name, median(d, k), median(f, k), median(p, k),
            median(rf, k), median(rp, k)
    }' "$out"
