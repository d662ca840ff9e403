// SPDX-License-Identifier: BSL-1.0
// One multiplexed Redis connection for many coroutines: reconnects by itself, pipelines and
// coalesces requests, matches replies first-in first-out, and bounds every request by a deadline.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/detail/client_interface.hpp>
#include <websession/redis/detail/connection_impl.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace websession::redis {

/// A connection to one Redis server (RESP2), shared by any number of concurrent operations.
///
/// With a Sentinel config (config::deployment::sentinel, a redis-sentinel:// URL), the server
/// is the master that the sentinels name: every connect asks them (in order, the one that
/// answered first), checks ROLE, and a failover is followed when the connection drops, when a
/// reply says READONLY or LOADING (that request, which did not run, is sent again to the new
/// master within its deadline), or when a subscribed sentinel announces +switch-master.
///
/// - `async_run` keeps it connected: it connects (TCP or TLS), sends AUTH / SELECT /
///   CLIENT SETNAME, and after any failure reconnects forever with exponential backoff and
///   jitter, until `cancel`. While connected and idle it sends a PING every
///   health_check_interval; a server that owes replies and sends nothing for that long is
///   presumed dead and the connection is reopened.
/// - `async_exec` may be called from any thread, any number of times concurrently. Requests are
///   queued; one write carries everything queued since the previous write; replies are matched
///   to requests in order.
/// - Nothing can wait forever: every request completes within config::request_timeout of its
///   call, whether or not `async_run` was called and whatever the server does.
///
/// Internal state lives on a strand of the given executor, so the executor's io_context may be
/// run by several threads. Destroying the connection cancels it (as `cancel`); operations still
/// pending then complete with operation_aborted, and the internal state lives on until they did.
class connection : public detail::client_interface {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Prepares a connection; nothing is sent until async_run.
  ///
  /// Throws std::invalid_argument for a non-positive request_timeout, connect_timeout or
  /// reconnect_min, a reconnect_max below reconnect_min, a negative health_check_interval or
  /// database, a zero limits.max_elements or limits.max_bulk_length, a limits.max_line_length
  /// below 64; for Sentinel, no sentinels or master_name, TLS to the data nodes but not to the
  /// sentinels, a sentinel quorum of 0 or above the number of sentinels, and with strict_tls a
  /// TLS setup that only warns otherwise (see config::strict_tls); with config::tls,
  /// boost::system::system_error when ca_file, cert_file or key_file cannot be loaded.
  explicit connection(executor_type ex, config cfg = {})
      : impl_(std::make_shared<detail::connection_impl>(std::move(ex), std::move(cfg))) {}

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Takes over the other connection; the moved-from object may only be destroyed or assigned.
  connection(connection&&) noexcept = default;

  /// Cancels this connection (as `cancel`), then takes over the other one.
  connection& operator=(connection&& other) noexcept {
    if (this != &other) {
      if (impl_) impl_->cancel();
      impl_ = std::move(other.impl_);
    }
    return *this;
  }

  /// Cancels (see `cancel`).
  ~connection() {
    if (impl_) impl_->cancel();
  }

  /// The executor given to the constructor (async_exec completes on the handler's own
  /// associated executor, or on this one for handlers without one).
  executor_type get_executor() const noexcept override { return impl_->get_executor(); }

  /// The configuration given to the constructor.
  const config& get_config() const noexcept override { return impl_->get_config(); }

  /// Connects and keeps reconnecting until `cancel` (e.g. `conn.async_run(asio::detached)`);
  /// completes with `void(error_code)`: operation_aborted after `cancel` (the normal end),
  /// already_started if async_run was already called on this connection, redis::error::internal
  /// if the loop died of an allocation failure (the connection is then cancelled too).
  /// Connection failures do not complete it: they are retried, and visible through last_error()
  /// and the error handler.
  template <class CompletionToken>
  auto async_run(CompletionToken&& token) {
    return detail::initiate_run(impl_, std::forward<CompletionToken>(token));
  }

