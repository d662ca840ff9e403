// SPDX-License-Identifier: BSL-1.0
// The Boost.Test runner for the whole unit suite (the shared library provides main).
#define BOOST_TEST_MODULE websession
#include <boost/test/unit_test.hpp>
