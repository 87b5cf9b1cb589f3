#!/usr/bin/env bash
# names: conv2d_1024 conv2d_job
# The conv2d workload beside SciPy (Debian's python3-scipy), same run:
#   conv2d_1024  one 1024x1024 normal image, 4x4 filter, step 5, one
#                thread, compute only (median of repeats, no file I/O in
#                the timing; drover's result is checked against SciPy's
#                within 1e-12): ms, ratio = SciPy / drover.
#   conv2d_job   the seed's job, MEM / 1024^2 images (MEM = 1024^3: 1,024
#                images, as the seed's defaults), each with its own normal
#                4x4 filter, step 5, on every usable CPU: drover's pool
#                (bench/conv2d_job.c, images made in the workers) against
#                multiprocessing.Pool + SciPy shipping the seed's zero image
#                (bench/conv2d_scipy.py): images/s.
# Environment: CONV2D_MEM (default 1073741824) for quicker job runs,
# CONV2D_IMAGES=zeros|random|data for drover's images (default zeros, the
# seed's, made in the workers; data ships the seed's zero image in every
# item through the pool, as multiprocessing does).
# Usage: bash bench/conv2d.sh NAME  (scripts/bench runs it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${DROVER_BUILD:-$here/../build}
name=${1:-conv2d_1024}
python=/usr/bin/python3
[ -x "$python" ] || python=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

need() {
    [ -x "$build/bin/$1" ] || cmake --build "$build" --target "$1" >/dev/null ||
        { echo "drover: bench/conv2d.sh: cannot build $1" >&2; exit 1; }
}

bench_1024() {
    need conv2d_bench
    read -r _ theirs _ < <("$python" "$here/conv2d_scipy.py" one "$tmp" 30)
    read -r _ ours _ < <("$build/bin/conv2d_bench" "$tmp/image.npy" \
        "$tmp/filter.npy" 5 500 1 "$tmp/out.npy")
    "$python" "$here/conv2d_scipy.py" check "$tmp" "$tmp/out.npy"
    awk -v a="$ours" -v b="$theirs" 'BEGIN {
        printf "conv2d_1024: drover %.4f ms, baseline %.3f ms, ratio %.1f\n",
            a * 1e3, b * 1e3, b / a }'
}

bench_job() {
    need conv2d_job
    local mem=${CONV2D_MEM:-1073741824} images=${CONV2D_IMAGES:-zeros}
    local cpus n ours theirs
    cpus=$("$python" -c 'import os; print(len(os.sched_getaffinity(0)))')
    read -r _ n _ ours _ < <("$build/bin/conv2d_job" "$mem" 1024 "$images")
    read -r _ _ _ theirs < <("$python" "$here/conv2d_scipy.py" job "$mem" \
        1024 "$cpus")
    awk -v n="$n" -v a="$ours" -v b="$theirs" 'BEGIN {
        printf "conv2d_job: drover %.1f images/s, baseline %.1f images/s, " \
            "ratio %.1f\n", n / a, n / b, b / a }'
}

case "$name" in
conv2d_1024 | conv2d_job) ;;
*) echo "drover: bench/conv2d.sh: no benchmark '$name'" >&2; exit 2 ;;
esac
if ! "$python" -c 'import numpy, scipy.signal' 2>/dev/null; then
    echo "$name: skipped: no NumPy and SciPy for $python (python3-numpy, python3-scipy)"
    exit 0
fi
case "$name" in
conv2d_1024) bench_1024 ;;
conv2d_job) bench_job ;;
esac
