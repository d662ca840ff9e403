// SPDX-License-Identifier: BSL-1.0
// The state behind redis::cluster: the slot map, one connection per node, request routing,
// MOVED / ASK / TRYAGAIN handling, shared map refreshes. Map changes run on one strand; routing
// reads a snapshot from any thread.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/detail/cluster_protocol.hpp>
#include <websession/redis/detail/connection_impl.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>
#include <websession/redis/slot.hpp>
#include <websession/result.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include <algorithm>
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

namespace websession::redis {

/// One node as a cluster client sees it (cluster::status).
struct cluster_node_status {
  address node;
  /// Serves slots in the current map (false: a replica, or a node that left).
  bool master = false;
  /// How many slots it serves.
  std::size_t slots = 0;
  /// Its connection is up right now.
  bool connected = false;
};

/// What a cluster client knows right now (for health checks and /healthz).
struct cluster_status {
  /// Whether a slot map was read yet.
  bool have_map = false;
  /// Masters of the current map first, then replicas.
  std::vector<cluster_node_status> nodes;
  /// Slots that have a master in the current map (16384 when the cluster is whole).
  std::size_t covered_slots = 0;
  /// Slot maps read (the first one included).
  std::uint64_t refreshes = 0;
  /// MOVED redirections followed.
  std::uint64_t moved = 0;
  /// ASK redirections followed.
  std::uint64_t ask = 0;
  /// Requests sent again after TRYAGAIN, CLUSTERDOWN, LOADING or a node that was down.
  std::uint64_t retries = 0;
};

namespace detail {

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
};

// One async_exec call on the cluster.
struct cluster_op {
  explicit cluster_op(exec_handler h) noexcept : handler(std::move(h)) {}

  const request* req = nullptr;
  exec_handler handler;
  boost::asio::any_io_executor work;  // the handler's executor, kept from running dry
  steady::time_point deadline;
  int slot = -1;
  unsigned redirects = 0;
  unsigned retries = 0;
  std::optional<request> asking;            // ASKING before each command, for an ASK
  std::shared_ptr<cluster_node> ask_node;   // where the ASK sent us
  boost::asio::cancellation_signal node_signal;  // forwards our cancellation to the node's op
  std::optional<boost::asio::steady_timer> wait;  // while waiting to be sent again (strand)
  bool cancelled = false;                   // strand
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

  cluster_impl(boost::asio::any_io_executor ex, config cfg)
      : ex_(std::move(ex)),
        strand_(boost::asio::make_strand(ex_)),
        cfg_(std::move(cfg)),
        refresh_timer_(strand_),
        periodic_timer_(strand_),
        rng_(std::random_device{}()) {
    validate(cfg_);
    // Every node is one connection of ours with the same settings; a node that is down fails
    // our requests at once (client_error::not_sent) so that they wait for the failover here.
    node_cfg_ = cfg_;
    node_cfg_.deployment = deployment::standalone;
    node_cfg_.database = 0;
    node_cfg_.fail_fast_when_down = true;
    node_cfg_.cluster = {};
    node_cfg_.sentinel = {};
    // The node connections check the rest (timeouts, TLS files) when they are made: make one
    // now, so that bad settings throw here rather than inside the first refresh.
    (void)connection_impl(ex_, node_cfg_);
  }

  const boost::asio::any_io_executor& get_executor() const noexcept { return ex_; }
  const boost::asio::strand<boost::asio::any_io_executor>& strand() const noexcept {
    return strand_;
  }
  const config& get_config() const noexcept { return cfg_; }

