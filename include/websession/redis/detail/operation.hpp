// SPDX-License-Identifier: BSL-1.0
// The operation-completion layer shared by the single-node connection and the cluster: the
// handler of one async_exec with its executor, its cancellation slot carried to a strand, the
// hand-over of its result, the error record (last_error and the error handler), and the
// initiating functions of the public classes.
#pragma once

#include <websession/detail/config.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/require.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace websession::redis::detail {

using exec_signature = void(boost::system::error_code, std::vector<reply>);
using exec_handler = boost::asio::any_completion_handler<exec_signature>;
using run_signature = void(boost::system::error_code);
using run_handler = boost::asio::any_completion_handler<run_signature>;
using error_handler =
    std::function<void(const boost::system::error_code&, std::string_view message)>;
using steady = std::chrono::steady_clock;

/// How a result reaches its handler: posted (we may be anywhere in our own state machine), or
/// dispatched (runs inline when the handler's executor runs in this thread; only where our
/// state is consistent), or called right here (we already run on the handler's executor).
enum class hand_over : unsigned char { post, dispatch, call };

/// The caller's side of one operation: its type-erased handler and the handler's executor,
/// kept from running dry until the result is handed over. Asio 1.26's any_completion_handler
/// crashes on move assignment, so the handler is only ever move-constructed.
struct op_completion {
  op_completion() = default;
  op_completion(exec_handler h, boost::asio::any_io_executor ex) noexcept
      : handler(std::move(h)),
        work(boost::asio::prefer(std::move(ex),
                                 boost::asio::execution::outstanding_work.tracked)) {}

  exec_handler handler;
  boost::asio::any_io_executor work;

  /// Whether there is a handler still to call.
  explicit operator bool() const noexcept { return static_cast<bool>(handler); }

  /// Hands the result over (once: the handler is gone afterwards). A handler that throws
  /// inline does not unwind into our state: the exception is rethrown from the handler's
  /// executor, as it would be for a posted handler.
  void complete(boost::system::error_code ec, std::vector<reply> replies, hand_over how);
};

/// Assigns the handler's cancellation slot (if it has one) so that a cancellation, emitted
/// from any thread, reaches `owner->cancel_op(op, type)` on the owner's strand, if both still
/// live by then.
template <class Owner, class Op, class Strand>
void forward_cancellation(exec_handler& handler, const std::shared_ptr<Owner>& owner,
                          const std::shared_ptr<Op>& op, const Strand& strand) {
  auto slot = boost::asio::get_associated_cancellation_slot(handler);
  if (!slot.is_connected()) return;
  slot.assign([w = std::weak_ptr<Owner>(owner), o = std::weak_ptr<Op>(op),
               strand](boost::asio::cancellation_type_t type) {
    if (auto self = w.lock()) {
      boost::asio::post(strand, [self, o, type] {
        if (auto op = o.lock()) self->cancel_op(op, type);
      });
    }
  });
}

/// last_error(), last_error_message() and the error handler of a connection or cluster.
/// Readers: any thread. Writers: the owner's strand (or, for the cluster, a node's).
class error_record {
 public:
  using error_code = boost::system::error_code;

  error_code code() const {
    std::lock_guard lock(mutex_);
    return code_;
  }
  std::string message() const {
    std::lock_guard lock(mutex_);
    return message_;
  }
  /// Set before async_run.
  void set_handler(error_handler h) { handler_ = std::move(h); }

  /// Records a failure and tells the handler. `keep(current)` decides whether it replaces the
  /// recorded one (the handler hears of it either way).
  template <class Keep>
  void record_if(error_code ec, const std::string& message, Keep keep) {
    {
      std::lock_guard lock(mutex_);
      if (keep(code_)) {
        code_ = ec;
        message_ = message;
      }
    }
    notify(ec, message);
  }
  void record(error_code ec, const std::string& message) {
    record_if(ec, message, [](const error_code&) { return true; });
  }
  /// Clears the record when `clear(current)` says so.
  template <class Pred>
  void clear_if(Pred clear) {
    std::lock_guard lock(mutex_);
    if (clear(code_)) {
      code_ = {};
      message_.clear();
    }
  }
  void clear() {
    clear_if([](const error_code&) { return true; });
  }
  /// Tells the handler only: a warning about the configuration, not a failure.
  void notify(error_code ec, const std::string& message) const;

 private:
  mutable std::mutex mutex_;
  error_code code_;
  std::string message_;
  error_handler handler_;
};

/// async_run of a connection or cluster implementation `Impl` (with strand(), get_executor(),
/// cancel() and a static coroutine run(self) returning the error_code to complete with). An
/// exception out of the loop (only allocation failures) cancels it and completes with
/// error::internal.
template <class Impl>
void spawn_run(std::shared_ptr<Impl> impl, run_handler handler) {
  auto ex = boost::asio::get_associated_executor(handler, impl->get_executor());
  auto loop = Impl::run(impl);
  boost::asio::co_spawn(
      impl->strand(), std::move(loop),
      boost::asio::bind_executor(ex, [h = std::move(handler), impl](
                                         std::exception_ptr e,
                                         boost::system::error_code ec) mutable {
        if (e) impl->cancel();
        std::move(h)(e ? make_error_code(error::internal) : ec);
      }));
}

}  // namespace websession::redis::detail

#if !defined(WEBSESSION_SEPARATE_COMPILATION)
#include <websession/redis/detail/impl/operation.ipp>
#endif
