#!/usr/bin/env bash
# Pools: N tasks of a fixed length (a busy wait) over one worker per
# usable CPU, three sides interleaved (drover static python, 5 rounds):
#   drover   drover's pool, dv_pool_map with automatic chunks (pool_task.c)
#   static   a static split: one fork per worker running its share
#   python   multiprocessing.Pool (fork) map with the default chunksize
#            (pool_task.py)
# Each prints the best of 3 maps; the ratios are the medians of the
# rounds' ratios. "manager" is the CPU drover's main process used during
# the map (its pool's manager thread), in % of one core.
# names: pool_task_0us pool_task_10us pool_task_100us pool_task_1ms
set -euo pipefail
cd "$(dirname "$0")/.."
prog=${DROVER_BUILD:-$PWD/build}/bin/pool_task
py=/usr/bin/python3
[ -x "$py" ] || py=python3
[ -x "$prog" ] || { echo "drover: bench: $prog: not built" >&2; exit 1; }
if [ $# -eq 0 ]; then
    for n in pool_task_0us pool_task_10us pool_task_100us pool_task_1ms; do
        bash "$0" "$n"
    done
    exit 0
fi
case $1 in
pool_task_0us) us=0 n=100000 ;;
pool_task_10us) us=10 n=40000 ;;
pool_task_100us) us=100 n=4000 ;;
pool_task_1ms) us=1000 n=400 ;;
*)
    echo "drover: bench: pool.sh: no benchmark '$1'" >&2
    exit 2
    ;;
esac
rounds=${DROVER_BENCH_ROUNDS:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 0; r < rounds; r++)); do
    read -r d share < <("$prog" drover "$us" "$n")
    read -r s _ < <("$prog" static "$us" "$n")
    p=$("$py" bench/pool_task.py "$us" "$n")
    echo "$d $share $s $p" >>"$out"
done
awk -v name="$1" '
    function median(a, k,    i, j, t) {
        for (i = 1; i <= k; i++)
            for (j = i + 1; j <= k; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    { k++; d[k] = $1; m[k] = $2; s[k] = $3; p[k] = $4
      rs[k] = $1 / $3; rp[k] = $1 / $4 }
    END {
        printf "%s: drover %.0f tasks/s (manager %.0f%% of a core), static " \
            "split %.0f, Python Pool %.0f; ratio %.2f of the static split, " \
            "%.2fx Python\n", name, median(d, k), 100 * median(m, k),
            median(s, k), median(p, k), median(rs, k), median(rp, k)
    }' "$out"
