#!/usr/bin/env bash
# names: telemetry_sample monitor_cpu
# Node telemetry benchmarks, each beside its baseline in the same run.
#   telemetry_sample  one sample of every field of every GPU (drover's
#                     sampler, NVML initialised once) vs pynvml's equivalent
#                     call with nvmlInit/nvmlShutdown around it, as the
#                     seed does; needs an NVIDIA GPU and pynvml, else skips.
#   monitor_cpu       share of one core used by a monitor sampling at 1 Hz,
#                     from /proc/<pid>/stat (and schedstat, ns) over
#                     TELEMETRY_SECONDS (default 60) vs the seed's loop
#                     (os.getloadavg + time.sleep(1)) measured alongside.
# Extra modes (not benchmarks): gpu_compare [SECONDS] compares the sampler
# with nvidia-smi taken at the same moments under a torch GPU load;
# standalone-build DIR builds the tool and the telemetry tests with cc
# alone (for a machine without the project's build dependencies).
# Usage: bash bench/telemetry.sh NAME  (scripts/bench runs it)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/..
build=${DROVER_BUILD:-$root/build}
name=${1:-telemetry_sample}
python=python3

tool() {
    local t=$build/bin/drover-telemetry
    if [ ! -x "$t" ]; then
        cmake --build "$build" --target drover-telemetry >/dev/null ||
            { echo "drover: bench/telemetry.sh: build $t first" >&2; exit 1; }
    fi
    echo "$t"
}

have_nvidia() {
    "$python" -c 'import pynvml; pynvml.nvmlInit()' 2>/dev/null
}

telemetry_sample() {
    local t ours theirs warm gpus
    if ! have_nvidia; then
        echo "telemetry_sample: skipped: no NVIDIA GPU with pynvml here (run it on a GPU machine)"
        return 0
    fi
    t=$(tool)
    read -r ours gpus _ < <("$t" bench --count 20000)
    read -r theirs warm _ < <("$python" "$here/telemetry_baseline.py" sample 200)
    echo "# $gpus GPU(s); pynvml with NVML initialised once: $warm us"
    echo "telemetry_sample: drover $ours us, baseline $theirs us, ratio" \
        "$(awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "%.1f", b / a }')"
}

# CPU seconds (ticks from /proc/PID/stat) and ns (schedstat) of PID.
cpu_of() {
    local ticks ns
    ticks=$(sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }')
    ns=$(awk '{ print $1 }' "/proc/$1/schedstat" 2>/dev/null || echo 0)
    echo "$ticks $ns"
}

monitor_cpu() {
    local secs=${TELEMETRY_SECONDS:-60} t hz
    t=$(tool)
    hz=$(getconf CLK_TCK)
    "$t" monitor --interval 1 & local ours=$!
    "$python" "$here/telemetry_baseline.py" loop & local theirs=$!
    trap 'kill $ours $theirs 2>/dev/null || true' RETURN
    sleep 2 # start-up (imports, library loading) is not the steady state
    read -r a_t a_ns < <(cpu_of $ours)
    read -r b_t b_ns < <(cpu_of $theirs)
    sleep "$secs"
    read -r a_t2 a_ns2 < <(cpu_of $ours)
    read -r b_t2 b_ns2 < <(cpu_of $theirs)
    kill $ours $theirs
    wait $ours $theirs 2>/dev/null || true
    awk -v s="$secs" -v hz="$hz" -v at=$((a_t2 - a_t)) -v bt=$((b_t2 - b_t)) \
        -v an=$((a_ns2 - a_ns)) -v bn=$((b_ns2 - b_ns)) 'BEGIN {
        printf "# /proc/<pid>/stat over %d s: drover %d ticks (%.4f%% of a core), baseline %d ticks (%.4f%%); limit 0.1%%\n", s, at, at / hz / s * 100, bt, bt / hz / s * 100
        if (an > 0 && bn > 0) { a = an / 1e9 / s * 100; b = bn / 1e9 / s * 100 }
        else { a = at / hz / s * 100; b = bt / hz / s * 100 }
        printf "monitor_cpu: drover %.4f %%core, baseline %.4f %%core, ratio %.1f\n", a, b, (a > 0) ? b / a : 0 }'
}

gpu_compare() {
    local secs=${1:-24} t
    t=$(tool)
    "$python" "$here/telemetry_baseline.py" load "$secs" & local load=$!
    sleep 3
    echo "time,source,index,util_gpu,util_mem,mem_used_MiB,mem_total_MiB,temp_C,power_W"
    while kill -0 $load 2>/dev/null; do
        local now
        now=$(date -u +%H:%M:%S.%N | cut -c1-12)
        "$t" record --count 1 --jsonl /dev/stdout | "$python" -c '
import json, sys
r = json.loads(sys.stdin.readline())
mib = lambda v: "" if v is None else str(v >> 20)
for g in r["gpus"]:
    print(",".join(str(x) for x in (sys.argv[1], "drover", g["index"],
          g["util_gpu"], g["util_mem"], mib(g["mem_used"]),
          mib(g["mem_total"]), g["temp_c"], g["power_w"])))' "$now"
        nvidia-smi --query-gpu=index,utilization.gpu,utilization.memory,memory.used,memory.total,temperature.gpu,power.draw \
            --format=csv,noheader,nounits | sed "s/, /,/g; s/^/$now,nvidia-smi,/"
        sleep 1
    done
    wait $load || true
}

standalone_build() {
    local d=${1:?directory} cc=${CC:-cc} lib f
    mkdir -p "$d/bin" "$d/lib"
    local flags=(-std=gnu11 -O2 -g -Wall -Wextra -I"$root/include" -I"$root/src" -I"$root/tests")
    lib=("$root"/src/telemetry/{procfs,sampler,gpu_nvml,gpu_rsmi,record,pyfloat,render_text,render_jsonl,render_svg,monitor}.c "$root/src/common/error.c")
    "$cc" "${flags[@]}" -o "$d/bin/drover-telemetry" "$root/src/telemetry/tool.c" "$root/src/cli/cmd_top.c" "${lib[@]}" -ldl -lm
    for f in nvml rsmi; do
        "$cc" "${flags[@]}" -shared -fPIC -o "$d/lib/libdv_fake_$f.so" "$root/tests/fakes/fake_$f.c"
    done
    for f in "$root"/tests/unit/test_telemetry_{procfs,gpu,record,monitor}.c "$root"/tests/unit/test_render_{text,files}.c; do
        "$cc" "${flags[@]}" -DFAKE_NVML="\"$d/lib/libdv_fake_nvml.so\"" -DFAKE_RSMI="\"$d/lib/libdv_fake_rsmi.so\"" \
            -o "$d/bin/$(basename "$f" .c)" "$f" "${lib[@]}" -ldl -lm
    done
}

case "$name" in
telemetry_sample) telemetry_sample ;;
monitor_cpu) monitor_cpu ;;
gpu_compare) gpu_compare "${2:-}" ;;
standalone-build) standalone_build "${2:-}" ;;
*) echo "drover: bench/telemetry.sh: no benchmark '$name'" >&2; exit 2 ;;
esac
