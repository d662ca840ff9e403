#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# The main job: builds build-gcc (configured as scripts/test.sh gcc does), starts the example
# server on the embedded store with a users file made by `server --hash-password`, and runs a
# session flow against it with curl (visits, a wrong password, login, me, where you're logged
# in, logout with the CSRF token, me again), stops it, then runs the quickstart example and the
# memory benchmark. Any of them whose target does not exist yet is skipped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

jobs=${WS_JOBS:-2}
cd "$WS_ROOT"
bash "$WS_ROOT/scripts/install-deps.sh"
ws_configure gcc

# Targets and where they land in the build tree.
declare -A programs=([server]=example/server [quickstart]=example/quickstart
                     [bench_sessions]=bench/bench_sessions)
present=()
for target in server quickstart bench_sessions; do
  if ninja -C "$WS_BUILD_DIR" -t query "$target" >/dev/null 2>&1; then
    present+=("$target")
  else
    ws_log "skip $target: no such target yet (${programs[$target]%%/*}/CMakeLists.txt does not define it)"
  fi
done
if ((${#present[@]} == 0)); then
  ws_log "nothing to run"
  exit 0
fi

ws_log "build ${present[*]} (-j$jobs)"
cmake --build "$WS_BUILD_DIR" -j "$jobs" --target "${present[@]}"

# ---------------------------------------------------------------------------------------------
# The example server with curl. Whatever happens (a failed step, Ctrl-C), the trap stops the
# server by its PID: SIGTERM, then SIGKILL if it has not exited within 10 s.
server_pid=""
demo_dir=""
stop_server() {
  local pid=$server_pid
  server_pid=""
  ws_stop_pid "$pid"
}
cleanup() {
  stop_server || true
  [[ -z $demo_dir ]] || rm -rf "$demo_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step EXPECTED_STATUS DESCRIPTION CURL_ARGS...: one request with the cookie jar; prints the
# status and the JSON answer, and fails the script on any other status.
step() {
  local expected=$1 what=$2 code
  shift 2
  code=$(curl -sS --max-time 10 -c "$demo_dir/jar" -b "$demo_dir/jar" -o "$demo_dir/body" \
              -w '%{http_code}' "$@")
  printf '  %-44s %s %s\n' "$what" "$code" "$(cat "$demo_dir/body")"
  if [[ $code != "$expected" ]]; then
    ws_log "expected $expected"
    return 1
  fi
}

if [[ " ${present[*]} " == *" server "* ]]; then
  demo_dir=$(mktemp -d)
  # ada's password for this run: hashed into the users file through stdin, sent in a request
  # body read from a file, never on a command line (which other users see in the process list).
  password=$(head -c 12 /dev/urandom | base64)
  (
    umask 077  # the users file and the request bodies: for our eyes only
    printf '%s\n' "$password" | "$WS_BUILD_DIR/example/server" --hash-password ada >"$demo_dir/users"
    printf '{"user":"ada","password":"%s"}' "$password" >"$demo_dir/login.json"
    printf '{"user":"ada","password":"%s-wrong"}' "$password" >"$demo_dir/wrong.json"
  )
  # A throwaway secret for this run; plain http on loopback, so cookies without Secure (curl,
  # like a browser, would not send a Secure or __Host- cookie over http).
  WEBSESSION_SECRET=$(head -c 32 /dev/urandom | base64) \
    "$WS_BUILD_DIR/example/server" --port 0 --store memory --insecure-cookies \
    --users "$demo_dir/users" --audit-log "$demo_dir/audit.log" \
    >"$demo_dir/stdout" 2>"$demo_dir/stderr" &
  server_pid=$!
  base=$(ws_wait_listening "$server_pid" "$demo_dir/stdout" "$demo_dir/stderr")
  ws_log "example server (pid $server_pid, memory store): $base"

  step 200 "GET  /visits" "$base/visits"
  step 200 "GET  /visits" "$base/visits"
  step 401 "POST /login (wrong password)" -H 'Content-Type: application/json' \
    --data-binary @"$demo_dir/wrong.json" "$base/login"
  step 200 "POST /login {\"user\":\"ada\",\"password\"}" -H 'Content-Type: application/json' \
    --data-binary @"$demo_dir/login.json" "$base/login"
  csrf=$(sed -n 's/.*"csrf":"\([^"]*\)".*/\1/p' "$demo_dir/body")
  step 200 "GET  /me" "$base/me"
  step 200 "GET  /sessions (where you're logged in)" "$base/sessions"
  step 200 "POST /logout-others" -X POST -H "X-CSRF-Token: $csrf" "$base/logout-others"
  step 501 "POST /sensitive (step-up: issue 27)" -X POST -H "X-CSRF-Token: $csrf" \
    "$base/sensitive"
  step 403 "POST /logout (no X-CSRF-Token)" -X POST "$base/logout"
  step 200 "POST /logout (X-CSRF-Token from login)" -X POST -H "X-CSRF-Token: $csrf" \
    "$base/logout"
  step 401 "GET  /me" "$base/me"
  step 200 "GET  /healthz" "$base/healthz"

  ws_log "stop the server (SIGTERM)"
  status=0
  stop_server || status=$?
  sed 's/^/  stderr: /' "$demo_dir/stderr"
  sed 's/^/  audit:  /' "$demo_dir/audit.log"
  if grep -qF -- "$password" "$demo_dir/stderr" "$demo_dir/audit.log" "$demo_dir/stdout"; then
    ws_log "the password appears in the server's output"
    exit 1
  fi
  if ((status != 0)); then
    ws_log "the server exited with status $status"
    exit 1
  fi
fi

# A program that hangs must not hold the job (or a server) forever.
run() {
  ws_log "run ${*#$WS_BUILD_DIR/}"
  timeout --kill-after=10 600 "$@"
}
for target in "${present[@]}"; do
  case $target in
    server) ;;
    bench_sessions)
      # The memory-store micro benchmark: a 1 KB session, encrypted and in plaintext, then its
      # parts alone (the floors the figures compare against). scripts/bench.sh runs the suite.
      for cipher in aes_gcm plaintext; do
        run "$WS_BUILD_DIR/bench/bench_sessions" --store memory --cipher "$cipher" --payload 1024 \
          --concurrency 1 --threads 1 --scenarios create,load,load_save --seconds 0.5
      done
      run "$WS_BUILD_DIR/bench/bench_sessions" --micro --payload 1024
      ;;
    quickstart)
      # It has no built-in secret: a throwaway one for this run (never printed).
      WEBSESSION_SECRET=$(head -c 32 /dev/urandom | base64) run "$WS_BUILD_DIR/example/quickstart"
      ;;
    *) run "$WS_BUILD_DIR/${programs[$target]}" ;;
  esac
done
ws_log "main: done"
