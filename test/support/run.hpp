// SPDX-License-Identifier: BSL-1.0
// Helpers shared by the test programs: running coroutines to completion, the tuple completion
// token, and short forms for comparing results with websession errors.
#pragma once

#include <websession/error.hpp>
#include <websession/testing/run.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace websession::test {

/// `auto [ec, value] = co_await op(tuple_token);`: errors as values, never thrown.
inline constexpr auto tuple_token = boost::asio::as_tuple(boost::asio::use_awaitable);

/// Runs `op` to completion on `ioc` from this thread and returns its value (rethrows what it
/// threw): websession::testing::run_to_completion, with two minutes before it fails the test.
template <class T>
T run_on(boost::asio::io_context& ioc, boost::asio::awaitable<T> op) {
  return websession::testing::run_to_completion(ioc, std::move(op), std::chrono::minutes(2));
}

/// Runs `body(ioc)` (a callable returning awaitable<void>) on a fresh io_context served by
/// `threads` threads. Fails if the body does not finish within `limit`, and if the io_context
/// does not then run out of work by itself within 3 s: every operation must have completed and
/// every connection must have stopped.
inline void run_test(std::function<boost::asio::awaitable<void>(boost::asio::io_context&)> body,
                     std::chrono::milliseconds limit = std::chrono::seconds(20), int threads = 1) {
  boost::asio::io_context ioc(threads);
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr failure;
  boost::asio::co_spawn(ioc, body(ioc), [&](std::exception_ptr e) {
    std::lock_guard lock(m);
    failure = e;
    done = true;
    cv.notify_all();
  });
  std::vector<std::thread> pool;
  int running = threads;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&] {
      ioc.run();
      std::lock_guard lock(m);
      --running;
      cv.notify_all();
    });
  }
  bool finished = false;
  bool drained = false;
  {
    std::unique_lock lock(m);
    finished = cv.wait_for(lock, limit, [&] { return done; });
    if (finished) drained = cv.wait_for(lock, std::chrono::seconds(3), [&] { return running == 0; });
  }
  ioc.stop();
  for (auto& t : pool) t.join();
  BOOST_TEST_REQUIRE(finished, "the test body did not finish within " << limit.count() << " ms");
  if (failure) std::rethrow_exception(failure);
  BOOST_TEST(drained, "work was left pending on the io_context after the test body finished");
}

/// The error of a result, or no error.
template <class R>
boost::system::error_code code(const R& r) {
  return r.has_value() ? boost::system::error_code{} : r.error();
}

/// The error_code of a websession error, for BOOST_TEST comparisons that print both sides.
inline boost::system::error_code ec(error e) { return make_error_code(e); }

}  // namespace websession::test
