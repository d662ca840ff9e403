// SPDX-License-Identifier: BSL-1.0
// Definitions of detail/stream.hpp (compiled once with WEBSESSION_SEPARATE_COMPILATION).
#ifndef WEBSESSION_REDIS_DETAIL_IMPL_STREAM_IPP
#define WEBSESSION_REDIS_DETAIL_IMPL_STREAM_IPP

#include <websession/redis/detail/stream.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <openssl/ssl.h>

#if !defined(_WIN32)
#include <unistd.h>
#endif

namespace websession::redis::detail {

WEBSESSION_DECL stream::stream(boost::asio::any_io_executor ex, boost::asio::ssl::context* tls,
                               bool verify_peer)
    : ex_(std::move(ex)), resolver_(ex_), ctx_(tls), verify_peer_(verify_peer) {}

WEBSESSION_DECL boost::asio::awaitable<stream::outcome> stream::connect(
    const address& at, const std::string& server_name, bool direct_writes) {
  namespace asio = boost::asio;
  using asio::redirect_error;
  using asio::use_awaitable;
  reset();
  // The sockets are made on ex_ (not on a strand): their owners bind every handler to their
  // strand themselves, and an I/O object on a strand would cost a heap copy of it per operation.
  if (ctx_) {
    tls_.emplace(ex_, *ctx_);
  } else {
    plain_.emplace(ex_);
  }
  direct_ = direct_writes && !ctx_;
  const std::string where = at.host + ":" + std::to_string(at.port);
  error_code ec;
  auto endpoints = co_await resolver_.async_resolve(at.host, std::to_string(at.port),
                                                    redirect_error(use_awaitable, ec));
  if (ec) co_return outcome{ec, "resolve " + at.host + ": " + ec.message()};
  tcp::socket& sock = socket();
  co_await asio::async_connect(sock, endpoints, redirect_error(use_awaitable, ec));
  if (ec) co_return outcome{ec, "connect to " + where + ": " + ec.message()};
  if (direct_writes) {
    // The connect left the socket registered with the reactor for writability (edge
    // triggered), and Asio never takes that back: every ACK of a request would then wake the
    // reactor for nothing. Handing the descriptor back and taking it again registers it for
    // reading only; a write that cannot complete at once registers writability again.
    // Best effort: where release is not supported, the socket stays as it is.
    error_code not_done;
    const tcp::endpoint peer = sock.remote_endpoint(not_done);
    const auto fd = not_done ? tcp::socket::native_handle_type{} : sock.release(not_done);
    if (!not_done) {
      sock.assign(peer.protocol(), fd, ec);
      if (ec) {
#if defined(_WIN32)
        ::closesocket(fd);
#else
        ::close(fd);
#endif
        co_return outcome{ec, "connect to " + where + ": " + ec.message()};
      }
    }
  }
  if (direct_) {
    sock.non_blocking(true, ec);
    if (ec) co_return outcome{ec, "set non-blocking mode: " + ec.message()};
  }
  error_code ignored;
  sock.set_option(tcp::no_delay(true), ignored);
  sock.set_option(asio::socket_base::keep_alive(true), ignored);
  if (tls_) {
    const std::string& name = server_name.empty() ? at.host : server_name;
    error_code not_ip;
    asio::ip::make_address(name, not_ip);
    // SNI carries host names only (RFC 6066).
    if (not_ip) SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
    if (verify_peer_) tls_->set_verify_callback(asio::ssl::host_name_verification(name));
    co_await tls_->async_handshake(asio::ssl::stream_base::client,
                                   redirect_error(use_awaitable, ec));
    if (ec) co_return outcome{ec, "TLS handshake with " + where + ": " + ec.message()};
  }
  co_return outcome{};
}

WEBSESSION_DECL std::size_t stream::write_direct(boost::asio::const_buffer b, error_code& ec) {
  if (!direct_ || !plain_) {
    ec = boost::asio::error::would_block;
    return 0;
  }
  const std::size_t n = plain_->write_some(b, ec);
  if (ec == boost::asio::error::try_again) ec = boost::asio::error::would_block;
  return n;
}

WEBSESSION_DECL void stream::close() noexcept {
  error_code ignored;
  resolver_.cancel();
  if (tls_) tls_->next_layer().close(ignored);
  if (plain_) plain_->close(ignored);
}

WEBSESSION_DECL void stream::reset() noexcept {
  close();
  plain_.reset();
  tls_.reset();
}

}  // namespace websession::redis::detail

#endif
