// SPDX-License-Identifier: BSL-1.0
// The one interface that redis::client holds: what a single-node connection and a cluster
// both offer, type-erased, so that the client never branches on which one it has.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/detail/operation.hpp>
#include <websession/redis/request.hpp>
#include <websession/redis/topology.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <optional>
#include <string>

namespace websession::redis {
class connection;
class cluster;
}  // namespace websession::redis

namespace websession::redis::detail {

/// Implemented by redis::connection and redis::cluster (see there for each operation's
/// contract); users never name it.
class client_interface {
 public:
  using executor_type = boost::asio::any_io_executor;

  virtual ~client_interface() = default;

  virtual executor_type get_executor() const noexcept = 0;
  virtual const config& get_config() const noexcept = 0;
  /// async_run with a type-erased handler.
  virtual void run(run_handler handler) = 0;
  /// async_exec with a type-erased handler and that handler's associated executor.
  virtual void exec(const request* req, exec_handler handler, executor_type handler_ex) = 0;
  /// async_exec_at (a connection runs everything on its one master).
  virtual void exec_at(std::size_t index, const request* req, exec_handler handler,
                       executor_type handler_ex) = 0;
  virtual void cancel() = 0;
  virtual bool connected() const = 0;
  virtual boost::system::error_code last_error() const = 0;
  virtual std::string last_error_message() const = 0;
  virtual void set_error_handler(error_handler h) = 0;
  /// 1 for a connection.
  virtual std::size_t master_count() const = 0;
  /// nullopt for a connection.
  virtual std::optional<address> master_address(std::size_t index) const = 0;
  /// Fills the deployment-specific part of `t` (server and master name, or the cluster).
  virtual void describe(topology& t) const = 0;
  virtual redis::connection* as_connection() noexcept { return nullptr; }
  virtual redis::cluster* as_cluster() noexcept { return nullptr; }

 protected:
  client_interface() = default;
  client_interface(const client_interface&) = default;
  client_interface& operator=(const client_interface&) = default;
};

/// The initiating functions of async_exec, async_exec_at and async_run, shared by connection,
/// cluster and client. `target` (a connection_impl, cluster_impl or client_interface) is held
/// until the operation starts (a deferred operation may start later).
template <class Target, class CompletionToken>
auto initiate_exec(std::shared_ptr<Target> target, const request& req, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, exec_signature>(
      [](auto handler, std::shared_ptr<Target> t, const request* r) {
        boost::asio::any_io_executor ex =
            boost::asio::get_associated_executor(handler, t->get_executor());
        t->exec(r, exec_handler(std::move(handler)), std::move(ex));
      },
      token, std::move(target), &req);
}

template <class Target, class CompletionToken>
auto initiate_exec_at(std::shared_ptr<Target> target, std::size_t index, const request& req,
                      CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, exec_signature>(
      [](auto handler, std::shared_ptr<Target> t, std::size_t i, const request* r) {
        boost::asio::any_io_executor ex =
            boost::asio::get_associated_executor(handler, t->get_executor());
        t->exec_at(i, r, exec_handler(std::move(handler)), std::move(ex));
      },
      token, std::move(target), index, &req);
}

template <class Target, class CompletionToken>
auto initiate_run(std::shared_ptr<Target> target, CompletionToken&& token) {
  return boost::asio::async_initiate<CompletionToken, run_signature>(
      [](auto handler, std::shared_ptr<Target> t) {
        if constexpr (std::is_base_of_v<client_interface, Target>) {
          t->run(run_handler(std::move(handler)));
        } else {
          spawn_run(std::move(t), run_handler(std::move(handler)));
        }
      },
      token, std::move(target));
}

}  // namespace websession::redis::detail
