// SPDX-License-Identifier: BSL-1.0
// Running a coroutine to completion inside a Boost.Test case: the runner of the conformance kit
// (store_conformance.hpp), also for a store author's own tests.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace websession::testing {

/// Runs `op` on `ioc` from this thread until it completes and returns its value (or rethrows
/// what it threw). Runs handler by handler, so other work pending on `ioc` (a store's timer, a
/// connection's loop) cannot keep it waiting. Fails the current test case if `op` has not
/// completed after `limit`, or if `ioc` runs out of work first (nothing could complete it then).
template <class T>
T run_to_completion(boost::asio::io_context& ioc, boost::asio::awaitable<T> op,
                    std::chrono::milliseconds limit = std::chrono::seconds(30)) {
  using stored = std::conditional_t<std::is_void_v<T>, bool, T>;
  std::optional<stored> out;
  std::exception_ptr failure;
  bool done = false;
  boost::asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, auto&&... value) {
    failure = e;
    if (!e) out.emplace(std::forward<decltype(value)>(value)...);
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  ioc.restart();
  while (!done) {
    BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                          "the operation did not complete within " << limit.count() << " ms");
    if (ioc.run_one_for(std::chrono::milliseconds(100)) == 0 && ioc.stopped()) {
      BOOST_REQUIRE_MESSAGE(done, "the operation never completed (no work left)");
    }
  }
  if (failure) std::rethrow_exception(failure);
  if constexpr (!std::is_void_v<T>) return std::move(*out);
}

}  // namespace websession::testing
