#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# The browser test (ctest `browser`): the example server's page in Debian's headless Chromium,
# driven by playwright-core (identity.mjs) as two devices of one user.
#   bash test/browser/run.sh --server BIN --out DIR [--chromium PATH]
# Writes a users file with `server --hash-password`, starts the server on a free loopback port
# (--users, a configured cookie name, plain http), runs identity.mjs against it, stops the server
# by its PID (SIGTERM, SIGKILL after 10 s) and fails if it did not exit 0. Screenshots, the
# server's stderr and its audit log go to DIR.
# Without Chromium, node or test/browser/node_modules (scripts/install-deps.sh installs all
# three), it exits 77 (ctest: skipped) with a message, or 1 when CI=true, as the Redis tests do.
# The gate comes first and uses shell builtins only: ctest browser_gate_* runs it with an empty
# PATH.
set -euo pipefail

here=.
[[ ${BASH_SOURCE[0]} != */* ]] || here=${BASH_SOURCE[0]%/*}
here=$(cd "$here" && pwd)
server="" out="" chromium=/usr/bin/chromium
while (($#)); do
  case $1 in
    --server) server=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --chromium) chromium=$2; shift 2 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

missing=()
[[ -x $chromium ]] || missing+=("Chromium ($chromium)")
command -v node >/dev/null 2>&1 || missing+=("node")
[[ -f $here/node_modules/playwright-core/package.json ]] ||
  missing+=("playwright-core ($here/node_modules: npm ci there)")
if ((${#missing[@]})); then
  if [[ ${CI:-} == true ]]; then
    echo "browser test: ${missing[*]} not found and CI is set: failing (scripts/install-deps.sh installs them)"
    exit 1
  fi
  echo "browser test skipped: ${missing[*]} not found (scripts/install-deps.sh installs them; with CI=true this fails)"
  exit 77
fi
if [[ -z $server || -z $out ]]; then
  echo "usage: run.sh --server BIN --out DIR [--chromium PATH]" >&2
  exit 2
fi

source "$here/../../scripts/lib.sh"  # ws_wait_listening, ws_stop_pid
start=$SECONDS
rm -rf "$out"
mkdir -p "$out/tmp"
# The server must not pick up a developer's WEBSESSION_* settings.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^WEBSESSION_' || true)

user=ada
# A password for this run only; it reaches the server on stdin and the browser through the
# environment of node, never a command line.
password="pw-$RANDOM$RANDOM-$RANDOM$RANDOM"
cookie_name=websession_browser
# Short, so that the step-up step of identity.mjs sees a login stop being recent.
recent_auth=2
# The fewest iterations the users file takes: under the sanitizers OpenSSL hashes 35 times slower.
printf '%s\n' "$password" | "$server" --hash-password "$user" --hash-iterations 100000 >"$out/users"
chmod 600 "$out/users"

server_pid=""
stop_server() {
  local pid=$server_pid
  server_pid=""
  ws_stop_pid "$pid"
}
trap 'stop_server || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WEBSESSION_SECRET=$(head -c 32 /dev/urandom | base64) WEBSESSION_COOKIE_NAME=$cookie_name \
  "$server" --port 0 --insecure-cookies --users "$out/users" --recent-auth "$recent_auth" \
  --audit-log "$out/audit.log" \
  >"$out/server.out" 2>"$out/server.err" &
server_pid=$!
base=$(ws_wait_listening "$server_pid" "$out/server.out" "$out/server.err")
echo "browser test: server pid $server_pid at $base; $(node --version), $("$chromium" --version 2>/dev/null || echo "Chromium ?")"

# Chromium's profile (a fresh --user-data-dir per launch, made by Playwright) goes under $out.
status=0
TMPDIR=$out/tmp WS_BASE=$base WS_OUT=$out WS_USER=$user WS_PASSWORD=$password \
  WS_COOKIE_NAME=$cookie_name WS_RECENT_AUTH=$recent_auth WS_CHROMIUM=$chromium \
  timeout --kill-after=10 150 node "$here/identity.mjs" || status=$?
server_status=0
stop_server || server_status=$?
if ((status != 0)); then
  echo "---- server stderr ----"
  cat "$out/server.err"
fi
if ((server_status != 0)); then
  echo "browser test: the server exited with status $server_status"
  status=1
fi
# The password must appear nowhere the server writes.
if grep -qF -- "$password" "$out/server.err" "$out/audit.log" "$out/server.out"; then
  echo "browser test: the password appears in the server's output or audit log"
  status=1
fi
rm -rf "$out/tmp"
echo "browser test: exit $status after $((SECONDS - start)) s; screenshots in $out"
exit "$status"
