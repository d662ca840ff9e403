// SPDX-License-Identifier: BSL-1.0
// The driver behind redis::connection: it owns the strand, the stream, the timers and the
// run/read loops, and feeds the multiplexer (the sans-IO core: queue, replies, deadlines) with
// bytes, time and events, carrying out the actions it answers. Sentinel resolution, the
// handshake and the health decision are parts of their own; this file wires them.
#pragma once

#include <websession/detail/config.hpp>
#include <websession/redis/config.hpp>
#include <websession/redis/detail/handshake.hpp>
#include <websession/redis/detail/multiplexer.hpp>
#include <websession/redis/detail/operation.hpp>
#include <websession/redis/detail/sentinel.hpp>
#include <websession/redis/detail/side_channel.hpp>
#include <websession/redis/detail/stream.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace websession::redis::detail {

/// One async_exec call: the multiplexer's part and the caller's.
struct exec_op final : mux_op {
  exec_op(exec_handler h, boost::asio::any_io_executor ex) : caller(std::move(h), std::move(ex)) {}
  op_completion caller;
};

/// What a cluster asks of a node's connection beyond async_exec.
struct exec_options {
  /// The request's deadline; the default (zero) is config::request_timeout from the call.
  steady::time_point deadline{};
  /// A request that was never written fails with client_error::not_sent instead of
  /// error::not_connected, so that the cluster knows it may send it elsewhere.
  bool report_unsent = false;
};

/// Where a connection is in its life. One value replaces the flags that used to encode it.
enum class link_state : unsigned char {
  idle,        // async_run not called yet
  connecting,  // a connect attempt (sentinels, resolve, connect, TLS, handshake) is going on
  up,          // connected and set up: requests are written
  down,        // between attempts (backoff), or the link just dropped
  stopped,     // cancelled for good
};

/// Warnings about a Sentinel or Cluster configuration (given once to the error handler as
/// client_error::insecure_setup when async_run starts). Shared by the connection and the cluster.
std::vector<std::string> insecure_setup_warnings(const config& c);
/// The TLS part of those warnings (what config::strict_tls turns into an error).
std::optional<std::string> tls_trust_warning(const config& c);

/// The TLS context of a config; throws boost::system::system_error when a file cannot be
/// loaded (bad configuration is reported at construction, not as failed connects).
boost::asio::ssl::context make_ssl_context(const config& c);

class connection_impl : public std::enable_shared_from_this<connection_impl> {
 public:
  using error_code = boost::system::error_code;
  using strand_type = boost::asio::strand<boost::asio::any_io_executor>;

  /// Throws as redis::connection's constructor says.
  connection_impl(boost::asio::any_io_executor ex, config cfg);

  const boost::asio::any_io_executor& get_executor() const noexcept { return ex_; }
  const strand_type& strand() const noexcept { return strand_; }
  const config& get_config() const noexcept { return cfg_; }

  bool connected() const noexcept { return up_.load(std::memory_order_acquire); }
  std::uint64_t connect_count() const noexcept {
    return connects_.load(std::memory_order_acquire);
  }
  error_code last_error() const { return errors_.code(); }
  std::string last_error_message() const { return errors_.message(); }
  void set_error_handler(error_handler h) { errors_.set_handler(std::move(h)); }
  address server_address() const;

  /// Any thread. The op is built here, where the deadline starts, and handed to the strand.
  /// `handler_ex` is the handler's associated executor (known only before type erasure).
  void exec(const request* req, exec_handler handler, boost::asio::any_io_executor handler_ex,
            exec_options opts = {});
  /// Any thread.
  void cancel();
  /// Any thread: stops once every request it holds is done (a cluster node that left the map).
  void retire();
  /// Requests it holds (queued, in flight, or waiting for a WAIT). Strand only.
  bool busy() const noexcept { return mux_.queued() > 0 || mux_.in_flight() > 0; }

  /// The body of async_run; runs on the strand until cancel().
  static boost::asio::awaitable<error_code> run(std::shared_ptr<connection_impl> self);

  /// A cancellation from an op's own slot (forward_cancellation). Strand only.
  void cancel_op(const std::shared_ptr<exec_op>& op, boost::asio::cancellation_type_t type);

 private:
  // Throws std::invalid_argument for a bad config (see redis::connection's constructor).
  static config validated(config c);
  bool sentinel_mode() const noexcept { return cfg_.deployment == deployment::sentinel; }
  bool stopped() const noexcept { return state_ == link_state::stopped; }
  // Moves to `s`, except out of stopped (which is final).
  void enter(link_state s) noexcept {
    if (state_ != link_state::stopped) state_ = s;
  }
  std::string where() const { return target_.host + ":" + std::to_string(target_.port); }

  // Requests and their completions.
  void enqueue(std::shared_ptr<exec_op> op);
  void hand_over_completions(bool inline_last = false);
  void rearm_deadline();
  void on_deadline();

  // Writing and reading.
  void start_write();
  void write_some();
  void on_write_some(error_code ec, std::size_t n, std::uint64_t gen);
  boost::asio::awaitable<error_code> read_loop();

  // Health.
  void arm_health();
  void on_health();

  // The link.
  boost::asio::awaitable<void> run_loop();
  boost::asio::awaitable<std::pair<error_code, std::string>> connect_once();
  boost::asio::awaitable<std::pair<error_code, std::string>> connect_steps();
  void on_connected();
  boost::asio::awaitable<void> on_disconnected();
  void drop_reason(error_code ec, std::string message);
  void fail_connection(error_code ec, std::string message);
  void record_error(error_code ec, const std::string& message);
  void close_link() noexcept;
  void stop();
  void maybe_retire();
  std::chrono::milliseconds jittered(std::chrono::milliseconds d);

  // Sentinel.
  side_channel make_sentinel_channel();
  void switch_master(const master_switch& s);
  static boost::asio::awaitable<void> watch_sentinels(std::shared_ptr<connection_impl> self);

  boost::asio::any_io_executor ex_;
  strand_type strand_;
  config cfg_;
  std::optional<boost::asio::ssl::context> ssl_ctx_;
  std::optional<boost::asio::ssl::context> sentinel_ssl_ctx_;
  stream stream_;
  multiplexer mux_;
  handshake handshake_;
  std::vector<char> read_buf_;

  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer health_timer_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer watch_timer_;  // the sentinel watcher's timeouts and backoff

  // Strand only.
  link_state state_ = link_state::idle;
  std::uint64_t generation_ = 0;  // bumped per connect attempt and per drop
  bool connect_expired_ = false;  // the connect timer ended the current attempt
  bool deadline_armed_ = false;
  steady::time_point armed_for_{};
  bool flush_scheduled_ = false;
  bool completing_inline_ = false;  // hand_over_completions is running a handler inline
  bool retiring_ = false;
  steady::time_point connected_at_{};
  error_code drop_ec_;
  std::string drop_message_;
  address target_;  // the server of the current connect attempt or connection

  std::optional<sentinel_resolver> sentinels_;
  std::optional<side_channel> sentinel_query_;  // asks for the master during a connect
  std::optional<side_channel> sentinel_watch_;  // subscribed to +switch-master
  std::minstd_rand rng_;

  // Any thread.
  std::atomic<bool> up_{false};
  std::atomic<std::uint64_t> connects_{0};
  mutable std::mutex server_mutex_;
  address server_;  // target_ for server_address()
  error_record errors_;
};

}  // namespace websession::redis::detail

#if !defined(WEBSESSION_SEPARATE_COMPILATION)
#include <websession/redis/detail/impl/connection_impl.ipp>
#endif
