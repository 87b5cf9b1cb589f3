#!/usr/bin/env bash
# telemetry_full's conv images: --images zeros (checksum 0), --images
# file:DIR with .npy files of several dtypes and shapes (the conv2d
# fixtures), and the convolution's linearity: images doubled give the
# checksum doubled (the filters depend on the seed and the index only).
set -u
. "$(dirname "$0")/rt_lib.sh"
. "$(dirname "$0")/test_telemetry_full_lib.sh"

small_mnist "$WORK/data" 64 16
args=(--epochs 1 --interval 0.2 --tail 0 --data-dir "$WORK/data")
n=0
# run NAME ARGS...: a run that must succeed; its output in $WORK/NAME.out.
run() {
    local out=$1
    shift
    n=$((n + 1))
    DROVER_JOB_ID=tf_img${n}_$$ timeout 120 "$TF" "${args[@]}" "$@" \
        >"$WORK/$out.out" 2>"$WORK/$out.err" ||
        bad "$out: exit $?: $(cat "$WORK/$out.err")"
    no_leftovers tf_img${n}_$$
}
summary() { grep "^  conv2d job: " "$WORK/$1.out"; }

run zeros --images zeros --mem 262144 --size 128
[ "$(checksum "$WORK/zeros.out")" = 0 ] || bad "zeros: $(summary zeros)"
grep -qx "Number of images: 16" "$WORK/zeros.out" || bad "zeros: not 16 images"

mkdir -p "$WORK/fixtures"
for f in small ints seed_shape float32 fortran; do
    cp "$SRC/tests/fixtures/conv2d/${f}_image.npy" "$WORK/fixtures/"
done
run fixtures --images file:"$WORK/fixtures"
grep -qx "Number of images: 5" "$WORK/fixtures.out" || bad "fixtures: not 5 images"
summary fixtures | grep -q "5 of 5 images" || bad "fixtures: $(summary fixtures)"

# Two sets of float64 images, the second twice the first.
python3 - "$WORK/one" "$WORK/two" <<'PY'
import os, struct, sys
def save(path, rows, cols, values):
    head = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    head += " " * (63 - (10 + len(head)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode())
        f.write(struct.pack("<%dd" % len(values), *values))
for k, d in enumerate(sys.argv[1:], 1):
    os.makedirs(d)
    for i, (r, c) in enumerate([(40, 30), (17, 64), (9, 9)]):
        v = [k * (((x * 7 + i * 3) % 23) - 11) / 4 for x in range(r * c)]
        save(os.path.join(d, "img%d.npy" % i), r, c, v)
PY
run one --images file:"$WORK/one" --seed 5
run two --images file:"$WORK/two" --seed 5
a=$(checksum "$WORK/one.out") b=$(checksum "$WORK/two.out")
python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); \
sys.exit(not (a != 0 and abs(b - 2 * a) <= 1e-9 * abs(a)))" "$a" "$b" ||
    bad "doubled images: checksum $b, want twice $a"
finish