  // Any thread.
  void exec(const request* req, exec_handler handler, boost::asio::any_io_executor handler_ex) {
    auto op = std::make_shared<cluster_op>(std::move(handler));
    op->req = req;
    op->slot = req->slot();
    op->deadline = steady::now() + cfg_.request_timeout;
    op->work = boost::asio::prefer(std::move(handler_ex),
                                   boost::asio::execution::outstanding_work.tracked);
    if (auto slot = boost::asio::get_associated_cancellation_slot(op->handler);
        slot.is_connected()) {
      slot.assign([w = weak_from_this(), o = std::weak_ptr<cluster_op>(op)](
                      boost::asio::cancellation_type_t type) {
        if (auto self = w.lock()) {
          boost::asio::post(self->strand_, [self, o, type] {
            if (auto op = o.lock()) self->cancel_op(*op, type);
          });
        }
      });
    }
    if (stopped_.load(std::memory_order_acquire)) {
      finish(op, boost::asio::error::operation_aborted, {}, true);
      return;
    }
    if (req->empty()) {
      finish(op, {}, {}, true);
      return;
    }
    send(std::move(op));
  }

  // Any thread: sends `req` to the `index`-th master of the current map (SCAN, PING on
  // each master); error::not_connected if there is no such master.
  void exec_at(std::size_t index, const request* req, exec_handler handler,
               boost::asio::any_io_executor handler_ex) {
    std::shared_ptr<cluster_node> node;
    if (auto r = routing(); r && index < r->masters.size()) node = r->masters[index];
    if (!node || stopped_.load(std::memory_order_acquire)) {
      auto work = boost::asio::prefer(std::move(handler_ex),
                                      boost::asio::execution::outstanding_work.tracked);
      const error_code ec = node ? make_error_code(boost::asio::error::operation_aborted)
                                 : make_error_code(error::not_connected);
      boost::asio::require(work, boost::asio::execution::blocking.never)
          .execute([h = std::move(handler), ec]() mutable {
            std::move(h)(ec, std::vector<reply>{});
          });
      return;
    }
    node->conn->exec(req, std::move(handler), std::move(handler_ex));
  }

  // Any thread.
  void cancel() {
    boost::asio::post(strand_, [self = shared_from_this()] { self->stop(); });
  }

  // The body of async_run: the first map, then periodic refreshes, until cancel().
  static boost::asio::awaitable<error_code> run(std::shared_ptr<cluster_impl> self) {
    namespace asio = boost::asio;
    if (self->stopped_) co_return asio::error::operation_aborted;
    if (self->running_) co_return asio::error::already_started;
    self->running_ = true;
    self->request_refresh();
    while (!self->stopped_) {
      const auto every = self->cfg_.cluster.refresh_interval;
      self->periodic_timer_.expires_after(every > std::chrono::milliseconds::zero()
                                              ? every
                                              : std::chrono::hours(24 * 365));
      error_code ec;
      co_await self->periodic_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (self->stopped_) break;
      if (!ec && every > std::chrono::milliseconds::zero()) self->request_refresh();
    }
    co_return asio::error::operation_aborted;
  }

  // Any thread.
  cluster_status status() const {
    cluster_status st;
    const auto r = routing();
    st.have_map = r != nullptr;
    if (r) {
      st.covered_slots = r->covered;
      std::vector<std::size_t> count(r->masters.size(), 0);
      for (std::int16_t n : r->slot_node) {
        if (n >= 0) ++count[static_cast<std::size_t>(n)];
      }
      for (std::size_t i = 0; i < r->masters.size(); ++i) {
        st.nodes.push_back({r->masters[i]->addr, true, count[i], r->masters[i]->conn->connected()});
      }
      for (const address& a : r->replicas) st.nodes.push_back({a, false, 0, false});
    }
    st.refreshes = refreshes_.load(std::memory_order_relaxed);
    st.moved = moved_.load(std::memory_order_relaxed);
    st.ask = ask_.load(std::memory_order_relaxed);
    st.retries = retries_.load(std::memory_order_relaxed);
    return st;
  }

  // Any thread: a map was read and every master of it is connected.
  bool connected() const {
    const auto r = routing();
    if (!r || r->masters.empty()) return false;
    return std::all_of(r->masters.begin(), r->masters.end(),
                       [](const auto& n) { return n->conn->connected(); });
  }

  std::size_t master_count() const {
    const auto r = routing();
    return r ? r->masters.size() : 0;
  }

  std::optional<address> master_address(std::size_t index) const {
    const auto r = routing();
    if (!r || index >= r->masters.size()) return std::nullopt;
    return r->masters[index]->addr;
  }

