#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Compile time of a websession program against a plain Beast program of the same shape (issue 26
# targets; docs/benchmarks.md, "Compile time"):
#   bash scripts/compile_time.sh [ROUNDS]       (default 3 rounds)
# The first ```cpp block of docs/getting-started.md (a Beast server with with_session over the
# default manager) against bench/compile/beast_plain.cpp (a plain Beast coroutine server with
# Boost.JSON), alternating rounds, one compiler at a time, same flags: g++ -std=c++20 -O2 and
# $CXXFLAGS_EXTRA (e.g. CXXFLAGS_EXTRA=-DNDEBUG); CXX picks the compiler. No ccache.
# Prints each round and each side's median CPU seconds (user + sys: other work on the machine
# changes it far less than wall time) and wall seconds, then the ratio of the CPU medians.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WS_ROOT"

rounds=${1:-${ROUNDS:-3}}
cxx=${CXX:-g++}
read -r -a flags <<<"-std=c++20 -O2 ${CXXFLAGS_EXTRA:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

awk '/^```cpp$/{n++; p=(n==1); next} /^```/{p=0} p' docs/getting-started.md >"$work/ws.cpp"
[[ -s $work/ws.cpp ]] || { echo "no \`\`\`cpp block in docs/getting-started.md" >&2; exit 1; }
cp bench/compile/beast_plain.cpp "$work/beast.cpp"

ws=() bp=()
for ((r = 1; r <= rounds; r++)); do
  ws+=("$(ws_compile_seconds "$cxx" "$work/ws.cpp" "${flags[@]}" -Iinclude)")
  bp+=("$(ws_compile_seconds "$cxx" "$work/beast.cpp" "${flags[@]}")")
  echo "round $r: websession ${ws[-1]}  beast ${bp[-1]}  (cpu wall)"
done
cpu_ws=$(ws_median 1 "${ws[@]}") wall_ws=$(ws_median 2 "${ws[@]}")
cpu_bp=$(ws_median 1 "${bp[@]}") wall_bp=$(ws_median 2 "${bp[@]}")
echo "getting-started TU: cpu $cpu_ws s, wall $wall_ws s; plain Beast TU: cpu $cpu_bp s, wall $wall_bp s (medians of $rounds)"
echo "compile ratio $(awk -v a="$cpu_ws" -v b="$cpu_bp" 'BEGIN{printf "%.2f", a / b}')x" \
  "(cpu; wall $(awk -v a="$wall_ws" -v b="$wall_bp" 'BEGIN{printf "%.2f", a / b}')x), $cxx ${flags[*]}"
