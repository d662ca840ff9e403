// SPDX-License-Identifier: BSL-1.0
// Tests of websession/redis/resp.hpp and request.hpp: the exact RESP2 bytes of commands with
// string, binary, integer and range arguments, appended to a reused buffer.
#include <websession/redis/request.hpp>
#include <websession/redis/resp.hpp>

#include <boost/test/unit_test.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace resp = websession::redis::resp;
using websession::redis::request;

BOOST_AUTO_TEST_SUITE(redis_resp)

BOOST_AUTO_TEST_CASE(simple_command) {
  std::string out;
  resp::append_command(out, "GET", "key");
  BOOST_TEST(out == "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n");
}

BOOST_AUTO_TEST_CASE(appends_to_reused_buffer) {
  std::string out = "prefix";
  resp::append_command(out, std::string_view("PING"));
  BOOST_TEST(out == "prefix*1\r\n$4\r\nPING\r\n");
  out.clear();
  resp::append_command(out, "ECHO", std::string(""));
  BOOST_TEST(out == "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
}

BOOST_AUTO_TEST_CASE(binary_safe) {
  const std::string value("a\0b\r\n$*", 7);
  std::string out;
  resp::append_command(out, "SET", "k", value);
  BOOST_TEST(out == std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$7\r\na\0b\r\n$*\r\n", 33));
}

BOOST_AUTO_TEST_CASE(integers) {
  std::string out;
  resp::append_command(out, "SET", "k", "v", "PX", 5000, std::int64_t{-42},
                       std::numeric_limits<std::uint64_t>::max(), short{7});
  BOOST_TEST(out ==
             "*8\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nPX\r\n$4\r\n5000\r\n$3\r\n-42\r\n"
             "$20\r\n18446744073709551615\r\n$1\r\n7\r\n");
}

BOOST_AUTO_TEST_CASE(ranges) {
  const std::vector<std::string> keys{"a", "bb"};
  const std::array<int, 2> nums{1, 22};
  std::string out;
  resp::append_command(out, "DEL", keys);
  BOOST_TEST(out == "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$2\r\nbb\r\n");
  out.clear();
  resp::append_command(out, "EVALSHA", "abc", keys.size(), keys, nums);
  BOOST_TEST(out ==
             "*7\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n2\r\n$1\r\na\r\n$2\r\nbb\r\n$1\r\n1\r\n"
             "$2\r\n22\r\n");
  out.clear();
  resp::append_command(out, "DEL", std::vector<std::string_view>{});
  BOOST_TEST(out == "*1\r\n$3\r\nDEL\r\n");
}

BOOST_AUTO_TEST_CASE(large_argument) {
  const std::string big(1 << 20, 'x');
  std::string out;
  resp::append_command(out, "SET", "k", big);
  BOOST_TEST(out.size() == std::string_view("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n").size() +
                               big.size() + 2);
  BOOST_TEST(out.substr(0, 34) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n" + big.substr(0, 4));
}

// Arguments that are probably mistakes are rejected at compile time.
static_assert(resp::argument<std::string>);
static_assert(resp::argument<const char*>);
static_assert(resp::argument<long long>);
static_assert(resp::argument<std::vector<std::string>>);
static_assert(!resp::argument<bool>);
static_assert(!resp::argument<char>);
static_assert(!resp::argument<double>);
static_assert(!resp::argument<std::vector<double>>);

BOOST_AUTO_TEST_CASE(request_counts_commands) {
  request r;
  BOOST_TEST(r.empty());
  BOOST_TEST(!r.idempotent());
  r.push("GET", "k").push("PEXPIRE", "k", 1000);
  BOOST_TEST(r.size() == 2u);
  BOOST_TEST(r.payload() ==
             "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$7\r\nPEXPIRE\r\n$1\r\nk\r\n$4\r\n1000\r\n");
  r.idempotent(true);
  r.clear();
  BOOST_TEST(r.empty());
  BOOST_TEST(r.payload().empty());
  BOOST_TEST(r.idempotent());
  BOOST_TEST(request(true).idempotent());
}

BOOST_AUTO_TEST_SUITE_END()
