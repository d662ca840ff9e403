// SPDX-License-Identifier: BSL-1.0
// Replies from RESP2 bytes, as a server sends them, for the tests of the I/O-free parts.
#pragma once

#include <websession/redis/reader.hpp>
#include <websession/redis/reply.hpp>

#include <boost/test/unit_test.hpp>

#include <string_view>
#include <vector>

namespace redis_test {

/// Every reply in `bytes` (which must be well-formed RESP2).
inline std::vector<websession::redis::reply> parse_replies(std::string_view bytes) {
  websession::redis::reader r;
  BOOST_TEST_REQUIRE(!r.feed(bytes.data(), bytes.size()));
  std::vector<websession::redis::reply> out;
  for (;;) {
    auto next = r.next();
    BOOST_TEST_REQUIRE(next.has_value());
    if (!*next) break;
    out.push_back(std::move(**next));
  }
  return out;
}

}  // namespace redis_test
