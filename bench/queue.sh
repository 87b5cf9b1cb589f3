#!/usr/bin/env bash
# Queue benchmarks: drover's shared-memory queue beside Python's
# multiprocessing.Queue (Debian's python3, spawn start method), same run.
# names: queue_rtt_64B queue_bw_1MiB queue_bw_8MiB
#   queue_rtt_64B  round trip of a 64-byte message between two processes
#   queue_bw_*     one-way bandwidth, one producer and one consumer process,
#                  both queues with maxsize 2 (DROVER_BENCH_MAXSIZE, 0: none);
#                  also prints single-thread memcpy bandwidth of the same
#                  block size, uncached (buffers rotating through 256 MiB)
#                  and cached (the same two buffers).
# Each side prints the median of 5 runs after a warm-up run.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:?usage: bench/queue.sh NAME}
bin=${DROVER_BUILD:-$PWD/build}/bin/queue_bench
py=/usr/bin/python3
[ -x "$bin" ] || { echo "drover: bench: $bin: not built" >&2; exit 1; }
[ -x "$py" ] || { echo "drover: bench: $py: not installed" >&2; exit 1; }

bandwidth() { # NAME BYTES COUNT PYCOUNT
    local d b mc mh
    d=$("$bin" bw "$2" "$3")
    b=$("$py" bench/queue_baseline.py bw "$2" "$4")
    mc=$("$bin" memcpy "$2" "$3")
    mh=$("$bin" memcpy_hot "$2" "$3")
    awk -v n="$1" -v d="$d" -v b="$b" -v mc="$mc" -v mh="$mh" 'BEGIN {
        printf "%s: drover %.2f GB/s, baseline %.3f GB/s, ratio %.1f\n",
            n, d, b, d / b
        printf "  %s: memcpy %.2f GB/s uncached (drover %.0f%% of it), " \
            "%.2f GB/s cached (%.0f%%)\n", n, mc, 100 * d / mc, mh, 100 * d / mh
    }'
}

case $name in
queue_rtt_64B)
    d=$("$bin" rtt 64 20000)
    b=$("$py" bench/queue_baseline.py rtt 64 3000)
    awk -v d="$d" -v b="$b" 'BEGIN {
        printf "queue_rtt_64B: drover %.2f us, baseline %.1f us, ratio %.1f\n",
            d, b, b / d
    }'
    ;;
queue_bw_1MiB) bandwidth "$name" 1048576 1000 200 ;;
queue_bw_8MiB) bandwidth "$name" 8388608 128 30 ;;
*)
    echo "drover: bench: queue.sh: unknown benchmark '$name'" >&2
    exit 2
    ;;
esac
