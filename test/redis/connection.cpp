// SPDX-License-Identifier: BSL-1.0
// Integration tests of websession/redis/connection.hpp against a private redis-server: round
// trips, pipelining, 500 concurrent coroutines, AUTH and ACL users, SELECT, and every way a
// connection can fail (server killed, client killed, server hung, slow command, wrong password,
// cancel), each checked to complete every operation within a bound.
#include "server_fixture.hpp"
#include "topology_fixture.hpp"

#include <websession/redis/connection.hpp>
#include <websession/redis/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace redis = websession::redis;
using namespace std::chrono_literals;
using boost::system::error_code;
using redis::reply;
using redis::reply_type;
using redis::request;
using redis_test::redis_server;
using redis_test::run_test;
using redis_test::sleep_for;
using redis_test::wait_until;
using steady = std::chrono::steady_clock;

struct outcome {
  error_code ec;
  std::vector<reply> replies;
};

asio::awaitable<outcome> exec(redis::connection& c, const request& r) {
  outcome o;
  o.replies = co_await c.async_exec(r, asio::redirect_error(asio::use_awaitable, o.ec));
  co_return o;
}

// One command; fails the test on a transport error.
template <class... Args>
asio::awaitable<reply> cmd(redis::connection& c, std::string_view name, const Args&... args) {
  request r;
  r.push(name, args...);
  auto o = co_await exec(c, r);
  BOOST_TEST_REQUIRE(!o.ec, name << ": " << o.ec.message() << " / " << c.last_error_message());
  BOOST_TEST_REQUIRE(o.replies.size() == 1u);
  co_return std::move(o.replies[0]);
}

redis::config local(std::uint16_t port) {
  redis::config cfg;
  cfg.port = port;
  cfg.reconnect_max = 200ms;
  return cfg;
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen());
  return s;
}

error_code not_connected() { return make_error_code(redis::error::not_connected); }
error_code connection_lost() { return make_error_code(redis::error::connection_lost); }
error_code timed_out() { return make_error_code(redis::error::timeout); }

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_connection)

BOOST_AUTO_TEST_CASE(set_get_round_trip) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    redis::connection conn(ioc.get_executor(), local(server.port()));
    conn.async_run(asio::detached);

    auto r = co_await cmd(conn, "SET", "greeting", "hello");
    BOOST_TEST((r.type == reply_type::status && r.str == "OK"));
    r = co_await cmd(conn, "GET", "greeting");
    BOOST_TEST((r.type == reply_type::string && r.str == "hello"));
    r = co_await cmd(conn, "GET", "missing");
    BOOST_TEST(r.is_nil());

    // A server error is a reply for the caller to judge, not a failure of the connection.
    r = co_await cmd(conn, "INCR", "greeting");
    BOOST_TEST(r.is_error());
    BOOST_TEST(r.str.find("not an integer") != std::string::npos);

    // Binary values, up to 1 MB, survive unchanged.
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{100'000},
                             std::size_t{1} << 20}) {
      const std::string value = random_bytes(size, static_cast<unsigned>(size));
      r = co_await cmd(conn, "SET", "bin", value);
      BOOST_TEST(r.str == "OK");
      r = co_await cmd(conn, "GET", "bin");
      BOOST_TEST(r.type == reply_type::string);
      BOOST_TEST((r.str == value), "value of " << size << " bytes differs");
    }
    BOOST_TEST(conn.connected());
    BOOST_TEST(conn.connect_count() == 1u);
    BOOST_TEST(!conn.last_error());
    conn.cancel();
  });
}

BOOST_AUTO_TEST_CASE(pipelined_request) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    redis::connection conn(ioc.get_executor(), local(server.port()));
    conn.async_run(asio::detached);
    request r;
    r.push("SET", "n", 41)
        .push("INCR", "n")
        .push("GET", "n")
        .push("PEXPIRE", "n", 60000)
        .push("HGET", "n", "field")  // WRONGTYPE: an error reply in the middle
        .push("PING")
        .push("MGET", "n", "nope");
    auto o = co_await exec(conn, r);
    BOOST_TEST_REQUIRE(!o.ec);
    BOOST_TEST_REQUIRE(o.replies.size() == 7u);
    BOOST_TEST(o.replies[0].str == "OK");
    BOOST_TEST(o.replies[1].integer == 42);
    BOOST_TEST(o.replies[2].str == "42");
    BOOST_TEST(o.replies[3].integer == 1);
    BOOST_TEST(o.replies[4].is_error());
    BOOST_TEST(o.replies[5].str == "PONG");
    BOOST_TEST_REQUIRE(o.replies[6].elements.size() == 2u);
    BOOST_TEST(o.replies[6].elements[0].str == "42");
    BOOST_TEST(o.replies[6].elements[1].is_nil());

    // An empty request completes at once with no replies (here through another token).
    const request empty;
    auto [ec, replies] = co_await conn.async_exec(empty, asio::as_tuple(asio::use_awaitable));
    BOOST_TEST(!ec);
    BOOST_TEST(replies.empty());
    conn.cancel();
  });
}

