// SPDX-License-Identifier: BSL-1.0
// A small HTTP/1.1 client for the end-to-end tests (Boost.Beast, one keep-alive connection, every
// operation bounded by a timeout), and helpers to read Set-Cookie headers and JSON bodies.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/system/system_error.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace e2e {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

using request = bhttp::request<bhttp::string_body>;
using response = bhttp::response<bhttp::string_body>;

/// A response with accessors for what the tests check.
struct reply {
  response msg;

  unsigned status() const { return msg.result_int(); }
  std::string header(std::string_view name) const {
    const auto it = msg.find(beast::string_view(name.data(), name.size()));
    return it == msg.end() ? std::string() : std::string(it->value());
  }
  std::vector<std::string> set_cookies() const {
    std::vector<std::string> out;
    const auto range = msg.equal_range(bhttp::field::set_cookie);
    for (auto it = range.first; it != range.second; ++it) out.emplace_back(it->value());
    return out;
  }
  /// The body as JSON; throws std::runtime_error (failing the test) if it is not.
  boost::json::value json() const {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(msg.body(), ec);
    if (ec) throw std::runtime_error("response body is not JSON: " + msg.body());
    return v;
  }
};

/// The value a Set-Cookie header assigns ("name=value; ..." -> value).
inline std::string cookie_value(std::string_view set_cookie) {
  const std::size_t eq = set_cookie.find('=');
  if (eq == std::string_view::npos) return {};
  const std::size_t end = set_cookie.find(';', eq);
  return std::string(set_cookie.substr(eq + 1, end == std::string_view::npos ? end : end - eq - 1));
}

/// The attributes of a Set-Cookie header after "name=value", trimmed ("Path=/", "HttpOnly"...).
inline std::vector<std::string> cookie_attributes(std::string_view set_cookie) {
  std::vector<std::string> out;
  std::size_t pos = set_cookie.find(';');
  while (pos != std::string_view::npos) {
    const std::size_t next = set_cookie.find(';', pos + 1);
    std::string_view a = set_cookie.substr(pos + 1, next == std::string_view::npos ? next : next - pos - 1);
    while (!a.empty() && a.front() == ' ') a.remove_prefix(1);
    out.emplace_back(a);
    pos = next;
  }
  return out;
}

/// What cookie_attribute returns for an attribute the header does not have.
inline const std::string absent = "<absent>";

/// The value of attribute `name` (case-insensitive, e.g. "Max-Age"), `absent` if there is none;
/// the empty string for a flag ("Secure").
inline std::string cookie_attribute(std::string_view set_cookie, std::string_view name) {
  const auto lower = [](std::string_view s) {
    std::string r(s);
    for (char& c : r)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return r;
  };
  for (const std::string& a : cookie_attributes(set_cookie)) {
    const std::size_t eq = a.find('=');
    if (lower(std::string_view(a).substr(0, eq)) == lower(name))
      return eq == std::string::npos ? std::string() : a.substr(eq + 1);
  }
  return absent;
}

