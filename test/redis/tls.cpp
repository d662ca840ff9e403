// SPDX-License-Identifier: BSL-1.0
// TLS tests of websession/redis/connection.hpp: a CA and a server certificate made with the
// openssl CLI, a redis-server with only a TLS port, and rediss:// connections that must verify
// the chain and the name (and fail clearly when they cannot).
#include "server_fixture.hpp"
#include "tls_fixture.hpp"

#include <websession/redis/connection.hpp>
#include <websession/redis/error.hpp>

#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

namespace {

namespace asio = boost::asio;
namespace redis = websession::redis;
using namespace std::chrono_literals;
using boost::system::error_code;
using redis::reply;
using redis::request;
using redis_test::redis_server;
using redis_test::run_test;
using redis_test::test_pki;

// Starts a TLS-only server, or explains why it cannot (a redis-server built without TLS).
std::unique_ptr<redis_server> start_tls_server(const test_pki& pki, std::string& why_not) {
  redis_server::options opts;
  opts.tls = true;
  opts.args = {"--tls-cert-file",  pki.file("server.crt"), "--tls-key-file",
               pki.file("server.key"), "--tls-ca-cert-file", pki.file("ca.crt"),
               "--tls-auth-clients", "no"};
  try {
    return std::make_unique<redis_server>(opts);
  } catch (const std::exception& e) {
    why_not = e.what();
    return nullptr;
  }
}

asio::awaitable<std::pair<error_code, std::vector<reply>>> exec(redis::connection& c,
                                                                const request& r) {
  error_code ec;
  auto replies = co_await c.async_exec(r, asio::redirect_error(asio::use_awaitable, ec));
  co_return std::pair{ec, std::move(replies)};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_tls)

BOOST_AUTO_TEST_CASE(rediss_round_trip_and_verification) {
  test_pki pki;
  std::string why_not;
  auto server = start_tls_server(pki, why_not);
  if (!server) {
    BOOST_WARN_MESSAGE(false, "SKIPPED: redis-server could not start with --tls-port (built "
                              "without TLS?): "
                                  << why_not);
    return;
  }
  const std::string port = std::to_string(server->port());
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = redis::parse_url("rediss://127.0.0.1:" + port);
    BOOST_TEST_REQUIRE(cfg.has_value());
    BOOST_TEST(cfg->tls);
    cfg->ca_file = pki.file("ca.crt");
    redis::connection conn(ioc.get_executor(), *cfg);
    conn.async_run(asio::detached);

    const std::string big(1 << 20, 'z');
    request r;
    r.push("SET", "secret", big).push("GET", "secret").push("PING");
    auto [ec, replies] = co_await exec(conn, r);
    BOOST_TEST_REQUIRE(!ec, ec.message() << " / " << conn.last_error_message());
    BOOST_TEST_REQUIRE(replies.size() == 3u);
    BOOST_TEST(replies[0].str == "OK");
    BOOST_TEST((replies[1].str == big));
    BOOST_TEST(replies[2].str == "PONG");

    // By host name, which the certificate also names.
    auto by_name = *cfg;
    by_name.host = "localhost";
    redis::connection named(ioc.get_executor(), by_name);
    named.async_run(asio::detached);
    request ping;
    ping.push("PING");
    std::tie(ec, replies) = co_await exec(named, ping);
    BOOST_TEST(!ec, ec.message() << " / " << named.last_error_message());

    // A CA that did not sign the server's certificate: no connection, a clear error.
    auto wrong_ca = *cfg;
    wrong_ca.ca_file = pki.file("other-ca.crt");
    wrong_ca.request_timeout = 300ms;
    redis::connection untrusted(ioc.get_executor(), wrong_ca);
    untrusted.async_run(asio::detached);
    std::tie(ec, replies) = co_await exec(untrusted, ping);
    BOOST_TEST(ec == redis::error::not_connected, ec.message());
    BOOST_TEST(untrusted.last_error_message().find("certificate verify failed") !=
                   std::string::npos,
               untrusted.last_error_message());

    // The right CA but a name the certificate does not carry.
    auto wrong_name = *cfg;
    wrong_name.tls_server_name = "redis.example.com";
    wrong_name.request_timeout = 300ms;
    redis::connection misnamed(ioc.get_executor(), wrong_name);
    misnamed.async_run(asio::detached);
    std::tie(ec, replies) = co_await exec(misnamed, ping);
    BOOST_TEST(ec == redis::error::not_connected, ec.message());
    BOOST_TEST(misnamed.last_error_message().find("TLS handshake") != std::string::npos,
               misnamed.last_error_message());

    // Plain TCP against the TLS port fails (and does not hang).
    auto plain = *cfg;
    plain.tls = false;
    plain.request_timeout = 300ms;
    plain.connect_timeout = 200ms;
    redis::connection cleartext(ioc.get_executor(), plain);
    cleartext.async_run(asio::detached);
    std::tie(ec, replies) = co_await exec(cleartext, ping);
    BOOST_TEST(ec == redis::error::not_connected, ec.message());

    conn.cancel();
    named.cancel();
    untrusted.cancel();
    misnamed.cancel();
    cleartext.cancel();
  });
}

// The server dies and comes back: the TLS connection is rebuilt from scratch (new handshake).
BOOST_AUTO_TEST_CASE(tls_reconnects_after_server_restart) {
  test_pki pki;
  std::string why_not;
  auto server = start_tls_server(pki, why_not);
  if (!server) {
    BOOST_WARN_MESSAGE(false, "SKIPPED: redis-server without TLS: " << why_not);
    return;
  }
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    redis::config cfg;
    cfg.port = server->port();
    cfg.tls = true;
    cfg.ca_file = pki.file("ca.crt");
    cfg.reconnect_max = 100ms;
    redis::connection conn(ioc.get_executor(), cfg);
    conn.async_run(asio::detached);
    request ping;
    ping.push("PING");
    auto [ec, replies] = co_await exec(conn, ping);
    BOOST_TEST_REQUIRE(!ec, ec.message());
    server->kill_hard();
    server->start();
    BOOST_TEST(co_await redis_test::wait_until(
        [&] { return conn.connected() && conn.connect_count() == 2u; }, 3s));
    std::tie(ec, replies) = co_await exec(conn, ping);
    BOOST_TEST(!ec, ec.message());
    conn.cancel();
  });
}

BOOST_AUTO_TEST_SUITE_END()
