// SPDX-License-Identifier: BSL-1.0
// The one place where Redis client errors become session errors (redis_store::session_error),
// value by value, and the same translation seen through a live store: the client reports
// redis::error codes, the store websession::error codes.

#include "../support/redis.hpp"
#include "server_fixture.hpp"

#include <websession/error.hpp>
#include <websession/redis/connection.hpp>
#include <websession/redis/error.hpp>
#include <websession/store/redis.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace {

namespace asio = boost::asio;
namespace redis = websession::redis;
using boost::system::error_code;
using redis_test::redis_server;
using redis_test::run_test;
using redis_test::sleep_for;
using redis_test::wait_until;
using websession::redis_store;
using websession::store_write;
using namespace std::chrono_literals;

using websession::test::connect;
using websession::test::tuple_token;

error_code mapped(redis::error e) { return redis_store::session_error(make_error_code(e)); }

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_store_errors)

BOOST_AUTO_TEST_CASE(client_errors_map_to_session_errors) {
  using websession::error;
  BOOST_TEST((mapped(redis::error::not_connected) == error::store_unavailable));
  BOOST_TEST((mapped(redis::error::connection_lost) == error::store_unavailable));
  BOOST_TEST((mapped(redis::error::too_many_redirects) == error::store_unavailable));
  BOOST_TEST((mapped(redis::error::timeout) == error::timeout));
  BOOST_TEST((mapped(redis::error::replicas_not_confirmed) == error::timeout));
  BOOST_TEST((mapped(redis::error::internal) == error::internal));
  // A value outside the enum (a newer client's) is still a store failure, never success.
  BOOST_TEST((redis_store::session_error(error_code(99, redis::error_category())) ==
              error::store_unavailable));
  // Codes of other categories pass unchanged: a cancellation stays a cancellation.
  const error_code aborted = asio::error::operation_aborted;
  BOOST_TEST((redis_store::session_error(aborted) == aborted));
  const error_code conflict = make_error_code(error::conflict);
  BOOST_TEST((redis_store::session_error(conflict) == conflict));
  BOOST_TEST(!redis_store::session_error(error_code{}));
}

// The client's codes are its own: distinct from the session layer's and from each other, in a
// category of their own.
BOOST_AUTO_TEST_CASE(client_error_category) {
  const error_code timeout = make_error_code(redis::error::timeout);
  BOOST_TEST(std::string(timeout.category().name()) == "websession.redis");
  BOOST_TEST((timeout != make_error_code(websession::error::timeout)));
  BOOST_TEST(std::string(make_error_code(redis::client_error::protocol_error).category().name()) ==
             "websession.redis.client");
  std::set<std::string> messages;
  for (int v = 1; v <= static_cast<int>(redis::error::internal); ++v) {
    const std::string m = error_code(v, redis::error_category()).message();
    BOOST_TEST(m.find("unknown") == std::string::npos, v << ": " << m);
    messages.insert(m);
  }
  BOOST_TEST(messages.size() == static_cast<std::size_t>(redis::error::internal));
}

// Nothing listens: the client says not_connected, the store store_unavailable.
BOOST_AUTO_TEST_CASE(not_connected_is_store_unavailable) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto conn = connect(ioc, redis_test::free_port(), 200ms);
    redis_store store(conn);
    redis::request get(true);
    get.push("GET", "k");
    auto [ec, replies] = co_await conn->async_exec(get, tuple_token);
    BOOST_TEST((ec == redis::error::not_connected), ec.message());
    auto loaded = co_await store.load("k");
    BOOST_TEST_REQUIRE(!loaded.has_value());
    BOOST_TEST((loaded.error() == websession::error::store_unavailable), loaded.error().message());
    auto pinged = co_await store.ping();
    BOOST_TEST((pinged == websession::error::store_unavailable), pinged.message());
    conn->cancel();
  });
}

// A server that stops answering (SIGSTOP) while connected: timeout on both levels.
BOOST_AUTO_TEST_CASE(timeout_is_timeout) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto conn = connect(ioc, server.port(), 300ms);
    BOOST_TEST_REQUIRE(co_await wait_until([&] { return conn->connected(); }, 5s));
    redis_store store(conn);
    server.pause();
    redis::request get(true);
    get.push("GET", "k");
    auto [ec, replies] = co_await conn->async_exec(get, tuple_token);
    BOOST_TEST((ec == redis::error::timeout), ec.message());
    auto loaded = co_await store.load("k");
    server.resume();
    BOOST_TEST_REQUIRE(!loaded.has_value());
    BOOST_TEST((loaded.error() == websession::error::timeout), loaded.error().message());
    conn->cancel();
  });
}

// A write in flight when the server dies: connection_lost from the client (it may have run),
// store_unavailable from the store.
BOOST_AUTO_TEST_CASE(connection_lost_is_store_unavailable) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto conn = connect(ioc, server.port(), 5s);
    BOOST_TEST_REQUIRE(co_await wait_until([&] { return conn->connected(); }, 5s));
    redis_store store(conn);
    server.pause();  // both requests are written, neither is answered
    redis::request incr;  // not idempotent: never sent twice
    incr.push("INCR", "n");
    std::optional<error_code> raw;
    std::optional<error_code> stored;
    std::atomic<int> done{0};
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          auto [ec, replies] = co_await conn->async_exec(incr, tuple_token);
          raw = ec;
          ++done;
        },
        asio::detached);
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          auto made = co_await store.insert("k", store_write{"v", 60s, ""});
          stored = made ? error_code{} : made.error();
          ++done;
        },
        asio::detached);
    co_await sleep_for(150ms);
    BOOST_TEST(done.load() == 0);
    server.kill_hard();
    BOOST_TEST_REQUIRE(co_await wait_until([&] { return done.load() == 2; }, 3s));
    BOOST_TEST((*raw == redis::error::connection_lost), raw->message());
    BOOST_TEST((*stored == websession::error::store_unavailable), stored->message());
    conn->cancel();
  });
}

// A durable write without the replica it asks for: replicas_not_confirmed from the client,
// timeout from the store (the write is on the master, and may not survive a failover).
BOOST_AUTO_TEST_CASE(replicas_not_confirmed_is_timeout) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto conn = connect(ioc, server.port());
    websession::redis_store_options opts;
    opts.wait_replicas = 1;
    opts.wait_timeout = 50ms;
    redis_store store(conn, opts);
    redis::request set;
    set.push("SET", "raw", "v").wait_for_replicas(1, 50ms);
    auto [ec, replies] = co_await conn->async_exec(set, tuple_token);
    BOOST_TEST((ec == redis::error::replicas_not_confirmed), ec.message());
    auto made = co_await store.insert("k", store_write{"v", 60s, ""});
    BOOST_TEST_REQUIRE(!made.has_value());
    BOOST_TEST((made.error() == websession::error::timeout), made.error().message());
    conn->cancel();
  });
}

BOOST_AUTO_TEST_SUITE_END()
