// SPDX-License-Identifier: BSL-1.0
// A Redis Cluster client: the slot map from any seed node, one multiplexed connection per
// master, requests routed by the hash slot of their key, MOVED / ASK followed, failovers
// waited out within each request's deadline.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/detail/cluster_impl.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <exception>
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
///   the seeds or any node it knows, and asks again every cluster_config::refresh_interval,
///   after a MOVED and after a node's connection fails. One refresh runs at a time: requests
///   for one while it runs share the next (at least 50 ms later), so a storm of redirections
///   costs no stampede of CLUSTER SHARDS.
/// - Each master gets one redis::connection (the same multiplexing, reconnects, AUTH/TLS and
///   health checks as a single connection, with this config's settings).
/// - `async_exec` sends a request to the master of its slot (request::route; every key of the
///   request must share that slot; no route: any master). `-MOVED` updates the map for that slot
///   and sends the request there; `-ASK` sends `ASKING` and the request to the node named, once;
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
class cluster {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// Prepares a client; nothing is sent until async_run. Throws std::invalid_argument when
  /// `cfg` is not a cluster config (deployment::cluster, seeds), database is not 0, or as
  /// connection's constructor does for the node settings.
  cluster(executor_type ex, config cfg)
      : impl_(std::make_shared<detail::cluster_impl>(std::move(ex), std::move(cfg))) {}

  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  /// Cancels (see `cancel`).
  ~cluster() {
    if (impl_) impl_->cancel();
  }

  executor_type get_executor() const noexcept { return impl_->get_executor(); }
  const config& get_config() const noexcept { return impl_->get_config(); }

  /// Reads the map and keeps it current until `cancel`; completes with `void(error_code)`:
  /// operation_aborted after `cancel`, already_started on a second call, redis::error::internal
  /// if the loop died of an allocation failure.
  template <class CompletionToken>
  auto async_run(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::run_signature>(
        [](auto handler, std::shared_ptr<detail::cluster_impl> impl) {
          auto ex = boost::asio::get_associated_executor(handler, impl->get_executor());
          boost::asio::co_spawn(
              impl->strand(), detail::cluster_impl::run(impl),
              boost::asio::bind_executor(
                  ex, [h = std::move(handler), impl](std::exception_ptr e,
                                                     boost::system::error_code ec) mutable {
                    if (e) impl->cancel();
                    std::move(h)(e ? make_error_code(error::internal) : ec);
                  }));
        },
        token, impl_);
  }

  /// As connection::async_exec, routed by the request's slot. `req` must stay alive and
  /// unchanged until the operation completes. Errors (redis::error unless noted):
  /// not_connected (no master for the slot within the deadline), too_many_redirects,
  /// connection_lost (a non-idempotent request whose connection dropped after it was written),
  /// timeout, replicas_not_confirmed (a durable request), asio::error::operation_aborted.
  template <class CompletionToken>
  auto async_exec(const request& req, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::exec_signature>(
        [](auto handler, std::shared_ptr<detail::cluster_impl> impl, const request* r) {
          boost::asio::any_io_executor ex =
              boost::asio::get_associated_executor(handler, impl->get_executor());
          impl->exec(r, detail::exec_handler(std::move(handler)), std::move(ex));
        },
        token, impl_, &req);
  }

  /// Sends `req` to the `index`-th master of the current map (0 <= index < master_count(),
  /// masters ordered by their lowest slot),
  /// whatever its route: for commands every master must run (SCAN, PING, SCRIPT). No
  /// redirections are followed. error::not_connected when there is no such master; otherwise
  /// the errors of connection::async_exec.
  template <class CompletionToken>
  auto async_exec_at(std::size_t index, const request& req, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, detail::exec_signature>(
        [](auto handler, std::shared_ptr<detail::cluster_impl> impl, std::size_t i,
           const request* r) {
          boost::asio::any_io_executor ex =
              boost::asio::get_associated_executor(handler, impl->get_executor());
          impl->exec_at(i, r, detail::exec_handler(std::move(handler)), std::move(ex));
        },
        token, impl_, index, &req);
  }

  /// Stops for good: every node connection is cancelled, pending requests complete with
  /// operation_aborted, async_run completes. Any thread; idempotent.
  void cancel() { impl_->cancel(); }

  /// Whether a map was read and every master in it is connected. Any thread.
  bool connected() const { return impl_->connected(); }

  /// The number of masters in the current map (0 before the first). Any thread.
  std::size_t master_count() const { return impl_->master_count(); }

  /// The address of the `index`-th master of the current map (see async_exec_at); nullopt if
  /// there is no such master. Masters are ordered by their lowest slot, so an index names the
  /// same master from one map to the next while the slots stay where they are; a command that
  /// takes several requests per master (SCAN) checks this to notice a map that changed. Any
  /// thread.
  std::optional<address> master_address(std::size_t index) const {
    return impl_->master_address(index);
  }

  /// Nodes, slot coverage and counters of redirections. Any thread.
  cluster_status status() const { return impl_->status(); }

  /// Why the last refresh or node connection failed (not_a_cluster, no_cluster_map,
  /// slots_uncovered, a node's client_error or socket error), with details. Any thread.
  boost::system::error_code last_error() const { return impl_->last_error(); }
  std::string last_error_message() const { return impl_->last_error_message(); }

  /// Called for every such failure (on a strand of ours; must not block). Set before async_run.
  void set_error_handler(
      std::function<void(const boost::system::error_code&, std::string_view message)> h) {
    impl_->set_error_handler(std::move(h));
  }

 private:
  std::shared_ptr<detail::cluster_impl> impl_;
};

}  // namespace websession::redis
