// Tests of websession/redis/reader.hpp without a server: every RESP2 type, input split
// anywhere, large bulk strings, several replies per read, and protocol errors.
#include <websession/redis/reader.hpp>

#include <boost/test/unit_test.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using websession::redis::client_error;
using websession::redis::reader;
using websession::redis::reply;
using websession::redis::reply_type;

// Feeds `bytes` in pieces of `step` bytes and collects every reply.
std::vector<reply> parse(std::string_view bytes, std::size_t step = 0) {
  reader rd;
  std::vector<reply> out;
  if (step == 0) step = bytes.empty() ? 1 : bytes.size();
  for (std::size_t i = 0; i < bytes.size(); i += step) {
    const auto piece = bytes.substr(i, step);
    BOOST_TEST_REQUIRE(!rd.feed(piece.data(), piece.size()));
    for (;;) {
      auto r = rd.next();
      BOOST_TEST_REQUIRE(r.has_value());
      if (!*r) break;
      out.push_back(std::move(**r));
    }
  }
  return out;
}

reply str(std::string s, reply_type t = reply_type::string) {
  reply r;
  r.type = t;
  r.str = std::move(s);
  return r;
}

reply integer(long long v) {
  reply r;
  r.type = reply_type::integer;
  r.integer = v;
  return r;
}

reply array(std::vector<reply> e) {
  reply r;
  r.type = reply_type::array;
  r.elements = std::move(e);
  return r;
}

const std::string mixed =
    "+OK\r\n"
    "-ERR wrong number of arguments\r\n"
    ":-1234567890123\r\n"
    "$5\r\nhe\r\no\r\n"
    "$0\r\n\r\n"
    "$-1\r\n"
    "*-1\r\n"
    "*0\r\n"
    "*3\r\n:1\r\n*2\r\n$1\r\na\r\n*1\r\n$-1\r\n+x\r\n";

std::vector<reply> mixed_expected() {
  return {str("OK", reply_type::status),
          str("ERR wrong number of arguments", reply_type::error),
          integer(-1234567890123),
          str("he\r\no"),
          str(""),
          reply{},
          reply{},
          array({}),
          array({integer(1), array({str("a"), array({reply{}})}), str("x", reply_type::status)})};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_reader)

BOOST_AUTO_TEST_CASE(all_types_in_one_feed) {
  const auto got = parse(mixed);
  const auto want = mixed_expected();
  BOOST_TEST_REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) BOOST_TEST(got[i] == want[i], "reply " << i);
  BOOST_TEST(got[1].is_error());
  BOOST_TEST(got[5].is_nil());
  BOOST_TEST(got[6].is_nil());
}

BOOST_AUTO_TEST_CASE(byte_at_a_time_and_every_split) {
  const auto want = mixed_expected();
  BOOST_TEST((parse(mixed, 1) == want));
  for (std::size_t step = 2; step < 40; ++step) BOOST_TEST((parse(mixed, step) == want), step);
}

BOOST_AUTO_TEST_CASE(partial_input_waits) {
  reader rd;
  const std::string_view part = "$10\r\n01234";
  BOOST_TEST(!rd.feed(part.data(), part.size()));
  auto r = rd.next();
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(!r->has_value());
  const std::string_view rest = "56789\r\n:5\r\n";
  BOOST_TEST(!rd.feed(rest.data(), rest.size()));
  r = rd.next();
  BOOST_TEST_REQUIRE((r && *r));
  BOOST_TEST((**r == str("0123456789")));
  r = rd.next();
  BOOST_TEST_REQUIRE((r && *r));
  BOOST_TEST((**r == integer(5)));
  r = rd.next();
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(!r->has_value());
}

BOOST_AUTO_TEST_CASE(one_megabyte_bulk) {
  std::string value(1 << 20, '\0');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 131 % 251);
  const std::string bytes = "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n+after\r\n";
  for (std::size_t step : {std::size_t{0}, std::size_t{1000}, std::size_t{65536}}) {
    const auto got = parse(bytes, step);
    BOOST_TEST_REQUIRE(got.size() == 2u);
    BOOST_TEST(got[0].type == reply_type::string);
    BOOST_TEST((got[0].str == value));
    BOOST_TEST((got[1] == str("after", reply_type::status)));
  }
}

BOOST_AUTO_TEST_CASE(many_replies_in_one_feed) {
  std::string bytes;
  for (int i = 0; i < 5000; ++i) bytes += "$4\r\n" + std::to_string(1000 + i) + "\r\n";
  const auto got = parse(bytes);
  BOOST_TEST_REQUIRE(got.size() == 5000u);
  for (int i = 0; i < 5000; ++i) BOOST_TEST_REQUIRE(got[i].str == std::to_string(1000 + i));
}

BOOST_AUTO_TEST_CASE(garbage_kills_the_reader) {
  reader rd;
  const std::string_view bytes = "+OK\r\n?garbage\r\n";
  const auto ec = rd.feed(bytes.data(), bytes.size());
  BOOST_TEST(ec == make_error_code(client_error::protocol_error));
  BOOST_TEST(rd.failed());
  BOOST_TEST(!rd.error_message().empty());
  // The reply before the garbage is still delivered; then the error, for good.
  auto r = rd.next();
  BOOST_TEST_REQUIRE((r && *r));
  BOOST_TEST((**r == str("OK", reply_type::status)));
  r = rd.next();
  BOOST_TEST(!r.has_value());
  BOOST_TEST(r.error() == make_error_code(client_error::protocol_error));
  const std::string_view more = "+OK\r\n";
  BOOST_TEST(rd.feed(more.data(), more.size()) == make_error_code(client_error::protocol_error));
  BOOST_TEST(!rd.next().has_value());

  rd.reset();
  BOOST_TEST(!rd.failed());
  BOOST_TEST(!rd.feed(more.data(), more.size()));
  r = rd.next();
  BOOST_TEST_REQUIRE((r && *r));
  BOOST_TEST((**r == str("OK", reply_type::status)));
}

BOOST_AUTO_TEST_CASE(bad_lengths_and_garbage_inside_arrays) {
  for (std::string_view bad : {std::string_view("$abc\r\n"), std::string_view(":12x\r\n"),
                               std::string_view("*2\r\n:1\r\n!x\r\n"),
                               std::string_view("*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n"
                                                "*1\r\n:1\r\n")}) {
    reader rd;
    const auto ec = rd.feed(bad.data(), bad.size());
    BOOST_TEST(ec == make_error_code(client_error::protocol_error), bad);
    BOOST_TEST(!rd.next().has_value());
  }
}

BOOST_AUTO_TEST_CASE(moved_reader_keeps_state) {
  reader a;
  const std::string_view bytes = ":1\r\n:2";
  BOOST_TEST(!a.feed(bytes.data(), bytes.size()));
  reader b(std::move(a));
  auto r = b.next();
  BOOST_TEST_REQUIRE((r && *r));
  BOOST_TEST((**r == integer(1)));
  BOOST_TEST(!b.feed("\r\n", 2));
  r = b.next();
  BOOST_TEST_REQUIRE((r && *r));
  BOOST_TEST((**r == integer(2)));
}

BOOST_AUTO_TEST_SUITE_END()
