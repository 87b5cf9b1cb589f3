#!/usr/bin/env bash
# Queues against the strongest peers on one host (bench/queue_peers.c),
# the sides interleaved (drover socketpair pipe zmq, 5 rounds):
#   queue_peers_8mib       8 MiB messages one way, each read in full by
#                          the consumer: drover lends it in place
#                          (dv_queue_get_lend) against a socketpair, 1 MiB
#                          pipes and ZeroMQ ipc (PUSH/PULL, zmq_msg_recv)
#   queue_peers_rtt        64-byte round trip (drover dv_queue_get_into)
#                          against the same peers
#   queue_peers_rtt_hogs   the same with two CPU-bound processes running
#                          (busy loops) for both sides
# Each side's number is one measurement; the ratios are the medians of
# the rounds' ratios against the best peer of each round (bandwidth:
# drover / best; round trip: best / drover, so > 1 means drover is faster).
# names: queue_peers_8mib queue_peers_rtt queue_peers_rtt_hogs
set -euo pipefail
cd "$(dirname "$0")/.."
prog=${DROVER_BUILD:-$PWD/build}/bin/queue_peers
[ -x "$prog" ] || { echo "drover: bench: $prog: not built" >&2; exit 1; }
if [ $# -eq 0 ]; then
    for n in queue_peers_8mib queue_peers_rtt queue_peers_rtt_hogs; do
        bash "$0" "$n"
    done
    exit 0
fi
hogs=0
case $1 in
queue_peers_8mib) mode=bw bytes=8388608 count=200 unit=GB/s ;;
queue_peers_rtt) mode=rtt bytes=64 count=20000 unit=us ;;
queue_peers_rtt_hogs) mode=rtt bytes=64 count=5000 unit=us hogs=2 ;;
*)
    echo "drover: bench: queue_peers.sh: no benchmark '$1'" >&2
    exit 2
    ;;
esac
out=$(mktemp)
pids=()
trap 'rm -f "$out"; [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null' EXIT
for ((i = 0; i < hogs; i++)); do
    (while :; do :; done) &
    pids+=($!)
done
rounds=${DROVER_BENCH_ROUNDS:-5}
for ((r = 0; r < rounds; r++)); do
    line=""
    for side in drover socketpair pipe zmq; do
        line="$line $("$prog" "$mode" "$side" "$bytes" "$count")"
    done
    echo "$line" >>"$out"
done
awk -v name="$1" -v mode="$mode" -v unit="$unit" -v hogs="$hogs" '
    function median(a, k,    i, j, t) {
        for (i = 1; i <= k; i++)
            for (j = i + 1; j <= k; j++)
                if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
    }
    { k++; d[k] = $1; s[k] = $2; p[k] = $3; z[k] = $4
      if (mode == "bw") {
          b = $2; if ($3 > b) b = $3; if ($4 > b) b = $4; r[k] = $1 / b
          rs[k] = $1 / $2
      } else {
          b = $2; if ($3 < b) b = $3; if ($4 < b) b = $4; r[k] = b / $1
          rs[k] = $3 / $1
      } }
    END {
        printf "%s: drover %.3f %s, socketpair %.3f, pipe %.3f, zmq ipc %.3f; " \
            "ratio %.2f against the best peer\n", name, median(d, k), unit,
            median(s, k), median(p, k), median(z, k), median(r, k)
        printf "  %s: %s %.2f; %d rounds interleaved%s\n", name,
            mode == "bw" ? "drover / socketpair" : "pipe / drover",
            median(rs, k), k, hogs ? ", two busy loops running" : ""
    }' "$out"
