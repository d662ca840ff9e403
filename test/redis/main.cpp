// SPDX-License-Identifier: BSL-1.0
// The Boost.Test runner for the Redis client suite (the shared library provides the runner). Every
// test here starts its own redis-server: without one in PATH the suite is skipped, or fails in CI
// (redis_available.hpp).
#define BOOST_TEST_MODULE websession_redis
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include "redis_available.hpp"

int main(int argc, char* argv[]) {
  if (const int skip = redis_test::gate_exit_code(); skip >= 0) return skip;
  return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
