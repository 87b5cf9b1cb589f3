#!/usr/bin/env bash
# Developer tool on a machine with an NVIDIA GPU and Nsight Compute: where
# a training step of the CUDA backend spends its time. Profiles the
# kernels of two steps (after 4 warm-up steps) of mnist_train with ncu
# (clocks left alone; ncu flushes the caches before each kernel, so
# memory-bound kernels read longer than in a graph replay) and prints one
# line per kernel of the second step, in launch order, and the sum.
# Usage: src/workloads/mnist/tools/gpu_profile.sh [BUILD] [FASHION]
set -uo pipefail
cd "$(dirname "$0")/../../../.." || exit 1
B=${1:-build}
F=${2:-/usr/share/datasets/fashion-mnist}
command -v ncu >/dev/null || { echo "gpu_profile: no ncu here" >&2; exit 1; }
csv=$(mktemp)
trap 'rm -f "$csv"' EXIT
# A step is 21 to 30 kernel launches (its graph nodes): skip 4 to 6 steps
# and profile 64 launches, which hold two whole steps.
ncu --clock-control none --launch-skip 128 --launch-count 64 \
    --metrics gpu__time_duration.sum --csv \
    "$B/bin/mnist_train" --epochs 1 --max-batches 20 --device 0 \
    --data-dir "$F" >"$csv" || exit 1
python3 - "$csv" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]
name, value = head.index("Kernel Name"), head.index("Metric Value")
kernels = [(r[name], float(r[value].replace(",", "")) / 1000) for r in rows[1:]]
# The second step: from the second k_advance (a step's last kernel) back.
ends = [i for i, (k, _) in enumerate(kernels) if "k_advance" in k]
if len(ends) < 2:
    sys.exit("gpu_profile: fewer than two whole steps profiled")
step = kernels[ends[0] + 1:ends[1] + 1]
for k, us in step:
    print(f"{us:8.2f} us  {k[:72]}")
print(f"{sum(us for _, us in step):8.2f} us  in {len(step)} kernels")
PY
