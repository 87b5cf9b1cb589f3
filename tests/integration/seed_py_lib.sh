# shellcheck shell=bash
# Helpers for the tests of the seed's Python program with the drover start
# method (bench/seed/telemetry_full.py; sourced after the node harness,
# mn_lib.sh or rt_lib.sh, and test_telemetry_full_lib.sh): the interpreter
# and the package, the program's short command line, and the checks of its
# output across N nodes named node1..nodeN.
SEED_PY=/usr/bin/python3
[ -x "$SEED_PY" ] || SEED_PY=$(command -v python3)
[ -f "$B/python/drover/__init__.py" ] ||
    { echo "SKIP: the python package is not built in $B"; exit 77; }
"$SEED_PY" -c 'import torch, scipy, torchvision' 2>/dev/null ||
    { echo "SKIP: $SEED_PY lacks torch, scipy or torchvision (scripts/deps test)"; exit 77; }
SEED_PROG=$SRC/bench/seed/telemetry_full.py
# seed_py_cmd DATA [FLAGS...]: the command line of the program with
# drover's start method, for drover run: short (1 epoch, 64 images of
# 256x256 for the SciPy job), on the CPU, MNIST from DATA (torchvision's
# layout), then FLAGS. Each print of the program is one write (flush=True)
# unless PYTHONUNBUFFERED is set: then the text and its newline are two, and
# another process's line on the node's shared output can come between.
seed_py_cmd() {
    local data=$1
    shift
    echo env -u PYTHONUNBUFFERED PYTHONPATH="$B/python" \
        PYTHONDONTWRITEBYTECODE=1 "$SEED_PY" \
        "$SEED_PROG" --start-method drover --epochs 1 --mem 4194304 \
        --size 256 --no-cuda --data-dir "$data" "$@"
}

# check_seed_py OUT ERR N [bars]: the output (drover run --label) of a run
# on the N nodes node1..nodeN, with node1 running the main process; with
# "bars" (a run with --bars), the telemetry is tqdm's bars on stderr.
check_seed_py() {
    local out=$1 err=$2 n=$3 bars=${4:-} f i
    f=$out.plain
    sed 's/^\[node[0-9]*\] //' "$out" >"$f"
    check_order "$f" "^Hello from main process node1\.$" \
        "^using drover runtime$" "^Number of nodes: $n$" \
        "^Number of scipy workers: 2$" "^Number of MNIST workers: 2$" \
        "^Number of images: 64$" "^Launching scipy and mnist jobs$" \
        "^Shutting down procs$" "^Post process is exiting$" \
        "^Final test for learning rate" "^Final test for learning rate" \
        "^Baseline jobs: conv [0-9.]+ s, MNIST [0-9.]+ s$"
    for ((i = 1; i <= n; i++)); do
        # Placed by host name: its line comes from its node.
        grep -q "^\[node$i\] This is a telemetry process on node node$i\.$" "$out" ||
            bad "no monitor on node$i"
        if [ -n "$bars" ]; then
            grep -q "node$i cpu load avg\.: .*/100" "$err" ||
                bad "no telemetry bar of node$i"
        else
            grep -qE "^nodename: node$i cpu load average 1 minute: [0-9.]+$" "$f" ||
                bad "no telemetry line from node$i"
        fi
        grep -q "^Telemetry process on node node$i exiting \.\.\.$" "$f" ||
            bad "the monitor of node$i did not end"
    done
    [ "$(grep -c '^This is a telemetry process on node ' "$f")" -eq "$n" ] ||
        bad "not $n monitors"
    grep -qE "^This is the postprocessing process, node[1-$n]\.$" "$f" ||
        bad "no post process line"
    # Both jobs' callbacks ran (a job that did not finish reports 0).
    grep -q "^Baseline jobs: conv 0\.00 s\|, MNIST 0\.00 s$" "$f" &&
        bad "a job's callback did not run: $(grep '^Baseline jobs' "$f")"
    local lrs
    lrs=$(sed -n 's/^Final test for learning rate \([0-9.]*\): loss: [0-9.e+-]* accuracy: \([0-9.]*\)$/\1 \2/p' "$f" |
        awk '$2 >= 0 && $2 <= 100 { print $1 }' | sort -g | tr '\n' ' ')
    [ "$lrs" = "0.5 1.5 " ] || bad "final tests (learning rate, accuracy): '$lrs'"
    grep -q "^Exception caught" "$f" && bad "the post process caught an exception"
    grep -q "Traceback" "$err" && bad "a traceback on stderr"
    [ "$fail" -eq 0 ] || { echo "--- out"; cat "$out"; echo "--- err"; cat "$err"; }
}