  error_code last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

  std::string last_error_message() const {
    std::lock_guard lock(mutex_);
    return last_error_message_;
  }

  void set_error_handler(error_handler h) { on_error_ = std::move(h); }

 private:
  static void validate(const config& c) {
    if (c.deployment != deployment::cluster) {
      throw std::invalid_argument(
          "websession::redis::cluster needs a cluster config (deployment::cluster, a "
          "redis-cluster:// URL)");
    }
    if (c.cluster.seeds.empty()) {
      throw std::invalid_argument("websession::redis::config::cluster::seeds must not be empty");
    }
    if (c.database != 0) {
      throw std::invalid_argument("websession::redis::config::database must be 0 on a cluster");
    }
    if (c.cluster.refresh_interval < std::chrono::milliseconds::zero()) {
      throw std::invalid_argument(
          "websession::redis::config::cluster::refresh_interval must not be negative");
    }
  }

  std::shared_ptr<const cluster_routing> routing() const {
    std::lock_guard lock(mutex_);
    return routing_;
  }

  void install(std::shared_ptr<const cluster_routing> r) {
    std::lock_guard lock(mutex_);
    routing_ = std::move(r);
  }

  static std::string name_of(const address& a) { return a.host + ":" + std::to_string(a.port); }

  // ---- requests --------------------------------------------------------------------------------

  // Any thread: the node for the op's slot (or its ASK target), and the request goes there.
  void send(std::shared_ptr<cluster_op> op) {
    std::shared_ptr<cluster_node> node = op->ask_node;
    if (!node) {
      if (auto r = routing()) {
        if (op->slot >= 0) {
          const std::int16_t i = r->slot_node[static_cast<std::size_t>(op->slot)];
          if (i >= 0) node = r->masters[static_cast<std::size_t>(i)];
        } else if (!r->masters.empty()) {
          node = r->masters[next_any_.fetch_add(1, std::memory_order_relaxed) % r->masters.size()];
        }
      }
    }
    if (!node) {
      boost::asio::post(strand_, [self = shared_from_this(), op = std::move(op)]() mutable {
        cluster_retry why;
        why.type = cluster_retry::kind::no_route;
        why.refresh = true;
        self->retry(std::move(op), why);
      });
      return;
    }
    const request* r = op->asking ? &*op->asking : op->req;
    auto slot = op->node_signal.slot();
    auto on_reply = [self = shared_from_this(), op, node](error_code ec,
                                                          std::vector<reply> replies) mutable {
      self->on_reply(std::move(op), node, ec, std::move(replies));
    };
    exec_options opts;
    opts.deadline = op->deadline;
    opts.report_unsent = true;
    node->conn->exec(r, exec_handler(boost::asio::bind_cancellation_slot(slot, std::move(on_reply))),
                     op->work, opts);
  }

  // Runs on the op's handler executor (where the node completed it).
  void on_reply(std::shared_ptr<cluster_op> op, const std::shared_ptr<cluster_node>& node,
                error_code ec, std::vector<reply> replies) {
    if (ec) {
      if (ec == client_error::not_sent) {
        boost::asio::post(strand_, [self = shared_from_this(), op = std::move(op), node] {
          cluster_retry why;
          why.type = cluster_retry::kind::node_down;
          why.refresh = true;
          self->retry(op, why);
        });
        return;
      }
      if (ec == error::connection_lost || ec == error::timeout ||
          ec == error::replicas_not_confirmed) {
        // The node failed under this request: the map may have changed.
        boost::asio::post(strand_, [self = shared_from_this()] { self->request_refresh(); });
      }
      finish(op, ec, {}, false);
      return;
    }
    if (op->asking) {
      // [OK, reply, OK, reply...]: keep the replies to our own commands.
      std::vector<reply> own;
      own.reserve(replies.size() / 2);
      for (std::size_t i = 1; i < replies.size(); i += 2) own.push_back(std::move(replies[i]));
      replies = std::move(own);
    }
    // A redirection or a transient cluster error means the command did not run. Only when no
    // command of the request ran (or it is idempotent) may all of it go round again.
    std::optional<cluster_retry> why;
    bool all_bounced = true;
    for (const reply& r : replies) {
      std::optional<cluster_retry> bounce;
      if (r.is_error()) {
        if (auto to = parse_redirect(r.str, node->addr)) {
          bounce.emplace();
          bounce->type = cluster_retry::kind::redirect;
          bounce->to = std::move(to);
          bounce->refresh = to->type == redirect::kind::moved;
        } else if (retryable_cluster_error(r.str)) {
          bounce.emplace();
          bounce->type = cluster_retry::kind::pause;
          bounce->refresh = r.str.starts_with("CLUSTERDOWN");
        }
      }
      if (!bounce) {
        all_bounced = false;
      } else if (!why) {
        why = std::move(bounce);
      }
    }
    if (!why || (!all_bounced && !op->req->idempotent())) {
      finish(op, {}, std::move(replies), false);
      return;
    }
    boost::asio::post(strand_, [self = shared_from_this(), op = std::move(op), w = std::move(*why)] {
      self->retry(op, w);
    });
  }

