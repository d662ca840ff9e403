// SPDX-License-Identifier: BSL-1.0
// Tests of websession/redis/config.hpp: redis://, rediss://, cluster and sentinel URLs,
// percent-decoding, IPv6 hosts, and a clear error for each kind of malformed URL.
#include <websession/redis/config.hpp>

#include <boost/test/unit_test.hpp>

#include <string>

namespace {

using websession::redis::address;
using websession::redis::config;
using websession::redis::deployment;
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

BOOST_AUTO_TEST_CASE(cluster_urls) {
  auto c = parse_ok("redis-cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002,node-4");
  BOOST_TEST((c.deployment == deployment::cluster));
  BOOST_TEST(!c.tls);
  BOOST_TEST_REQUIRE(c.cluster.seeds.size() == 4u);
  BOOST_TEST((c.cluster.seeds[0] == address{"10.0.0.1", 7000}));
  BOOST_TEST((c.cluster.seeds[1] == address{"10.0.0.2", 7001}));
  BOOST_TEST((c.cluster.seeds[2] == address{"::1", 7002}));
  BOOST_TEST((c.cluster.seeds[3] == address{"node-4", 6379}));
  c = parse_ok("rediss-cluster://app:p%40ss@h:7000/0");
  BOOST_TEST((c.deployment == deployment::cluster));
  BOOST_TEST(c.tls);
  BOOST_TEST(c.username == "app");
  BOOST_TEST(c.password == "p@ss");
  BOOST_TEST(c.cluster.seeds.size() == 1u);
  BOOST_TEST(parse_ok("REDIS-CLUSTER://h").cluster.seeds.size() == 1u);
}

BOOST_AUTO_TEST_CASE(sentinel_urls) {
  auto c = parse_ok("redis-sentinel://:pw@s1:26380,s2,[fe80::1%25eth0]:26381/3#mymaster");
  BOOST_TEST((c.deployment == deployment::sentinel));
  BOOST_TEST(c.password == "pw");
  BOOST_TEST(c.database == 3);
  BOOST_TEST(c.sentinel.master_name == "mymaster");
  BOOST_TEST_REQUIRE(c.sentinel.sentinels.size() == 3u);
  BOOST_TEST((c.sentinel.sentinels[0] == address{"s1", 26380}));
  BOOST_TEST((c.sentinel.sentinels[1] == address{"s2", 26379}));  // the sentinel port by default
  BOOST_TEST((c.sentinel.sentinels[2] == address{"fe80::1%eth0", 26381}));
  // The URL's credentials are the data nodes'; the sentinels' are set separately.
  BOOST_TEST(c.sentinel.password.empty());
  BOOST_TEST(!c.tls);
  BOOST_TEST(!c.sentinel.tls);
  c = parse_ok("rediss-sentinel://s1#my%20master");
  BOOST_TEST(c.tls);
  BOOST_TEST(c.sentinel.tls);
  BOOST_TEST(c.sentinel.master_name == "my master");
  // A '#' inside the password is not the master name.
  c = parse_ok("redis-sentinel://u:a#b@s1#m");
  BOOST_TEST(c.password == "a#b");
  BOOST_TEST(c.sentinel.master_name == "m");
}

BOOST_AUTO_TEST_CASE(malformed_cluster_and_sentinel_urls) {
  expect_error("redis-clusters://h", url_error::bad_scheme);
  expect_error("redis-cluster://", url_error::missing_host);
  expect_error("redis-cluster://h1,,h2", url_error::missing_host);
  expect_error("redis-cluster://h1,", url_error::missing_host);
  expect_error("redis-cluster://h1:0,h2", url_error::bad_port);
  expect_error("redis-cluster://h1,[::1", url_error::bad_host);
  expect_error("redis-cluster://h/1", url_error::cluster_database);
  expect_error("redis-cluster://h#m", url_error::unsupported_query);
  expect_error("redis-cluster://h?x=1", url_error::unsupported_query);
  expect_error("redis-sentinel://s1", url_error::missing_master_name);
  expect_error("redis-sentinel://s1#", url_error::missing_master_name);
  expect_error("redis-sentinel://s1/x#m", url_error::bad_database);
  expect_error("redis-sentinel://s1#m%zz", url_error::bad_escape);
  expect_error("redis://h1,h2", url_error::multiple_hosts);
  const auto r = parse_url("redis-sentinel://s1");
  BOOST_TEST_REQUIRE(!r);
  BOOST_TEST(r.error().message().find("master-name") != std::string::npos);
  const auto d = parse_url("redis-cluster://h/2");
  BOOST_TEST_REQUIRE(!d);
  BOOST_TEST(d.error().message().find("database") != std::string::npos);
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
