#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# What each public header costs a translation unit that includes it (docs/benchmarks.md,
# "Compile time"):
#   bash scripts/header_cost.sh [REGEX...]     (default: every header under include/websession)
# For each header (path under include/ matching one of the regexes), two TUs are compiled with
# g++ -std=c++20 -O2 (CXX, CXXFLAGS_EXTRA as in scripts/compile_time.sh; no ccache): one that
# includes only the header ("alone"), and one that includes <boost/beast/http.hpp> first ("over
# Beast": the header's cost in a TU that already pays for Beast). Prints a Markdown table of CPU
# seconds (user + sys, median of ROUNDS, default 1) and the TU's preprocessed lines, after the
# two baselines (an empty TU, Beast's http.hpp alone). "over Beast" is the extra CPU time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WS_ROOT"

rounds=${ROUNDS:-1}
cxx=${CXX:-g++}
read -r -a flags <<<"-std=c++20 -O2 -Iinclude $(pkg-config --cflags hiredis 2>/dev/null) ${CXXFLAGS_EXTRA:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
patterns=("$@")
((${#patterns[@]})) || patterns=(.)

mapfile -t headers < <(cd include && find websession -name '*.hpp' | sort | grep -E "$(IFS='|'; echo "${patterns[*]}")")

# cost SOURCE: "CPU LINES" of SOURCE, CPU the median of $rounds compiles.
cost() {
  local runs=() r lines
  for ((r = 0; r < rounds; r++)); do runs+=("$(ws_compile_seconds "$cxx" "$1" "${flags[@]}")"); done
  lines=$("$cxx" "${flags[@]}" -E -P "$1" | awk 'NF {n++} END {print n + 0}')
  echo "$(ws_median 1 "${runs[@]}") $lines"
}

printf '' >"$work/empty.cpp"
printf '#include <boost/beast/http.hpp>\n' >"$work/beast.cpp"
read -r empty_cpu empty_lines < <(cost "$work/empty.cpp")
read -r beast_cpu beast_lines < <(cost "$work/beast.cpp")
echo "baselines: empty TU ${empty_cpu} s; <boost/beast/http.hpp> alone ${beast_cpu} s, ${beast_lines} lines"
echo "($cxx ${flags[*]}, CPU seconds, median of $rounds)"
echo
echo "| header | alone (s) | lines | over Beast (+s) | lines |"
echo "| --- | ---: | ---: | ---: | ---: |"
for h in "${headers[@]}"; do
  printf '#include <%s>\n' "$h" >"$work/alone.cpp"
  printf '#include <boost/beast/http.hpp>\n#include <%s>\n' "$h" >"$work/over.cpp"
  read -r a_cpu a_lines < <(cost "$work/alone.cpp")
  read -r o_cpu o_lines < <(cost "$work/over.cpp")
  awk -v h="$h" -v a="$a_cpu" -v al="$a_lines" -v o="$o_cpu" -v ol="$o_lines" \
      -v b="$beast_cpu" -v bl="$beast_lines" \
      'BEGIN {printf "| %s | %.2f | %d | %+.2f | %+d |\n", h, a, al, o - b, ol - bl}'
done
