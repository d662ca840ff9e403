// Tests of websession/redis/config.hpp: redis:// and rediss:// URLs, percent-decoding, IPv6
// hosts, and a clear error for each kind of malformed URL.
#include <websession/redis/config.hpp>

#include <boost/test/unit_test.hpp>

#include <string>

namespace {

using websession::redis::config;
using websession::redis::parse_url;
using websession::redis::url_error;

config parse_ok(std::string_view url) {
  auto r = parse_url(url);
  BOOST_TEST_REQUIRE(r.has_value(), url << ": " << r.error().message());
  return *r;
}

void expect_error(std::string_view url, url_error e) {
  auto r = parse_url(url);
  BOOST_TEST_REQUIRE(!r.has_value(), url << " parsed");
  BOOST_TEST(r.error() == make_error_code(e), url << ": " << r.error().message());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_config)

BOOST_AUTO_TEST_CASE(defaults) {
  const config c;
  BOOST_TEST(c.host == "127.0.0.1");
  BOOST_TEST(c.port == 6379);
  BOOST_TEST(c.database == 0);
  BOOST_TEST(c.client_name == "websession");
  BOOST_TEST(!c.tls);
  BOOST_TEST(c.verify_peer);
  BOOST_TEST(c.request_timeout.count() > 0);
  BOOST_TEST(c.reconnect_min <= c.reconnect_max);
}

BOOST_AUTO_TEST_CASE(host_only) {
  const auto c = parse_ok("redis://cache.internal");
  BOOST_TEST(c.host == "cache.internal");
  BOOST_TEST(c.port == 6379);
  BOOST_TEST(c.database == 0);
  BOOST_TEST(c.username.empty());
  BOOST_TEST(c.password.empty());
  BOOST_TEST(!c.tls);
}

BOOST_AUTO_TEST_CASE(everything) {
  const auto c = parse_ok("rediss://alice:s3cret@redis.example.com:6380/7");
  BOOST_TEST(c.tls);
  BOOST_TEST(c.username == "alice");
  BOOST_TEST(c.password == "s3cret");
  BOOST_TEST(c.host == "redis.example.com");
  BOOST_TEST(c.port == 6380);
  BOOST_TEST(c.database == 7);
}

BOOST_AUTO_TEST_CASE(password_only_and_user_only) {
  auto c = parse_ok("redis://:pw@h");
  BOOST_TEST(c.username.empty());
  BOOST_TEST(c.password == "pw");
  c = parse_ok("redis://bob@h");
  BOOST_TEST(c.username == "bob");
  BOOST_TEST(c.password.empty());
  c = parse_ok("redis://bob:@h");
  BOOST_TEST(c.username == "bob");
  BOOST_TEST(c.password.empty());
}

BOOST_AUTO_TEST_CASE(percent_decoding) {
  const auto c = parse_ok("redis://us%40er:p%3Aa%2fss%25%00x@h");
  BOOST_TEST(c.username == "us@er");
  BOOST_TEST(c.password == std::string("p:a/ss%\0x", 9));
}

BOOST_AUTO_TEST_CASE(raw_at_and_slash_in_password) {
  const auto c = parse_ok("redis://:p@ss/w?rd@host:1234/2");
  BOOST_TEST(c.password == "p@ss/w?rd");
  BOOST_TEST(c.host == "host");
  BOOST_TEST(c.port == 1234);
  BOOST_TEST(c.database == 2);
}

BOOST_AUTO_TEST_CASE(ipv6) {
  auto c = parse_ok("redis://[::1]:6390/3");
  BOOST_TEST(c.host == "::1");
  BOOST_TEST(c.port == 6390);
  BOOST_TEST(c.database == 3);
  c = parse_ok("redis://[fe80::1%25eth0]");
  BOOST_TEST(c.host == "fe80::1%eth0");
  BOOST_TEST(c.port == 6379);
}

BOOST_AUTO_TEST_CASE(scheme_is_case_insensitive_and_slash_is_db0) {
  auto c = parse_ok("REDISS://h/");
  BOOST_TEST(c.tls);
  BOOST_TEST(c.database == 0);
  c = parse_ok("Redis://h:1");
  BOOST_TEST(c.port == 1);
  c = parse_ok("redis://h/2147483647");
  BOOST_TEST(c.database == 2147483647);
}

BOOST_AUTO_TEST_CASE(malformed) {
  expect_error("", url_error::bad_scheme);
  expect_error("localhost:6379", url_error::bad_scheme);
  expect_error("http://h", url_error::bad_scheme);
  expect_error("unix:///tmp/redis.sock", url_error::bad_scheme);
  expect_error("redis://", url_error::missing_host);
  expect_error("redis://:6379", url_error::missing_host);
  expect_error("redis://user:pw@/1", url_error::missing_host);
  expect_error("redis://[::1", url_error::bad_host);
  expect_error("redis://[::1]x", url_error::bad_host);
  expect_error("redis://h:", url_error::bad_port);
  expect_error("redis://h:0", url_error::bad_port);
  expect_error("redis://h:65536", url_error::bad_port);
  expect_error("redis://h:-1", url_error::bad_port);
  expect_error("redis://h:63 79", url_error::bad_port);
  expect_error("redis://h:99999999999999999999999", url_error::bad_port);
  expect_error("redis://h/x", url_error::bad_database);
  expect_error("redis://h/-1", url_error::bad_database);
  expect_error("redis://h/1/2", url_error::bad_database);
  expect_error("redis://h/2147483648", url_error::bad_database);
  expect_error("redis://:p%zz@h", url_error::bad_escape);
  expect_error("redis://:p%4@h", url_error::bad_escape);
  expect_error("redis://:p%@h", url_error::bad_escape);
  expect_error("redis://h/0?timeout=5", url_error::unsupported_query);
  expect_error("redis://h#frag", url_error::unsupported_query);
}

BOOST_AUTO_TEST_CASE(messages_name_the_problem) {
  auto r = parse_url("redis://h:70000");
  BOOST_TEST_REQUIRE(!r);
  BOOST_TEST(r.error().message().find("port") != std::string::npos);
  BOOST_TEST(std::string(r.error().category().name()) == "websession.redis.url");
  r = parse_url("redis://h/abc");
  BOOST_TEST_REQUIRE(!r);
  BOOST_TEST(r.error().message().find("database") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
