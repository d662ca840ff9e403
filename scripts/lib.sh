# Shared by scripts/test.sh and scripts/main.sh (sourced, not run).
# ws_configure VARIANT: configures build-VARIANT at the repository root with Ninja.
#   gcc   g++, RelWithDebInfo
#   clang clang++-14, RelWithDebInfo
#   asan  clang++-14, Debug -O1, AddressSanitizer + UndefinedBehaviorSanitizer (no recovery;
#         clang 14 rejects coroutines under UBSan's function check, so that one is off)
#   tsan  clang++-14, Debug -O1, ThreadSanitizer (suppressions for uninstrumented third-party
#         libraries only: test/tsan.supp)
# Sets WS_ROOT and WS_BUILD_DIR; exports the sanitizer options for the asan and tsan variants
# (defaults first: options already in the environment win).

WS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

ws_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

ws_configure() {
  local variant=$1 cxx build_type flags=""
  case $variant in
    gcc)   cxx=g++;         build_type=RelWithDebInfo ;;
    clang) cxx=clang++-14;  build_type=RelWithDebInfo ;;
    # -fno-sanitize=function: clang 14's UBSan function check fails to compile coroutines
    # ("Cannot represent a difference across sections", llvm/llvm-project#49689 and #54153).
    asan)  cxx=clang++-14;  build_type=Debug
           flags="-O1 -fsanitize=address,undefined -fno-sanitize=function -fno-omit-frame-pointer -fno-sanitize-recover=undefined" ;;
    # Debug keeps the library's assertions; -O1 keeps TSan's 5-15x slowdown from growing further.
    tsan)  cxx=clang++-14;  build_type=Debug
           flags="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" ;;
    *) echo "unknown variant '$variant' (expected gcc, clang, asan or tsan)" >&2; return 2 ;;
  esac
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

  ws_log "configure $variant: $cxx $build_type ${flags:+($flags)}"
  # The header self-containment check and the benchmarks need building once (gcc); the other
  # variants skip them to keep CI on two cores well inside its time.
  local once=ON
  [[ $variant == gcc ]] || once=OFF
  cmake -S "$WS_ROOT" -B "$WS_BUILD_DIR" -G Ninja \
    -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE="$build_type" \
    -DCMAKE_CXX_FLAGS="$flags" \
    -DWEBSESSION_HEADER_TESTS="$once" \
    -DWEBSESSION_BUILD_BENCH="$once"

  if [[ $variant == asan ]]; then
    # Defaults first, so that options already in the environment win.
    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:print_stacktrace=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  fi
  if [[ $variant == tsan ]]; then
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$WS_ROOT/test/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
  fi
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
