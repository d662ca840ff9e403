// SPDX-License-Identifier: BSL-1.0
// Tests of websession/redis/reader.hpp without a server: every RESP2 type, input split
// anywhere, large bulk strings, several replies per read, and protocol errors.
#include <websession/redis/reader.hpp>

#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <chrono>
#include <fstream>
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

// ---- hostile input: replies that announce more than they may (config::limits) ---------------
//
// Each case asserts the error and that the memory the reader holds stays bounded: the resident
// set grows by less than a few MiB while the reader is alive (before the limits, `*4000000`
// alone made it allocate and zero 4,000,000 reply slots, about 275 MiB).

namespace {

using websession::redis::reply_limits;

// Resident set size of this process, in bytes.
std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

constexpr std::size_t MiB = std::size_t{1} << 20;

// Feeds `bytes` to `rd` in pieces of `step` and returns the first error (or none).
boost::system::error_code feed_all(reader& rd, std::string_view bytes, std::size_t step = 65536) {
  for (std::size_t i = 0; i < bytes.size(); i += step) {
    const auto piece = bytes.substr(i, step);
    if (auto ec = rd.feed(piece.data(), piece.size())) return ec;
  }
  return {};
}

// Feeds `bytes` to a fresh reader with `limits` and checks that it fails with `want`, that it
// stays dead, and that the resident set grew by less than `bound` while it was alive.
void expect_refused(std::string_view bytes, boost::system::error_code want,
                    reply_limits limits = {}, std::size_t bound = 8 * MiB,
                    std::size_t step = 65536) {
  const std::size_t before = rss_bytes();
  reader rd(limits);
  const auto ec = feed_all(rd, bytes, step);
  const std::size_t grown = rss_bytes() > before ? rss_bytes() - before : 0;
  const std::string shown(bytes.substr(0, 40));
  BOOST_TEST(ec == want, shown << ": " << ec.message() << " / " << rd.error_message());
  BOOST_TEST(rd.failed(), shown);
  BOOST_TEST(!rd.error_message().empty(), shown);
  BOOST_TEST(grown < bound, shown << ": resident set grew by " << grown << " bytes");
  BOOST_TEST(rd.buffer_capacity() < bound, shown);
  auto r = rd.next();
  BOOST_TEST((!r && r.error() == want), shown);
  BOOST_TEST(rd.feed("+OK\r\n", 5) == want, shown);
}

const auto too_large = make_error_code(client_error::reply_too_large);
const auto protocol = make_error_code(client_error::protocol_error);

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_reader_limits)

BOOST_AUTO_TEST_CASE(defaults) {
  const reply_limits d;
  BOOST_TEST(d.max_elements == 1048576u);
  BOOST_TEST(d.max_bulk_length == 64 * MiB);
  BOOST_TEST(d.max_line_length == 64 * 1024u);
  BOOST_TEST((reader().limits() == d));
}

BOOST_AUTO_TEST_CASE(huge_array_count_is_refused_at_once) {
  expect_refused("*4000000\r\n", too_large);
  expect_refused("*2147483647\r\n", too_large);
  expect_refused("*1048577\r\n", too_large);  // one beyond the default
  // Nested: the inner header is refused; what was built of the outer reply is freed.
  expect_refused("*2\r\n:1\r\n*4000000\r\n", too_large);
  // The count split over feeds, a byte at a time: refused as soon as its digits exceed the
  // limit, before the line ends.
  expect_refused("*99999999999999999999999999\r\n", too_large, {}, 8 * MiB, 1);
  reader rd;
  BOOST_TEST(!rd.feed("*40000", 6));
  BOOST_TEST(rd.feed("00", 2) == too_large);
  BOOST_TEST(rd.error_message().find("4000000") != std::string_view::npos, rd.error_message());
  BOOST_TEST(rd.error_message().find("max_elements") != std::string_view::npos);
}

