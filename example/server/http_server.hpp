// SPDX-License-Identifier: BSL-1.0
// The HTTP/1.1 side of the example server, over an io_context_pool (one io_context per thread):
// one acceptor hands the connections to the io_contexts in turn, each serving its own with one
// coroutine per connection (keep-alive, size limits, timeouts through beast::basic_stream), and
// a graceful stop (stop accepting, close idle connections, let requests in flight finish for a
// bounded time). At most http_limits::max_connections connections are open at once over all
// the io_contexts, and at most a share of them from one client address: one more is answered
// 503 and closed at once, without a coroutine or a buffer of its own.
// It knows nothing of sessions: it hands each request and its client's address to
// Handler::handle.
#pragma once

#include "io_pool.hpp"
#include "json_response.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/rate_policy.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace example {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

/// Bounds on what one client can make the server hold or wait for.
struct http_limits {
  /// Request line plus headers. Above the 8 KB a Cookie header may have (longer ones are
  /// ignored by the session glue), so an oversized cookie still gets a fresh session.
  std::uint32_t header_limit = 16 * 1024;
  /// Request body: the API takes small JSON documents only.
  std::uint64_t body_limit = 16 * 1024;
  /// To receive a whole request, counted from the end of the previous response: also the
  /// keep-alive idle timeout, and what a slowloris client gets before being cut off.
  std::chrono::milliseconds read_timeout = std::chrono::seconds(15);
  /// To send a response.
  std::chrono::milliseconds write_timeout = std::chrono::seconds(10);
  /// On shutdown, how long requests in flight may take before the io_context is stopped.
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(5);
  /// Connections open at once. One accepted beyond this gets a 503 (written without waiting,
  /// if the socket takes it) and is closed at once; the server keeps accepting.
  std::size_t max_connections = 1024;
  /// Connections open at once from one client address (an IPv6 client by its /64, where one
  /// host has many addresses), so that one client cannot take every place of max_connections;
  /// one more from it is refused as above. 0 (the default): the share() of max_connections for
  /// every address but the loopback ones, which are not limited (a reverse proxy or a load test
  /// on this host is one address for all its clients). A number: that many for every address,
  /// loopback included. Behind a reverse proxy on another host every client has the proxy's
  /// address: set it to max_connections there.
  std::size_t max_connections_per_client = 0;

  /// One eighth of max_connections, but at least 16 (a browser opens 6 per host; several users
  /// may share an address behind NAT), or all of them when max_connections is smaller.
  std::size_t share() const noexcept {
    return std::max(max_connections / 8, std::min<std::size_t>(max_connections, 16));
  }

  /// The connections `client` may hold at once.
  std::size_t per_client_limit(const asio::ip::address& client) const noexcept {
    if (max_connections_per_client != 0) return max_connections_per_client;
    const bool loopback = client.is_loopback() ||
                          (client.is_v6() && client.to_v6().is_v4_mapped() &&
                           asio::ip::make_address_v4(asio::ip::v4_mapped, client.to_v6()).is_loopback());
    return loopback ? max_connections : share();
  }
};

/// An HTTP/1.1 server over an io_context_pool, each io_context run by one thread. `Handler`
/// has `asio::awaitable<response> handle(const request&, const asio::ip::address& client)`
/// (`client`: the peer's address; the unspecified address if the socket could not tell). It
/// is called concurrently from connections on different io_contexts (threads) and must be
/// thread-safe; each call runs, and its operations complete, on its connection's io_context.
///
/// What is shared across threads, and how it is synchronized: `stopping_` and the count of
/// open connections (atomics), the open connections per client address (a mutex: taken once
/// when a connection opens and once when it closes), the handler (its own business: the
/// session manager and the audit log lock what they share). Everything else belongs to one io_context and is touched
/// on its thread only, without a strand or a lock: a connection's stream and `idle` flag, each
/// io_context's registry of connections (a stop posts the work on it to each io_context), the
/// acceptor and its refusal counters (io_context 0).
///
/// One acceptor, on io_context 0, hands the connections to the io_contexts in turn (rather
/// than an SO_REUSEPORT acceptor per io_context): an even spread whatever the connections'
/// addresses hash to, and no port silently shared with another process of the same user.
/// Accepting costs io_context 0 a few system calls per connection, nothing per request.
template <class Handler>
class http_server {
 public:
  /// Binds and listens on `endpoint` (port 0: any free port) on io_context 0. Throws
  /// boost::system::system_error if that fails (address in use, no permission). `on_stop` runs
  /// once when stopping begins, on io_context 0: stop background work there (a store's sweep
  /// timer, a Redis connection) so that the io_contexts run out of work.
  http_server(io_context_pool& pool, const tcp::endpoint& endpoint, Handler& handler,
              http_limits limits, std::function<void()> on_stop)
      : pool_(pool),
        acceptor_(pool[0]),
        handler_(handler),
        limits_(limits),
        on_stop_(std::move(on_stop)) {
    listeners_.reserve(pool.size());
    for (std::size_t i = 0; i < pool.size(); ++i)
      listeners_.push_back(std::make_unique<listener>(pool[i], open_));
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  }

  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

