// SPDX-License-Identifier: BSL-1.0
// The connection set-up (redis/detail/handshake.hpp) without a server: which commands go out
// for which settings, how each refusal is reported, and for Sentinel the ROLE probe that can
// refuse a server before it receives the data credentials.
#include <websession/redis/detail/handshake.hpp>

#include "replies.hpp"

#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace {

namespace redis = websession::redis;
namespace rd = websession::redis::detail;
using boost::system::error_code;

std::string commands(const redis::request& r) { return std::string(r.payload()); }

error_code code(redis::client_error e) { return make_error_code(e); }

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_handshake)

BOOST_AUTO_TEST_CASE(what_is_sent_for_which_settings) {
  redis::config c;
  c.client_name.clear();
  {
    const rd::handshake h(c, false);
    BOOST_TEST(commands(h.hello_request(false)) == "*1\r\n$4\r\nPING\r\n");
  }
  c.password = "pw";
  c.database = 3;
  c.client_name = "app";
  {
    const rd::handshake h(c, false);
    redis::request want;
    want.push("AUTH", "pw");
    want.push("SELECT", 3);
    want.push("CLIENT", "SETNAME", "app");
    BOOST_TEST(commands(h.hello_request(false)) == commands(want));
    BOOST_TEST(!h.probes());
  }
  c.username = "u";
  {
    const rd::handshake h(c, true);
    BOOST_TEST(h.probes());
    redis::request want;
    want.push("AUTH", "u", "pw");
    want.push("SELECT", 3);
    want.push("CLIENT", "SETNAME", "app");
    // After a probe that proved a master: no second ROLE.
    BOOST_TEST(commands(h.hello_request(true)) == commands(want));
    // After NOAUTH: ROLE right behind the credentials.
    want.push("ROLE");
    BOOST_TEST(commands(h.hello_request(false)) == commands(want));
  }
  {
    redis::config bare;
    bare.client_name.clear();
    const rd::handshake h(bare, true);
    BOOST_TEST(h.hello_request(true).empty());  // nothing left to send after the probe
    BOOST_TEST(commands(h.hello_request(false)) == "*1\r\n$4\r\nROLE\r\n");
  }
}

BOOST_AUTO_TEST_CASE(refusals_name_their_command) {
  redis::config c;
  c.password = "pw";
  c.database = 2;
  c.client_name = "app";
  const rd::handshake h(c, false);
  const std::string where = "h:1";
  BOOST_TEST(!h.check_hello(redis_test::parse_replies("+OK\r\n+OK\r\n+OK\r\n"), false, where).first);
  auto bad = h.check_hello(redis_test::parse_replies("-WRONGPASS invalid\r\n+OK\r\n+OK\r\n"), false, where);
  BOOST_TEST(bad.first == code(redis::client_error::auth_failed));
  BOOST_TEST(bad.second == "AUTH failed: WRONGPASS invalid");
  bad = h.check_hello(redis_test::parse_replies("+OK\r\n-ERR DB index is out of range\r\n+OK\r\n"), false, where);
  BOOST_TEST(bad.first == code(redis::client_error::select_failed));
  bad = h.check_hello(redis_test::parse_replies("+OK\r\n-NOAUTH Authentication required.\r\n+OK\r\n"), false, where);
  BOOST_TEST(bad.first == code(redis::client_error::auth_failed));  // whatever command met it
  bad = h.check_hello(redis_test::parse_replies("+OK\r\n+OK\r\n-ERR spaces\r\n"), false, where);
  BOOST_TEST(bad.first == code(redis::client_error::setname_failed));
  redis::config bare;
  bare.client_name.clear();
  const rd::handshake ping(bare, false);
  bad = ping.check_hello(redis_test::parse_replies("-NOAUTH Authentication required.\r\n"), false, where);
  BOOST_TEST(bad.first == code(redis::client_error::auth_failed));
  BOOST_TEST(bad.second.find("PING failed") == 0u);
}

BOOST_AUTO_TEST_CASE(sentinel_probe_refuses_before_credentials) {
  redis::config c;
  c.password = "secret";
  const rd::handshake h(c, true);
  const std::string where = "10.0.0.9:6379";
  auto [v, why] = h.check_probe(redis_test::parse_replies("*3\r\n$5\r\nslave\r\n$4\r\nhost\r\n:1\r\n")[0], where);
  BOOST_TEST((v == rd::handshake::probe_result::refused));
  BOOST_TEST(why.first == code(redis::client_error::not_master));
  BOOST_TEST(why.second.find(where) == 0u);
  std::tie(v, why) = h.check_probe(redis_test::parse_replies("*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n")[0], where);
  BOOST_TEST((v == rd::handshake::probe_result::master));
  std::tie(v, why) = h.check_probe(redis_test::parse_replies("-NOAUTH Authentication required.\r\n")[0], where);
  BOOST_TEST((v == rd::handshake::probe_result::needs_auth));
  std::tie(v, why) = h.check_probe(redis_test::parse_replies("-ERR unknown command\r\n")[0], where);
  BOOST_TEST((v == rd::handshake::probe_result::refused));
  // After NOAUTH the credentials go first and ROLE is checked behind them.
  const auto after = h.check_hello(redis_test::parse_replies("+OK\r\n+OK\r\n*3\r\n$5\r\nslave\r\n$1\r\nh\r\n:1\r\n"),
                                   false, where);
  BOOST_TEST(after.first == code(redis::client_error::not_master));
  BOOST_TEST(commands(rd::handshake::probe_request()) == "*1\r\n$4\r\nROLE\r\n");
}

BOOST_AUTO_TEST_SUITE_END()
