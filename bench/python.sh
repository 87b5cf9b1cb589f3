#!/usr/bin/env bash
# Python-level benchmarks: drover's start method against multiprocessing's
# fork, forkserver and spawn (Debian's /usr/bin/python3), each side its own
# interpreter, interleaved (drover fork forkserver spawn, 5 rounds); the
# median of each is printed and the ratio is against the best of the three
# start methods. Sides are bench/python_mp.py (it says what each measures).
# NAME_2nodes: drover's side across two nodes emulated on loopback (the
# main process on node 0, its children on node 1), the baselines as
# without the suffix (multiprocessing has one node).
# names: py_queue_rtt py_queue_8mib py_process py_pool_map_10us
# names: py_queue_rtt_2nodes py_queue_8mib_2nodes py_process_2nodes
# names: py_pool_map_10us_2nodes py_process_burst py_process_burst_2nodes
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bench/python.sh NAME}
what=${name%_2nodes}
case $what in
py_queue_rtt | py_queue_8mib | py_process | py_pool_map_10us | py_process_burst) ;;
*)
    echo "drover: bench: python.sh: unknown benchmark '$name'" >&2
    exit 2
    ;;
esac
py=/usr/bin/python3
[ -x "$py" ] || { echo "drover: bench: $py: not installed" >&2; exit 1; }
export PYTHONPATH=${DROVER_BUILD:-$PWD/build}/python
[ -f "$PYTHONPATH/drover/__init__.py" ] ||
    { echo "drover: bench: $PYTHONPATH: the Python package is not built" >&2; exit 1; }
secs=${DROVER_BENCH_SECONDS:-1}
rounds=${DROVER_BENCH_ROUNDS:-5}
methods=(drover fork forkserver spawn)
out=$(mktemp)
hosts=$(mktemp)
trap 'rm -f "$out" "$hosts"' EXIT
side() { # METHOD
    if [ "$1" = drover ] && [ "$what" != "$name" ]; then
        printf 'bench-a\nbench-b\n' >"$hosts"
        DROVER_NODE_NAME=bench-a DROVER_BENCH_NODE=1 \
            "${DROVER_BUILD:-$PWD/build}/bin/drover" run --hostfile "$hosts" \
            --launch-cmd "env DROVER_NODE_NAME={host} {cmd}" \
            --network-prefix 127.0.0.0/8 -- \
            "$py" bench/python_mp.py drover "${what#py_}" "$secs"
    else
        "$py" bench/python_mp.py "$1" "${what#py_}" "$secs"
    fi
}
for ((r = 0; r < rounds; r++)); do
    for m in "${methods[@]}"; do
        v=$(side "$m") || { echo "drover: bench: $name: $m failed" >&2; exit 1; }
        echo "$m $v" >>"$out"
    done
done
# Lower is better for a round trip (us), higher for the others.
lower=0
unit="/s"
case $what in
py_queue_rtt) lower=1 unit=" us" ;;
py_queue_8mib) unit=" MB/s" ;;
esac
sort -k1,1 -k2,2g "$out" | awk -v n="$name" -v lower="$lower" -v unit="$unit" '
    { v[$1, c[$1]++] = $2 }
    END {
        split("drover fork forkserver spawn", m, " ")
        for (i = 1; i <= 4; i++) med[m[i]] = v[m[i], int((c[m[i]] - 1) / 2)]
        best = "fork"
        for (i = 3; i <= 4; i++)
            if (lower ? med[m[i]] < med[best] : med[m[i]] > med[best]) best = m[i]
        r = lower ? med[best] / med["drover"] : med["drover"] / med[best]
        printf "%s: drover %.4g%s, baseline %.4g%s (%s; fork %.4g, forkserver %.4g, " \
            "spawn %.4g), ratio %.2f\n", n, med["drover"], unit, med[best], unit,
            best, med["fork"], med["forkserver"], med["spawn"], r
    }'
