// The Boost.Test runner for the Redis client suite (the shared library provides main).
#define BOOST_TEST_MODULE websession_redis
#include <boost/test/unit_test.hpp>
