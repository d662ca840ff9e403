#!/bin/sh
# SPDX-License-Identifier: BSL-1.0
# A CMake compiler/linker launcher that runs the command and appends "CPU WALL OUTPUT" (CPU: user
# + sys seconds of the whole command) to $WS_TIME_LOG, or to build-times.log in the current
# directory (the build directory under Ninja). scripts/build_times.sh sets it up; no ccache.
log=${WS_TIME_LOG:-$PWD/build-times.log}
out=
prev=
for arg in "$@"; do
  [ "$prev" = "-o" ] && out=$arg
  prev=$arg
done
times=$(mktemp)
/usr/bin/time -f '%U %S %e' -o "$times" "$@"
rc=$?
if [ "$rc" -eq 0 ]; then
  awk -v out="$out" '{printf "%.2f %.2f %s\n", $1 + $2, $3, out}' "$times" >>"$log"
fi
rm -f "$times"
exit "$rc"