  /// How many connections each io_context served (index: the pool's). Only once
  /// io_context_pool::run has returned.
  std::vector<std::uint64_t> connections_per_thread() const {
    std::vector<std::uint64_t> n;
    for (const auto& l : listeners_) n.push_back(l->served);
    return n;
  }

  /// Starts accepting. The server must outlive io_context_pool::run.
  void start() {
    asio::co_spawn(pool_[0], accept_loop(), [](std::exception_ptr e) { log_exception("accept", e); });
  }

  /// Begins a graceful stop; callable from any thread, any number of times. Connections waiting
  /// for a request are closed at once; those handling one finish it (answering with
  /// Connection: close) within limits.shutdown_grace, after which every io_context is stopped.
  void stop() {
    asio::post(pool_[0], [this] {
      if (stopping_.exchange(true)) return;
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      // Each listener's connections belong to its io_context's thread.
      for (auto& l : listeners_) {
        asio::post(l->ioc, [&l = *l] {
          l.connections->close_idle();
          l.work.reset();
        });
      }
      if (on_stop_) on_stop_();
      asio::co_spawn(pool_[0], drain(), [](std::exception_ptr e) { log_exception("drain", e); });
    });
  }

 private:
  // A stream on its io_context's own executor: one thread runs it, so no strand.
  using executor_type = asio::io_context::executor_type;
  using socket_type = tcp::socket::rebind_executor<executor_type>::other;
  using stream_type = beast::basic_stream<tcp, executor_type, beast::unlimited_rate_policy>;

  // One accepted connection. `idle` is true while the connection waits for the first byte of
  // its next request; it is read and written only on the connection's io_context.
  struct connection {
    connection(socket_type s, asio::ip::address a) : stream(std::move(s)), peer(std::move(a)) {}
    stream_type stream;
    asio::ip::address peer;
    bool idle = false;
  };

  // The open connections of one io_context, touched on its thread only. Shared with every
  // connection coroutine: if a forced stop leaves one suspended, its frame is destroyed with
  // the io_contexts, after the server, and still deregisters safely.
  class registry {
   public:
    std::uint64_t add(const std::shared_ptr<connection>& c) {
      const std::uint64_t id = next_id_++;
      live_.emplace(id, c);
      return id;
    }
    void remove(std::uint64_t id) { live_.erase(id); }
    void close_idle() {
      for (auto& [id, weak] : live_)
        if (auto c = weak.lock(); c && c->idle) c->stream.cancel();
    }

   private:
    std::uint64_t next_id_ = 0;
    std::unordered_map<std::uint64_t, std::weak_ptr<connection>> live_;
  };

  // What one io_context serves: the acceptor hands connections to every listener in turn.
  struct listener {
    listener(asio::io_context& c, std::shared_ptr<std::atomic<std::size_t>> open)
        : ioc(c),
          work(c.get_executor()),
          connections(std::make_shared<registry>()),
          open(std::move(open)) {}
    asio::io_context& ioc;
    // Keeps the io_context running until the stop, also while it has no connection (it has
    // nothing else to do until one is handed to it).
    asio::executor_work_guard<executor_type> work;
    std::shared_ptr<registry> connections;
    std::shared_ptr<std::atomic<std::size_t>> open;  // the count over every listener
    // Connections served (registration): this io_context's thread only.
    std::uint64_t served = 0;
  };

