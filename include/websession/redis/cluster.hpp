// SPDX-License-Identifier: BSL-1.0
// A Redis Cluster client: the slot map from any seed node, one multiplexed connection per
// master, requests routed by the hash slot of their key, MOVED / ASK followed, failovers
// waited out within each request's deadline.
#pragma once

#include <websession/redis/cluster_status.hpp>
#include <websession/redis/config.hpp>
#include <websession/redis/detail/client_interface.hpp>
#include <websession/redis/detail/cluster_impl.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

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

/// A client of one Redis Cluster, shared by any number of concurrent operations.
///
/// - `async_run` reads the slot map (`CLUSTER SHARDS`, or `CLUSTER SLOTS` before Redis 7) from
///   the seeds first, then the nodes it knows, and asks again every
///   cluster_config::refresh_interval, after a MOVED and after a node's connection fails. One
///   refresh runs at a time: requests for one while it runs share the next (at least 50 ms
///   later), so a storm of redirections costs no stampede of CLUSTER SHARDS.
/// - Each master gets one redis::connection (the same multiplexing, reconnects, AUTH/TLS and
///   health checks as a single connection, with this config's settings).
/// - `async_exec` sends a request to the master of its slot (request::route; every key of the
///   request must share that slot; no route: any master). `-MOVED` to a node of the current map
///   updates the map for that slot and sends the request there; `-ASK` to one sends `ASKING` and
///   the request there, once. A redirection to a host the map does not name is not followed:
///   the seeds are asked for the map, and the request goes where it says; one naming another
///   slot than the request's fails it (client_error::bad_redirect). What is trusted: see
///   cluster_config (allowed_hosts, max_nodes) and docs/redis.md.
///   `-TRYAGAIN`, `-CLUSTERDOWN`, `-LOADING` and a master that is down (the request was not
///   written) send it again after a short pause (10 ms doubling to 200 ms). A request goes round
///   again only when none of its commands ran (every reply a redirection), or when it is
///   idempotent.
/// - Nothing waits forever: a request for a slot whose master is down waits for the failover
///   within config::request_timeout of its call, then fails with error::not_connected (with
///   config::fail_fast_when_down, at once); last_error() tells why.
///
/// Thread safety, lifetime and cancellation are those of redis::connection: any thread, the
/// state lives on until the last operation completed, per-operation cancellation through the
/// handler's cancellation slot.
class cluster : public detail::client_interface {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Prepares a client; nothing is sent until async_run. Throws std::invalid_argument when
  /// `cfg` is not a cluster config (deployment::cluster, seeds), database is not 0, max_nodes
  /// is 0, an allowed_hosts entry is malformed or a seed is outside it, or as connection's
  /// constructor does for the node settings (and strict_tls).
  cluster(executor_type ex, config cfg)
      : impl_(std::make_shared<detail::cluster_impl>(std::move(ex), std::move(cfg))) {}

  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  /// Cancels (see `cancel`).
  ~cluster() {
    if (impl_) impl_->cancel();
  }

  executor_type get_executor() const noexcept override { return impl_->get_executor(); }
  const config& get_config() const noexcept override { return impl_->get_config(); }

  /// Reads the map and keeps it current until `cancel`; completes with `void(error_code)`:
  /// operation_aborted after `cancel`, already_started on a second call, redis::error::internal
  /// if the loop died of an allocation failure.
  template <class CompletionToken>
  auto async_run(CompletionToken&& token) {
    return detail::initiate_run(impl_, std::forward<CompletionToken>(token));
  }

  /// As connection::async_exec, routed by the request's slot. `req` must stay alive and
  /// unchanged until the operation completes. Errors (redis::error unless noted):
  /// not_connected (no master for the slot within the deadline), too_many_redirects,
  /// connection_lost (a non-idempotent request whose connection dropped after it was written),
  /// timeout, replicas_not_confirmed (a durable request), asio::error::operation_aborted.
  template <class CompletionToken>
  auto async_exec(const request& req, CompletionToken&& token) {
    return detail::initiate_exec(impl_, req, std::forward<CompletionToken>(token));
  }

  /// Sends `req` to the `index`-th master of the current map (0 <= index < master_count(),
  /// masters ordered by their lowest slot),
  /// whatever its route: for commands every master must run (SCAN, PING, SCRIPT). No
  /// redirections are followed. error::not_connected when there is no such master; otherwise
  /// the errors of connection::async_exec.
  template <class CompletionToken>
  auto async_exec_at(std::size_t index, const request& req, CompletionToken&& token) {
    return detail::initiate_exec_at(impl_, index, req, std::forward<CompletionToken>(token));
  }

  /// Stops for good: every node connection is cancelled, pending requests complete with
  /// operation_aborted, async_run completes. Any thread; idempotent.
  void cancel() override { impl_->cancel(); }

  /// Whether a map was read and every master in it is connected. Any thread.
  bool connected() const override { return impl_->connected(); }

  /// The number of masters in the current map (0 before the first). Any thread.
  std::size_t master_count() const override { return impl_->master_count(); }

  /// The address of the `index`-th master of the current map (see async_exec_at); nullopt if
  /// there is no such master. Masters are ordered by their lowest slot, so an index names the
  /// same master from one map to the next while the slots stay where they are; a command that
  /// takes several requests per master (SCAN) checks this to notice a map that changed. Any
  /// thread.
  std::optional<address> master_address(std::size_t index) const override {
    return impl_->master_address(index);
  }

  /// Nodes, slot coverage and counters of redirections. Any thread.
  cluster_status status() const { return impl_->status(); }

  /// Why the last refresh or node connection failed (not_a_cluster, no_cluster_map,
  /// slots_uncovered, a node's client_error or socket error), with details. Any thread.
  boost::system::error_code last_error() const override { return impl_->last_error(); }
  std::string last_error_message() const override { return impl_->last_error_message(); }

  /// Called for every such failure (on a strand of ours; must not block). Set before async_run.
  /// Warnings about the configuration (client_error::insecure_setup, see config::strict_tls)
  /// reach it once when async_run starts; they are not recorded as last_error().
  void set_error_handler(
      std::function<void(const boost::system::error_code&, std::string_view message)> h) override {
    impl_->set_error_handler(std::move(h));
  }

 private:
  // detail::client_interface, for redis::client.
  void run(detail::run_handler h) override { detail::spawn_run(impl_, std::move(h)); }
  void exec(const request* req, detail::exec_handler h, executor_type ex) override {
    impl_->exec(req, std::move(h), std::move(ex));
  }
  void exec_at(std::size_t i, const request* req, detail::exec_handler h,
               executor_type ex) override {
    impl_->exec_at(i, req, std::move(h), std::move(ex));
  }
  void describe(topology& t) const override { t.cluster = status(); }
  cluster* as_cluster() noexcept override { return this; }

  std::shared_ptr<detail::cluster_impl> impl_;
};

}  // namespace websession::redis
