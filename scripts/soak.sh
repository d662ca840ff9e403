#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# The soak test (GitHub issue 16; not run in CI): the example server under wrk for MINUTES per
# store (default 5), first with the memory store, then with the Redis store on a redis-server of
# its own, while its resident memory (VmRSS) and open descriptors (/proc/PID/fd) are sampled
# every second. It fails (exit 1) if either grows after the warm-up beyond the tolerance.
#
#   bash scripts/soak.sh            # 5 minutes per store
#   bash scripts/soak.sh 1          # 1 minute per store (a smoke test of the script)
#
# The load reaches a steady state: two wrk runs at once (bench/wrk_session.lua), both on GET
# /visits. The pool: 2 threads, 32 connections, as fast as they go, over a fixed pool of
# sessions (WS_SOAK_SESSIONS, default 300 cookies obtained first with curl). New visitors: 1
# thread, 8 connections (WS_SOAK_NEW_CONNECTIONS), each waiting 10 ms before each request
# (WS_SOAK_NEW_DELAY_MS), with no cookie, so the server creates a session that nobody uses
# again, and "Connection: close", so that connections close and reopen too; paced, so that the
# number of live sessions does not follow the throughput of the pool, which swings with whatever
# else runs on the machine. Sessions expire after 30 s idle (the anonymous and the bound idle
# timeout; touch interval 5 s), so the number of live sessions levels off: in Redis by TTL, in
# the memory store by its sweep, which runs every 60 s.
#
# Judged after a warm-up of 120 s (20 % of runs longer than 10 minutes): the memory store holds
# between 30 s and 90 s worth of new sessions at steady state (30 s idle timeout plus up to one
# 60 s sweep period), a cycle whose first full peak comes at 120 s; shorter runs than 5 minutes
# warm up 40 % of the run. Compared: the first WINDOW s after the warm-up with the run's last
# WINDOW s (WINDOW 60 s, less for short runs; see bench/soak.py for the exact rule):
#   RSS          median of the last window <= median of the first + max(10 %, 8 MiB)
#   descriptors  max of the last window <= max of the first + 4
# wrk's throughput, errors and latency are recorded per store but not judged (on a shared
# machine they say more about the other load than about the server). WS_SOAK_NOTE: a sentence
# for soak.json's "note" (e.g. what else ran on the machine).
#
# Writes bench/results/soak.json (samples and summary per store) and soak.png; raw outputs in
# bench/results/raw/soak/ (not committed).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$WS_ROOT"

