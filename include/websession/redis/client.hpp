// SPDX-License-Identifier: BSL-1.0
// redis::client: one handle over the three deployments (a single server, a Sentinel-managed
// master, a Cluster), chosen by the config (or the URL), for code that should not care which.
#pragma once

#include <websession/redis/cluster.hpp>
#include <websession/redis/config.hpp>
#include <websession/redis/connection.hpp>
#include <websession/redis/detail/client_interface.hpp>
#include <websession/redis/request.hpp>
#include <websession/redis/slot.hpp>
#include <websession/redis/topology.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace websession::redis {

/// A Redis client for any deployment: a redis::connection for a standalone server or a
/// Sentinel-managed master, a redis::cluster for a Cluster. A cheap handle: copies share the
/// same connection(s). Thread safety, lifetime and cancellation are those of the client inside.
class client {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Makes the connection or cluster that `cfg.deployment` asks for. Throws as their
  /// constructors do.
  client(executor_type ex, config cfg) : impl_(make(std::move(ex), std::move(cfg))) {}

  /// Uses an existing connection (which its owner may run and cancel as well).
  explicit client(std::shared_ptr<redis::connection> conn) : impl_(std::move(conn)) {}

  /// Uses an existing cluster client.
  explicit client(std::shared_ptr<redis::cluster> c) : impl_(std::move(c)) {}

  /// The connection, or nullptr for a cluster.
  redis::connection* connection() const noexcept { return impl_->as_connection(); }
  /// The cluster client, or nullptr for a standalone or Sentinel deployment.
  redis::cluster* cluster() const noexcept { return impl_->as_cluster(); }

  /// The executor of the connection or cluster (where its I/O runs).
  executor_type get_executor() const noexcept { return impl_->get_executor(); }

  const config& get_config() const noexcept { return impl_->get_config(); }

  /// connection::async_run or cluster::async_run.
  template <class CompletionToken>
  auto async_run(CompletionToken&& token) {
    return detail::initiate_run(impl_, std::forward<CompletionToken>(token));
  }

  /// connection::async_exec or cluster::async_exec (routed by request::route).
  template <class CompletionToken>
  auto async_exec(const request& req, CompletionToken&& token) {
    return detail::initiate_exec(impl_, req, std::forward<CompletionToken>(token));
  }

  /// The number of masters a command such as SCAN must run on: 1, or the cluster's count.
  std::size_t master_count() const { return impl_->master_count(); }

  /// cluster::master_address on a cluster; nullopt for a single connection (whose master is
  /// always index 0, wherever Sentinel places it).
  std::optional<address> master_address(std::size_t index) const {
    return impl_->master_address(index);
  }

  /// Runs `req` on the `index`-th master (the connection itself for index 0 when not a cluster).
  template <class CompletionToken>
  auto async_exec_at(std::size_t index, const request& req, CompletionToken&& token) {
    return detail::initiate_exec_at(impl_, index, req, std::forward<CompletionToken>(token));
  }

  /// Whether one request (one Lua script) may touch both keys: always on a single server, on
  /// a cluster when they hash to the same slot.
  bool same_slot(std::string_view a, std::string_view b) const noexcept {
    return !is_cluster() || hash_slot(a) == hash_slot(b);
  }

  /// Whether this is a cluster client.
  bool is_cluster() const noexcept { return get_config().deployment == deployment::cluster; }

  void cancel() { impl_->cancel(); }

  /// connection::connected or cluster::connected.
  bool connected() const { return impl_->connected(); }

  /// What the client is connected to right now. Any thread.
  redis::topology topology() const {
    redis::topology t;
    t.deployment = get_config().deployment;
    t.connected = connected();
    t.last_error = last_error();
    t.last_error_message = last_error_message();
    impl_->describe(t);
    return t;
  }

  boost::system::error_code last_error() const { return impl_->last_error(); }
  std::string last_error_message() const { return impl_->last_error_message(); }

  void set_error_handler(
      std::function<void(const boost::system::error_code&, std::string_view message)> h) {
    impl_->set_error_handler(std::move(h));
  }

 private:
  static std::shared_ptr<detail::client_interface> make(executor_type ex, config cfg) {
    if (cfg.deployment == deployment::cluster) {
      return std::make_shared<redis::cluster>(std::move(ex), std::move(cfg));
    }
    return std::make_shared<redis::connection>(std::move(ex), std::move(cfg));
  }

  std::shared_ptr<detail::client_interface> impl_;
};

}  // namespace websession::redis