BOOST_AUTO_TEST_CASE(array_storage_grows_only_as_elements_arrive) {
  // At the limit: accepted, but an announced count reserves (almost) nothing, even seven levels
  // deep (before, this reserved 7 x 1,048,576 slots: about 500 MiB).
  const std::size_t before = rss_bytes();
  reader rd;
  const std::string deep = repeat("*1048576\r\n", 7);
  BOOST_TEST_REQUIRE(!feed_all(rd, deep));
  BOOST_TEST_REQUIRE(!feed_all(rd, ":1\r\n:2\r\n"));
  auto r = rd.next();
  BOOST_TEST_REQUIRE(r.has_value());
  BOOST_TEST(!r->has_value());
  const std::size_t grown = rss_bytes() > before ? rss_bytes() - before : 0;
  BOOST_TEST(grown < 4 * MiB, "resident set grew by " << grown << " bytes");

  // And an array at the limit that really arrives is parsed whole.
  reader full;
  const std::string body = "*1048576\r\n" + repeat(":7\r\n", 1048576);
  BOOST_TEST_REQUIRE(!feed_all(full, body));
  auto whole = full.next();
  BOOST_TEST_REQUIRE((whole && *whole));
  BOOST_TEST((*whole)->elements.size() == 1048576u);
  BOOST_TEST((*whole)->elements.back().integer == 7);
}

BOOST_AUTO_TEST_CASE(huge_bulk_length_is_refused_at_once) {
  expect_refused("$100000000000\r\n", too_large);
  expect_refused("$67108865\r\n", too_large);  // one beyond the default 64 MiB
  expect_refused("$9223372036854775807\r\n", too_large);
  // 2^64 would wrap: the reader refuses it before hiredis parses the line, whether the line
  // comes at once or a byte at a time.
  expect_refused("$18446744073709551616\r\n", too_large);
  expect_refused("$18446744073709551616\r\n", too_large, {}, 8 * MiB, 1);
  expect_refused("*3\r\n$1\r\na\r\n:5\r\n$100000000000\r\n", too_large);
  expect_refused("$100000000000\r\n", too_large, {}, 8 * MiB, 1);
  // Data after the header changes nothing: the reader is dead, it buffers none of it.
  expect_refused("$100000000000\r\n" + std::string(4 * MiB, 'x'), too_large);

  reader rd;
  BOOST_TEST(!rd.feed("$1000", 5));
  BOOST_TEST(rd.feed("00000\r\n", 7) == too_large);
  BOOST_TEST(rd.error_message().find("100000000") != std::string_view::npos, rd.error_message());
  BOOST_TEST(rd.error_message().find("max_bulk_length") != std::string_view::npos);

  // At the limit: accepted (only what arrived is buffered).
  reader at;
  BOOST_TEST(!at.feed("$67108864\r\nab", 13));
  BOOST_TEST(at.buffer_capacity() < 1 * MiB);
}

BOOST_AUTO_TEST_CASE(configured_limits_apply) {
  reply_limits small;
  small.max_elements = 3;
  small.max_bulk_length = 10;
  reader rd(small);
  BOOST_TEST(!feed_all(rd, "*3\r\n$10\r\n0123456789\r\n*0\r\n*3\r\n:1\r\n:2\r\n:3\r\n"));
  auto r = rd.next();
  BOOST_TEST_REQUIRE((r && *r));
  BOOST_TEST((*r)->elements.size() == 3u);
  BOOST_TEST(rd.feed("*4\r\n", 4) == too_large);

  reader bulk(small);
  BOOST_TEST(bulk.feed("$11\r\n", 5) == too_large);
  // A move keeps the limits (the callbacks find them through a pointer hiredis holds).
  reader moved_from(small);
  reader moved(std::move(moved_from));
  BOOST_TEST(moved.feed("*1\r\n*4\r\n", 8) == too_large);
  reader assigned;
  assigned = reader(small);
  BOOST_TEST(assigned.feed("$11\r\n", 5) == too_large);
  // reset forgets the error, keeps the limits.
  assigned.reset();
  BOOST_TEST(!assigned.failed());
  BOOST_TEST(assigned.error_message().empty());
  BOOST_TEST(assigned.feed("*4\r\n", 4) == too_large);
}

