// SPDX-License-Identifier: BSL-1.0
// A plain request/reply conversation on a socket of its own, outside any multiplexing: what a
// connection uses to ask the sentinels for the master and to listen for +switch-master.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/detail/stream.hpp>
#include <websession/redis/reader.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <string>
#include <utility>
#include <vector>

namespace websession::redis::detail {

/// One socket (TCP or TLS) to one server, for sequential request/reply use by one coroutine.
/// Timeouts are the caller's: close() from a timer ends any pending step with an error.
class side_channel {
 public:
  using error_code = boost::system::error_code;
  using outcome = std::pair<error_code, std::string>;

  /// `tls`: the TLS context, or nullptr for plain TCP. `verify_peer` checks the host name.
  /// `limits` bound the replies, as on the data connection.
  side_channel(boost::asio::any_io_executor ex, boost::asio::ssl::context* tls, bool verify_peer,
               reply_limits limits = {})
      : stream_(std::move(ex), tls, verify_peer), reader_(limits), buf_(16 * 1024) {}

  /// Resolves and connects to `a` (and does the TLS handshake); `server_name` is checked
  /// against the certificate (empty: a.host). The error's message names the step.
  boost::asio::awaitable<outcome> connect(const address& a, const std::string& server_name) {
    reader_.reset();
    co_return co_await stream_.connect(a, server_name);
  }

  /// Writes the request's commands.
  boost::asio::awaitable<error_code> write(const request& req) {
    namespace asio = boost::asio;
    error_code ec;
    co_await stream_.async_write(asio::buffer(req.payload()),
                                 asio::redirect_error(asio::use_awaitable, ec));
    co_return ec;
  }

  /// The next reply (reading as much as it takes).
  boost::asio::awaitable<std::pair<error_code, reply>> read() {
    namespace asio = boost::asio;
    for (;;) {
      auto next = reader_.next();
      if (next && *next) co_return std::pair<error_code, reply>{{}, std::move(**next)};
      if (!next) co_return std::pair<error_code, reply>{next.error(), reply{}};
      error_code ec;
      const std::size_t n = co_await stream_.async_read_some(
          asio::buffer(buf_), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return std::pair<error_code, reply>{ec, reply{}};
      if (auto parse_ec = reader_.feed(buf_.data(), n)) {
        // Replies before the bad bytes are still handed out; the error comes after them.
        auto more = reader_.next();
        if (more && *more) co_return std::pair<error_code, reply>{{}, std::move(**more)};
        co_return std::pair<error_code, reply>{parse_ec, reply{}};
      }
    }
  }

  /// Writes `req` and reads its replies (one per command).
  boost::asio::awaitable<std::pair<error_code, std::vector<reply>>> exchange(const request& req) {
    std::vector<reply> replies;
    if (auto ec = co_await write(req)) co_return std::pair{ec, std::move(replies)};
    while (replies.size() < req.size()) {
      auto [ec, r] = co_await read();
      if (ec) co_return std::pair{ec, std::vector<reply>{}};
      replies.push_back(std::move(r));
    }
    co_return std::pair{error_code{}, std::move(replies)};
  }

  /// Closes the socket (ends any pending step) and cancels a resolve. Idempotent.
  void close() noexcept { stream_.close(); }

 private:
  stream stream_;
  reader reader_;
  std::vector<char> buf_;
};

}  // namespace websession::redis::detail
