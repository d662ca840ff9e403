// SPDX-License-Identifier: BSL-1.0
// The Redis client and stores used from io_contexts that several threads run, as their headers
// promise: one connection called from any thread (threads that run the io_context and threads
// that do not), per-operation cancellation racing completion, and the fallback store switching
// to memory and back while sixteen coroutines on four threads use it. scripts/test.sh tsan runs
// these under ThreadSanitizer (with the manager suite's four_threads_share_one_manager for the
// Redis, Cluster, Sentinel and fallback stacks). Boost.Test is not thread-safe: workers record
// what went wrong, the test body checks it.
#include "../support/redis.hpp"
#include "server_fixture.hpp"

#include <websession/defaults.hpp>
#include <websession/redis/connection.hpp>
#include <websession/store/fallback.hpp>
#include <websession/store/redis.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace redis = websession::redis;
using namespace std::chrono_literals;
using boost::system::error_code;
using redis::reply;
using redis::request;
using redis_test::redis_server;
using redis_test::run_test;
using redis_test::sleep_for;
using redis_test::wait_until;

using websession::test::tuple_token;

// What workers on other threads found wrong, for the test body to report.
struct failures {
  std::mutex m;
  std::vector<std::string> list;
  void add(std::string what) {
    std::lock_guard lock(m);
    list.push_back(std::move(what));
  }
  void check() {
    std::lock_guard lock(m);
    BOOST_TEST(list.empty());
    for (std::size_t i = 0; i < list.size() && i < 10; ++i) BOOST_TEST_MESSAGE(list[i]);
  }
};

redis::config local(std::uint16_t port) {
  redis::config cfg;
  cfg.port = port;
  cfg.reconnect_max = 200ms;
  cfg.request_timeout = 10s;  // far beyond what ThreadSanitizer's slowdown needs
  return cfg;
}

// INCR counter, SET key value, GET key: checks the replies; "" if they are right.
request counted_round_trip(const std::string& key, const std::string& value) {
  request r;
  r.push("INCR", "counter").push("SET", key, value).push("GET", key);
  return r;
}

std::string check_round_trip(error_code ec, const std::vector<reply>& replies,
                             const std::string& value) {
  if (ec) return "exec: " + ec.message();
  if (replies.size() != 3u) return "exec: " + std::to_string(replies.size()) + " replies";
  if (replies[1].str != "OK" || replies[2].str != value) return "exec: wrong reply";
  return {};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_threads)

// "async_exec may be called from any thread": coroutines on the io_context's four threads, and
// four threads of their own (futures and callbacks), at once, while a fifth reads the
// accessors documented as "any thread". Every reply matches its request; no INCR is lost.
BOOST_AUTO_TEST_CASE(one_connection_from_many_threads) {
  redis_server server;
  constexpr int coroutines = 8;
  constexpr int per_coroutine = 100;
  constexpr int callers = 4;
  constexpr int per_caller = 100;
  failures bad;
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        redis::connection conn(ioc.get_executor(), local(server.port()));
        conn.async_run(asio::detached);
        std::atomic<int> finished{0};
        for (int c = 0; c < coroutines; ++c) {
          asio::co_spawn(
              ioc,
              [&, c]() -> asio::awaitable<void> {
                for (int i = 0; i < per_coroutine; ++i) {
                  const std::string key = "co" + std::to_string(c);
                  const std::string value = key + "." + std::to_string(i);
                  const request r = counted_round_trip(key, value);
                  auto [ec, replies] = co_await conn.async_exec(r, tuple_token);
                  if (auto e = check_round_trip(ec, replies, value); !e.empty()) bad.add(e);
                }
                finished.fetch_add(1);
              },
              asio::detached);
        }
        std::atomic<bool> stop_reading{false};
        std::atomic<std::uint64_t> reads{0};
        std::thread reader([&] {
          while (!stop_reading.load()) {
            std::uint64_t n = conn.connect_count() + (conn.connected() ? 1 : 0);
            n += conn.last_error_message().size() + conn.server_address().host.size();
            reads.fetch_add(n > 0 ? 1 : 0);
            std::this_thread::yield();
          }
        });
        co_await redis_test::off_loop([&] {
          std::vector<std::thread> threads;
          for (int t = 0; t < callers; ++t) {
            threads.emplace_back([&, t] {
              for (int i = 0; i < per_caller; ++i) {
                const std::string key = "th" + std::to_string(t);
                const std::string value = key + "." + std::to_string(i);
                const request r = counted_round_trip(key, value);
                if (i % 2 == 0) {
                  std::future<std::vector<reply>> f = conn.async_exec(r, asio::use_future);
                  try {
                    if (auto e = check_round_trip({}, f.get(), value); !e.empty()) bad.add(e);
                  } catch (const boost::system::system_error& e) {
                    bad.add(std::string("future: ") + e.what());
                  }
                } else {
                  std::promise<void> p;
                  conn.async_exec(r, [&](error_code ec, std::vector<reply> replies) {
                    if (auto e = check_round_trip(ec, replies, value); !e.empty()) bad.add(e);
                    p.set_value();
                  });
                  p.get_future().wait();
                }
              }
            });
          }
          for (auto& t : threads) t.join();
        });
        BOOST_TEST(co_await wait_until([&] { return finished.load() == coroutines; }, 30s));
        stop_reading.store(true);
        reader.join();
        request get;
        get.push("GET", "counter");
        auto [ec, replies] = co_await conn.async_exec(get, tuple_token);
        BOOST_TEST_REQUIRE(!ec, ec.message());
        BOOST_TEST(replies.at(0).str == std::to_string(coroutines * per_coroutine + callers * per_caller));
        BOOST_TEST(conn.connect_count() == 1u);
        BOOST_TEST(reads.load() > 0u);
        conn.cancel();
      },
      60s, 4);
  bad.check();
}