/// One client connection to 127.0.0.1:port, opened on the first request and again after the
/// server closed it. Not thread-safe: one client per thread.
class client {
 public:
  explicit client(unsigned short port, std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : port_(port), timeout_(timeout), stream_(ioc_) {}

  /// Sends `req` (Host, Content-Length and keep-alive are set here) and reads the response.
  /// Throws boost::system::system_error (a std::runtime_error) on a connection error or
  /// timeout; its code() is beast::error::timeout when the client's timeout ran out.
  reply send(request req) {
    req.set(bhttp::field::host, "127.0.0.1");
    req.prepare_payload();
    if (!open_) connect();
    boost::system::error_code ec;
    response res;
    stream_.expires_after(timeout_);
    bhttp::async_write(stream_, req, [&](boost::system::error_code e, std::size_t) {
      if (e) {
        ec = e;
        return;
      }
      bhttp::async_read(stream_, buffer_, res, [&](boost::system::error_code e2, std::size_t) { ec = e2; });
    });
    run();
    if (ec) {
      close();
      throw boost::system::system_error(
          ec, std::string(req.method_string()) + " " + std::string(req.target()));
    }
    if (!res.keep_alive()) close();
    return reply{std::move(res)};
  }

  reply get(std::string_view target, std::string_view cookie = {}) {
    return send(make(bhttp::verb::get, target, cookie));
  }

  /// A POST with a JSON body (empty: no body) and an optional X-CSRF-Token.
  reply post(std::string_view target, std::string_view cookie, std::string body = {},
             std::optional<std::string> csrf = std::nullopt) {
    request req = make(bhttp::verb::post, target, cookie);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    req.body() = std::move(body);
    if (csrf) req.set("X-CSRF-Token", *csrf);
    return send(std::move(req));
  }

  /// A request for `target` with `cookie` as the whole Cookie header (none if empty).
  static request make(bhttp::verb method, std::string_view target, std::string_view cookie = {}) {
    request req{method, beast::string_view(target.data(), target.size()), 11};
    if (!cookie.empty()) req.set(bhttp::field::cookie, beast::string_view(cookie.data(), cookie.size()));
    return req;
  }

  /// Connects from `address` (an address of this host, such as 127.0.0.2: another client
  /// address for the server) from the next connection on.
  void bind_source(std::string address) { source_ = std::move(address); }

  /// How many connections this client opened.
  unsigned connects() const noexcept { return connects_; }
  bool is_open() const noexcept { return open_; }

  /// Waits (bounded) for the server to close the connection; true if it did.
  bool wait_closed() {
    if (!open_) return true;
    boost::system::error_code ec;
    char c = 0;
    stream_.expires_after(timeout_);
    stream_.async_read_some(asio::buffer(&c, 1), [&](boost::system::error_code e, std::size_t) { ec = e; });
    run();
    close();
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  void connect() {
    boost::system::error_code ec;
    if (!source_.empty()) {
      stream_.socket().open(tcp::v4());
      stream_.socket().bind(tcp::endpoint(asio::ip::make_address(source_), 0));
    }
    stream_.expires_after(timeout_);
    stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
                          [&](boost::system::error_code e) { ec = e; });
    run();
    if (ec) throw boost::system::system_error(ec, "connect to port " + std::to_string(port_));
    buffer_.clear();
    open_ = true;
    ++connects_;
  }

  void close() {
    boost::system::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    open_ = false;
  }

  // Every operation has an expiry on the stream, so this returns in bounded time.
  void run() {
    ioc_.restart();
    ioc_.run();
  }

  unsigned short port_;
  std::chrono::milliseconds timeout_;
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool open_ = false;
  unsigned connects_ = 0;
  std::string source_;
};

/// A connection for raw bytes: requests sent in pieces, malformed ones, reading to the end.
class raw_connection {
 public:
  /// Connects to 127.0.0.1:port, from `source` if given (see client::bind_source).
  explicit raw_connection(unsigned short port, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                          const std::string& source = {})
      : timeout_(timeout), stream_(ioc_) {
    boost::system::error_code ec;
    if (!source.empty()) {
      stream_.socket().open(tcp::v4());
      stream_.socket().bind(tcp::endpoint(asio::ip::make_address(source), 0));
    }
    stream_.expires_after(timeout_);
    stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [&](boost::system::error_code e) { ec = e; });
    run();
    if (ec) throw std::runtime_error("connect: " + ec.message());
  }

  /// Writes `bytes`; false if the connection failed.
  bool send(std::string_view bytes) {
    boost::system::error_code ec;
    stream_.expires_after(timeout_);
    asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()),
                      [&](boost::system::error_code e, std::size_t) { ec = e; });
    run();
    return !ec;
  }

  /// Everything the server sends until it closes the connection or the timeout passes.
  std::string read_until_close() {
    std::string out;
    std::vector<char> buf(4096);
    std::function<void(boost::system::error_code, std::size_t)> on_read =
        [&](boost::system::error_code e, std::size_t n) {
          out.append(buf.data(), n);
          if (!e) stream_.async_read_some(asio::buffer(buf), on_read);
        };
    stream_.expires_after(timeout_);
    stream_.async_read_some(asio::buffer(buf), on_read);
    run();
    return out;
  }

 private:
  void run() {
    ioc_.restart();
    ioc_.run();
  }

  std::chrono::milliseconds timeout_;
  asio::io_context ioc_;
  beast::tcp_stream stream_;
};

/// Sends `bytes` on a fresh connection and returns everything the server sends until it closes
/// the connection (bounded by `timeout`).
inline std::string raw_exchange(unsigned short port, std::string_view bytes,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  raw_connection c(port, timeout);
  if (!c.send(bytes)) return {};
  return c.read_until_close();
}

}  // namespace e2e