// Durable requests (wait_for_replicas) on one connection share WAITs: 300 concurrent writes cost
// a few WAIT calls, not 300. With a replica they succeed; without one, each fails with
// replicas_not_confirmed after about wait_timeout (one round of WAIT, not 300 in a row), and reads on the connection
// are not held up for long.
BOOST_AUTO_TEST_CASE(durable_requests_share_one_wait) {
  redis_server master(redis_server::options{{"--repl-diskless-sync-delay", "0"}});
  redis_server replica(redis_server::options{{"--replicaof", "127.0.0.1", std::to_string(master.port())}});
  redis_server lonely;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    // Until the replica has synced and the master streams to it: after a full sync, Redis 7
    // streams only once the replica's first REPLCONF ACK came (up to a second), and WAIT says 0
    // until then.
    const bool synced = co_await wait_until(
        [&] {
          redis_test::resp_connection c(master.port());
          c.command({"SET", "sync", "1"});
          return c.command({"WAIT", "1", "50"}).integer == 1;
        },
        10s);
    BOOST_TEST_REQUIRE(synced);
    constexpr int n = 300;
    for (const bool with_replica : {true, false}) {
      const std::uint16_t port = with_replica ? master.port() : lonely.port();
      redis::connection conn(ioc.get_executor(), local(port));
      conn.async_run(asio::detached);
      (void)co_await cmd(conn, "CONFIG", "RESETSTAT");
      std::vector<request> reqs(n);
      int ok = 0, timed = 0, other = 0, done = 0;
      const auto start = steady::now();
      for (int i = 0; i < n; ++i) {
        reqs[i].push("SET", "durable:" + std::to_string(i), i).wait_for_replicas(1, 200ms);
        asio::co_spawn(ioc, [&, i]() -> asio::awaitable<void> {
          auto o = co_await exec(conn, reqs[i]);
          if (!o.ec && o.replies.size() == 1 && o.replies[0].str == "OK") ++ok;
          else if (o.ec == redis::error::replicas_not_confirmed) ++timed;
          else ++other;
          ++done;
        }, asio::detached);
      }
      const bool all = co_await wait_until([&] { return done == n; }, 10s);
      BOOST_TEST_REQUIRE(all);
      const auto took = steady::now() - start;
      // A plain read after the durable writes is answered soon.
      auto pong = co_await cmd(conn, "PING");
      BOOST_TEST(pong.str == "PONG");
      const auto stats = co_await cmd(conn, "INFO", "commandstats");
      const std::string waits = redis_test::info_field(stats.str, "cmdstat_wait");
      BOOST_TEST_MESSAGE((with_replica ? "with" : "without") << " a replica: " << ok << " ok, "
                         << timed << " timeout, WAIT stats: " << waits << ", "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
      const auto calls_at = waits.find("calls=");
      BOOST_TEST_REQUIRE(calls_at != std::string::npos);
      const int calls = std::stoi(waits.substr(calls_at + 6));
      BOOST_TEST(calls >= 1);
      BOOST_TEST(calls <= 20, calls << " WAIT calls for " << n << " durable writes");
      BOOST_TEST(other == 0);
      if (with_replica) {
        BOOST_TEST(ok == n);
      } else {
        BOOST_TEST(timed == n);
        BOOST_TEST((took < 2s), "durable writes without a replica took "
                                    << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
      }
      // The writes ran either way (WAIT confirms, it does not undo).
      auto got = co_await cmd(conn, "GET", "durable:7");
      BOOST_TEST(got.str == "7");
      conn.cancel();
    }
  }, 30s);
}

// 500 coroutines on two threads share one connection; every reply must reach its own caller.
BOOST_AUTO_TEST_CASE(five_hundred_concurrent_coroutines) {
  redis_server server;
  constexpr int n = 500;
  constexpr int rounds = 4;
  std::atomic<int> good{0};
  std::atomic<int> bad{0};
  std::uint64_t connects = 0;
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        redis::connection conn(ioc.get_executor(), local(server.port()));
        conn.async_run(asio::detached);
        std::atomic<int> finished{0};
        for (int i = 0; i < n; ++i) {
          asio::co_spawn(
              ioc,
              [&, i]() -> asio::awaitable<void> {
                for (int round = 0; round < rounds; ++round) {
                  const std::string key = "k" + std::to_string(i);
                  const std::string value = "v" + std::to_string(i) + "." + std::to_string(round) +
                                            std::string(static_cast<std::size_t>(i % 7) * 100, 'x');
                  request set;
                  set.push("SET", key, value);
                  outcome a = co_await exec(conn, set);
                  request get;
                  get.push("GET", key).push("STRLEN", key);
                  outcome b = co_await exec(conn, get);
                  const bool ok = !a.ec && !b.ec && a.replies.size() == 1 &&
                                  a.replies[0].str == "OK" && b.replies.size() == 2 &&
                                  b.replies[0].str == value &&
                                  b.replies[1].integer == static_cast<long long>(value.size());
                  (ok ? good : bad).fetch_add(1);
                }
                finished.fetch_add(1);
              },
              asio::detached);
        }
        co_await wait_until([&] { return finished.load() == n; }, 15s);
        connects = conn.connect_count();
        conn.cancel();
      },
      20s, 2);
  BOOST_TEST(good.load() == n * rounds);
  BOOST_TEST(bad.load() == 0);
  BOOST_TEST(connects == 1u);
}