  // On the strand: sends the op again (now, or after a pause), or fails it.
  void retry(std::shared_ptr<cluster_op> op, const cluster_retry& why) {
    if (op->done.load(std::memory_order_acquire)) return;
    if (op->cancelled || stopped_) {
      finish(op, boost::asio::error::operation_aborted, {}, true);
      return;
    }
    if (why.refresh) request_refresh();
    op->ask_node.reset();
    op->asking.reset();
    if (why.type == cluster_retry::kind::redirect && why.to) {
      const redirect& to = *why.to;
      if (++op->redirects > cfg_.cluster.max_redirects) {
        note_error(make_error_code(error::too_many_redirects),
                   "a request was redirected more than " +
                       std::to_string(cfg_.cluster.max_redirects) + " times (slot " +
                       std::to_string(to.slot) + ")");
        finish(op, make_error_code(error::too_many_redirects), {}, true);
        return;
      }
      if (!to.to.host.empty()) {
        if (to.type == redirect::kind::moved) {
          moved_.fetch_add(1, std::memory_order_relaxed);
          apply_moved(to.slot, to.to);
        } else {
          ask_.fetch_add(1, std::memory_order_relaxed);
          op->ask_node = node_for(to.to);
          op->asking.emplace(asking_request(*op->req));
        }
        send(std::move(op));
        return;
      }
    }
    // A pause: TRYAGAIN, CLUSTERDOWN, a node down, no map or no master for the slot yet.
    const auto now = steady::now();
    const bool fail_fast = cfg_.fail_fast_when_down && why.type == cluster_retry::kind::node_down;
    if (now >= op->deadline || fail_fast) {
      // last_error() says why (no map, uncovered slots, the node's connection error).
      finish(op, make_error_code(error::not_connected), {}, true);
      return;
    }
    retries_.fetch_add(1, std::memory_order_relaxed);
    const auto pause = std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(std::min<unsigned>(200, 10u << std::min(op->retries, 5u))),
        op->deadline - now);
    ++op->retries;
    op->wait.emplace(strand_, pause);
    waiting_.insert(op);
    op->wait->async_wait([self = shared_from_this(), op](error_code) {
      self->waiting_.erase(op);
      op->wait.reset();
      if (op->done.load(std::memory_order_acquire)) return;
      if (op->cancelled || self->stopped_) {
        self->finish(op, boost::asio::error::operation_aborted, {}, true);
        return;
      }
      if (steady::now() >= op->deadline) {
        self->finish(op, make_error_code(error::not_connected), {}, true);
        return;
      }
      self->send(op);
    });
  }

  // ASKING before each command of `req`: ASKING is good for the next command only.
  static request asking_request(const request& req) {
    request out(req.idempotent());
    out.wait_for_replicas(req.wait_replicas(), req.wait_timeout());
    for (std::string_view c : split_commands(req.payload())) {
      out.push("ASKING");
      request_access::append_encoded(out, c);
    }
    return out;
  }

