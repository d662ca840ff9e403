// Turns a coroutine returning result<T> (or error_code) into an Asio asynchronous operation with
// a completion token and the completion signature void(error_code, T) (or void(error_code)).
#pragma once

#include <websession/concepts.hpp>
#include <websession/error.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>

#include <exception>
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

// Receives co_spawn's (exception_ptr, value) and hands the user's handler (error_code, T). An
// exception inside the operation becomes error::internal: it must not escape into the server's
// io_context::run.
template <class T, class Handler>
struct op_completion {
  Handler handler;

  void operator()(std::exception_ptr e, result<T> r) {
    if (e) {
      std::move(handler)(make_error_code(error::internal), T{});
    } else if (!r) {
      std::move(handler)(r.error(), T{});
    } else {
      std::move(handler)(boost::system::error_code{}, std::move(*r));
    }
  }
};

template <class Handler>
struct op_completion<void, Handler> {
  Handler handler;

  void operator()(std::exception_ptr e, boost::system::error_code ec) {
    std::move(handler)(e ? make_error_code(error::internal) : ec);
  }
};

// Runs make_op() (a plain callable returning awaitable<op_traits<T>::awaited>; it must not be a
// coroutine lambda itself, whose captures would die with the lambda) on the handler's associated
// executor, or on `fallback` for handlers without one. make_op is kept alive until the operation
// completes, so what it captures may be passed on by reference or view.
template <class T, class Token, class MakeOp>
auto async_run(const boost::asio::any_io_executor& fallback, MakeOp make_op, Token&& token) {
  return boost::asio::async_initiate<Token, typename op_traits<T>::signature>(
      [](auto handler, const boost::asio::any_io_executor& fallback, MakeOp make_op) {
        auto ex = boost::asio::get_associated_executor(handler, fallback);
        using handler_type = decltype(handler);
        // The callable, not the awaitable it returns, goes to co_spawn: it then lives in the
        // coroutine frame, so the awaitable may view strings it owns.
        boost::asio::co_spawn(
            ex, std::move(make_op),
            boost::asio::bind_executor(ex, op_completion<T, handler_type>{std::move(handler)}));
      },
      token, fallback, std::move(make_op));
}

}  // namespace websession::detail
