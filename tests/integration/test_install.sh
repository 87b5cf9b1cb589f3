#!/usr/bin/env bash
# Install the build tree into a temporary prefix, then build an example
# outside the tree against the installed copy, with pkg-config and with
# CMake's find_package, and run it under the installed drover.
set -u
. "$(dirname "$0")/rt_lib.sh"
S=${DROVER_SOURCE_DIR:?}
P=$DROVER_TMPDIR/../prefix.$$
W=$DROVER_TMPDIR/../work.$$
trap 'rm -rf "$DROVER_TMPDIR" "$P" "$W"' EXIT
mkdir -p "$W"
if ! cmake --install "$B" --prefix "$P" >"$W/install.log" 2>&1; then
    cat "$W/install.log"
    bad "cmake --install failed"
    finish
fi
for f in bin/drover include/drover/drover.h; do
    [ -e "$P/$f" ] || bad "not installed: $f"
done
pc=$(find "$P" -name drover.pc | head -n1)
cfg=$(find "$P" -name droverConfig.cmake | head -n1)
[ -n "$pc" ] || bad "no drover.pc installed"
[ -n "$cfg" ] || bad "no droverConfig.cmake installed"

# pkg-config
if [ -n "$pc" ]; then
    flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs drover)
    libdir=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=libdir drover)
    # shellcheck disable=SC2086
    cc -std=gnu11 -o "$W/pp_pc" "$S/examples/ping_pong.c" $flags \
        -Wl,-rpath,"$libdir" || bad "pkg-config build failed"
    out=$("$P/bin/drover" run -- "$W/pp_pc" 200 2>&1)
    grep -q "200 rounds, ponger exit code 0" <<<"$out" ||
        bad "pkg-config build: $out"
fi

# CMake find_package
mkdir -p "$W/cm"
cat >"$W/cm/CMakeLists.txt" <<EOT
cmake_minimum_required(VERSION 3.25)
project(consumer C)
find_package(drover 0.1 REQUIRED)
add_executable(pp "$S/examples/event_barrier.c")
target_link_libraries(pp PRIVATE drover::drover)
EOT
if cmake -S "$W/cm" -B "$W/cm/b" -DCMAKE_PREFIX_PATH="$P" \
    -DCMAKE_BUILD_RPATH="$P/lib;$P/lib64" >"$W/cm.log" 2>&1 &&
    cmake --build "$W/cm/b" >>"$W/cm.log" 2>&1; then
    out=$("$P/bin/drover" run -- "$W/cm/b/pp" 3 2>&1)
    grep -q "3 tasks passed the barrier, 0 failed" <<<"$out" ||
        bad "find_package build: $out"
else
    cat "$W/cm.log"
    bad "find_package build failed"
fi
finish
