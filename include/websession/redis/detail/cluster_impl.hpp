// SPDX-License-Identifier: BSL-1.0
// The state behind redis::cluster: the slot map, one connection per node, request routing,
// MOVED / ASK / TRYAGAIN handling, shared map refreshes, and what the topology is trusted with
// (cluster_trust.hpp). Map changes run on one strand; routing reads a snapshot from any thread.
// Operations complete through the same layer as a single connection's (operation.hpp).
#pragma once

#include <websession/detail/config.hpp>
#include <websession/redis/cluster_status.hpp>
#include <websession/redis/config.hpp>
#include <websession/redis/detail/cluster_protocol.hpp>
#include <websession/redis/detail/cluster_trust.hpp>
#include <websession/redis/detail/connection_impl.hpp>
#include <websession/redis/detail/operation.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>
#include <websession/redis/slot.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace websession::redis::detail {

struct cluster_node {
  address addr;
  std::shared_ptr<connection_impl> conn;
};

// An immutable snapshot of the slot map: replaced as a whole, read from any thread.
struct cluster_routing {
  std::array<std::int16_t, slot_count> slot_node{};  // index into masters; -1: no master
  std::vector<std::shared_ptr<cluster_node>> masters;
  std::vector<address> replicas;
  std::size_t covered = 0;
  // Whether `a` is a node of this map (a master or a replica).
  bool has(const address& a) const;
};

// One async_exec call on the cluster.
struct cluster_op {
  cluster_op(exec_handler h, boost::asio::any_io_executor ex)
      : caller(std::move(h), std::move(ex)) {}

  op_completion caller;
  const request* req = nullptr;
  steady::time_point deadline;
  int slot = -1;
  unsigned redirects = 0;
  unsigned retries = 0;
  std::optional<request> asking;                  // ASKING before each command, for an ASK
  std::shared_ptr<cluster_node> ask_node;         // where the ASK sent us
  boost::asio::cancellation_signal node_signal;   // forwards our cancellation to the node's op
  std::optional<boost::asio::steady_timer> wait;  // while waiting to be sent again (strand)
  bool cancelled = false;                         // strand
  std::atomic<bool> done{false};
};

// Why a request goes round again.
struct cluster_retry {
  enum class kind : unsigned char {
    redirect,   // MOVED or ASK
    pause,      // TRYAGAIN, CLUSTERDOWN, LOADING: the same node may take it soon
    node_down,  // the node's connection is down: the request was not sent
    no_route,   // no map yet, or no master for the slot in it
  };
  kind type = kind::pause;
  std::optional<redirect> to;
  bool refresh = false;  // the map is worth asking for again
};

class cluster_impl : public std::enable_shared_from_this<cluster_impl> {
 public:
  using error_code = boost::system::error_code;
  using strand_type = boost::asio::strand<boost::asio::any_io_executor>;

  /// Throws as redis::cluster's constructor says.
  cluster_impl(boost::asio::any_io_executor ex, config cfg);

  const boost::asio::any_io_executor& get_executor() const noexcept { return ex_; }
  const strand_type& strand() const noexcept { return strand_; }
  const config& get_config() const noexcept { return cfg_; }

  /// Any thread.
  void exec(const request* req, exec_handler handler, boost::asio::any_io_executor handler_ex);
  /// Any thread: sends `req` to the `index`-th master of the current map; error::not_connected
  /// if there is no such master.
  void exec_at(std::size_t index, const request* req, exec_handler handler,
               boost::asio::any_io_executor handler_ex);
  /// Any thread.
  void cancel();
  /// The body of async_run: the first map, then periodic refreshes, until cancel().
  static boost::asio::awaitable<error_code> run(std::shared_ptr<cluster_impl> self);

  /// Any thread.
  cluster_status status() const;
  bool connected() const;
  std::size_t master_count() const;
  std::optional<address> master_address(std::size_t index) const;
  error_code last_error() const { return errors_.code(); }
  std::string last_error_message() const { return errors_.message(); }
  void set_error_handler(error_handler h) { errors_.set_handler(std::move(h)); }

  /// A cancellation from an op's own slot (forward_cancellation). Strand only.
  void cancel_op(const std::shared_ptr<cluster_op>& op, boost::asio::cancellation_type_t type);

 private:
  static config validated(config c);
  std::shared_ptr<const cluster_routing> routing() const;
  void install(std::shared_ptr<const cluster_routing> r);

  // Requests.
  void send(std::shared_ptr<cluster_op> op);
  void on_reply(std::shared_ptr<cluster_op> op, const std::shared_ptr<cluster_node>& node,
                error_code ec, std::vector<reply> replies);
  void retry(std::shared_ptr<cluster_op> op, const cluster_retry& why);
  void pause(std::shared_ptr<cluster_op> op, bool fail_fast);
  static request asking_request(const request& req);
  void finish(const std::shared_ptr<cluster_op>& op, error_code ec, std::vector<reply> replies,
              hand_over how);

  // Nodes and the map.
  std::shared_ptr<cluster_node> node_for(const address& a);
  void retire_absent_nodes(const cluster_routing& r);
  static std::int16_t master_index(cluster_routing& r, const std::shared_ptr<cluster_node>& node);
  void apply_moved(std::uint16_t slot, const std::shared_ptr<cluster_node>& to);
  void request_refresh();
  static boost::asio::awaitable<void> refresh_loop(std::shared_ptr<cluster_impl> self);
  boost::asio::awaitable<std::pair<error_code, std::vector<reply>>> ask(
      const std::shared_ptr<cluster_node>& node, const request& req);
  std::vector<address> refresh_candidates();
  boost::asio::awaitable<void> refresh_once();
  void install_map(const std::vector<cluster_shard>& shards);
  static bool map_error(const error_code& ec);
  void note_error(error_code ec, const std::string& message, bool about_map = true);
  void stop();

  boost::asio::any_io_executor ex_;
  strand_type strand_;
  config cfg_;
  config node_cfg_;
  host_filter allowed_;
  boost::asio::steady_timer refresh_timer_;
  boost::asio::steady_timer periodic_timer_;
  std::minstd_rand rng_;

  // Strand only.
  std::unordered_map<std::string, std::shared_ptr<cluster_node>> nodes_;
  std::unordered_set<std::shared_ptr<cluster_op>> waiting_;
  bool running_ = false;
  bool refreshing_ = false;
  bool refresh_again_ = false;
  steady::time_point last_refresh_{};

  std::atomic<bool> stopped_{false};
  std::atomic<std::size_t> next_any_{0};
  std::atomic<std::uint64_t> refreshes_{0}, moved_{0}, ask_{0}, retries_{0};
  mutable std::mutex mutex_;  // routing_
  std::shared_ptr<const cluster_routing> routing_;
  error_record errors_;
};

}  // namespace websession::redis::detail

#if !defined(WEBSESSION_SEPARATE_COMPILATION)
#include <websession/redis/detail/impl/cluster_impl.ipp>
#endif
