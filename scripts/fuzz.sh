#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# libFuzzer run of every target in test/fuzz: installs the dependencies, configures build-fuzz
# with clang++-14 (WEBSESSION_BUILD_FUZZ=ON, nothing else), builds, then runs each target for
# SECONDS (default 60), two at a time, each on a scratch copy of its committed corpus (the
# repository's corpus does not grow) with its dictionary. Crashes, leaks, timeouts and OOMs go
# to build-fuzz/artifacts/<target>/. Prints a summary table; exits non-zero if any target failed,
# naming the file that reproduces it (`build-fuzz/test/fuzz/fuzz_<target> FILE`).
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Environment: WS_JOBS (build jobs, default 2), WS_FUZZ_PARALLEL (targets at once, default 2).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
  echo "usage: $0 [SECONDS] [TARGET...]" >&2
  exit 2
fi
all_targets=(cookie id csrf cipher serializer resp url beast)
targets=("${@:-${all_targets[@]}}")
parallel=${WS_FUZZ_PARALLEL:-2}
fuzz_dir=$WS_ROOT/test/fuzz
build=$WS_ROOT/build-fuzz

bash "$WS_ROOT/scripts/install-deps.sh"

# A build dir made by another generator or compiler cannot be reconfigured: start it afresh.
if [[ -f $build/CMakeCache.txt ]] &&
   ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++-14$' "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
ws_log "configure build-fuzz: clang++-14, libFuzzer + ASan + UBSan"
cmake -S "$WS_ROOT" -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DWEBSESSION_BUILD_FUZZ=ON \
  -DWEBSESSION_BUILD_TESTS=OFF \
  -DWEBSESSION_BUILD_EXAMPLES=OFF \
  -DWEBSESSION_BUILD_BENCH=OFF \
  -DWEBSESSION_INSTALL=OFF >/dev/null
build_start=$(date +%s)
cmake --build "$build" -j"${WS_JOBS:-2}" --target $(printf 'fuzz_%s ' "${targets[@]}")
ws_log "built ${#targets[@]} fuzz targets in $(($(date +%s) - build_start)) s"

# Leaks are reported (detect_leaks); an error in the sanitizers stops the input at once.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:symbolize=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

scratch=$build/scratch
logs=$build/logs
rm -rf "$scratch"
mkdir -p "$scratch" "$logs"

run_target() {
  local t=$1 exe=$build/test/fuzz/fuzz_$1
  local corpus=$scratch/$t artifacts=$build/artifacts/$t
  rm -rf "$corpus"
  mkdir -p "$corpus" "$artifacts"
  cp -r "$fuzz_dir/corpus/$t/." "$corpus/" 2>/dev/null || true
  local dict=()
  [[ -f $fuzz_dir/$t.dict ]] && dict=(-dict="$fuzz_dir/$t.dict")
  local rc=0
  # -timeout: seconds per input before it counts as a hang (a crash); -max_len bounds inputs;
  # -rss_limit_mb and -malloc_limit_mb bound memory (one allocation above the malloc limit is
  # reported as an OOM crash).
  "$exe" "$corpus" "${dict[@]}" \
    -max_total_time="$seconds" -timeout=10 -max_len=16384 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" \
    >"$logs/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$logs/$t.rc"
}

ws_log "fuzzing ${targets[*]} for $seconds s each, $parallel at a time"
fuzz_start=$(date +%s)
running=0
for t in "${targets[@]}"; do
  if [[ ! -x $build/test/fuzz/fuzz_$t ]]; then
    echo "unknown or unbuilt target '$t'" >&2
    exit 2
  fi
  run_target "$t" &
  running=$((running + 1))
  if ((running >= parallel)); then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
printf '\n%-11s %7s %12s %9s %8s  %s\n' target seconds executions execs/s corpus result
for t in "${targets[@]}"; do
  log=$logs/$t.log rc=$(cat "$logs/$t.rc")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "$scratch/$t" -type f | wc -l)
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [[ $rc == 0 ]]; then
    result=ok
  else
    result="FAILED (exit $rc)${crash:+: $crash}"
    failed=1
  fi
  printf '%-11s %7s %12s %9s %8s  %s\n' "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$corpus" "$result"
done
ws_log "fuzzing took $(($(date +%s) - fuzz_start)) s; logs in $logs"
if ((failed)); then
  echo "fuzz: a target failed; reproduce with build-fuzz/test/fuzz/fuzz_<target> <file above>," \
    "then see docs/testing.md (Fuzzing) to turn it into a regression test" >&2
  exit 1
fi
