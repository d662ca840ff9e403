// SPDX-License-Identifier: BSL-1.0
// Definitions of detail/operation.hpp (compiled once with WEBSESSION_SEPARATE_COMPILATION).
#ifndef WEBSESSION_REDIS_DETAIL_IMPL_OPERATION_IPP
#define WEBSESSION_REDIS_DETAIL_IMPL_OPERATION_IPP

#include <websession/redis/detail/operation.hpp>

namespace websession::redis::detail {

WEBSESSION_DECL void op_completion::complete(boost::system::error_code ec,
                                             std::vector<reply> replies, hand_over how) {
  if (!handler) return;
  if (ec) replies.clear();
  // Straight to the handler's executor, found before type erasure: asio::post and dispatch
  // would ask the type-erased handler for it again, and wrap it in a second polymorphic
  // executor on the heap (three allocations per completion with Asio 1.26).
  auto ex = std::move(work);
  auto call = [h = std::move(handler), ec, r = std::move(replies)]() mutable {
    std::move(h)(ec, std::move(r));
  };
  switch (how) {
    case hand_over::post:
      boost::asio::require(ex, boost::asio::execution::blocking.never).execute(std::move(call));
      return;
    case hand_over::call: call(); return;
    case hand_over::dispatch:
      try {
        // blocking.possibly (the default): runs inline when `ex` runs in this thread.
        ex.execute(std::move(call));
      } catch (...) {
        // io_context itself catches what an inline handler throws and rethrows it from run();
        // for an executor that does not, the same happens here.
        boost::asio::post(ex, [e = std::current_exception()] { std::rethrow_exception(e); });
      }
      return;
  }
}

WEBSESSION_DECL void error_record::notify(boost::system::error_code ec,
                                          const std::string& message) const {
  if (!handler_) return;
  try {
    handler_(ec, message);
  } catch (...) {
    // A logging callback must not take the client down.
  }
}

}  // namespace websession::redis::detail

#endif