  /// Sends the request's commands and completes with `void(error_code, std::vector<reply>)`:
  /// on success one reply per command, in order. A server error reply (`-ERR`, `-WRONGTYPE`,
  /// `-NOSCRIPT`...) is a reply of type reply_type::error, not a failure: the caller decides.
  ///
  /// `req` must stay alive and unchanged until the operation completes (with a deferred token:
  /// until the deferred operation completes). Blocking commands (BLPOP, WAIT...) and
  /// SUBSCRIBE do not belong on a shared connection.
  ///
  /// Errors (the vector is then empty; redis::error codes unless noted):
  /// - error::timeout: connected, but the replies did not come within config::request_timeout
  ///   (late replies are skipped when they arrive);
  /// - error::not_connected: no working connection during the whole request_timeout (server
  ///   down, wrong password...: see last_error()); with config::fail_fast_when_down, at once
  ///   while the last connect attempt has failed. The request was not sent;
  /// - error::connection_lost: the connection dropped after the request was sent and before
  ///   all its replies came, and the request is not idempotent (so it may or may not have run).
  ///   An idempotent request is sent again after the reconnect instead;
  /// - error::replicas_not_confirmed: a durable request (request::wait_for_replicas) ran, but
  ///   fewer replicas than asked confirmed it in time;
  /// - operation_aborted: `cancel` was called (before or during the operation), or the
  ///   operation was cancelled through its own cancellation slot (for example a coroutine
  ///   cancelled by `co_await (conn.async_exec(req, use_awaitable) || timer.async_wait(...))`
  ///   or by a `bind_cancellation_slot` signal). A request not yet written is then never sent
  ///   (any cancellation type); one already written may have run on the server, so only
  ///   terminal or partial cancellation completes it (its replies are skipped when they come)
  ///   and total cancellation is ignored. Either way the connection stays up.
  template <class CompletionToken>
  auto async_exec(const request& req, CompletionToken&& token) {
    return detail::initiate_exec(impl_, req, std::forward<CompletionToken>(token));
  }

  /// Stops for good: every pending and future async_exec completes with operation_aborted, the
  /// socket is closed, reconnecting stops and async_run completes. Any thread; idempotent.
  void cancel() override { impl_->cancel(); }

  /// Whether a connection is established and set up (AUTH/SELECT done) right now. Any thread.
  bool connected() const noexcept override { return impl_->connected(); }

  /// The server of the current (or last) connection: config's host and port, or (Sentinel)
  /// the master the sentinels named. Any thread.
  address server_address() const { return impl_->server_address(); }

  /// How many times a connection was established (1 after the first connect; each reconnect
  /// adds one). Any thread.
  std::uint64_t connect_count() const noexcept { return impl_->connect_count(); }

  /// Why the last connect attempt failed or the last connection dropped: a client_error
  /// (auth_failed, select_failed, connect_timeout, unresponsive, protocol_error,
  /// reply_too_large: a reply beyond config::limits...) or a socket or TLS error. Cleared when
  /// a connection is established. Any thread.
  boost::system::error_code last_error() const override { return impl_->last_error(); }

  /// last_error() with details, e.g. "AUTH failed: WRONGPASS invalid username-password pair or
  /// user is disabled." or "connect to 127.0.0.1:6379: Connection refused". Any thread.
  std::string last_error_message() const override { return impl_->last_error_message(); }

  /// Installs a callback for every connection failure (the same information as last_error():
  /// code and message), e.g. to log it. Called on the connection's strand; it must not block,
  /// and exceptions from it are swallowed. Set it before async_run.
  /// Warnings about the configuration (client_error::insecure_setup, see config::strict_tls
  /// and sentinel_config::password) reach the handler once when async_run starts; they are not
  /// recorded as last_error().
  void set_error_handler(
      std::function<void(const boost::system::error_code&, std::string_view message)> h) override {
    impl_->set_error_handler(std::move(h));
  }

 private:
  // detail::client_interface, for redis::client and the initiating functions.
  void run(detail::run_handler h) override { detail::spawn_run(impl_, std::move(h)); }
  void exec(const request* req, detail::exec_handler h, executor_type ex) override {
    impl_->exec(req, std::move(h), std::move(ex));
  }
  void exec_at(std::size_t, const request* req, detail::exec_handler h, executor_type ex) override {
    impl_->exec(req, std::move(h), std::move(ex));
  }
  std::size_t master_count() const override { return 1; }
  std::optional<address> master_address(std::size_t) const override { return std::nullopt; }
  void describe(topology& t) const override {
    t.server = server_address();
    t.master_name = get_config().sentinel.master_name;
  }
  connection* as_connection() noexcept override { return this; }

  std::shared_ptr<detail::connection_impl> impl_;
};

}  // namespace websession::redis
