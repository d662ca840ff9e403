// SPDX-License-Identifier: BSL-1.0
// One byte stream to one Redis server, plain TCP or TLS behind one type: the only place of the
// client that knows which of the two it talks. The data connection, the handshake and the side
// channels to the sentinels all read and write through it.
#pragma once

#include <websession/detail/config.hpp>
#include <websession/redis/config.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <utility>

namespace websession::redis::detail {

/// A TCP or TLS connection (which one is fixed at construction), reopened by each connect().
///
/// Not thread safe: one owner (a coroutine, or a strand) uses it. close() may be called from a
/// timer of the same owner to end any pending step (resolve, connect, handshake, read, write)
/// with an error.
class stream {
 public:
  using error_code = boost::system::error_code;
  using tcp = boost::asio::ip::tcp;
  /// An error and a message naming the step and the server ("connect to h:p: ...").
  using outcome = std::pair<error_code, std::string>;

  /// `tls`: the TLS context (kept by pointer: it must outlive the stream), or nullptr for plain
  /// TCP. With `verify_peer` the certificate must name the server (see connect).
  stream(boost::asio::any_io_executor ex, boost::asio::ssl::context* tls, bool verify_peer);

  /// Whether this stream speaks TLS.
  bool is_tls() const noexcept { return ctx_ != nullptr; }

  /// Resolves `at`, connects, and for TLS does the handshake, sending `server_name` (empty:
  /// at.host) as SNI when it is a host name and checking that the certificate names it. With
  /// `direct_writes`, a plain socket is made non-blocking for write_direct. Errors: the
  /// resolver's, the socket's or TLS's, with a message naming the step.
  boost::asio::awaitable<outcome> connect(const address& at, const std::string& server_name,
                                          bool direct_writes = false);

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& b, Token&& token) {
    if (tls_) return tls_->async_read_some(b, std::forward<Token>(token));
    return plain_->async_read_some(b, std::forward<Token>(token));
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& b, Token&& token) {
    if (tls_) return tls_->async_write_some(b, std::forward<Token>(token));
    return plain_->async_write_some(b, std::forward<Token>(token));
  }

  /// Writes all of `b` (a composed operation).
  template <class ConstBuffers, class Token>
  auto async_write(const ConstBuffers& b, Token&& token) {
    if (tls_) return boost::asio::async_write(*tls_, b, std::forward<Token>(token));
    return boost::asio::async_write(*plain_, b, std::forward<Token>(token));
  }

  /// Writes what the kernel takes right now, without waiting (plain TCP after a connect with
  /// direct_writes): the bytes written, and would_block when none could be (always on TLS,
  /// whose records go through async_write_some).
  std::size_t write_direct(boost::asio::const_buffer b, error_code& ec);

  /// Closes the socket and cancels a resolve: every pending step ends. Idempotent.
  void close() noexcept;

  /// Closes and lets go of the socket objects (a connect makes new ones).
  void reset() noexcept;

 private:
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }

  boost::asio::any_io_executor ex_;
  tcp::resolver resolver_;
  boost::asio::ssl::context* ctx_;
  bool verify_peer_;
  bool direct_ = false;
  std::optional<tcp::socket> plain_;
  std::optional<boost::asio::ssl::stream<tcp::socket>> tls_;
};

}  // namespace websession::redis::detail

#if !defined(WEBSESSION_SEPARATE_COMPILATION)
#include <websession/redis/detail/impl/stream.ipp>
#endif
