// SPDX-License-Identifier: BSL-1.0
// Turns a coroutine returning result<T> (or error_code) into an Asio asynchronous operation with
// a completion token and the completion signature void(error_code, T) (or void(error_code)).
#pragma once

#include <websession/error.hpp>
#include <websession/result.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <tuple>
#include <type_traits>
#include <utility>

namespace websession::detail {

template <class T>
struct op_traits {
  using signature = void(boost::system::error_code, T);
  using awaited = result<T>;
};

template <>
struct op_traits<void> {
  using signature = void(boost::system::error_code);
  using awaited = boost::system::error_code;
};

// The user's handler, showing its cancellation slot: co_spawn connects it to the operation's
// coroutine, so cancelling the handler (e.g. bind_cancellation_slot) cancels the operation and
// the store request it waits for, as it does for the coroutine tokens (see async_run).
template <class Handler>
struct handler_holder {
  Handler handler;

  using cancellation_slot_type = boost::asio::associated_cancellation_slot_t<Handler>;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return boost::asio::get_associated_cancellation_slot(handler);
  }
};

// Receives co_spawn's (exception_ptr, value) and hands the user's handler (error_code, T). An
// exception inside the operation becomes error::internal: it must not escape into the server's
// io_context::run.
template <class T, class Handler>
struct op_completion : handler_holder<Handler> {
  void operator()(std::exception_ptr e, result<T> r) {
    if (e) {
      std::move(this->handler)(make_error_code(error::internal), T{});
    } else if (!r) {
      std::move(this->handler)(r.error(), T{});
    } else {
      std::move(this->handler)(boost::system::error_code{}, std::move(*r));
    }
  }
};

template <class Handler>
struct op_completion<void, Handler> : handler_holder<Handler> {
  void operator()(std::exception_ptr e, boost::system::error_code ec) {
    std::move(this->handler)(e ? make_error_code(error::internal) : ec);
  }
};

// The coroutine tokens (use_awaitable, as_tuple(use_awaitable)) skip co_spawn: the operation
// runs as a nested awaitable of the caller's coroutine, on the caller's executor (which is where
// co_spawn would run it too), without co_spawn's initial post, completion dispatch and frame.
// make_op lives in the coroutine frame, as it would in co_spawn's. An exception inside the
// operation becomes error::internal, as in op_completion; each token's adapter catches it
// itself, so the operation costs one coroutine frame above its own.
template <class T, class MakeOp>
boost::asio::awaitable<T> direct_value(MakeOp make_op) {
  boost::system::error_code failure = make_error_code(error::internal);
  try {
    auto r = co_await make_op();
    if constexpr (std::is_void_v<T>) {
      if (!r) co_return;
      failure = r;
    } else {
      if (r) co_return std::move(*r);
      failure = r.error();
    }
  } catch (...) {
  }
  throw boost::system::system_error(failure);
}

template <class T, class MakeOp>
auto direct_tuple(MakeOp make_op)
    -> boost::asio::awaitable<std::conditional_t<std::is_void_v<T>,
                                                 std::tuple<boost::system::error_code>,
                                                 std::tuple<boost::system::error_code, T>>> {
  try {
    auto r = co_await make_op();
    if constexpr (std::is_void_v<T>) {
      co_return std::tuple<boost::system::error_code>(r);
    } else {
      if (!r) co_return std::tuple<boost::system::error_code, T>(r.error(), T{});
      co_return std::tuple<boost::system::error_code, T>(boost::system::error_code{},
                                                         std::move(*r));
    }
  } catch (...) {
  }
  if constexpr (std::is_void_v<T>) {
    co_return std::tuple<boost::system::error_code>(make_error_code(error::internal));
  } else {
    co_return std::tuple<boost::system::error_code, T>(make_error_code(error::internal), T{});
  }
}

using awaitable_token = boost::asio::use_awaitable_t<boost::asio::any_io_executor>;
using awaitable_tuple_token = boost::asio::as_tuple_t<awaitable_token>;

// The general path: co_spawn on the handler's associated executor.
template <class T, class Token, class MakeOp>
auto async_initiate_op(const boost::asio::any_io_executor& fallback, MakeOp make_op,
                       Token&& token) {
  return boost::asio::async_initiate<Token, typename op_traits<T>::signature>(
      [](auto handler, const boost::asio::any_io_executor& fallback, MakeOp make_op) {
        auto ex = boost::asio::get_associated_executor(handler, fallback);
        using handler_type = decltype(handler);
        // The callable, not the awaitable it returns, goes to co_spawn: it then lives in the
        // coroutine frame, so the awaitable may view strings it owns.
        boost::asio::co_spawn(
            ex, std::move(make_op),
            boost::asio::bind_executor(ex, op_completion<T, handler_type>{{std::move(handler)}}));
      },
      token, fallback, std::move(make_op));
}

// Runs make_op() (a plain callable returning awaitable<op_traits<T>::awaited>; it must not be a
// coroutine lambda itself, whose captures would die with the lambda) on the handler's associated
// executor, or on `fallback` for handlers without one. make_op is kept alive until the operation
// completes, so what it captures may be passed on by reference or view.
template <class T, class Token, class MakeOp>
auto async_run(const boost::asio::any_io_executor& fallback, MakeOp make_op, Token&& token) {
  using token_type = std::decay_t<Token>;
  if constexpr (std::is_same_v<token_type, awaitable_token>) {
    return direct_value<T>(std::move(make_op));
  } else if constexpr (std::is_same_v<token_type, awaitable_tuple_token>) {
    return direct_tuple<T>(std::move(make_op));
  } else {
    return async_initiate_op<T>(fallback, std::move(make_op), std::forward<Token>(token));
  }
}

}  // namespace websession::detail