// Plain callbacks: every handler sends the next request from inside its own completion (the
// connection completes the last request a read answered inline, and such a handler's request
// is enqueued at once); a handler that throws leaves through io_context::run, and the
// connection goes on working, without a reconnect.
BOOST_AUTO_TEST_CASE(callback_chain_and_throwing_handler) {
  redis_server server;
  asio::io_context ioc;
  redis::connection conn(ioc.get_executor(), local(server.port()));
  conn.async_run(asio::detached);
  auto run_until = [&](const std::function<bool()>& done) {
    const auto end = steady::now() + 10s;
    while (!done() && steady::now() < end) ioc.run_for(10ms);
    return done();
  };

  constexpr int n = 300;
  std::vector<request> reqs(n);
  for (int i = 0; i < n; ++i) reqs[i].push("ECHO", "m" + std::to_string(i));
  int answered = 0;
  int wrong = 0;
  std::function<void(int)> step = [&](int i) {
    conn.async_exec(reqs[i], [&, i](error_code ec, std::vector<reply> r) {
      if (ec || r.size() != 1 || r[0].str != "m" + std::to_string(i)) ++wrong;
      ++answered;
      if (i + 1 < n) step(i + 1);
    });
  };
  step(0);
  BOOST_TEST(run_until([&] { return answered == n; }));
  BOOST_TEST(wrong == 0);

  request ping;
  ping.push("PING");
  conn.async_exec(ping, [](error_code, std::vector<reply>) {
    throw std::runtime_error("handler failed");
  });
  bool threw = false;
  const auto end = steady::now() + 10s;
  while (!threw && steady::now() < end) {
    try {
      ioc.run_for(10ms);
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "handler failed";
    }
  }
  BOOST_TEST(threw);

  request echo;
  echo.push("ECHO", "after");
  bool after = false;
  conn.async_exec(echo, [&](error_code ec, std::vector<reply> r) {
    after = !ec && r.size() == 1 && r[0].str == "after";
  });
  BOOST_TEST(run_until([&] { return after; }));
  BOOST_TEST(conn.connect_count() == 1u);
  conn.cancel();
  ioc.run_for(100ms);
}

BOOST_AUTO_TEST_CASE(requirepass_and_acl_user) {
  redis_server server({{"--requirepass", "s3cret"}});
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.password = "s3cret";
    redis::connection admin(ioc.get_executor(), cfg);
    admin.async_run(asio::detached);
    auto r = co_await cmd(admin, "ACL", "WHOAMI");
    BOOST_TEST(r.str == "default");
    r = co_await cmd(admin, "ACL", "SETUSER", "alice", "on", ">al!ce pw", "~*", "+@all");
    BOOST_TEST(r.str == "OK");

    // The same settings from a URL, with the password percent-encoded.
    auto from_url = redis::parse_url("redis://alice:al%21ce%20pw@127.0.0.1:" +
                                     std::to_string(server.port()) + "/0");
    BOOST_TEST_REQUIRE(from_url.has_value());
    redis::connection user(ioc.get_executor(), *from_url);
    user.async_run(asio::detached);
    r = co_await cmd(user, "ACL", "WHOAMI");
    BOOST_TEST(r.str == "alice");
    r = co_await cmd(user, "CLIENT", "GETNAME");
    BOOST_TEST(r.str == "websession");
    admin.cancel();
    user.cancel();
  });
}

BOOST_AUTO_TEST_CASE(wrong_password_fails_clearly_and_quickly) {
  redis_server server({{"--requirepass", "s3cret"}});
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.password = "wrong";
    cfg.request_timeout = 300ms;
    redis::connection conn(ioc.get_executor(), cfg);
    std::atomic<int> reported{0};
    std::string reported_message;
    conn.set_error_handler([&](const error_code& ec, std::string_view message) {
      if (ec == redis::client_error::auth_failed) {
        if (reported.fetch_add(1) == 0) reported_message = std::string(message);
      }
    });
    conn.async_run(asio::detached);

    request r;
    r.push("GET", "k");
    const auto start = steady::now();
    auto o = co_await exec(conn, r);
    const auto took = steady::now() - start;
    BOOST_TEST(o.ec == not_connected(), o.ec.message());
    BOOST_TEST(took < 1s);
    BOOST_TEST(!conn.connected());
    BOOST_TEST(conn.last_error() == make_error_code(redis::client_error::auth_failed),
               conn.last_error().message());
    BOOST_TEST(conn.last_error_message().find("WRONGPASS") != std::string::npos,
               conn.last_error_message());
    BOOST_TEST(reported.load() >= 1);
    BOOST_TEST(reported_message.find("AUTH failed") != std::string::npos, reported_message);

    // No password at all against a server that wants one: also reported as an AUTH problem.
    auto none = local(server.port());
    none.request_timeout = 300ms;
    redis::connection anonymous(ioc.get_executor(), none);
    anonymous.async_run(asio::detached);
    o = co_await exec(anonymous, r);
    BOOST_TEST(o.ec == not_connected());
    BOOST_TEST(anonymous.last_error() == make_error_code(redis::client_error::auth_failed));
    BOOST_TEST(anonymous.last_error_message().find("NOAUTH") != std::string::npos,
               anonymous.last_error_message());
    conn.cancel();
    anonymous.cancel();
  });
}