BOOST_AUTO_TEST_CASE(endless_lines_are_refused) {
  // No CRLF ever comes: hiredis would buffer all of it, looking for one (from the line's start
  // again on every feed, so in time quadratic in its length).
  for (std::string_view type : {"+", "-", ":", "$1x", "*1x"}) {
    std::string bytes(type);
    bytes += std::string(3 * MiB, 'a');
    expect_refused(bytes, too_large);
  }
  // Length lines of digits without end: beyond the limit, or (leading zeros) too many digits.
  expect_refused("$" + std::string(3 * MiB, '1'), too_large);
  expect_refused("*" + std::string(3 * MiB, '1'), too_large);
  expect_refused("$" + std::string(3 * MiB, '0'), protocol);
  expect_refused("*" + std::string(3 * MiB, '0'), protocol);

  // Refused after max_line_length (64 KiB), well before the bulk limit: hiredis's scans of a
  // 16 MiB line fed in 64 KiB pieces took 18 s of CPU here (4 MiB: 1.1 s).
  const std::string endless = "+" + std::string(16 * MiB, 'a');
  const auto start = std::chrono::steady_clock::now();
  reader rd;
  BOOST_TEST(feed_all(rd, endless) == too_large);
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(took < std::chrono::milliseconds(500));
  BOOST_TEST(rd.error_message().find("max_line_length") != std::string_view::npos,
             rd.error_message());
  BOOST_TEST(rd.buffer_capacity() < 1 * MiB);

  reply_limits small;
  small.max_line_length = 64;
  reader configured(small);
  BOOST_TEST(!feed_all(configured, "+" + std::string(63, 'a')));
  BOOST_TEST(feed_all(configured, std::string(2, 'a')) == too_large);

  // A bulk string longer than announced is a protocol error (no CRLF where it should end);
  // hiredis 0.14 alone would cut it and read the rest as the next replies.
  expect_refused("$3\r\nabcdef\r\n", protocol);
  expect_refused("*2\r\n$1\r\nabc\r\n:1\r\n", protocol);
  expect_refused("$3\r\nabc:1\r\n", protocol);
}

// Found by test/fuzz/resp.cpp (corpus/resp/regress-*): the limits gave another verdict when a
// line arrived whole in one read than when it arrived in pieces. A count beyond 2^63 was
// reply_too_large in pieces but hiredis's protocol_error whole; a status line longer than
// max_line_length was refused in pieces but accepted whole. Every read now gives the same.
BOOST_AUTO_TEST_CASE(limits_do_not_depend_on_how_bytes_arrive) {
  const auto too_large = make_error_code(client_error::reply_too_large);
  const auto protocol = make_error_code(client_error::protocol_error);
  reply_limits small;
  small.max_line_length = 64;
  struct expectation {
    std::string bytes;
    boost::system::error_code want;  // empty: accepted
    reply_limits limits;
  };
  const std::vector<expectation> cases = {
      {"*" + std::string(24, '9') + "\r\n", too_large, {}},
      {"$" + std::string(24, '9') + "\r\n", too_large, {}},
      {"*00000000000000000000009\r\n", protocol, {}},
      {"$05\r\nhello\r\n", protocol, {}},
      {"+" + std::string(65, 'a') + "\r\n", too_large, small},
      {"-" + std::string(100, 'e') + "\r\n", too_large, small},
      {"*1\r\n+" + std::string(65, 'a') + "\r\n", too_large, small},
      {"+" + std::string(64, 'a') + "\r\n", {}, small},
      {"$3\r\na\nb\r\n+OK\r\n", {}, {}},
  };
  for (const expectation& c : cases) {
    for (std::size_t step : {c.bytes.size(), std::size_t{1}, std::size_t{2}, std::size_t{7}}) {
      reader rd(c.limits);
      BOOST_TEST(feed_all(rd, c.bytes, step) == c.want, c.bytes.substr(0, 30) << " step " << step);
    }
  }
}

