#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Installs what building, testing and benchmarking websession needs on Debian 12 (bookworm).
# A re-run is instant: apt is not touched when every package is already installed.
# Needs root or sudo when something is missing.
set -euo pipefail

packages=(
  # Libraries and Redis (shared/ENVIRONMENT.md).
  libboost1.81-dev libboost-json1.81-dev libboost-test1.81-dev
  libssl-dev libhiredis-dev redis-server redis-tools redis-sentinel pkg-config
  # Toolchain.
  cmake ninja-build g++ clang-14 ccache lld
  # clang-14 only recommends its sanitizer runtime; the asan variant (and -fsanitize=fuzzer)
  # cannot link without it, and --no-install-recommends would skip it.
  libclang-rt-14-dev
  # scripts/lib.sh reads CMakePresets.json, and the docs_excerpts and spdx ctests, with Python.
  python3
  # Benchmark tools.
  curl wrk gnuplot-nox
)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if ((EUID == 0)); then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

# Installing redis-server must not start a Redis service (tests start their own on their own
# ports, and nothing may be left running): forbid service starts for the duration, unless the
# machine already has its own policy.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
  "${as_root[@]}" chmod 755 "$policy"
  trap '"${as_root[@]}" rm -f "$policy"' EXIT
fi

"${as_root[@]}" apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
echo "install-deps: done"