BOOST_AUTO_TEST_CASE(select_database) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg3 = local(server.port());
    cfg3.database = 3;
    redis::connection db3(ioc.get_executor(), cfg3);
    redis::connection db0(ioc.get_executor(), local(server.port()));
    db3.async_run(asio::detached);
    db0.async_run(asio::detached);
    auto r = co_await cmd(db3, "SET", "only-in-3", "yes");
    BOOST_TEST(r.str == "OK");
    r = co_await cmd(db0, "GET", "only-in-3");
    BOOST_TEST(r.is_nil());
    r = co_await cmd(db3, "GET", "only-in-3");
    BOOST_TEST(r.str == "yes");
    r = co_await cmd(db0, "SELECT", 3);
    r = co_await cmd(db0, "GET", "only-in-3");
    BOOST_TEST(r.str == "yes");

    // A database the server does not have: a clear error, requests fail, nothing hangs.
    auto bad = local(server.port());
    bad.database = 99;
    bad.request_timeout = 300ms;
    redis::connection db99(ioc.get_executor(), bad);
    db99.async_run(asio::detached);
    request get;
    get.push("GET", "x");
    auto o = co_await exec(db99, get);
    BOOST_TEST(o.ec == not_connected());
    BOOST_TEST(db99.last_error() == make_error_code(redis::client_error::select_failed));
    db3.cancel();
    db0.cancel();
    db99.cancel();
  });
}

// The server dies mid-traffic: every operation completes (with an error) within its deadline,
// and when a server is back on the port the connection finds it by itself.
BOOST_AUTO_TEST_CASE(server_killed_during_traffic_then_restarted) {
  redis_server server;
  std::atomic<long> started{0};
  std::atomic<long> completed{0};
  std::atomic<long> failed{0};
  std::atomic<long> late{0};
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.request_timeout = 500ms;
    redis::connection conn(ioc.get_executor(), cfg);
    conn.async_run(asio::detached);
    BOOST_TEST_REQUIRE(co_await wait_until([&] { return conn.connected(); }, 5s));

    std::atomic<bool> stop{false};
    std::atomic<int> workers{0};
    for (int w = 0; w < 32; ++w) {
      workers.fetch_add(1);
      asio::co_spawn(
          ioc,
          [&, w]() -> asio::awaitable<void> {
            request r;
            r.push("SET", "w" + std::to_string(w), std::string(512, 'v')).push("GET", "x");
            r.idempotent(w % 2 == 0);
            while (!stop) {
              started.fetch_add(1);
              const auto t0 = steady::now();
              auto o = co_await exec(conn, r);
              if (steady::now() - t0 > 1500ms) late.fetch_add(1);
              completed.fetch_add(1);
              if (o.ec) {
                failed.fetch_add(1);
                co_await sleep_for(20ms);
              }
            }
            workers.fetch_sub(1);
          },
          asio::detached);
    }
    co_await sleep_for(200ms);
    server.kill_hard();
    co_await sleep_for(700ms);  // longer than request_timeout: everything pending has failed
    BOOST_TEST(!conn.connected());
    BOOST_TEST(failed.load() > 0);
    BOOST_TEST(started.load() - completed.load() <= 32);

    server.start();  // same port
    BOOST_TEST(co_await wait_until([&] { return conn.connected(); }, 3s));
    auto r = co_await cmd(conn, "PING");
    BOOST_TEST(r.str == "PONG");
    BOOST_TEST(conn.connect_count() >= 2u);
    stop = true;
    BOOST_TEST(co_await wait_until([&] { return workers.load() == 0; }, 3s));
    conn.cancel();
  });
  BOOST_TEST(started.load() == completed.load());
  BOOST_TEST(late.load() == 0);
}

// A request that was sent but not answered when the connection died is sent again after the
// reconnect if it is idempotent, and fails with connection_lost otherwise.
BOOST_AUTO_TEST_CASE(idempotent_requests_are_retried) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.reconnect_min = 10ms;
    cfg.reconnect_max = 20ms;
    redis::connection conn(ioc.get_executor(), cfg);
    conn.async_run(asio::detached);
    BOOST_TEST_REQUIRE(co_await wait_until([&] { return conn.connected(); }, 5s));

    request sleepy;  // keeps the server busy so the next two stay unanswered
    sleepy.push("DEBUG", "SLEEP", "0.5");
    request plain;
    plain.push("INCR", "counter");
    request safe(true);
    safe.push("GET", "counter");
    outcome o_sleepy, o_plain, o_safe;
    std::atomic<int> done{0};
    auto run = [&](const request& r, outcome& out) {
      asio::co_spawn(
          ioc,
          [&conn, &done, req = &r, result = &out]() -> asio::awaitable<void> {
            *result = co_await exec(conn, *req);
            done.fetch_add(1);
          },
          asio::detached);
    };
    run(sleepy, o_sleepy);
    run(plain, o_plain);
    run(safe, o_safe);
    co_await sleep_for(150ms);
    server.kill_hard();
    server.start();
    BOOST_TEST(co_await wait_until([&] { return done.load() == 3; }, 5s));
    BOOST_TEST(o_sleepy.ec == connection_lost());
    BOOST_TEST(o_plain.ec == connection_lost());
    BOOST_TEST_REQUIRE(!o_safe.ec, o_safe.ec.message());
    BOOST_TEST(o_safe.replies.at(0).is_nil());  // answered by the new (empty) server
    conn.cancel();
  });
}

// A request made while the server is down waits (within its deadline) and is sent once the
// connection is back; never written, it is safe to send even if not idempotent.
BOOST_AUTO_TEST_CASE(queued_while_down_is_sent_after_reconnect) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.request_timeout = 3s;
    cfg.reconnect_max = 50ms;
    redis::connection conn(ioc.get_executor(), cfg);
    conn.async_run(asio::detached);
    auto r = co_await cmd(conn, "PING");
    server.kill_hard();
    BOOST_TEST_REQUIRE(co_await wait_until([&] { return !conn.connected(); }, 2s));
    request incr;  // not idempotent
    incr.push("INCR", "visits");
    outcome o;
    bool done = false;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          o = co_await exec(conn, incr);
          done = true;
        },
        asio::detached);
    co_await sleep_for(300ms);
    BOOST_TEST(!done);
    server.start();
    BOOST_TEST_REQUIRE(co_await wait_until([&] { return done; }, 3s));
    BOOST_TEST_REQUIRE(!o.ec, o.ec.message());
    BOOST_TEST(o.replies.at(0).integer == 1);
    conn.cancel();
  });
}