  // A client as the per-client limit counts it: its IPv6 address (an IPv4 one mapped), the
  // last 64 bits zeroed for IPv6 (one host or site has a whole /64).
  using client_key = std::array<unsigned char, 16>;

  static client_key client_of(const asio::ip::address& a) {
    if (a.is_v4()) return asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
    client_key k = a.to_v6().to_bytes();
    if (a.to_v6().is_v4_mapped()) return k;
    for (std::size_t i = 8; i < k.size(); ++i) k[i] = 0;
    return k;
  }

  struct client_key_hash {
    std::size_t operator()(const client_key& k) const noexcept {
      std::size_t h = 1469598103934665603ull;
      for (unsigned char b : k) h = (h ^ b) * 1099511628211ull;
      return h;
    }
  };

  // Open connections per client over every io_context: taken by the acceptor, given back by
  // the connection's registration on its own thread.
  class client_counts {
   public:
    bool reserve(const client_key& k, std::size_t limit) {
      std::lock_guard lock(mutex_);
      std::size_t& n = open_[k];
      if (n >= limit) {
        if (n == 0) open_.erase(k);
        return false;
      }
      ++n;
      return true;
    }
    void release(const client_key& k) {
      std::lock_guard lock(mutex_);
      const auto it = open_.find(k);
      if (it != open_.end() && --it->second == 0) open_.erase(it);
    }

   private:
    std::mutex mutex_;
    std::unordered_map<client_key, std::size_t, client_key_hash> open_;
  };

  // A connection's place: in its io_context's registry, in the count of open connections and in
  // its client's (taken by the acceptor, given back here), however its coroutine ends.
  class registration {
   public:
    registration(listener& l, const std::shared_ptr<connection>& c,
                 std::shared_ptr<client_counts> clients, const client_key& client)
        : registry_(l.connections),
          open_(l.open),
          clients_(std::move(clients)),
          client_(client),
          id_(registry_->add(c)) {
      ++l.served;
    }
    registration(const registration&) = delete;
    registration& operator=(const registration&) = delete;
    ~registration() {
      registry_->remove(id_);
      clients_->release(client_);
      open_->fetch_sub(1, std::memory_order_relaxed);
    }

   private:
    std::shared_ptr<registry> registry_;
    std::shared_ptr<std::atomic<std::size_t>> open_;
    std::shared_ptr<client_counts> clients_;
    client_key client_;
    std::uint64_t id_;
  };
  static constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

