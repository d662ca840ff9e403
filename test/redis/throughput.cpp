// SPDX-License-Identifier: BSL-1.0
// A rough throughput and latency measurement of redis::connection next to redis-benchmark run
// against the same server in the same minute. Disabled by default (it takes ~10 s and its
// numbers are only meaningful on a quiet machine); run it with
//   redis_tests --run_test=redis_throughput --log_level=message
#include "server_fixture.hpp"

#include <websession/redis/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace redis = websession::redis;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::string shell(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return out;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe.get())) out += buf.data();
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_throughput, *boost::unit_test::disabled())

BOOST_AUTO_TEST_CASE(get_1kb) {
  redis_test::redis_server server;
  const auto port = std::to_string(server.port());
  // Scheduling noise on a small VM swamps the numbers (the same run of redis-benchmark -c 1
  // moves between 15k and 100k ops/s as the two processes share or split cores), so: the
  // server on CPU 1, every client (ours and redis-benchmark) on CPU 0.
  cpu_set_t all;
  sched_getaffinity(0, sizeof all, &all);
  const bool pinned = CPU_COUNT(&all) >= 2;
  if (pinned) {
    shell("taskset -pc 1 " + std::to_string(server.pid()) + " >/dev/null");
    cpu_set_t cpu0;
    CPU_ZERO(&cpu0);
    CPU_SET(0, &cpu0);
    sched_setaffinity(0, sizeof cpu0, &cpu0);
  }
  const std::string client_cpu = pinned ? "taskset -c 0 " : "";
  double multiplexed_ops = 0;
  double sequential_ops = 0;
  double p50_us = 0;
  double p99_us = 0;
  redis_test::run_test(
      [&](asio::io_context& ioc) -> asio::awaitable<void> {
        redis::config cfg;
        cfg.port = server.port();
        redis::connection conn(ioc.get_executor(), cfg);
        conn.async_run(asio::detached);
        boost::system::error_code ec;
        redis::request set;
        set.push("SET", "key:__rand_int__", std::string(1024, 'x'));
        co_await conn.async_exec(set, asio::redirect_error(asio::use_awaitable, ec));
        BOOST_TEST_REQUIRE(!ec);

        // 64 coroutines on one connection, 2 s.
        std::atomic<long> ops{0};
        std::atomic<int> running{0};
        const auto start = steady::now();
        const auto end = start + 2s;
        for (int i = 0; i < 64; ++i) {
          running.fetch_add(1);
          asio::co_spawn(
              ioc,
              [&]() -> asio::awaitable<void> {
                redis::request get;
                get.push("GET", "key:__rand_int__");
                boost::system::error_code e;
                while (steady::now() < end) {
                  auto r = co_await conn.async_exec(get, asio::redirect_error(asio::use_awaitable, e));
                  if (e || r.at(0).str.size() != 1024) break;
                  ops.fetch_add(1, std::memory_order_relaxed);
                }
                running.fetch_sub(1);
              },
              asio::detached);
        }
        co_await redis_test::wait_until([&] { return running.load() == 0; }, 5s);
        multiplexed_ops = static_cast<double>(ops.load()) /
                          std::chrono::duration<double>(steady::now() - start).count();

        // One coroutine, sequential, 2 s.
        std::vector<double> lat;
        lat.reserve(100000);
        redis::request get;
        get.push("GET", "key:__rand_int__");
        const auto s2 = steady::now();
        while (steady::now() < s2 + 2s) {
          const auto t0 = steady::now();
          auto r = co_await conn.async_exec(get, asio::redirect_error(asio::use_awaitable, ec));
          if (ec || r.at(0).str.size() != 1024) break;
          lat.push_back(std::chrono::duration<double, std::micro>(steady::now() - t0).count());
        }
        sequential_ops = static_cast<double>(lat.size()) /
                         std::chrono::duration<double>(steady::now() - s2).count();
        std::sort(lat.begin(), lat.end());
        if (!lat.empty()) {
          p50_us = lat[lat.size() / 2];
          p99_us = lat[lat.size() * 99 / 100];
        }
        conn.cancel();
      },
      30s, 1);
  const std::string bench50 = shell(client_cpu + "redis-benchmark -p " + port +
                                    " -c 50 -n 200000 -d 1024 -t get -q 2>&1 | tr '\\r' '\\n' | tail -2");
  const std::string bench1 = shell(client_cpu + "redis-benchmark -p " + port +
                                   " -c 1 -n 40000 -d 1024 -t get -q 2>&1 | tr '\\r' '\\n' | tail -2");
  if (pinned) sched_setaffinity(0, sizeof all, &all);
  BOOST_TEST_MESSAGE("websession::redis 64 coroutines, 1 connection, GET 1 KB: "
                     << static_cast<long>(multiplexed_ops) << " ops/s");
  BOOST_TEST_MESSAGE("websession::redis 1 coroutine sequential GET 1 KB: "
                     << static_cast<long>(sequential_ops) << " ops/s, p50 " << p50_us
                     << " us, p99 " << p99_us << " us");
  BOOST_TEST_MESSAGE("redis-benchmark -c 50: " << bench50);
  BOOST_TEST_MESSAGE("redis-benchmark -c 1: " << bench1);
  BOOST_TEST(multiplexed_ops > 0);
}

BOOST_AUTO_TEST_SUITE_END()