// CLIENT KILL from another connection: ours notices and reconnects by itself.
BOOST_AUTO_TEST_CASE(client_kill_reconnects) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.client_name = "victim";
    redis::connection conn(ioc.get_executor(), cfg);
    auto admin_cfg = local(server.port());
    admin_cfg.client_name = "admin";
    redis::connection admin(ioc.get_executor(), admin_cfg);
    conn.async_run(asio::detached);
    admin.async_run(asio::detached);
    auto r = co_await cmd(conn, "SET", "a", "1");
    BOOST_TEST(conn.connect_count() == 1u);

    // By id, found through the name CLIENT SETNAME gave it.
    r = co_await cmd(admin, "CLIENT", "LIST");
    std::string id;
    std::size_t line_start = 0;
    const std::string& list = r.str;
    while (line_start < list.size()) {
      const auto line_end = std::min(list.find('\n', line_start), list.size());
      const std::string_view line(list.data() + line_start, line_end - line_start);
      if (line.find(" name=victim ") != std::string_view::npos) {
        id = std::string(line.substr(3, line.find(' ') - 3));
      }
      line_start = line_end + 1;
    }
    BOOST_TEST_REQUIRE(!id.empty(), list);
    r = co_await cmd(admin, "CLIENT", "KILL", "ID", id);
    BOOST_TEST(r.integer == 1);
    BOOST_TEST(co_await wait_until([&] { return conn.connect_count() == 2u && conn.connected(); },
                                   3s));
    r = co_await cmd(conn, "GET", "a");
    BOOST_TEST(r.str == "1");

    // Every normal client but the admin itself.
    r = co_await cmd(admin, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
    BOOST_TEST(r.integer >= 1);
    BOOST_TEST(co_await wait_until([&] { return conn.connect_count() == 3u && conn.connected(); },
                                   3s));
    r = co_await cmd(conn, "GET", "a");
    BOOST_TEST(r.str == "1");
    conn.cancel();
    admin.cancel();
  });
}

// A slow command: the caller gets error::timeout at its deadline; the late reply is skipped
// when it comes, so later requests still get their own replies.
BOOST_AUTO_TEST_CASE(slow_command_times_out_and_connection_recovers) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.request_timeout = 200ms;
    redis::connection conn(ioc.get_executor(), cfg);
    conn.async_run(asio::detached);
    auto r = co_await cmd(conn, "SET", "x", "before");

    request sleepy;
    sleepy.push("DEBUG", "SLEEP", "1");
    const auto start = steady::now();
    auto o = co_await exec(conn, sleepy);
    const auto took = steady::now() - start;
    BOOST_TEST(o.ec == timed_out(), o.ec.message());
    BOOST_TEST(took >= 190ms);
    BOOST_TEST(took < 400ms);

    // Queued behind the sleep: times out too.
    request get;
    get.push("GET", "x");
    o = co_await exec(conn, get);
    BOOST_TEST(o.ec == timed_out());

    co_await sleep_for(800ms);  // the sleep is over and its late replies were skipped
    r = co_await cmd(conn, "SET", "x", "after");
    BOOST_TEST(r.str == "OK");
    r = co_await cmd(conn, "GET", "x");
    BOOST_TEST(r.str == "after");
    BOOST_TEST(conn.connect_count() == 1u);  // no reconnect was needed
    conn.cancel();
  });
}

