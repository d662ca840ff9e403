# SPDX-License-Identifier: BSL-1.0
# Shared by scripts/test.sh and scripts/main.sh (sourced, not run).
# ws_configure VARIANT: `cmake --preset VARIANT` into build-VARIANT. CMakePresets.json holds the
#   compilers, build types, flags and sanitizer options of gcc, clang, asan and tsan.
# Sets WS_ROOT and WS_BUILD_DIR; exports the environment of the variant's test preset (the
# sanitizer options of asan and tsan; options already in the environment win), so that programs
# run outside ctest get them too.

WS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ws_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# ws_preset VARIANT: prints the configure preset's C++ compiler, then the test preset's
# environment as NAME=VALUE lines, from CMakePresets.json ($penv{X} and ${sourceDir} expanded).
ws_preset() {
  python3 - "$WS_ROOT" "$1" <<'PY'
import json, os, re, sys
root, name = sys.argv[1], sys.argv[2]
with open(os.path.join(root, "CMakePresets.json")) as f:
    presets = json.load(f)
def resolve(kind, preset_name):
    table = {p["name"]: p for p in presets.get(kind, [])}
    if preset_name not in table:
        sys.exit(f"CMakePresets.json has no {kind} entry '{preset_name}'")
    preset = table[preset_name]
    merged = {"cacheVariables": {}, "environment": {}}
    parents = preset.get("inherits", [])
    for parent in [parents] if isinstance(parents, str) else parents:
        for key, value in resolve(kind, parent).items():
            merged[key].update(value)
    for key in merged:
        merged[key].update(preset.get(key, {}))
    return merged
def expand(value):
    value = value.replace("${sourceDir}", root)
    return re.sub(r"\$penv\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), value)
print(resolve("configurePresets", name)["cacheVariables"].get("CMAKE_CXX_COMPILER", ""))
for key, value in resolve("testPresets", name)["environment"].items():
    print(f"{key}={expand(value)}")
PY
}

ws_configure() {
  local variant=$1 preset cxx line
  case $variant in
    gcc | clang | asan | tsan) ;;
    *) echo "unknown variant '$variant' (expected gcc, clang, asan or tsan)" >&2; return 2 ;;
  esac
  preset=$(ws_preset "$variant") || return 2
  cxx=$(head -n 1 <<<"$preset")
  WS_BUILD_DIR=$WS_ROOT/build-$variant

  # A build dir left by another generator or compiler cannot be reconfigured: start it afresh.
  local cache=$WS_BUILD_DIR/CMakeCache.txt
  if [[ -f $cache ]]; then
    local cached_gen cached_cxx
    cached_gen=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$cache")
    cached_cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")
    if [[ $cached_gen != Ninja || $(basename "$cached_cxx") != "$cxx" ]]; then
      ws_log "removing $WS_BUILD_DIR (was '$cached_gen' with '$cached_cxx')"
      rm -rf "$WS_BUILD_DIR"
    fi
  fi

  ws_log "configure $variant: cmake --preset $variant ($cxx)"
  (cd "$WS_ROOT" && cmake --preset "$variant")

  while IFS= read -r line; do
    [[ -n $line ]] && export "${line?}"
  done < <(tail -n +2 <<<"$preset")
}

# ws_free_ports N: N free loopback ports, all bound at once so that no two are the same
# (scripts/bench.sh, scripts/soak.sh).
ws_free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# ws_new_cookie URL: "name=value" of a new session from the example server at URL (GET
# URL/visits without a cookie); empty if the request failed.
ws_new_cookie() {
  { curl -s -D - -o /dev/null "$1/visits" || true; } | tr -d '\r' |
    sed -n 's/^[Ss]et-[Cc]ookie: *\([^;]*\).*/\1/p' | awk 'NR == 1'  # reads all: no SIGPIPE
}

# ws_wait_listening PID OUT ERR: waits up to 20 s for the example server PID (its stdout and
# stderr in the files OUT and ERR) to print "listening on ADDRESS:PORT"; prints
# http://ADDRESS:PORT. Returns 1 (with ERR on stderr) if the server exits or stays silent.
# scripts/main.sh, test/browser/run.sh.
ws_wait_listening() {
  local pid=$1 out=$2 err=$3 line="" i
  for ((i = 0; i < 200; i++)); do
    line=$(head -n 1 "$out" 2>/dev/null || true)
    if [[ $line == "listening on "* ]]; then
      echo "http://${line#listening on }"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      cat "$err" >&2
      ws_log "the server exited before listening" >&2
      return 1
    fi
    sleep 0.1
  done
  ws_log "the server did not report its port within 20 s" >&2
  return 1
}

# ws_stop_pid PID: stops a child of this shell: SIGTERM, then SIGKILL if it has not exited
# within 10 s; returns its exit status (0 for an empty PID). scripts/main.sh, scripts/soak.sh.
ws_stop_pid() {
  local pid=$1 status=0 i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    ws_log "process $pid ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || status=$?
  return "$status"
}

# ws_compile_seconds CXX SOURCE FLAGS...: compiles SOURCE to an object thrown away (no ccache);
# prints "CPU WALL" seconds (CPU: user + sys of the compiler). Fails with the compiler's first
# lines of errors when it does not compile. scripts/compile_time.sh, scripts/header_cost.sh.
ws_compile_seconds() {
  local cxx=$1 src=$2 out
  shift 2
  out=$(mktemp)
  if ! /usr/bin/time -f '%U %S %e' -o "$out.time" "$cxx" "$@" -c "$src" -o "$out.o" 2>"$out.err"; then
    echo "compile failed: $cxx $* -c $src" >&2
    head -n 5 "$out.err" >&2
    rm -f "$out" "$out".*
    return 1
  fi
  awk '{printf "%.2f %.2f\n", $1 + $2, $3}' "$out.time"
  rm -f "$out" "$out".*
}

# ws_median FIELD "A B" "C D" ...: the median of field FIELD (1-based) of the arguments.
ws_median() {
  local field=$1
  shift
  printf '%s\n' "$@" | awk -v f="$field" '{print $f}' | sort -n |
    awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