  // On the strand: a cancellation from the op's own slot.
  void cancel_op(cluster_op& op, boost::asio::cancellation_type_t type) {
    if (op.done.load(std::memory_order_acquire)) return;
    op.cancelled = true;
    op.node_signal.emit(type);  // the node decides for a request it holds (see connection)
    if (op.wait) op.wait->cancel();
  }

  // Hands the handler its result once. `post`: from the strand (or an initiating function),
  // where the handler must not run inline; otherwise we are on its executor already.
  void finish(const std::shared_ptr<cluster_op>& op, error_code ec, std::vector<reply> replies,
              bool post) {
    if (op->done.exchange(true, std::memory_order_acq_rel)) return;
    op->asking.reset();
    if (!op->handler) return;
    auto work = std::move(op->work);
    auto call = [h = std::move(op->handler), ec, r = std::move(replies)]() mutable {
      std::move(h)(ec, std::move(r));
    };
    if (post) {
      boost::asio::require(work, boost::asio::execution::blocking.never).execute(std::move(call));
    } else {
      call();
    }
  }

  // ---- nodes and the map -----------------------------------------------------------------------

  // On the strand: the node at `a`, connected (and running) from its first use on.
  std::shared_ptr<cluster_node> node_for(const address& a) {
    const std::string name = name_of(a);
    auto it = nodes_.find(name);
    if (it != nodes_.end()) return it->second;
    auto node = std::make_shared<cluster_node>();
    node->addr = a;
    config c = node_cfg_;
    c.host = a.host;
    c.port = a.port;
    node->conn = std::make_shared<connection_impl>(ex_, std::move(c));
    node->conn->set_error_handler(
        [w = weak_from_this(), name](const error_code& ec, std::string_view message) {
          if (auto self = w.lock()) {
            self->note_error(ec, "node " + name + ": " + std::string(message), false);
            boost::asio::post(self->strand_, [self] { self->request_refresh(); });
          }
        });
    boost::asio::co_spawn(node->conn->strand(), connection_impl::run(node->conn),
                          boost::asio::detached);
    nodes_.emplace(name, node);
    return node;
  }

  // The index of `node` among the masters of `r`, which it joins if it is not there yet.
  static std::int16_t master_index(cluster_routing& r, const std::shared_ptr<cluster_node>& node) {
    for (std::size_t i = 0; i < r.masters.size(); ++i) {
      if (r.masters[i] == node) return static_cast<std::int16_t>(i);
    }
    r.masters.push_back(node);
    return static_cast<std::int16_t>(r.masters.size() - 1);
  }

  // On the strand: after a MOVED, the slot is served by `to` until the next map says otherwise.
  void apply_moved(std::uint16_t slot, const address& to) {
    auto cur = routing();
    auto next = cur ? std::make_shared<cluster_routing>(*cur) : std::make_shared<cluster_routing>();
    if (!cur) next->slot_node.fill(-1);
    const std::int16_t index = master_index(*next, node_for(to));
    if (next->slot_node[slot] < 0) ++next->covered;
    next->slot_node[slot] = index;
    install(std::move(next));
  }

  // On the strand: one refresh at a time; requests made meanwhile share the next one, and
  // refreshes are at least min_refresh_gap apart, so a storm of MOVED makes no stampede.
  void request_refresh() {
    if (stopped_) return;
    if (refreshing_) {
      refresh_again_ = true;
      return;
    }
    refreshing_ = true;
    boost::asio::co_spawn(strand_, refresh_loop(shared_from_this()), boost::asio::detached);
  }

  static constexpr std::chrono::milliseconds min_refresh_gap{50};

  static boost::asio::awaitable<void> refresh_loop(std::shared_ptr<cluster_impl> self) {
    namespace asio = boost::asio;
    do {
      self->refresh_again_ = false;
      const auto earliest = self->last_refresh_ + min_refresh_gap;
      if (steady::now() < earliest) {
        self->refresh_timer_.expires_at(earliest);
        error_code ignored;
        co_await self->refresh_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (self->stopped_) break;
      }
      self->last_refresh_ = steady::now();
      co_await self->refresh_once();
    } while (self->refresh_again_ && !self->stopped_);
    self->refreshing_ = false;
  }