// Per-operation cancellation: a written request stuck behind DEBUG SLEEP completes at once
// with operation_aborted on terminal cancellation (total is ignored: it may have run), its late
// reply is skipped, and the connection goes on without a reconnect; a timer racing a request
// wins the race; a request that cannot be sent (no server) is dropped by any cancellation.
BOOST_AUTO_TEST_CASE(per_operation_cancellation) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.request_timeout = 10s;  // far beyond the sleeps: only cancellation ends a request early
    cfg.health_check_interval = 10s;  // and a sleeping server is not taken for a dead one
    redis::connection conn(ioc.get_executor(), cfg);
    conn.async_run(asio::detached);
    auto r = co_await cmd(conn, "SET", "x", "one");

    request sleepy;
    sleepy.push("DEBUG", "SLEEP", "1.5");
    request get;
    get.push("GET", "x");
    asio::cancellation_signal total_sig, terminal_sig;
    std::optional<outcome> slept, got, ignored;
    auto keep = [](std::optional<outcome>& into) {
      return [&into](error_code ec, std::vector<reply> replies) {
        into = outcome{ec, std::move(replies)};
      };
    };
    const auto start = steady::now();
    conn.async_exec(sleepy, keep(slept));
    conn.async_exec(get, asio::bind_cancellation_slot(total_sig.slot(), keep(ignored)));
    conn.async_exec(get, asio::bind_cancellation_slot(terminal_sig.slot(), keep(got)));
    co_await sleep_for(100ms);  // all three are written; the server sleeps
    total_sig.emit(asio::cancellation_type::total);
    terminal_sig.emit(asio::cancellation_type::terminal);
    BOOST_TEST(co_await wait_until([&] { return got.has_value(); }, 700ms));
    BOOST_TEST((steady::now() - start < 1s));
    BOOST_TEST_REQUIRE(got.has_value());
    BOOST_TEST(got->ec == asio::error::operation_aborted, got->ec.message());
    BOOST_TEST(got->replies.empty());
    BOOST_TEST(!ignored.has_value());  // total cancellation of a written request: ignored
    BOOST_TEST(!slept.has_value());

    BOOST_TEST(co_await wait_until([&] { return slept && ignored; }, 5s));
    BOOST_TEST_REQUIRE(slept.has_value());
    BOOST_TEST(!slept->ec);
    BOOST_TEST_REQUIRE(ignored.has_value());
    BOOST_TEST(!ignored->ec);
    BOOST_TEST_REQUIRE(ignored->replies.size() == 1u);
    BOOST_TEST(ignored->replies[0].str == "one");
    // The cancelled request's reply came and was skipped: the next ones match their replies.
    r = co_await cmd(conn, "SET", "x", "two");
    r = co_await cmd(conn, "GET", "x");
    BOOST_TEST(r.str == "two");

    // A timer racing a request: the coroutine's own cancellation reaches async_exec.
    {
      using namespace asio::experimental::awaitable_operators;
      asio::steady_timer timer(ioc, 100ms);
      const auto t0 = steady::now();
      auto winner = co_await (conn.async_exec(sleepy, asio::use_awaitable) ||
                              timer.async_wait(asio::use_awaitable));
      BOOST_TEST(winner.index() == 1u);
      BOOST_TEST((steady::now() - t0 < 1s));
    }
    r = co_await cmd(conn, "GET", "x");  // waits for the sleep, then matches its own reply
    BOOST_TEST(r.str == "two");
    BOOST_TEST(conn.connect_count() == 1u);
    conn.cancel();

    // Nothing listens: the request waits in the queue, and even total cancellation drops it.
    auto down_cfg = local(redis_test::free_port());
    down_cfg.request_timeout = 5s;
    redis::connection down(ioc.get_executor(), down_cfg);
    down.async_run(asio::detached);
    asio::cancellation_signal sig;
    std::optional<outcome> queued;
    down.async_exec(get, asio::bind_cancellation_slot(sig.slot(), keep(queued)));
    co_await sleep_for(50ms);
    BOOST_TEST(!queued.has_value());
    sig.emit(asio::cancellation_type::total);
    BOOST_TEST(co_await wait_until([&] { return queued.has_value(); }, 1s));
    BOOST_TEST_REQUIRE(queued.has_value());
    BOOST_TEST(queued->ec == asio::error::operation_aborted, queued->ec.message());
    down.cancel();
  });
}

// With fail_fast_when_down, a request fails at once while the last connect attempt has failed
// (and a waiting one when the attempt fails); without it, it waits out the request timeout.
BOOST_AUTO_TEST_CASE(fail_fast_when_down) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    constexpr auto tuple_token = asio::as_tuple(asio::use_awaitable);
    request get;
    get.push("GET", "x");
    auto elapsed = [](steady::time_point t0) { return steady::now() - t0; };

    {  // Nothing listens: the first attempt is refused at once.
      auto cfg = local(redis_test::free_port());
      cfg.request_timeout = 5s;
      cfg.fail_fast_when_down = true;
      redis::connection conn(ioc.get_executor(), cfg);
      conn.async_run(asio::detached);
      auto t0 = steady::now();
      auto [e1, r1] = co_await conn.async_exec(get, tuple_token);  // waits for that attempt
      BOOST_TEST(e1 == redis::error::not_connected, e1.message());
      BOOST_TEST((elapsed(t0) < 1s));
      t0 = steady::now();
      auto [e2, r2] = co_await conn.async_exec(get, tuple_token);  // the server is known down
      BOOST_TEST(e2 == redis::error::not_connected, e2.message());
      BOOST_TEST((elapsed(t0) < 100ms));
      BOOST_TEST(r2.empty());
      conn.cancel();
    }
    {  // The default: the request waits for a reconnect until its timeout.
      auto cfg = local(redis_test::free_port());
      cfg.request_timeout = 300ms;
      redis::connection conn(ioc.get_executor(), cfg);
      conn.async_run(asio::detached);
      co_await sleep_for(100ms);  // the first attempt has failed
      const auto t0 = steady::now();
      auto [ec, r] = co_await conn.async_exec(get, tuple_token);
      BOOST_TEST(ec == redis::error::not_connected, ec.message());
      BOOST_TEST((elapsed(t0) >= 250ms));
      conn.cancel();
    }
    {  // A server that goes away and comes back.
      auto cfg = local(server.port());
      cfg.request_timeout = 5s;
      cfg.reconnect_min = 20ms;
      cfg.reconnect_max = 50ms;
      cfg.fail_fast_when_down = true;
      redis::connection conn(ioc.get_executor(), cfg);
      conn.async_run(asio::detached);
      co_await cmd(conn, "SET", "x", "here");
      server.kill_hard();
      // The drop is followed by a refused attempt, then requests fail at once.
      BOOST_TEST(co_await wait_until([&] { return !conn.connected(); }, 2s));
      co_await sleep_for(200ms);
      const auto t0 = steady::now();
      auto [ec, replies] = co_await conn.async_exec(get, tuple_token);
      BOOST_TEST(ec == redis::error::not_connected, ec.message());
      BOOST_TEST((elapsed(t0) < 100ms));
      server.start();
      BOOST_TEST(co_await wait_until([&] { return conn.connected(); }, 3s));
      auto [e2, r2] = co_await conn.async_exec(get, tuple_token);
      BOOST_TEST(!e2, e2.message());
      BOOST_TEST_REQUIRE(r2.size() == 1u);
      BOOST_TEST(r2[0].is_nil());  // a fresh server without persistence
      conn.cancel();
    }
  });
}

