// SPDX-License-Identifier: BSL-1.0
// redis::client: one handle over the three deployments (a single server, a Sentinel-managed
// master, a Cluster), chosen by the config (or the URL), for code that should not care which.
#pragma once

#include <websession/redis/cluster.hpp>
#include <websession/redis/config.hpp>
#include <websession/redis/connection.hpp>
#include <websession/redis/request.hpp>
#include <websession/redis/slot.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace websession::redis {

/// What a client is connected to, for health checks (client::topology).
struct topology {
  redis::deployment deployment = redis::deployment::standalone;
  /// Standalone: connected to the server; Sentinel: to the master; Cluster: a map was read
  /// and every master in it is connected.
  bool connected = false;
  /// Standalone: the server; Sentinel: the current (or last) master; Cluster: empty.
  address server;
  /// Sentinel: the master's name.
  std::string master_name;
  /// Cluster: nodes, slot coverage, redirections.
  cluster_status cluster;
  /// Why the last connect, refresh or node connection failed (empty when none did since).
  boost::system::error_code last_error;
  std::string last_error_message;
};

/// A Redis client for any deployment: a redis::connection for a standalone server or a
/// Sentinel-managed master, a redis::cluster for a Cluster. A cheap handle: copies share the
/// same connection(s). Thread safety, lifetime and cancellation are those of the client inside.
class client {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Makes the connection or cluster that `cfg.deployment` asks for. Throws as their
  /// constructors do.
  client(executor_type ex, config cfg) {
    if (cfg.deployment == deployment::cluster) {
      cluster_ = std::make_shared<redis::cluster>(std::move(ex), std::move(cfg));
    } else {
      conn_ = std::make_shared<redis::connection>(std::move(ex), std::move(cfg));
    }
  }

  /// Uses an existing connection (which its owner may run and cancel as well).
  explicit client(std::shared_ptr<redis::connection> conn) : conn_(std::move(conn)) {}

  /// Uses an existing cluster client.
  explicit client(std::shared_ptr<redis::cluster> c) : cluster_(std::move(c)) {}

  /// The connection, or nullptr for a cluster.
  redis::connection* connection() const noexcept { return conn_.get(); }
  /// The cluster client, or nullptr for a standalone or Sentinel deployment.
  redis::cluster* cluster() const noexcept { return cluster_.get(); }

  /// The executor of the connection or cluster (where its I/O runs).
  executor_type get_executor() const noexcept {
    return conn_ ? conn_->get_executor() : cluster_->get_executor();
  }

  const config& get_config() const noexcept {
    return conn_ ? conn_->get_config() : cluster_->get_config();
  }

  /// connection::async_run or cluster::async_run.
  template <class CompletionToken>
  auto async_run(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::run_signature>(
        [](auto handler, std::shared_ptr<redis::connection> c,
           std::shared_ptr<redis::cluster> k) {
          if (c) {
            c->async_run(std::move(handler));
          } else {
            k->async_run(std::move(handler));
          }
        },
        token, conn_, cluster_);
  }

  /// connection::async_exec or cluster::async_exec (routed by request::route).
  template <class CompletionToken>
  auto async_exec(const request& req, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::exec_signature>(
        [](auto handler, std::shared_ptr<redis::connection> c, std::shared_ptr<redis::cluster> k,
           const request* r) {
          if (c) {
            c->async_exec(*r, std::move(handler));
          } else {
            k->async_exec(*r, std::move(handler));
          }
        },
        token, conn_, cluster_, &req);
  }

  /// The number of masters a command such as SCAN must run on: 1, or the cluster's count.
  std::size_t master_count() const { return conn_ ? 1 : cluster_->master_count(); }

  /// cluster::master_address on a cluster; nullopt for a single connection (whose master is
  /// always index 0, wherever Sentinel places it).
  std::optional<address> master_address(std::size_t index) const {
    if (conn_) return std::nullopt;
    return cluster_->master_address(index);
  }

  /// Runs `req` on the `index`-th master (the connection itself for index 0 when not a cluster).
  template <class CompletionToken>
  auto async_exec_at(std::size_t index, const request& req, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::exec_signature>(
        [](auto handler, std::shared_ptr<redis::connection> c, std::shared_ptr<redis::cluster> k,
           std::size_t i, const request* r) {
          if (c) {
            c->async_exec(*r, std::move(handler));
          } else {
            k->async_exec_at(i, *r, std::move(handler));
          }
        },
        token, conn_, cluster_, index, &req);
  }

  /// Whether one request (one Lua script) may touch both keys: always on a single server, on
  /// a cluster when they hash to the same slot.
  bool same_slot(std::string_view a, std::string_view b) const noexcept {
    return conn_ || hash_slot(a) == hash_slot(b);
  }

  /// Whether this is a cluster client.
  bool is_cluster() const noexcept { return cluster_ != nullptr; }

  void cancel() {
    if (conn_) {
      conn_->cancel();
    } else {
      cluster_->cancel();
    }
  }

  /// connection::connected or cluster::connected.
  bool connected() const { return conn_ ? conn_->connected() : cluster_->connected(); }

  /// What the client is connected to right now. Any thread.
  redis::topology topology() const {
    redis::topology t;
    t.deployment = get_config().deployment;
    t.connected = connected();
    t.last_error = last_error();
    t.last_error_message = last_error_message();
    if (conn_) {
      t.server = conn_->server_address();
      t.master_name = get_config().sentinel.master_name;
    } else {
      t.cluster = cluster_->status();
    }
    return t;
  }

  boost::system::error_code last_error() const {
    return conn_ ? conn_->last_error() : cluster_->last_error();
  }
  std::string last_error_message() const {
    return conn_ ? conn_->last_error_message() : cluster_->last_error_message();
  }

  void set_error_handler(
      std::function<void(const boost::system::error_code&, std::string_view message)> h) {
    if (conn_) {
      conn_->set_error_handler(std::move(h));
    } else {
      cluster_->set_error_handler(std::move(h));
    }
  }

 private:
  std::shared_ptr<redis::connection> conn_;
  std::shared_ptr<redis::cluster> cluster_;
};

}  // namespace websession::redis
