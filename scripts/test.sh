#!/usr/bin/env bash
# Builds and tests one variant: bash scripts/test.sh [gcc|clang|asan]   (default gcc)
# Installs missing packages first (scripts/install-deps.sh), builds build-<variant> with -j2 and
# runs ctest there; exits with ctest's status.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

variant=${1:-gcc}
jobs=${WS_JOBS:-2}
start=$SECONDS

bash "$WS_ROOT/scripts/install-deps.sh"
ws_configure "$variant"

ws_log "build $variant (-j$jobs)"
cmake --build "$WS_BUILD_DIR" -j "$jobs"

ws_log "test $variant"
rc=0
ctest --test-dir "$WS_BUILD_DIR" --output-on-failure || rc=$?
ws_log "variant $variant: ctest exit $rc after $((SECONDS - start)) s"
exit "$rc"
