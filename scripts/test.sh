#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Builds and tests one variant: bash scripts/test.sh [gcc|clang|asan|tsan]   (default gcc)
# Installs missing packages first (scripts/install-deps.sh), then the CMakePresets.json presets
# of the variant: configure (scripts/lib.sh ws_configure), build with -j2 (WS_JOBS overrides),
# ctest; exits with ctest's status. The tsan presets build and run only the unit and Redis suites
# (websession_tests, websession_redis_tests: ctest's unit and redis); the others build everything
# and run every test.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

variant=${1:-gcc}
jobs=${WS_JOBS:-2}
start=$SECONDS

bash "$WS_ROOT/scripts/install-deps.sh"
ws_configure "$variant"

cd "$WS_ROOT"
ws_log "build $variant (-j$jobs)"
cmake --build --preset "$variant" -j "$jobs"
ws_log "built $variant after $((SECONDS - start)) s"

ws_log "test $variant"
rc=0
ctest --preset "$variant" || rc=$?
ws_log "variant $variant: ctest exit $rc after $((SECONDS - start)) s"
exit "$rc"