  // One request to one node, as a coroutine.
  boost::asio::awaitable<std::pair<error_code, std::vector<reply>>> ask(
      const std::shared_ptr<cluster_node>& node, const request& req) {
    namespace asio = boost::asio;
    auto conn = node->conn;
    auto initiate = [conn, &req](auto handler) {
      auto ex = asio::get_associated_executor(handler, conn->get_executor());
      conn->exec(&req, exec_handler(std::move(handler)), std::move(ex));
    };
    auto [ec, replies] = co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>&,
                                                       exec_signature>(
        initiate, asio::as_tuple(asio::use_awaitable));
    std::pair<error_code, std::vector<reply>> out(ec, std::move(replies));
    co_return out;
  }

  // On the strand: asks the known masters, then any other node we know, then the seeds, for
  // the map, until one answers.
  boost::asio::awaitable<void> refresh_once() {
    std::vector<address> candidates;
    const auto add = [&](const address& a) {
      if (std::find(candidates.begin(), candidates.end(), a) == candidates.end()) {
        candidates.push_back(a);
      }
    };
    if (auto r = routing()) {
      std::vector<address> masters;
      for (const auto& n : r->masters) masters.push_back(n->addr);
      std::shuffle(masters.begin(), masters.end(), rng_);
      // Connected masters first: a dead one would cost a failed request.
      std::stable_partition(masters.begin(), masters.end(), [&](const address& a) {
        auto it = nodes_.find(name_of(a));
        return it != nodes_.end() && it->second->conn->connected();
      });
      for (const auto& a : masters) add(a);
      for (const auto& a : r->replicas) add(a);
    }
    for (const auto& a : cfg_.cluster.seeds) add(a);

    std::string failures;
    bool not_cluster = false;
    // Why the nodes' connections failed, when they all failed alike with one of our codes (a
    // wrong password: auth_failed): that, rather than "no map", is what the user must fix. The
    // message names each node's own failure in any case (refused, certificate not trusted...).
    error_code node_cause;
    bool causes_alike = true;
    request shards(true);
    shards.push("CLUSTER", "SHARDS");
    request slots(true);
    slots.push("CLUSTER", "SLOTS");
    for (const address& a : candidates) {
      if (stopped_) co_return;
      auto node = node_for(a);
      auto [ec, replies] = co_await ask(node, shards);
      result<std::vector<cluster_shard>> parsed = make_error_code(client_error::protocol_error);
      if (!ec && replies.front().is_error()) {
        const std::string& text = replies.front().str;
        if (text.find("cluster support disabled") != std::string::npos) {
          not_cluster = true;
          failures += (failures.empty() ? "" : "; ") + name_of(a) + " is not a cluster node (" + text + ")";
          continue;
        }
        // Before Redis 7: CLUSTER SLOTS.
        auto [ec2, replies2] = co_await ask(node, slots);
        ec = ec2;
        if (!ec) {
          if (replies2.front().is_error()) {
            failures += (failures.empty() ? "" : "; ") + name_of(a) + ": " + replies2.front().str;
            continue;
          }
          parsed = parse_cluster_slots(replies2.front(), a);
        }
      } else if (!ec) {
        parsed = parse_cluster_shards(replies.front(), a, cfg_.tls);
      }
      if (ec) {
        const error_code cause = node->conn->last_error();
        const std::string detail = node->conn->last_error_message();
        failures += (failures.empty() ? "" : "; ") + name_of(a) + ": " +
                    (detail.empty() ? ec.message() : detail);
        if (!cause || cause.category() != client_error_category() ||
            (node_cause && cause != node_cause)) {
          causes_alike = false;
        }
        if (cause) node_cause = cause;
        continue;
      }
      if (!parsed) {
        failures += (failures.empty() ? "" : "; ") + name_of(a) + ": unreadable slot map";
        continue;
      }
      if (stopped_) co_return;
      install_map(*parsed);
      co_return;
    }
    if (not_cluster) {
      note_error(make_error_code(client_error::not_a_cluster), failures);
    } else {
      note_error(node_cause && causes_alike ? node_cause
                                            : make_error_code(client_error::no_cluster_map),
                 "no node told the slot map: " + failures);
    }
  }

