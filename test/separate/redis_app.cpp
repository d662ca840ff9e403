// SPDX-License-Identifier: BSL-1.0
// A program that uses the Redis client compiled separately: this unit sees only declarations
// (WEBSESSION_SEPARATE_COMPILATION), redis_src.cpp holds the definitions. It links only if each
// definition exists exactly once, and runs a connection and a client against a real
// redis-server on a free loopback port.
#define BOOST_TEST_MODULE websession_redis_separate
#define BOOST_TEST_NO_MAIN
#include "../redis/server_fixture.hpp"

#include <websession/redis/client.hpp>
#include <websession/redis/connection.hpp>

#include <boost/asio/detached.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>

#if !defined(WEBSESSION_SEPARATE_COMPILATION)
#error "this program checks the separately compiled client: build it with WEBSESSION_SEPARATE_COMPILATION"
#endif

using namespace redis_test;
namespace redis = websession::redis;
using websession::test::tuple_token;

BOOST_AUTO_TEST_CASE(separately_compiled_client_talks_to_redis) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    redis::config cfg;
    cfg.port = server.port();
    auto conn = std::make_shared<redis::connection>(ioc.get_executor(), cfg);
    conn->async_run(asio::detached);
    redis::request set;
    set.push("SET", "separate", "yes");
    set.push("GET", "separate");
    auto [ec, replies] = co_await conn->async_exec(set, tuple_token);
    BOOST_TEST_REQUIRE(!ec, ec.message() << "; " << conn->last_error_message());
    BOOST_TEST(replies.at(1).str == "yes");
    redis::client client(conn);
    BOOST_TEST(client.connection() == conn.get());
    BOOST_TEST(client.master_count() == 1u);
    redis::request get;
    get.push("GET", "separate");
    auto [ec2, replies2] = co_await client.async_exec(get, tuple_token);
    BOOST_TEST_REQUIRE(!ec2, ec2.message());
    BOOST_TEST(replies2.at(0).str == "yes");
    BOOST_TEST(client.topology().server.port == server.port());
    client.cancel();
  });
}

int main(int argc, char* argv[]) {
  if (const int skip = redis_test::gate_exit_code(); skip >= 0) return skip;
  return boost::unit_test::unit_test_main(&init_unit_test, argc, argv);
}
