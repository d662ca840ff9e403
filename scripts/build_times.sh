#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# CPU time of every compile and link of a variant's build, slowest first (docs/building.md,
# "Where the build time goes"):
#   bash scripts/build_times.sh [gcc|clang|asan|tsan] [TARGET...]     (default: gcc, everything)
# Configures build-times-VARIANT from the variant's preset, without ccache, with
# scripts/cpu_time_launcher.sh as the compiler and linker launcher; cleans it; builds TARGETs
# with -j$WS_JOBS (default 2); prints "CPU s  wall s  output" per step (CPU: user + sys, which
# other work on the machine disturbs far less than wall time), then the sums and the build's
# wall time. The log stays in build-times-VARIANT/build-times.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

variant=${1:-gcc}
shift || true
jobs=${WS_JOBS:-2}
dir=$WS_ROOT/build-times-$variant
launcher=$WS_ROOT/scripts/cpu_time_launcher.sh

cd "$WS_ROOT"
cmake --preset "$variant" -B "$dir" -DWEBSESSION_USE_CCACHE=OFF \
  -DCMAKE_CXX_COMPILER_LAUNCHER="$launcher" -DCMAKE_CXX_LINKER_LAUNCHER="$launcher" >/dev/null
cmake --build "$dir" --target clean >/dev/null
rm -f "$dir/build-times.log"
start=$SECONDS
targets=()
for t in "$@"; do targets+=(--target "$t"); done
if ! WS_TIME_LOG=$dir/build-times.log cmake --build "$dir" -j "$jobs" "${targets[@]}" \
    >"$dir/build-times.out" 2>&1; then
  tail -n 30 "$dir/build-times.out" >&2
  echo "build_times: the build failed (log: $dir/build-times.out)" >&2
  exit 1
fi
wall=$((SECONDS - start))

sort -rn "$dir/build-times.log" | awk '{printf "%7.1f %7.1f  %s\n", $1, $2, $3}'
awk -v wall="$wall" -v jobs="$jobs" '
  $3 ~ /\.o$|\.gch$/ {c += $1; nc++; next}
  {l += $1; nl++}
  END {printf "compile: %.0f s CPU in %d steps; link: %.0f s CPU in %d steps; build wall %d s at -j%d\n",
       c, nc, l, nl, wall, jobs}' "$dir/build-times.log"
