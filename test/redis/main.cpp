// SPDX-License-Identifier: BSL-1.0
// The Boost.Test runner for the Redis client suite (the shared library provides the runner). Every
// test here starts its own redis-server: without one in PATH the suite is skipped, or fails in CI
// (redis_available.hpp).
#define BOOST_TEST_MODULE websession_redis
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include "redis_available.hpp"

#include <cstdio>

int main(int argc, char* argv[]) {
  if (!redis_test::on_path("redis-server")) {
    const bool ci = redis_test::in_ci();
    const auto message = ci ? redis_test::ci_message : redis_test::skipped_message;
    std::fprintf(stderr, "%.*s\n", static_cast<int>(message.size()), message.data());
    return ci ? 1 : redis_test::skip_exit_code;
  }
  return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