// A server that stops answering (SIGSTOP) while replies are owed is dropped after the health
// interval, long before TCP would notice; pending requests fail then, not at their deadline.
BOOST_AUTO_TEST_CASE(hung_server_is_detected) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.health_check_interval = 300ms;
    cfg.request_timeout = 5s;
    cfg.connect_timeout = 300ms;
    redis::connection conn(ioc.get_executor(), cfg);
    conn.async_run(asio::detached);
    auto r = co_await cmd(conn, "PING");
    server.pause();
    request get;
    get.push("GET", "x");
    // Steady traffic meanwhile (each write succeeds into the socket buffer) must not postpone
    // the verdict.
    std::atomic<bool> stop{false};
    std::atomic<bool> background_done{false};
    std::atomic<int> background_failures{0};
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          while (!stop) {
            co_await sleep_for(30ms);
            auto b = co_await exec(conn, get);
            if (b.ec) background_failures.fetch_add(1);
          }
          background_done = true;
        },
        asio::detached);
    co_await sleep_for(100ms);
    const auto start = steady::now();
    auto o = co_await exec(conn, get);
    const auto took = steady::now() - start;
    stop = true;
    BOOST_TEST(o.ec == connection_lost(), o.ec.message());
    BOOST_TEST(took < 1s);
    BOOST_TEST(took >= 150ms);
    BOOST_TEST(background_failures.load() >= 1);
    BOOST_TEST((conn.last_error() == make_error_code(redis::client_error::unresponsive) ||
                conn.last_error() == make_error_code(redis::client_error::connect_timeout)),
               conn.last_error().message());
    server.resume();
    BOOST_TEST(co_await wait_until([&] { return conn.connected(); }, 3s));
    r = co_await cmd(conn, "PING");
    BOOST_TEST(r.str == "PONG");
    BOOST_TEST(co_await wait_until([&] { return background_done.load(); }, 6s));
    conn.cancel();
  });
}

// When idle, and only then, the connection sends PINGs.
BOOST_AUTO_TEST_CASE(pings_only_when_idle) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.health_check_interval = 100ms;
    cfg.client_name = "pinger";
    redis::connection conn(ioc.get_executor(), cfg);
    redis::connection admin(ioc.get_executor(), local(server.port()));
    conn.async_run(asio::detached);
    admin.async_run(asio::detached);
    auto r = co_await cmd(admin, "CONFIG", "RESETSTAT");
    auto pings = [&]() -> asio::awaitable<long long> {
      auto info = co_await cmd(admin, "INFO", "commandstats");
      const auto at = info.str.find("cmdstat_ping:calls=");
      if (at == std::string::npos) co_return 0;
      co_return std::stoll(info.str.substr(at + 19));
    };
    // Busy for 600 ms: requests without pause leave no idle interval.
    const auto busy_until = steady::now() + 600ms;
    while (steady::now() < busy_until) r = co_await cmd(conn, "GET", "x");
    const long long busy_pings = co_await pings();
    BOOST_TEST(busy_pings == 0);
    co_await sleep_for(600ms);
    const long long idle_pings = co_await pings();
    BOOST_TEST(idle_pings >= 2);
    BOOST_TEST(idle_pings <= 7);
    conn.cancel();
    admin.cancel();
  });
}

// cancel() completes everything pending at once, and everything after it too.
BOOST_AUTO_TEST_CASE(cancel_with_pending_requests) {
  redis_server server;
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(server.port());
    cfg.request_timeout = 5s;
    auto conn = std::make_unique<redis::connection>(ioc.get_executor(), cfg);
    error_code run_ec;
    bool run_done = false;
    conn->async_run([&](error_code ec) {
      run_ec = ec;
      run_done = true;
    });
    auto r = co_await cmd(*conn, "PING");

    request sleepy;
    sleepy.push("DEBUG", "SLEEP", "0.5");
    request get;
    get.push("GET", "x");
    std::vector<error_code> results(20);
    std::atomic<int> done{0};
    for (int i = 0; i < 20; ++i) {
      asio::co_spawn(
          ioc,
          [&, i]() -> asio::awaitable<void> {
            const request& req = i == 0 ? sleepy : get;
            const auto o = co_await exec(*conn, req);
            results[static_cast<std::size_t>(i)] = o.ec;
            done.fetch_add(1);
          },
          asio::detached);
    }
    co_await sleep_for(50ms);
    const auto start = steady::now();
    conn->cancel();
    BOOST_TEST(co_await wait_until([&] { return done.load() == 20; }, 2s));
    BOOST_TEST((steady::now() - start < 100ms));
    for (const auto& ec : results) BOOST_TEST(ec == asio::error::operation_aborted);
    BOOST_TEST(co_await wait_until([&] { return run_done; }, 2s));
    BOOST_TEST(run_ec == asio::error::operation_aborted);
    auto o = co_await exec(*conn, get);
    BOOST_TEST(o.ec == asio::error::operation_aborted);

    // Destroying a connection with requests pending completes them too.
    auto other = std::make_unique<redis::connection>(ioc.get_executor(), cfg);
    other->async_run(asio::detached);
    error_code pending_ec;
    bool pending_done = false;
    other->async_exec(get, [&](error_code ec, std::vector<reply>) {
      pending_ec = ec;
      pending_done = true;
    });
    other.reset();
    BOOST_TEST(co_await wait_until([&] { return pending_done; }, 1s));
    BOOST_TEST(pending_ec == asio::error::operation_aborted);
  });
}