minutes=${1:-5}
if ! [[ $minutes =~ ^[0-9]+(\.[0-9]+)?$ ]] || [[ $# -gt 1 ]]; then
  echo "usage: bash scripts/soak.sh [minutes per store, default 5]" >&2
  exit 2
fi
read -r run warmup window < <(python3 - "$minutes" <<'PY'
import sys
run = max(20, round(float(sys.argv[1]) * 60))
warmup = max(0.2 * run, min(120, 0.4 * run))
window = min(60, (run - warmup) / 2)
print(run, round(warmup), round(window))
PY
)
pool=${WS_SOAK_SESSIONS:-300}
new_connections=${WS_SOAK_NEW_CONNECTIONS:-8}
new_delay_ms=${WS_SOAK_NEW_DELAY_MS:-10}
connections=32
idle=30s

for tool in cmake ninja curl wrk gnuplot redis-server redis-cli python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    ws_log "$tool is missing: running scripts/install-deps.sh"
    bash "$WS_ROOT/scripts/install-deps.sh"
    break
  fi
done

ws_configure gcc >/dev/null
ws_log "building server (-j${WS_JOBS:-1})"
cmake --build "$WS_BUILD_DIR" -j "${WS_JOBS:-1}" --target server
server_bin=$WS_BUILD_DIR/example/server
[[ -x $server_bin ]] || { ws_log "no $server_bin after the build"; exit 1; }

OUT=$WS_ROOT/bench/results
RAW=$OUT/raw/soak
rm -rf "$RAW"
mkdir -p "$RAW"

# Everything started here is stopped by its PID: SIGTERM, then SIGKILL after 10 s.
server_pid="" redis_pid="" sampler_pid="" newwrk_pid=""
cleanup() {
  local pid
  for pid in "$newwrk_pid" "$sampler_pid" "$server_pid" "$redis_pid"; do
    ws_stop_pid "$pid" || true
  done
  newwrk_pid="" sampler_pid="" server_pid="" redis_pid=""
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The session options of the soak: short timeouts, so that sessions expire during the run.
export WEBSESSION_ANONYMOUS_IDLE_TIMEOUT=$idle WEBSESSION_IDLE_TIMEOUT=$idle
export WEBSESSION_TOUCH_INTERVAL=5s

stores=()
server_notes=()
# phase STORE: one store's run.
phase() {
  local store=$1 redis_port="" port="" i
  local args=(--port 0 --threads 2 --store "$store" --insecure-cookies --dev-secret
              --audit-log /dev/null)
  if [[ $store == redis ]]; then
    redis_port=$(ws_free_ports 1)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
      >"$RAW/redis-server.log" 2>&1 &
    redis_pid=$!
    for ((i = 0; i < 100; i++)); do
      if redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG; then break; fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    if ! redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
      ws_log "redis-server did not start (see $RAW/redis-server.log)"
      return 1
    fi
    args+=(--redis-url "redis://127.0.0.1:$redis_port")
  fi

  "$server_bin" "${args[@]}" >"$RAW/$store.server.out" 2>"$RAW/$store.server.log" &
  server_pid=$!
  for ((i = 0; i < 100; i++)); do
    port=$(sed -n '1s/^listening on .*:\([0-9]*\)$/\1/p' "$RAW/$store.server.out" 2>/dev/null)
    [[ -z $port ]] || break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    ws_log "server --store $store did not start (see $RAW/$store.server.log)"
    return 1
  fi
  local url=http://127.0.0.1:$port cookies="" cookie got=0
  ws_log "$store: server pid $server_pid on $url; getting $pool session cookies"
  for ((i = 0; i < pool; i++)); do
    cookie=$(ws_new_cookie "$url")
    if [[ -n $cookie ]]; then cookies+="$cookie " got=$((got + 1)); fi
  done
  if ((got < pool)); then
    ws_log "$store: only $got of $pool cookies"
    ((got > 0)) || return 1
  fi

  python3 "$WS_ROOT/bench/soak.py" sample --pid "$server_pid" --url "$url" \
    ${redis_port:+--redis-port "$redis_port"} --out "$RAW/$store.samples.jsonl" &
  sampler_pid=$!
  ws_log "$store: wrk -t 2 -c $connections -d ${run}s over $got sessions, and new visitors on $new_connections connections every $new_delay_ms ms"
  WS_DELAY_MS=$new_delay_ms wrk -t 1 -c "$new_connections" -d "${run}s" --timeout 5s --latency \
    -H "Connection: close" -s "$WS_ROOT/bench/wrk_session.lua" "$url/visits" \
    >"$RAW/$store.wrk_new.txt" 2>&1 &
  newwrk_pid=$!
  WS_COOKIES=$cookies wrk -t 2 -c "$connections" -d "${run}s" --timeout 5s --latency \
    -s "$WS_ROOT/bench/wrk_session.lua" "$url/visits" \
    >"$RAW/$store.wrk_pool.txt" 2>&1 || ws_log "$store: wrk failed (see $RAW/$store.wrk_pool.txt)"
  wait "$newwrk_pid" || ws_log "$store: wrk (new visitors) failed (see $RAW/$store.wrk_new.txt)"
  newwrk_pid=""
  local kind
  for kind in pool new; do
    sed -n 's/^WRKJSON //p' "$RAW/$store.wrk_$kind.txt" >"$RAW/$store.wrk_$kind.json"
    [[ -s $RAW/$store.wrk_$kind.json ]] || rm -f "$RAW/$store.wrk_$kind.json"
  done
  ws_stop_pid "$sampler_pid" || true
  sampler_pid=""
  local status=0
  ws_stop_pid "$server_pid" || status=$?
  server_pid=""
  if ((status != 0)); then
    ws_log "$store: the server exited with status $status (see $RAW/$store.server.log)"
    server_notes+=("$store server exit status $status")
  fi
  if [[ -n $redis_pid ]]; then
    ws_stop_pid "$redis_pid" || true
    redis_pid=""
  fi
  stores+=("$store")
}

loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
ws_log "soak: ${run} s per store, warm-up ${warmup} s, windows of ${window} s"
phase memory || ws_log "memory phase failed"
phase redis || ws_log "redis phase failed"
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)

commit=$(git -C "$WS_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$WS_ROOT" diff --quiet HEAD 2>/dev/null || commit+=" (with uncommitted changes)"
note="Throughput is recorded, not judged: the soak judges growth. Load average ${loadavg_start} at the start, ${loadavg_end} at the end (2 CPUs)."
[[ -z ${WS_SOAK_NOTE:-} ]] || note="$WS_SOAK_NOTE $note"
((${#server_notes[@]} == 0)) || note+=" ${server_notes[*]}."
setup="example server --threads 2 (build-gcc RelWithDebInfo), wrk -t 2 -c $connections --timeout 5s"
setup+=" on GET /visits over $pool sessions, and new visitors (no cookie, Connection: close) from"
setup+=" wrk -t 1 -c $new_connections, each connection waiting $new_delay_ms ms before each request; WEBSESSION_ANONYMOUS_IDLE_TIMEOUT=$idle WEBSESSION_IDLE_TIMEOUT=$idle"
setup+=" WEBSESSION_TOUCH_INTERVAL=5s; memory store sweep every 60 s (default); Redis: redis-server"
setup+=" $(redis-server --version | awk '{print $3}' | sed 's/v=//') --save '' --appendonly no"
M_STORES="${stores[*]:-}" M_NOTE=$note M_SETUP=$setup M_COMMIT=$commit \
M_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) python3 - "$RAW/meta.json" <<'PY'
import json, os, sys
e = os.environ
json.dump({"date": e["M_DATE"], "commit": e["M_COMMIT"], "note": e["M_NOTE"],
           "setup": e["M_SETUP"], "stores": e["M_STORES"].split()}, open(sys.argv[1], "w"))
PY

status=0
python3 "$WS_ROOT/bench/soak.py" report --raw "$RAW" --json "$OUT/soak.json" --tsv-dir "$RAW" \
  --run "$run" --warmup "$warmup" --window "$window" || status=$?
gnuplot -e "raw='$RAW'; out='$OUT/soak.png'; warmup=$warmup; window=$window; run=$run" \
  "$WS_ROOT/bench/plot_soak.gp" || ws_log "gnuplot failed"
if ((${#stores[@]} < 2)); then
  ws_log "soak: not every store ran"
  status=1
fi
if ((status == 0)); then
  ws_log "soak passed; wrote $OUT/soak.json and soak.png"
else
  ws_log "soak FAILED; see $OUT/soak.json"
fi
exit "$status"