  void install_map(const std::vector<cluster_shard>& shards) {
    auto next = std::make_shared<cluster_routing>();
    next->slot_node.fill(-1);
    // The masters in the order of their lowest slot (those without slots last, by address), not
    // in the order the node asked listed them: each node lists its shards in an order of its own
    // (that of its hash table of nodes), and refreshes ask different nodes. A master keeps its
    // index (exec_at) from one map to the next while the slot owners stay the same.
    std::vector<const cluster_shard*> ordered;
    ordered.reserve(shards.size());
    for (const cluster_shard& s : shards) ordered.push_back(&s);
    const auto lowest = [](const cluster_shard& s) {
      std::uint32_t low = slot_count;
      for (const slot_range& r : s.slots) low = std::min<std::uint32_t>(low, r.first);
      return low;
    };
    std::stable_sort(ordered.begin(), ordered.end(),
                     [&](const cluster_shard* a, const cluster_shard* b) {
                       const auto la = lowest(*a), lb = lowest(*b);
                       if (la != lb) return la < lb;
                       if (a->master.host != b->master.host) return a->master.host < b->master.host;
                       return a->master.port < b->master.port;
                     });
    for (const cluster_shard* shard : ordered) {
      const cluster_shard& s = *shard;
      for (const address& a : s.replicas) next->replicas.push_back(a);
      if (s.master.host.empty()) continue;
      const std::int16_t index = master_index(*next, node_for(s.master));
      for (const slot_range& r : s.slots) {
        for (std::uint32_t slot = r.first; slot <= r.last; ++slot) {
          if (next->slot_node[slot] < 0) ++next->covered;
          next->slot_node[slot] = index;
        }
      }
    }
    const std::size_t covered = next->covered;
    install(std::move(next));
    refreshes_.fetch_add(1, std::memory_order_relaxed);
    // Requests waiting for a map (or a master) try this one at once.
    for (const auto& op : waiting_) {
      if (op->wait) op->wait->cancel();
    }
    if (covered < slot_count) {
      // Requests for those slots wait (asking for the map again) until their deadline.
      note_error(make_error_code(client_error::slots_uncovered),
                 std::to_string(slot_count - covered) + " of " + std::to_string(slot_count) +
                     " slots have no master that is online");
    } else {
      std::lock_guard lock(mutex_);
      if (map_error(last_error_)) {
        last_error_ = {};
        last_error_message_.clear();
      }
    }
  }

  static bool map_error(const error_code& ec) {
    return ec == client_error::not_a_cluster || ec == client_error::no_cluster_map ||
           ec == client_error::slots_uncovered;
  }

  // Any thread. A node's own failure does not hide a problem with the map (which says more).
  void note_error(error_code ec, std::string message, bool about_map = true) {
    {
      std::lock_guard lock(mutex_);
      if (about_map || !map_error(last_error_)) {
        last_error_ = ec;
        last_error_message_ = message;
      }
    }
    if (on_error_) {
      try {
        on_error_(ec, message);
      } catch (...) {
        // A logging callback must not take the cluster down.
      }
    }
  }

  // On the strand.
  void stop() {
    if (stopped_) return;
    stopped_.store(true, std::memory_order_release);
    for (auto& [name, node] : nodes_) node->conn->cancel();
    periodic_timer_.cancel();
    refresh_timer_.cancel();
    for (const auto& op : waiting_) {
      if (op->wait) op->wait->cancel();
    }
  }

  boost::asio::any_io_executor ex_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  config cfg_;
  config node_cfg_;
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
  mutable std::mutex mutex_;  // routing_ and the last error
  std::shared_ptr<const cluster_routing> routing_;
  error_code last_error_;
  std::string last_error_message_;
  error_handler on_error_;
};

}  // namespace detail
}  // namespace websession::redis