// Without async_run, or with nothing listening, requests fail at their deadline.
BOOST_AUTO_TEST_CASE(no_server_or_no_run_never_hangs) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    auto cfg = local(redis_test::free_port());  // nothing listens there
    cfg.request_timeout = 200ms;
    redis::connection idle(ioc.get_executor(), cfg);  // async_run never called
    redis::connection refused(ioc.get_executor(), cfg);
    refused.async_run(asio::detached);
    request get;
    get.push("GET", "x");
    auto start = steady::now();
    auto o = co_await exec(idle, get);
    BOOST_TEST(o.ec == not_connected());
    o = co_await exec(refused, get);
    BOOST_TEST(o.ec == not_connected());
    BOOST_TEST((steady::now() - start < 1s));
    BOOST_TEST(refused.last_error() == asio::error::connection_refused,
               refused.last_error().message());
    BOOST_TEST(refused.last_error_message().find("connect to 127.0.0.1:") != std::string::npos);

    // A second async_run is refused.
    error_code second;
    bool second_done = false;
    refused.async_run([&](error_code ec) {
      second = ec;
      second_done = true;
    });
    BOOST_TEST(co_await wait_until([&] { return second_done; }, 1s));
    BOOST_TEST(second == asio::error::already_started);
    idle.cancel();
    refused.cancel();
  });
}

// A fake server that breaks the protocol: garbage, then a reply nobody asked for. Each time
// the connection is dropped with a clear error, the pending request fails, and the client
// reconnects by itself.
BOOST_AUTO_TEST_CASE(protocol_violations_drop_and_reconnect) {
  run_test([&](asio::io_context& ioc) -> asio::awaitable<void> {
    using tcp = asio::ip::tcp;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::atomic<int> accepted{0};
    bool server_done = false;
    // Answers the hello PING, then `script(n)` for the n-th request on this connection.
    auto serve = [&](std::function<std::string(int)> script) -> asio::awaitable<void> {
      auto sock = co_await acceptor.async_accept(asio::use_awaitable);
      accepted.fetch_add(1);
      char buf[4096];
      error_code ec;
      for (int n = 0;; ++n) {
        co_await sock.async_read_some(asio::buffer(buf),
                                      asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        const std::string answer = n == 0 ? std::string("+PONG\r\n") : script(n);
        co_await asio::async_write(sock, asio::buffer(answer),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
      }
    };
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          co_await serve([](int) { return std::string("?garbage\r\n"); });
          co_await serve([](int) { return std::string("$1\r\nx\r\n+surprise\r\n"); });
          co_await serve([](int) { return std::string("$1\r\ny\r\n"); });
          server_done = true;
        },
        asio::detached);

    redis::config cfg;
    cfg.port = acceptor.local_endpoint().port();
    cfg.client_name.clear();  // the hello is a plain PING
    cfg.reconnect_min = 5ms;
    cfg.reconnect_max = 10ms;
    redis::connection conn(ioc.get_executor(), cfg);
    std::vector<error_code> seen;  // every failure, as the error handler reports it
    conn.set_error_handler([&](const error_code& ec, std::string_view) { seen.push_back(ec); });
    conn.async_run(asio::detached);
    request get;
    get.push("GET", "k");

    auto o = co_await exec(conn, get);  // written, answered with garbage: it may have run
    BOOST_TEST(o.ec == connection_lost());
    BOOST_TEST(conn.last_error() == make_error_code(redis::client_error::protocol_error),
               conn.last_error().message());
    BOOST_TEST(conn.last_error_message().find("Protocol error") != std::string::npos,
               conn.last_error_message());

    o = co_await exec(conn, get);  // answered, then followed by a reply nobody asked for
    BOOST_TEST_REQUIRE(!o.ec, o.ec.message());
    BOOST_TEST(o.replies.at(0).str == "x");
    BOOST_TEST(co_await wait_until(
        [&] {
          return std::find(seen.begin(), seen.end(),
                           make_error_code(redis::client_error::unexpected_reply)) != seen.end();
        },
        2s));

    o = co_await exec(conn, get);
    BOOST_TEST_REQUIRE(!o.ec, o.ec.message());
    BOOST_TEST(o.replies.at(0).str == "y");
    BOOST_TEST(accepted.load() == 3);
    conn.cancel();
    BOOST_TEST(co_await wait_until([&] { return server_done; }, 2s));  // it uses our locals
  });
}

BOOST_AUTO_TEST_CASE(bad_configuration_throws) {
  asio::io_context ioc;
  redis::config cfg;
  cfg.request_timeout = 0ms;
  BOOST_CHECK_THROW(redis::connection(ioc.get_executor(), cfg), std::invalid_argument);
  cfg = {};
  cfg.reconnect_max = 1ms;
  BOOST_CHECK_THROW(redis::connection(ioc.get_executor(), cfg), std::invalid_argument);
  cfg = {};
  cfg.tls = true;
  cfg.ca_file = "/nonexistent/ca.pem";
  BOOST_CHECK_THROW(redis::connection(ioc.get_executor(), cfg), boost::system::system_error);
}

BOOST_AUTO_TEST_SUITE_END()
