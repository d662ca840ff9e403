// SPDX-License-Identifier: BSL-1.0
// redis_store with one redis::client per io_context, for a server that runs one io_context per
// thread and shares one manager: two io_contexts, each run by a thread of its own, one client on
// each. Sessions written through one client are read through the other, concurrent updates of
// one session from both io_contexts lose nothing, and each io_context's operations go out on its
// own connection (seen from Redis: MONITOR names the connection of every command). Also with a
// fallback store around it and with one cluster client per io_context. scripts/test.sh tsan runs
// these under ThreadSanitizer. Boost.Test is not thread-safe: coroutines on the io threads throw
// what went wrong (through their future) or leave results for the test body to check.
#include "../support/redis.hpp"
#include "server_fixture.hpp"
#include "topology_fixture.hpp"

#include <websession/defaults.hpp>
#include <websession/redis/client.hpp>
#include <websession/store/fallback.hpp>
#include <websession/store/memory.hpp>
#include <websession/store/redis.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace websession;
using namespace redis_test;
using boost::system::error_code;

namespace {

using websession::test::redis_manager;
using websession::test::tuple_token;
constexpr auto limit = std::chrono::seconds(60);  // far beyond what ThreadSanitizer needs

options test_opts() { return websession::test::test_opts("pi:"); }

redis::config local(std::uint16_t port, std::string name) {
  redis::config cfg;
  cfg.port = port;
  cfg.client_name = std::move(name);
  cfg.reconnect_max = std::chrono::milliseconds(200);
  cfg.request_timeout = std::chrono::seconds(10);
  return cfg;
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

// Two io_contexts, each run by one thread of its own (a server with an io_context per thread).
class two_loops {
 public:
  two_loops() {
    for (std::size_t i = 0; i < 2; ++i) {
      work_[i].emplace(asio::make_work_guard(ioc_[i]));
      threads_[i] = std::thread([this, i] {
        ioc_[i].run();
        done_[i] = true;
      });
    }
  }
  two_loops(const two_loops&) = delete;
  two_loops& operator=(const two_loops&) = delete;
  ~two_loops() { stop(); }

  asio::io_context& operator[](std::size_t i) { return ioc_[i]; }

  // Runs `f()` (a callable returning awaitable<void>) on io_context i.
  template <class F>
  std::future<void> spawn(std::size_t i, F f) {
    return asio::co_spawn(ioc_[i], std::move(f), asio::use_future);
  }

  // Lets both loops run out of work: true if they did within 5 s (every operation completed,
  // every connection stopped).
  bool drain() {
    for (auto& w : work_) w.reset();
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!(done_[0] && done_[1]) && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const bool drained = done_[0] && done_[1];
    stop();
    return drained;
  }

 private:
  void stop() {
    for (auto& w : work_) w.reset();
    for (auto& c : ioc_) c.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  std::array<asio::io_context, 2> ioc_;
  std::array<std::optional<asio::executor_work_guard<asio::io_context::executor_type>>, 2> work_;
  std::array<std::atomic<bool>, 2> done_{};
  std::array<std::thread, 2> threads_;
};

// Waits for every future (rethrowing what a coroutine threw); fails if one is not done in time.
void wait_all(std::vector<std::future<void>>& fs) {
  for (auto& f : fs) {
    BOOST_TEST_REQUIRE((f.wait_for(limit) == std::future_status::ready), "a coroutine did not finish");
    f.get();
  }
}

// One client per io_context, running there, named ws-ioc0 and ws-ioc1 (CLIENT LIST, MONITOR).
std::vector<redis::client> clients_on(two_loops& loops, std::uint16_t port) {
  std::vector<redis::client> out;
  for (std::size_t i = 0; i < 2; ++i) {
    out.emplace_back(loops[i].get_executor(), local(port, "ws-ioc" + std::to_string(i)));
    out.back().async_run(asio::detached);
  }
  return out;
}

// `n` sessions made through `mgr` on the caller's io_context, each with from = `tag`.
template <class Manager>
asio::awaitable<std::vector<std::string>> make_sessions(Manager& mgr, int n, std::string tag) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    session s = mgr.new_session();
    s.set("from", tag);
    auto [ec] = co_await mgr.async_save(s, tuple_token);
    check(!ec, "save on " + tag + ": " + ec.message());
    ids.push_back(s.id());
  }
  co_return ids;
}

// Loads every id through `mgr` and checks that each says from = `tag`.
template <class Manager>
asio::awaitable<void> expect_sessions(Manager& mgr, std::vector<std::string> ids, std::string tag) {
  for (const std::string& id : ids) {
    auto [ec, s] = co_await mgr.async_load(id, tuple_token);
    check(!ec, "load of a session from " + tag + ": " + ec.message());
    check(s.template get_as<std::string>("from").value_or("") == tag, "wrong value, expected " + tag);
  }
}

// Sessions saved on each io_context load on the other one.
template <class Manager>
void check_sessions_cross(two_loops& loops, Manager& mgr) {
  std::array<std::vector<std::string>, 2> ids;
  std::vector<std::future<void>> made;
  for (std::size_t i = 0; i < 2; ++i) {
    made.push_back(loops.spawn(i, [&mgr, &ids, i]() -> asio::awaitable<void> {
      ids[i] = co_await make_sessions(mgr, 8, "ioc" + std::to_string(i));
    }));
  }
  wait_all(made);
  std::vector<std::future<void>> loaded;
  for (std::size_t i = 0; i < 2; ++i) {
    loaded.push_back(loops.spawn(1 - i, [&mgr, &ids, i]() -> asio::awaitable<void> {
      co_await expect_sessions(mgr, ids[i], "ioc" + std::to_string(i));
    }));
  }
  wait_all(loaded);
}

// `per_loop` coroutines on each io_context each add 1 to one session's counter `rounds` times
// with async_update; the counter must end at the total (no lost update).
template <class Manager>
void check_updates_exact(two_loops& loops, Manager& mgr, int per_loop, int rounds) {
  std::string id;
  loops.spawn(0, [&]() -> asio::awaitable<void> {
         session s = mgr.new_session();
         s.set("n", std::int64_t{0});
         auto [ec] = co_await mgr.async_save(s, tuple_token);
         check(!ec, "save: " + ec.message());
         id = s.id();
       })
      .get();
  std::vector<std::future<void>> updaters;
  for (std::size_t i = 0; i < 2; ++i) {
    for (int c = 0; c < per_loop; ++c) {
      updaters.push_back(loops.spawn(i, [&mgr, id, rounds]() -> asio::awaitable<void> {
        for (int r = 0; r < rounds; ++r) {
          auto [ec, s] = co_await mgr.async_update(
              id, [](session& x) { x.set("n", x.get_as<std::int64_t>("n").value_or(-1000000) + 1); },
              tuple_token);
          check(!ec, "update: " + ec.message());
        }
      }));
    }
  }
  wait_all(updaters);
  std::int64_t n = -1;
  loops.spawn(1, [&]() -> asio::awaitable<void> {
         auto [ec, s] = co_await mgr.async_load(id, tuple_token);
         check(!ec, "load: " + ec.message());
         n = s.template get_as<std::int64_t>("n").value_or(-1);
       })
      .get();
  BOOST_TEST(n == std::int64_t{2} * per_loop * rounds);
}

// The address ("127.0.0.1:port") of the connection named `name` in CLIENT LIST; empty if none,
// and `count` set to how many have that name.
std::string client_addr(const std::string& list, const std::string& name, int& count) {
  std::string addr;
  count = 0;
  std::size_t pos = 0;
  while (pos < list.size()) {
    std::size_t end = list.find('\n', pos);
    if (end == std::string::npos) end = list.size();
    const std::string line = list.substr(pos, end - pos);
    pos = end + 1;
    if (line.find(" name=" + name + " ") == std::string::npos) continue;
    ++count;
    const std::size_t a = line.find(" addr=");
    if (a == std::string::npos) continue;
    addr = line.substr(a + 6, line.find(' ', a + 6) - a - 6);
  }
  return addr;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_per_io_context)

// The deployment this store is for: sessions cross io_contexts, and updates of one session from
// coroutines on both io_contexts take turns through the shared manager without losing any.
BOOST_AUTO_TEST_CASE(one_manager_two_io_contexts_one_client_each) {
  redis_server server;
  two_loops loops;
  auto clients = clients_on(loops, server.port());
  {
    redis_manager mgr(loops[0].get_executor(), aes_gcm_cipher(std::string(32, 'k')),
                      redis_store(clients), test_opts());
    BOOST_TEST(mgr.get_store().client_count() == 2u);
    check_sessions_cross(loops, mgr);
    check_updates_exact(loops, mgr, 8, 8);
    // The manager's own turn-taking kept the updates apart: none conflicted in Redis.
    BOOST_TEST(mgr.stats().conflicts == 0u);
  }
  for (auto& c : clients) c.cancel();
  BOOST_TEST(loops.drain(), "work was left pending on an io_context");
}

// Redis sees two connections, and every command of an operation goes out on the connection of
// the io_context that ran it: GET (load), EVALSHA (save), SCAN (count).
BOOST_AUTO_TEST_CASE(each_io_context_uses_its_own_connection) {
  redis_server server;
  two_loops loops;
  auto clients = clients_on(loops, server.port());
  {
    redis_manager mgr(loops[0].get_executor(), aes_gcm_cipher(std::string(32, 'k')),
                      redis_store(clients), test_opts());
    std::vector<std::string> ids;
    loops.spawn(0, [&]() -> asio::awaitable<void> {
           ids = co_await make_sessions(mgr, 4, "x");
           // A replace, so that its script is in Redis's cache before the watched part.
           auto [ec, s] = co_await mgr.async_load(ids[0], tuple_token);
           check(!ec, "load: " + ec.message());
           s.set("y", 1);
           auto [e2] = co_await mgr.async_save(s, tuple_token);
           check(!e2, "save: " + e2.message());
         })
        .get();

    const std::string list = redis_command_ok(server.port(), {"CLIENT", "LIST"}).str;
    int n0 = 0, n1 = 0;
    const std::string addr0 = client_addr(list, "ws-ioc0", n0);
    const std::string addr1 = client_addr(list, "ws-ioc1", n1);
    BOOST_TEST(n0 == 1);
    BOOST_TEST(n1 == 1);
    BOOST_TEST_REQUIRE(!addr0.empty());
    BOOST_TEST_REQUIRE(!addr1.empty());
    BOOST_TEST(addr0 != addr1);

    resp_connection monitor(server.port());
    BOOST_TEST_REQUIRE(monitor.command({"MONITOR"}).str == "OK");
    // Different counts on each io_context, all at the same time.
    const std::array<int, 2> loads{20, 30}, saves{3, 7};
    std::vector<std::future<void>> work;
    for (std::size_t i = 0; i < 2; ++i) {
      work.push_back(loops.spawn(i, [&, i]() -> asio::awaitable<void> {
        for (int k = 0; k < loads[i]; ++k) {
          auto [ec, s] = co_await mgr.async_load(ids[static_cast<std::size_t>(k) % ids.size()], tuple_token);
          check(!ec, "load: " + ec.message());
        }
        for (int k = 0; k < saves[i]; ++k) {
          auto [ec, s] = co_await mgr.async_load(ids[1 + i], tuple_token);  // not counted below
          check(!ec, "load: " + ec.message());
          s.set("k", k);
          auto [e2] = co_await mgr.async_save(s, tuple_token);
          check(!e2, "save: " + e2.message());
        }
        if (i == 1) {
          auto n = co_await mgr.get_store().count("pi:");
          check(n.has_value() && *n == 4, "count");
        }
      }));
    }
    wait_all(work);
    const std::string marker = "per-ioc-monitor-end";
    redis_command_ok(server.port(), {"ECHO", marker});
    std::map<std::string, std::map<std::string, int>> seen;  // addr -> command -> count
    for (;;) {
      const resp_reply line = monitor.read(std::chrono::seconds(10));
      if (line.str.find(marker) != std::string::npos) break;
      const std::size_t open = line.str.find(" [0 ");
      const std::size_t close = line.str.find("] \"", open);
      if (open == std::string::npos || close == std::string::npos) continue;
      const std::string addr = line.str.substr(open + 4, close - open - 4);
      const std::size_t cmd_end = line.str.find('"', close + 3);
      seen[addr][line.str.substr(close + 3, cmd_end - close - 3)]++;
    }
    // GET: the counted loads plus one per save (the load before it).
    BOOST_TEST(seen[addr0]["GET"] == loads[0] + saves[0]);
    BOOST_TEST(seen[addr1]["GET"] == loads[1] + saves[1]);
    BOOST_TEST(seen[addr0]["EVALSHA"] == saves[0]);
    BOOST_TEST(seen[addr1]["EVALSHA"] == saves[1]);
    BOOST_TEST(seen[addr0]["SCAN"] == 0);
    BOOST_TEST(seen[addr1]["SCAN"] >= 1);
  }
  for (auto& c : clients) c.cancel();
  BOOST_TEST(loops.drain(), "work was left pending on an io_context");
}

// A caller on neither io_context gets the first client; a vector of one is a one-client store;
// an empty vector or a mix of deployments is refused.
BOOST_AUTO_TEST_CASE(picks_the_first_client_for_other_callers_and_refuses_bad_sets) {
  asio::io_context a, b, other;
  redis::client ca(a.get_executor(), local(1, "a"));
  redis::client cb(b.get_executor(), local(1, "b"));
  redis_store store(std::vector<redis::client>{ca, cb});
  BOOST_TEST(store.client_count() == 2u);
  BOOST_TEST(store.client_for(b.get_executor()).connection() == cb.connection());
  BOOST_TEST(store.client_for(a.get_executor()).connection() == ca.connection());
  BOOST_TEST(store.client_for(other.get_executor()).connection() == ca.connection());
  // A strand on b's io_context belongs to b.
  BOOST_TEST(store.client_for(asio::make_strand(b)).connection() == cb.connection());
  // Copies share the clients.
  redis_store copy = store;
  BOOST_TEST(copy.client(1).connection() == cb.connection());

  BOOST_TEST(redis_store(std::vector<redis::client>{cb}).client_count() == 1u);
  BOOST_CHECK_THROW((void)redis_store(std::vector<redis::client>{}), std::invalid_argument);
  redis::client cluster(a.get_executor(), redis::parse_url("redis-cluster://127.0.0.1:1").value());
  BOOST_CHECK_THROW((void)redis_store(std::vector<redis::client>{ca, cluster}), std::invalid_argument);
  redis_store_options bad;
  bad.wait_replicas = -1;
  BOOST_CHECK_THROW((void)redis_store(std::vector<redis::client>{ca, cb}, bad), std::invalid_argument);
}

// fallback_store around the per-io_context store: a manager shared by both io_contexts, its
// switch state shared too; sessions cross, ping (every client) answers, nothing degrades.
BOOST_AUTO_TEST_CASE(fallback_store_around_clients_per_io_context) {
  using fallback_to_memory = fallback_store<redis_store, memory_store>;
  using fallback_manager = basic_session_manager<json_serializer, aes_gcm_cipher, fallback_to_memory,
                                                 std::chrono::system_clock>;
  redis_server server;
  two_loops loops;
  auto clients = clients_on(loops, server.port());
  {
    memory_store_options mo;
    fallback_manager mgr(loops[0].get_executor(), aes_gcm_cipher(std::string(32, 'k')),
                         fallback_to_memory(redis_store(clients),
                                            memory_store(loops[0].get_executor(), mo),
                                            std::chrono::milliseconds(50)),
                         test_opts());
    check_sessions_cross(loops, mgr);
    check_updates_exact(loops, mgr, 4, 4);
    error_code ping_ec = make_error_code(error::internal);
    loops.spawn(1, [&]() -> asio::awaitable<void> {
           auto [ec] = co_await mgr.async_ping(tuple_token);
           ping_ec = ec;
         })
        .get();
    BOOST_TEST(!ping_ec, ping_ec.message());
    BOOST_TEST(!mgr.get_store().degraded());
    BOOST_TEST(mgr.get_store().stats().primary_failures == 0u);
  }
  for (auto& c : clients) c.cancel();
  BOOST_TEST(loops.drain(), "work was left pending on an io_context");
}

// One cluster client per io_context: sessions cross, updates are exact, count() from the second
// io_context scans every master through that io_context's client.
BOOST_AUTO_TEST_CASE(one_cluster_client_per_io_context) {
  redis_cluster cluster(redis_cluster::options{3, 0, 1000, {}, std::chrono::seconds(20)});
  two_loops loops;
  std::vector<redis::client> clients;
  for (std::size_t i = 0; i < 2; ++i) {
    auto cfg = redis::parse_url("redis-cluster://127.0.0.1:" + std::to_string(cluster.port(i))).value();
    cfg.request_timeout = std::chrono::seconds(10);
    clients.emplace_back(loops[i].get_executor(), cfg);
    clients.back().async_run(asio::detached);
  }
  {
    redis_manager mgr(loops[0].get_executor(), aes_gcm_cipher(std::string(32, 'k')),
                      redis_store(clients), test_opts());
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!(clients[0].connected() && clients[1].connected()) &&
           std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BOOST_TEST_REQUIRE((clients[0].connected() && clients[1].connected()), "no slot map");
    check_sessions_cross(loops, mgr);
    check_updates_exact(loops, mgr, 4, 4);
    std::optional<result<std::size_t>> n;
    loops.spawn(1, [&]() -> asio::awaitable<void> { n = co_await mgr.get_store().count("pi:"); }).get();
    BOOST_TEST_REQUIRE(n.has_value());
    BOOST_TEST_REQUIRE(n->has_value(), n->error().message());
    BOOST_TEST(**n == 17u);  // 8 + 8 crossing, 1 updated
  }
  for (auto& c : clients) c.cancel();
  BOOST_TEST(loops.drain(), "work was left pending on an io_context");
}

BOOST_AUTO_TEST_SUITE_END()