BOOST_AUTO_TEST_CASE(resp3_aggregates_are_refused) {
  // The client speaks RESP2: maps, sets, pushes and attributes (and RESP3's other types) are
  // not RESP2, whatever count they announce.
  for (std::string_view bytes :
       {"%4000000\r\n", "~4000000\r\n", ">4000000\r\n", "|4000000\r\n", "*1\r\n%4000000\r\n",
        "_\r\n", ",1.5\r\n", "#t\r\n", "(12345678901234567890\r\n", "=15\r\ntxt:hello world\r\n",
        "!100000000000\r\n"}) {
    expect_refused(bytes, protocol);
  }
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_refused) {
  // hiredis parses with a fixed stack of 9 tasks: no recursion, in it or in ours.
  expect_refused(repeat("*1\r\n", 100000), protocol);
  expect_refused(repeat("*1048576\r\n", 9), protocol);
  // Eight arrays deep is the most it takes (its message counts from 0: "depth > 7").
  expect_refused(repeat("*1\r\n", 9) + ":1\r\n", protocol);
  const auto eight = parse(repeat("*1\r\n", 8) + ":1\r\n");
  BOOST_TEST_REQUIRE(eight.size() == 1u);
  const reply* r = &eight[0];
  for (int depth = 0; depth < 8; ++depth) {
    BOOST_TEST_REQUIRE(r->elements.size() == 1u);
    r = &r->elements[0];
  }
  BOOST_TEST((*r == integer(1)));
}

BOOST_AUTO_TEST_CASE(negative_and_garbage_lengths) {
  for (std::string_view bytes :
       {"$-2\r\n", "*-2\r\n", "$-1000\r\n", "*-9223372036854775808\r\n", "$+5\r\nhello\r\n",
        "$ 5\r\n", "$5x\r\n", "*\r\n", "$\r\n", "*1x\r\n", "*0x10\r\n", ":\r\n"}) {
    expect_refused(bytes, protocol);
  }
  // Beyond long long, hence beyond the limits: refused as too large (before hiredis would call
  // it a bad length).
  expect_refused("*99999999999999999999\r\n", too_large);
  expect_refused("$99999999999999999999\r\n", too_large);
  // -1 is nil, for both.
  const auto nils = parse("$-1\r\n*-1\r\n");
  BOOST_TEST_REQUIRE(nils.size() == 2u);
  BOOST_TEST((nils[0].is_nil() && nils[1].is_nil()));
}

BOOST_AUTO_TEST_CASE(a_large_reply_gives_its_buffer_back) {
  std::string value(10 * MiB, 'v');
  const std::string bytes = "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  reader rd;
  // All but the end: the buffer holds the value so far.
  BOOST_TEST_REQUIRE(!feed_all(rd, std::string_view(bytes).substr(0, bytes.size() - 10)));
  BOOST_TEST(rd.buffer_capacity() >= 9 * MiB);
  // The rest, and the start of the next reply: the big buffer goes, the partial reply stays.
  const std::string tail = bytes.substr(bytes.size() - 10) + "$5\r\nab";
  BOOST_TEST_REQUIRE(!rd.feed(tail.data(), tail.size()));
  BOOST_TEST(rd.buffer_capacity() <= reader::buffer_keep);
  auto r = rd.next();
  BOOST_TEST_REQUIRE((r && *r));
  BOOST_TEST(((*r)->str == value));
  BOOST_TEST_REQUIRE(!rd.feed("cde\r\n", 5));
  r = rd.next();
  BOOST_TEST_REQUIRE((r && *r));
  BOOST_TEST((**r == str("abcde")));
  // Small replies keep a small buffer.
  BOOST_TEST_REQUIRE(!feed_all(rd, repeat("$4\r\nabcd\r\n", 20000)));
  BOOST_TEST(rd.buffer_capacity() <= reader::buffer_keep);
}

BOOST_AUTO_TEST_SUITE_END()
