#!/bin/sh
# SPDX-License-Identifier: BSL-1.0
# Compiler launcher of the compile-only checks (the header check, the docs' code; see
# websession_compile_generated in test/CMakeLists.txt): runs the compile command it is given
# (compiler, or another launcher such as ccache, then its arguments) with -fsyntax-only, then
# creates the empty object file the build expects. The front end still parses, instantiates the
# templates used and reports every error and front-end warning; only code generation, which
# these translation units exist without, is skipped.
out=
prev=
for arg in "$@"; do
  [ "$prev" = "-o" ] && out=$arg
  prev=$arg
done
"$@" -fsyntax-only || exit $?
if [ -n "$out" ]; then
  : >"$out"
fi
