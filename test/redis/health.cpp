// SPDX-License-Identifier: BSL-1.0
// The health check (redis/detail/health.hpp) as a pure decision, and as the multiplexer asks
// it, on a scripted clock: a PING only when idle, a dead server noticed from the oldest request
// whatever later traffic does, a write that makes no progress.
#include <websession/redis/detail/health.hpp>
#include <websession/redis/detail/multiplexer.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace {

namespace redis = websession::redis;
namespace rd = websession::redis::detail;
using namespace std::chrono_literals;
using time_point = std::chrono::steady_clock::time_point;
const time_point t0 = time_point{} + 1h;

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_health)

BOOST_AUTO_TEST_CASE(verdicts) {
  rd::health_facts idle;
  idle.idle = true;
  idle.last_read = idle.last_write = t0;
  BOOST_TEST((rd::check_health(idle, t0 + 999ms, 1s) == rd::health_verdict::fine));
  BOOST_TEST((rd::check_health(idle, t0 + 1s, 1s) == rd::health_verdict::ping));
  // Not idle (something queued or a PING outstanding): no PING.
  rd::health_facts busy = idle;
  busy.idle = false;
  BOOST_TEST((rd::check_health(busy, t0 + 5s, 1s) == rd::health_verdict::fine));
  // Awaiting replies: the oldest request's send time, or the last bytes read, whichever later.
  rd::health_facts awaiting;
  awaiting.awaiting = true;
  awaiting.oldest_sent = t0;
  awaiting.last_read = t0 - 10s;
  awaiting.last_write = t0 + 900ms;  // later writes do not reset the clock
  BOOST_TEST((rd::check_health(awaiting, t0 + 999ms, 1s) == rd::health_verdict::fine));
  BOOST_TEST((rd::check_health(awaiting, t0 + 1s, 1s) == rd::health_verdict::silent));
  awaiting.last_read = t0 + 500ms;
  BOOST_TEST((rd::check_health(awaiting, t0 + 1s, 1s) == rd::health_verdict::fine));
  BOOST_TEST((rd::check_health(awaiting, t0 + 1500ms, 1s) == rd::health_verdict::silent));
  // Its write not finished yet: no clock for it.
  awaiting.oldest_sent = {};
  BOOST_TEST((rd::check_health(awaiting, t0 + 10s, 1s) == rd::health_verdict::fine));
  // A write that made no progress for the interval.
  rd::health_facts stalled;
  stalled.writing = true;
  stalled.last_write = t0;
  BOOST_TEST((rd::check_health(stalled, t0 + 999ms, 1s) == rd::health_verdict::fine));
  BOOST_TEST((rd::check_health(stalled, t0 + 1s, 1s) == rd::health_verdict::stalled_write));
  BOOST_TEST(rd::health_tick(2000ms) == 500ms);
  BOOST_TEST(rd::health_tick(2ms) == 1ms);
}

BOOST_AUTO_TEST_CASE(the_multiplexer_pings_only_when_idle_and_notices_silence) {
  rd::multiplexer mux;
  time_point now = t0;
  mux.on_connected(now);
  now += 1s;
  BOOST_TEST((mux.check_health(now, 1s) == rd::health_verdict::ping));
  BOOST_TEST(mux.write_due());
  BOOST_TEST(std::string(mux.begin_write(now)) == "*1\r\n$4\r\nPING\r\n");
  BOOST_TEST(mux.wrote(14, now));
  // The PING is outstanding: no second one; it answers and nobody sees a completion.
  BOOST_TEST((mux.check_health(now + 500ms, 1s) == rd::health_verdict::fine));
  BOOST_TEST(!mux.on_read("+PONG\r\n", 7, now + 1ms));
  BOOST_TEST(mux.take_completions().empty());
  // Under load: requests keep going out, the first one's reply never comes.
  redis::request get;
  get.push("GET", "k");
  auto first = std::make_shared<rd::mux_op>();
  first->req = &get;
  first->deadline = now + 1h;
  mux.add(first);
  mux.begin_write(now);
  mux.wrote(get.payload().size(), now);
  for (int i = 1; i <= 9; ++i) {
    auto more = std::make_shared<rd::mux_op>();
    more->req = &get;
    more->deadline = now + 1h;
    mux.add(more);
    const auto at = now + i * 100ms;
    mux.begin_write(at);
    mux.wrote(get.payload().size(), at);
    BOOST_TEST((mux.check_health(at, 1s) == rd::health_verdict::fine));
  }
  BOOST_TEST((mux.check_health(now + 1001ms, 1s) == rd::health_verdict::silent));
}

BOOST_AUTO_TEST_SUITE_END()
