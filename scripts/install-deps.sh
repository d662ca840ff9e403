#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Installs what building, testing and benchmarking websession needs on Debian 12 (bookworm):
# Debian packages, then the browser test's npm package (playwright-core, pinned by
# test/browser/package-lock.json) into test/browser/node_modules.
# A re-run is instant: apt and npm are not touched when everything is already installed.
# Needs root or sudo when a Debian package is missing.
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
  # The browser test (test/browser): Debian's Chromium, driven by playwright-core over the
  # DevTools protocol (no chromedriver needed).
  chromium
)
# Node.js 18 or later runs playwright-core; Debian's nodejs and npm only where no node is
# installed (another build of Node.js, such as NodeSource's, brings its own npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# playwright-core at the version test/browser/package-lock.json pins (npm ci: exactly the
# lock, no install scripts), unless it is there already.
install_npm_packages() {
  local dir=$root/test/browser want have
  want=$(node -p "require('$dir/package-lock.json').packages['node_modules/playwright-core'].version")
  have=$(node -p "require('$dir/node_modules/playwright-core/package.json').version" 2>/dev/null ||
         true)
  if [[ $want == "$have" ]]; then
    echo "install-deps: playwright-core $have is installed in test/browser"
    return 0
  fi
  echo "install-deps: npm ci in test/browser (playwright-core $want)"
  if ! npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund; then
    # Offline, everything else still builds and tests; CI must run the browser test.
    [[ ${CI:-} != true ]] || return 1
    echo "install-deps: WARNING: npm ci failed: the browser test will be skipped" >&2
  fi
}

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages are installed"
  install_npm_packages
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
install_npm_packages
echo "install-deps: done"
