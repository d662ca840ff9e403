// SPDX-License-Identifier: BSL-1.0
// Whether the tests that start a redis-server can run here. They run the program found in PATH
// (server_fixture.hpp execs "redis-server" as execvp does). Without it a developer's machine
// skips them with a message, while CI (the CI environment variable set, as .ci/run does) fails:
// a CI that silently ran no Redis test would look green while testing nothing.
//   websession_redis_tests: the whole binary, in test/redis/main.cpp (exit 77, ctest's
//     SKIP_RETURN_CODE; exit 1 in CI).
//   single tests elsewhere (test/e2e): the decorator `* redis_test::needs_redis_server()`.
#pragma once

#include <boost/test/tree/decorator.hpp>
#include <boost/test/tools/assertion_result.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace redis_test {

// exit status of a test program that skipped itself (test/CMakeLists.txt: SKIP_RETURN_CODE)
inline constexpr int skip_exit_code = 77;

// True if `program` names an executable file in a PATH directory (an empty entry is the current
// directory, as for execvp).
inline bool on_path(std::string_view program) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "";
  for (;;) {
    const auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string file = dir + "/" + std::string(program);
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(file.c_str(), X_OK) == 0)
      return true;
    if (colon == std::string_view::npos) return false;
    dirs.remove_prefix(colon + 1);
  }
}

// True when running in CI: CI is set to anything but "", "0" or "false".
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  if (ci == nullptr) return false;
  const std::string_view v = ci;
  return !(v.empty() || v == "0" || v == "false");
}

inline constexpr std::string_view skipped_message =
    "redis-server not found in PATH: Redis tests skipped (set CI=true to make this an error)";
inline constexpr std::string_view ci_message =
    "redis-server not found in PATH and CI is set: the Redis tests cannot run (install "
    "redis-server, e.g. with scripts/install-deps.sh)";

// A Boost.Test precondition: skips the test when redis-server is missing outside CI. In CI it
// lets the test run, and redis_server's constructor fails it with ci_message.
inline boost::unit_test::decorator::precondition needs_redis_server() {
  return boost::unit_test::decorator::precondition([](boost::unit_test::test_unit_id) {
    if (in_ci() || on_path("redis-server")) return boost::test_tools::assertion_result(true);
    boost::test_tools::assertion_result skip(false);
    skip.message() << skipped_message;
    return skip;
  });
}

// The exit status of a test program's main without redis-server in PATH (after saying why), or
// -1 when redis-server is there and the tests should run.
inline int gate_exit_code() {
  if (on_path("redis-server")) return -1;
  const bool ci = in_ci();
  const auto message = ci ? ci_message : skipped_message;
  std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
  return ci ? 1 : skip_exit_code;
}

}  // namespace redis_test
