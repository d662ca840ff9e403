// SPDX-License-Identifier: BSL-1.0
// A plain request/reply conversation on a socket of its own, outside any multiplexing: what a
// connection uses to ask the sentinels for the master and to listen for +switch-master.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/reader.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/ssl.h>

#include <optional>
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
      : ex_(std::move(ex)),
        resolver_(ex_),
        ctx_(tls),
        verify_peer_(verify_peer),
        reader_(limits),
        buf_(16 * 1024) {}

  /// Resolves and connects to `a` (and does the TLS handshake); `server_name` is checked
  /// against the certificate (empty: a.host). The error's message names the step.
  boost::asio::awaitable<outcome> connect(const address& a, const std::string& server_name) {
    namespace asio = boost::asio;
    using asio::redirect_error;
    using asio::use_awaitable;
    close();
    reader_.reset();
    plain_.reset();
    tls_.reset();
    const std::string where = a.host + ":" + std::to_string(a.port);
    error_code ec;
    auto endpoints = co_await resolver_.async_resolve(a.host, std::to_string(a.port),
                                                      redirect_error(use_awaitable, ec));
    if (ec) co_return outcome{ec, "resolve " + a.host + ": " + ec.message()};
    if (ctx_) {
      tls_.emplace(ex_, *ctx_);
    } else {
      plain_.emplace(ex_);
    }
    auto& sock = tls_ ? tls_->next_layer() : *plain_;
    co_await asio::async_connect(sock, endpoints, redirect_error(use_awaitable, ec));
    if (ec) co_return outcome{ec, "connect to " + where + ": " + ec.message()};
    error_code ignored;
    sock.set_option(asio::ip::tcp::no_delay(true), ignored);
    sock.set_option(asio::socket_base::keep_alive(true), ignored);
    if (tls_) {
      const std::string& name = server_name.empty() ? a.host : server_name;
      error_code not_ip;
      asio::ip::make_address(name, not_ip);
      if (not_ip) SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
      if (verify_peer_) tls_->set_verify_callback(asio::ssl::host_name_verification(name));
      co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                     redirect_error(use_awaitable, ec));
      if (ec) co_return outcome{ec, "TLS handshake with " + where + ": " + ec.message()};
    }
    co_return outcome{};
  }

  /// Writes the request's commands.
  boost::asio::awaitable<error_code> write(const request& req) {
    namespace asio = boost::asio;
    error_code ec;
    if (tls_) {
      co_await asio::async_write(*tls_, asio::buffer(req.payload()),
                                 asio::redirect_error(asio::use_awaitable, ec));
    } else if (plain_) {
      co_await asio::async_write(*plain_, asio::buffer(req.payload()),
                                 asio::redirect_error(asio::use_awaitable, ec));
    } else {
      ec = asio::error::not_connected;
    }
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
      std::size_t n = 0;
      if (tls_) {
        n = co_await tls_->async_read_some(asio::buffer(buf_), asio::redirect_error(asio::use_awaitable, ec));
      } else if (plain_) {
        n = co_await plain_->async_read_some(asio::buffer(buf_), asio::redirect_error(asio::use_awaitable, ec));
      } else {
        ec = asio::error::not_connected;
      }
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
  void close() noexcept {
    error_code ignored;
    resolver_.cancel();
    if (tls_) tls_->next_layer().close(ignored);
    if (plain_) plain_->close(ignored);
  }

 private:
  boost::asio::any_io_executor ex_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ssl::context* ctx_;
  bool verify_peer_;
  std::optional<boost::asio::ip::tcp::socket> plain_;
  std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls_;
  reader reader_;
  std::vector<char> buf_;
};

}  // namespace websession::redis::detail