// Per-operation cancellation racing the reply, on four threads: by a timer (the coroutine's
// own cancellation, as `||` does it) and by a signal emitted from a thread of its own. Each
// request either completes with its reply or with operation_aborted; afterwards the replies
// still match their requests and the connection was never reopened.
BOOST_AUTO_TEST_CASE(cancellation_races_completion_on_four_threads) {
  redis_server server;
  constexpr int coroutines = 16;
  constexpr int iterations = 40;
  failures bad;
  std::atomic<int> cancelled{0}, answered{0};
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        using namespace asio::experimental::awaitable_operators;
        redis::connection conn(ioc.get_executor(), local(server.port()));
        conn.async_run(asio::detached);
        request set;
        set.push("SET", "x", "value");
        auto [e0, r0] = co_await conn.async_exec(set, tuple_token);
        BOOST_TEST_REQUIRE(!e0, e0.message());
        std::atomic<int> finished{0};
        for (int c = 0; c < coroutines; ++c) {
          // On a strand: `||` completes both branches on the coroutine's executor, and Asio's
          // cancellation of the losing branch must not run beside that branch's completion.
          asio::co_spawn(
              asio::make_strand(ioc),
              [&, c]() -> asio::awaitable<void> {
                request get;
                get.push("GET", "x");
                for (int i = 0; i < iterations; ++i) {
                  const auto delay = std::chrono::microseconds((c * 53 + i * 17) % 400);
                  if (i % 4 != 3) {
                    asio::steady_timer t(co_await asio::this_coro::executor, delay);
                    auto res = co_await (conn.async_exec(get, tuple_token) || t.async_wait(tuple_token));
                    if (res.index() == 1) {
                      cancelled.fetch_add(1);
                      continue;
                    }
                    auto& [ec, replies] = std::get<0>(res);
                    if (ec || replies.size() != 1u || replies[0].str != "value") bad.add("raced GET");
                    else answered.fetch_add(1);
                    continue;
                  }
                  asio::cancellation_signal sig;
                  std::atomic<bool> done{false};
                  error_code got;
                  std::string value;
                  conn.async_exec(get, asio::bind_cancellation_slot(
                                           sig.slot(), [&](error_code ec, std::vector<reply> r) {
                                             got = ec;
                                             if (!ec && r.size() == 1u) value = r[0].str;
                                             done.store(true);
                                           }));
                  std::thread emitter([&] {
                    const auto until = std::chrono::steady_clock::now() + delay;
                    while (std::chrono::steady_clock::now() < until) std::this_thread::yield();
                    sig.emit(asio::cancellation_type::terminal);
                  });
                  if (!co_await wait_until([&] { return done.load(); }, 20s)) bad.add("signalled GET hung");
                  emitter.join();
                  if (got == asio::error::operation_aborted) cancelled.fetch_add(1);
                  else if (got || value != "value") bad.add("signalled GET: " + got.message());
                  else answered.fetch_add(1);
                }
                finished.fetch_add(1);
              },
              asio::detached);
        }
        BOOST_TEST(co_await wait_until([&] { return finished.load() == coroutines; }, 60s));
        // Every reply still goes to its own request.
        for (int i = 0; i < 20; ++i) {
          request r;
          r.push("SET", "y", std::to_string(i)).push("GET", "y");
          auto [ec, replies] = co_await conn.async_exec(r, tuple_token);
          BOOST_TEST_REQUIRE(!ec, ec.message());
          BOOST_TEST_REQUIRE(replies.size() == 2u);
          BOOST_TEST(replies[1].str == std::to_string(i));
        }
        BOOST_TEST(conn.connect_count() == 1u);
        conn.cancel();
      },
      90s, 4);
  bad.check();
  BOOST_TEST(cancelled.load() + answered.load() == coroutines * iterations);
  BOOST_TEST_MESSAGE(cancelled.load() << " cancelled, " << answered.load() << " answered");
}