  static void log_exception(const char* where, std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::cerr << "server: " << where << ": " << ex.what() << std::endl;
    } catch (...) {
      std::cerr << "server: " << where << ": unknown exception" << std::endl;
    }
  }

  // The answer to a connection over the limit, written once without waiting: a fresh socket's
  // send buffer takes it whole unless the peer is gone.
  static constexpr std::string_view over_limit_response =
      "HTTP/1.1 503 Service Unavailable\r\n"
      "Server: websession-example\r\n"
      "Content-Type: application/json\r\n"
      "Cache-Control: no-store\r\n"
      "Retry-After: 1\r\n"
      "Connection: close\r\n"
      "Content-Length: 33\r\n"
      "\r\n"
      "{\"error\":\"too many connections\"}\n";

  // Over a limit: answer and close without reading (the request, if any, is never parsed).
  // Logged at most every 10 s, with the counts since the last line, so a flood cannot flood
  // stderr as well.
  template <class Socket>
  void refuse(Socket& socket, bool one_client) {
    boost::system::error_code ignored;
    socket.non_blocking(true, ignored);
    socket.write_some(asio::buffer(over_limit_response.data(), over_limit_response.size()),
                      ignored);
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
    ++(one_client ? refused_per_client_ : refused_);
    const auto now = std::chrono::steady_clock::now();
    if (refused_logged_at_ && now - *refused_logged_at_ < std::chrono::seconds(10)) return;
    refused_logged_at_ = now;
    std::cerr << "server: connection(s) refused since the last report: " << refused_ << " with "
              << limits_.max_connections << " open (--max-connections), " << refused_per_client_
              << " from a client over its share (--max-connections-per-client)" << std::endl;
    refused_ = 0;
    refused_per_client_ = 0;
  }

  // Takes a place among the open connections; false if all are taken.
  bool reserve() {
    if (open_->fetch_add(1, std::memory_order_relaxed) < limits_.max_connections) return true;
    open_->fetch_sub(1, std::memory_order_relaxed);
    return false;
  }

  // Runs on io_context 0 until the stop, handing the connections to the io_contexts in turn
  // (each socket is made on its own). Nothing in one iteration ends the loop: an error pauses
  // it briefly and it goes on.
  asio::awaitable<void> accept_loop() {
    std::size_t next = 0;
    while (!stopping_) {
      listener& target = *listeners_[next];
      auto [ec, socket] = co_await acceptor_.async_accept(target.ioc, tuple);
      if (stopping_) break;
      bool pause = false;
      if (ec) {
        // Out of descriptors or a connection reset before accept: not fatal, but do not spin.
        std::cerr << "server: accept: " << ec.message() << std::endl;
        pause = true;
      } else if (!reserve()) {
        refuse(socket, false);
      } else {
        boost::system::error_code peer_ec;
        asio::ip::address peer = socket.remote_endpoint(peer_ec).address();
        if (peer_ec) peer = asio::ip::address();  // gone already: it will fail its first read
        const client_key client = client_of(peer);
        if (!clients_->reserve(client, limits_.per_client_limit(peer))) {
          open_->fetch_sub(1, std::memory_order_relaxed);
          refuse(socket, true);
        } else {
          try {
            start_connection(target, std::move(socket), std::move(peer), client);
            if (++next == listeners_.size()) next = 0;
          } catch (const std::exception& e) {  // bad_alloc: the socket is closed with it
            clients_->release(client);
            open_->fetch_sub(1, std::memory_order_relaxed);
            std::cerr << "server: accept: " << e.what() << std::endl;
            pause = true;
          }
        }
      }
      if (pause) {
        asio::steady_timer t(pool_[0], std::chrono::milliseconds(50));
        co_await t.async_wait(tuple);
      }
    }
  }

  // Starts the coroutine of a connection whose places (overall and its client's) are reserved,
  // on l's io_context (where `socket` belongs); it registers there.
  void start_connection(listener& l, socket_type socket, asio::ip::address peer,
                        const client_key& client) {
    boost::system::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<connection>(std::move(socket), std::move(peer));
    asio::co_spawn(l.ioc, serve(l, std::move(conn), client),
                   [](std::exception_ptr e) { log_exception("connection", e); });
  }

  // On io_context 0.
  asio::awaitable<void> drain() {
    const auto deadline = std::chrono::steady_clock::now() + limits_.shutdown_grace;
    asio::steady_timer tick(pool_[0]);
    while (open_->load() != 0 && std::chrono::steady_clock::now() < deadline) {
      tick.expires_after(std::chrono::milliseconds(10));
      co_await tick.async_wait(tuple);
    }
    if (const std::size_t left = open_->load(); left != 0) {
      std::cerr << "server: " << left << " connection(s) still busy after the grace period\n";
      pool_.stop();
    }
  }
  // The status for a request the parser refused; nullopt: just close (the client went away,
  // timed out, or sent nothing).
  static std::optional<bhttp::status> refusal(const boost::system::error_code& ec) {
    if (ec == bhttp::error::header_limit) return bhttp::status::request_header_fields_too_large;
    if (ec == bhttp::error::body_limit) return bhttp::status::payload_too_large;
    if (ec.category() == boost::system::error_code(bhttp::error::end_of_stream).category() &&
        ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
      return bhttp::status::bad_request;
    return std::nullopt;
  }

  // Feeds `parser` the bytes `buffer` already holds, as Beast's read operations do, up to the
  // end of the message. A request that arrived whole (most do, with the idle read) is then
  // parsed without Beast's asynchronous reads, which complete through a post when they need
  // no I/O: two trips through the io_context per request fewer. need_more only means that
  // the rest is still to be read.
  static boost::system::error_code parse_buffered(bhttp::request_parser<bhttp::string_body>& parser,
                                                  beast::flat_buffer& buffer) {
    boost::system::error_code ec;
    while (buffer.size() != 0 && !parser.is_done()) {
      const std::size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec == bhttp::error::need_more) return {};
      if (ec || used == 0) break;
    }
    return ec;
  }

  static bool expects_continue(const request& req) {
    const auto it = req.find(bhttp::field::expect);
    if (it == req.end()) return false;
    std::string v(it->value());
    for (char& c : v)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return v == "100-continue";
  }

  // Closing a socket with unread input makes the kernel send a reset, which can destroy the
  // response before the client reads it: stop sending, then read and drop what the client is
  // still sending, for a bounded time and size, until it closes its side.
  asio::awaitable<void> linger(stream_type& stream) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.expires_after(std::chrono::seconds(1));
    char sink[4096];
    for (std::size_t total = 0; total < (std::size_t{1} << 20);) {
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), tuple);
      if (ec) break;
      total += n;
    }
  }

  asio::awaitable<void> serve(listener& l, std::shared_ptr<connection> conn, client_key client) {
    const registration reg(l, conn, clients_, client);
    stream_type& stream = conn->stream;
    beast::flat_buffer buffer;
    for (;;) {
      if (stopping_) break;
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(limits_.header_limit);
      parser.body_limit(limits_.body_limit);
      stream.expires_after(limits_.read_timeout);
      if (buffer.size() == 0) {
        // Idle until the first byte of the next request: a stop closes the connection only
        // while it is here; a request that has begun to arrive is in flight.
        conn->idle = true;
        auto [idle_ec, n] = co_await stream.async_read_some(buffer.prepare(4096), tuple);
        conn->idle = false;
        if (idle_ec) break;
        buffer.commit(n);
      }
      boost::system::error_code read_ec = parse_buffered(parser, buffer);
      if (!read_ec && !parser.is_header_done()) {
        auto [header_ec, header_n] = co_await bhttp::async_read_header(stream, buffer, parser, tuple);
        read_ec = header_ec;
      }
      if (!read_ec && expects_continue(parser.get())) {
        // The client waits for this before sending the body (curl does for larger bodies).
        bhttp::response<bhttp::empty_body> go_on{bhttp::status::continue_, 11};
        auto [continue_ec, continue_n] = co_await bhttp::async_write(stream, go_on, tuple);
        read_ec = continue_ec;
      }
      if (!read_ec && !parser.is_done()) {
        auto [body_ec, body_n] = co_await bhttp::async_read(stream, buffer, parser, tuple);
        read_ec = body_ec;
      }
      if (read_ec) {
        if (const auto st = refusal(read_ec)) {
          // The rest of the request is unread: answer, then close.
          response res = json_error(11, false, *st, read_ec.message());
          stream.expires_after(limits_.write_timeout);
          auto [write_ec, written] = co_await bhttp::async_write(stream, res, tuple);
          if (!write_ec) co_await linger(stream);
        }
        break;
      }
      request req = parser.release();

      std::optional<response> res;
      try {
        res = co_await handler_.handle(req, conn->peer);
      } catch (const std::exception& e) {
        std::cerr << "server: " << req.method_string() << " " << req.target() << ": " << e.what()
                  << std::endl;
      }
      if (!res)
        res = json_error(req.version(), false, bhttp::status::internal_server_error, "internal error");
      if (stopping_) res->keep_alive(false);
      const bool keep_alive = res->keep_alive();
      stream.expires_after(limits_.write_timeout);
      auto [write_ec, written] = co_await bhttp::async_write(stream, *res, tuple);
      if (write_ec || !keep_alive) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream.close();
  }

  io_context_pool& pool_;
  tcp::acceptor acceptor_;  // on io_context 0
  Handler& handler_;
  http_limits limits_;
  std::function<void()> on_stop_;
  std::atomic<bool> stopping_{false};
  // Read and written by the accept loop only (refuse).
  std::uint64_t refused_ = 0;
  std::uint64_t refused_per_client_ = 0;
  std::optional<std::chrono::steady_clock::time_point> refused_logged_at_;
  // Open connections over every io_context (reserved by an acceptor, given back by the
  // connection's registration).
  std::shared_ptr<std::atomic<std::size_t>> open_ = std::make_shared<std::atomic<std::size_t>>(0);
  std::shared_ptr<client_counts> clients_ = std::make_shared<client_counts>();
  std::vector<std::unique_ptr<listener>> listeners_;
};

}  // namespace example
