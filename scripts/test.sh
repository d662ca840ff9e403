#!/usr/bin/env bash
# Builds and tests one variant: bash scripts/test.sh [gcc|clang|asan|tsan]   (default gcc)
# Installs missing packages first (scripts/install-deps.sh), builds build-<variant> with -j2
# (WS_JOBS overrides) and runs ctest there; exits with ctest's status. The tsan variant builds
# and runs only the unit and Redis suites (websession_tests, websession_redis_tests: ctest's
# unit and redis); the others build everything and run every test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

variant=${1:-gcc}
jobs=${WS_JOBS:-2}
start=$SECONDS

bash "$WS_ROOT/scripts/install-deps.sh"
ws_configure "$variant"

targets=() tests=()
if [[ $variant == tsan ]]; then
  targets=(--target websession_tests websession_redis_tests)
  tests=(-R '^(unit|redis)$')
fi

ws_log "build $variant (-j$jobs)"
cmake --build "$WS_BUILD_DIR" -j "$jobs" "${targets[@]}"
ws_log "built $variant after $((SECONDS - start)) s"

ws_log "test $variant"
rc=0
ctest --test-dir "$WS_BUILD_DIR" --output-on-failure "${tests[@]}" || rc=$?
ws_log "variant $variant: ctest exit $rc after $((SECONDS - start)) s"
exit "$rc"