// The fallback store under a manager shared by sixteen coroutines on four threads, while Redis
// is killed and started again: creates always succeed (memory takes them during the outage),
// every other operation succeeds or fails with what an outage explains, a session never loads
// another's data, and the store switches to memory and back (probes started from every thread).
BOOST_AUTO_TEST_CASE(fallback_switches_while_four_threads_use_it) {
  using fallback = websession::fallback_store<websession::redis_store, websession::memory_store>;
  using manager = websession::basic_session_manager<websession::json_serializer,
                                                    websession::aes_gcm_cipher, fallback,
                                                    std::chrono::system_clock>;
  namespace ws = websession;
  redis_server server;
  constexpr int workers = 16;
  failures bad;
  run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        auto cfg = local(server.port());
        cfg.request_timeout = 2s;
        cfg.connect_timeout = 2s;
        cfg.reconnect_min = 10ms;
        cfg.reconnect_max = 100ms;
        cfg.fail_fast_when_down = true;
        auto conn = std::make_shared<redis::connection>(ioc.get_executor(), cfg);
        conn->async_run(asio::detached);
        ws::memory_store_options mo;
        fallback store(ws::redis_store(conn), ws::memory_store(ioc.get_executor(), mo), 5ms);
        std::mutex obs_m;
        int told_degraded = 0, told_recovered = 0;
        store.set_observer([&](bool degraded, const error_code&) {
          std::lock_guard lock(obs_m);
          ++(degraded ? told_degraded : told_recovered);
        });
        ws::options o;
        o.key_prefix = "thr:";
        manager mgr(ioc.get_executor(), ws::aes_gcm_cipher(std::string(32, 'k')), store, o);
        BOOST_TEST_REQUIRE(co_await wait_until([&] { return conn->connected(); }, 10s));

        auto outage = [](error_code ec) {
          return ec == ws::error::store_unavailable || ec == ws::error::timeout ||
                 ec == ws::error::not_found || ec == ws::error::conflict;
        };
        std::atomic<bool> stop{false};
        std::atomic<int> finished{0}, rounds{0};
        for (int w = 0; w < workers; ++w) {
          asio::co_spawn(
              ioc,
              [&, w]() -> asio::awaitable<void> {
                for (int i = 0; !stop.load(); ++i) {
                  rounds.fetch_add(1);
                  auto [e1, s] = co_await mgr.async_create(tuple_token);
                  if (e1) {
                    bad.add("create: " + e1.message());
                    continue;
                  }
                  const int mark = w * 100000 + i;
                  s.set("mark", mark);
                  auto [e2] = co_await mgr.async_save(s, tuple_token);
                  if (e2 && !outage(e2)) bad.add("save: " + e2.message());
                  if (i % 3 == 0) {
                    mgr.bind_user(s, "thr-user" + std::to_string(w % 4));
                    auto [e3] = co_await mgr.async_rotate(s, tuple_token);
                    if (e3 && !outage(e3)) bad.add("login: " + e3.message());
                    if (e3) continue;  // s is left bound as it was loaded: not saved again
                  } else if (i % 3 == 1) {
                    auto [e3] = co_await mgr.async_rotate(s, tuple_token);
                    if (e3 && !outage(e3)) bad.add("rotate: " + e3.message());
                  }
                  auto [e4, l] = co_await mgr.async_load(s.id(), tuple_token);
                  if (e4 && !outage(e4)) bad.add("load: " + e4.message());
                  if (!e4 && l.get_as<int>("mark").value_or(mark) != mark) bad.add("another's data");
                  auto [e5] = co_await mgr.async_destroy(s, tuple_token);
                  if (e5 && !outage(e5)) bad.add("destroy: " + e5.message());
                }
                finished.fetch_add(1);
              },
              asio::detached);
        }
        co_await sleep_for(300ms);
        server.stop();  // SIGKILL
        co_await sleep_for(500ms);
        const auto during = store.stats();
        server.start();
        BOOST_TEST(co_await wait_until([&] { return conn->connected(); }, 20s));
        BOOST_TEST(co_await wait_until([&] { return !store.degraded(); }, 20s));
        co_await sleep_for(300ms);
        stop.store(true);
        BOOST_TEST(co_await wait_until([&] { return finished.load() == workers; }, 30s));

        const auto st = store.stats();
        BOOST_TEST(during.degraded);
        BOOST_TEST(during.secondary_inserts > 0u);
        BOOST_TEST(!st.degraded);
        BOOST_TEST(st.degradations >= 1u);
        BOOST_TEST(st.recoveries == st.degradations);
        {
          std::lock_guard lock(obs_m);
          BOOST_TEST(static_cast<std::uint64_t>(told_degraded) == st.degradations);
          BOOST_TEST(static_cast<std::uint64_t>(told_recovered) == st.recoveries);
        }
        // Once recovered, new sessions go to Redis again.
        const std::size_t in_memory = store.secondary().size();
        auto [e, s] = co_await mgr.async_create(tuple_token);
        BOOST_TEST_REQUIRE(!e, e.message());
        BOOST_TEST(store.secondary().size() == in_memory);
        BOOST_TEST((co_await store.primary().load(s.storage_key())).has_value());
        BOOST_TEST_MESSAGE(rounds.load() << " rounds, " << st.secondary_inserts
                                         << " sessions created in memory, " << st.probes << " probes");
        conn->cancel();
      },
      120s, 4);
  bad.check();
}

BOOST_AUTO_TEST_SUITE_END()
