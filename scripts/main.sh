#!/usr/bin/env bash
# The main job: builds build-gcc (configured as scripts/test.sh gcc does), then runs the
# quickstart example and the memory benchmark, skipping either one that does not exist yet.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

jobs=${WS_JOBS:-2}
cd "$WS_ROOT"
bash "$WS_ROOT/scripts/install-deps.sh"
ws_configure gcc

# Targets and where they land in the build tree.
declare -A programs=([quickstart]=example/quickstart [bench_memory]=bench/bench_memory)
present=()
for target in quickstart bench_memory; do
  if ninja -C "$WS_BUILD_DIR" -t query "$target" >/dev/null 2>&1; then
    present+=("$target")
  else
    ws_log "skip $target: no such target yet (${programs[$target]%%/*}/CMakeLists.txt does not define it)"
  fi
done
if ((${#present[@]} == 0)); then
  ws_log "nothing to run"
  exit 0
fi

ws_log "build ${present[*]} (-j$jobs)"
cmake --build "$WS_BUILD_DIR" -j "$jobs" --target "${present[@]}"

for target in "${present[@]}"; do
  ws_log "run ${programs[$target]}"
  # A program that hangs must not hold the job (or a server) forever.
  timeout --kill-after=10 600 "$WS_BUILD_DIR/${programs[$target]}"
done
ws_log "main: done"
