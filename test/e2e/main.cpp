// SPDX-License-Identifier: BSL-1.0
// End-to-end tests of the example server (example/server.cpp): each test starts the real binary
// on a free port and talks to it over sockets, with a Beast client and with curl.
#define BOOST_TEST_MODULE websession_e2e
#include <boost/test/unit_test.hpp>
