// SPDX-License-Identifier: BSL-1.0
// Definitions of detail/cluster_impl.hpp (compiled once with WEBSESSION_SEPARATE_COMPILATION).
#ifndef WEBSESSION_REDIS_DETAIL_IMPL_CLUSTER_IMPL_IPP
#define WEBSESSION_REDIS_DETAIL_IMPL_CLUSTER_IMPL_IPP

#include <websession/redis/detail/cluster_impl.hpp>
#include <websession/result.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <stdexcept>

namespace websession::redis::detail {

namespace cluster_detail {
inline std::string name_of(const address& a) { return a.host + ":" + std::to_string(a.port); }
}  // namespace cluster_detail

WEBSESSION_DECL bool cluster_routing::has(const address& a) const {
  return std::any_of(masters.begin(), masters.end(), [&](const auto& n) { return n->addr == a; }) ||
         std::find(replicas.begin(), replicas.end(), a) != replicas.end();
}

WEBSESSION_DECL config cluster_impl::validated(config c) {
  const auto bad = [](const std::string& what) { throw std::invalid_argument(what); };
  if (c.deployment != deployment::cluster) {
    bad("websession::redis::cluster needs a cluster config (deployment::cluster, a "
        "redis-cluster:// URL)");
  }
  if (c.cluster.seeds.empty()) bad("websession::redis::config::cluster::seeds must not be empty");
  if (c.database != 0) bad("websession::redis::config::database must be 0 on a cluster");
  if (c.cluster.refresh_interval < std::chrono::milliseconds::zero()) {
    bad("websession::redis::config::cluster::refresh_interval must not be negative");
  }
  if (c.cluster.max_nodes == 0) {
    bad("websession::redis::config::cluster::max_nodes must be positive");
  }
  const host_filter allowed(c.cluster.allowed_hosts);
  for (const address& s : c.cluster.seeds) {
    if (!allowed.allows(s.host)) {
      bad("websession::redis::config::cluster: seed " + s.host + " is outside allowed_hosts");
    }
  }
  if (c.strict_tls) {
    if (auto w = tls_trust_warning(c)) bad("websession::redis: " + *w);
  }
  return c;
}

WEBSESSION_DECL cluster_impl::cluster_impl(boost::asio::any_io_executor ex, config cfg)
    : ex_(std::move(ex)),
      strand_(boost::asio::make_strand(ex_)),
      cfg_(validated(std::move(cfg))),
      allowed_(cfg_.cluster.allowed_hosts),
      refresh_timer_(strand_),
      periodic_timer_(strand_),
      rng_(std::random_device{}()) {
  // Every node is one connection of ours with the same settings; a node that is down fails our
  // requests at once (client_error::not_sent) so that they wait for the failover here.
  node_cfg_ = cfg_;
  node_cfg_.deployment = deployment::standalone;
  node_cfg_.database = 0;
  node_cfg_.fail_fast_when_down = true;
  node_cfg_.cluster = {};
  node_cfg_.sentinel = {};
  // The node connections check the rest (timeouts, TLS files) when they are made: make one now,
  // so that bad settings throw here rather than inside the first refresh.
  (void)connection_impl(ex_, node_cfg_);
}

WEBSESSION_DECL std::shared_ptr<const cluster_routing> cluster_impl::routing() const {
  std::lock_guard lock(mutex_);
  return routing_;
}

WEBSESSION_DECL void cluster_impl::install(std::shared_ptr<const cluster_routing> r) {
  std::lock_guard lock(mutex_);
  routing_ = std::move(r);
}

// ---- requests ----------------------------------------------------------------------------------

WEBSESSION_DECL void cluster_impl::exec(const request* req, exec_handler handler,
                                        boost::asio::any_io_executor handler_ex) {
  auto op = std::make_shared<cluster_op>(std::move(handler), std::move(handler_ex));
  op->req = req;
  op->slot = req->slot();
  op->deadline = steady::now() + cfg_.request_timeout;
  forward_cancellation(op->caller.handler, shared_from_this(), op, strand_);
  if (stopped_.load(std::memory_order_acquire)) {
    finish(op, boost::asio::error::operation_aborted, {}, hand_over::post);
    return;
  }
  if (req->empty()) {
    finish(op, {}, {}, hand_over::post);
    return;
  }
  send(std::move(op));
}

WEBSESSION_DECL void cluster_impl::exec_at(std::size_t index, const request* req,
                                           exec_handler handler,
                                           boost::asio::any_io_executor handler_ex) {
  std::shared_ptr<cluster_node> node;
  if (auto r = routing(); r && index < r->masters.size()) node = r->masters[index];
  if (!node || stopped_.load(std::memory_order_acquire)) {
    const error_code ec = node ? make_error_code(boost::asio::error::operation_aborted)
                               : make_error_code(error::not_connected);
    op_completion(std::move(handler), std::move(handler_ex)).complete(ec, {}, hand_over::post);
    return;
  }
  node->conn->exec(req, std::move(handler), std::move(handler_ex));
}

WEBSESSION_DECL void cluster_impl::cancel() {
  boost::asio::post(strand_, [self = shared_from_this()] { self->stop(); });
}

// Any thread: the node for the op's slot (or its ASK target), and the request goes there.
WEBSESSION_DECL void cluster_impl::send(std::shared_ptr<cluster_op> op) {
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
                   op->caller.work, opts);
}

// Runs on the op's handler executor (where the node completed it).
WEBSESSION_DECL void cluster_impl::on_reply(std::shared_ptr<cluster_op> op,
                                            const std::shared_ptr<cluster_node>& node,
                                            error_code ec, std::vector<reply> replies) {
  if (ec) {
    // Not sent (the node is down), or aborted by a node that left the map (retry() tells that
    // apart from our own cancellation): the request goes round again.
    if (ec == client_error::not_sent || ec == boost::asio::error::operation_aborted) {
      boost::asio::post(strand_, [self = shared_from_this(), op = std::move(op)] {
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
    finish(op, ec, {}, hand_over::call);
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
        bounce->refresh = to->type == redirect::kind::moved;
        bounce->to = std::move(to);
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
    finish(op, {}, std::move(replies), hand_over::call);
    return;
  }
  boost::asio::post(strand_, [self = shared_from_this(), op = std::move(op), w = std::move(*why)] {
    self->retry(op, w);
  });
}

// On the strand: sends the op again (now, or after a pause), or fails it.
WEBSESSION_DECL void cluster_impl::retry(std::shared_ptr<cluster_op> op, const cluster_retry& why) {
  if (op->done.load(std::memory_order_acquire)) return;
  if (op->cancelled || stopped_) {
    finish(op, boost::asio::error::operation_aborted, {}, hand_over::post);
    return;
  }
  if (why.refresh) request_refresh();
  op->ask_node.reset();
  op->asking.reset();
  if (why.type == cluster_retry::kind::redirect && why.to) {
    const redirect& to = *why.to;
    const char* kind = to.type == redirect::kind::moved ? "MOVED" : "ASK";
    if (++op->redirects > cfg_.cluster.max_redirects) {
      note_error(make_error_code(error::too_many_redirects),
                 "a request was redirected more than " +
                     std::to_string(cfg_.cluster.max_redirects) + " times (slot " +
                     std::to_string(to.slot) + ")");
      finish(op, make_error_code(error::too_many_redirects), {}, hand_over::post);
      return;
    }
    const auto r = routing();
    switch (check_redirect(to, op->slot, r && r->has(to.to), allowed_)) {
      case redirect_verdict::bad_slot:
        note_error(make_error_code(client_error::bad_redirect),
                   std::string(kind) + " for slot " + std::to_string(to.slot) +
                       " to a request for slot " + std::to_string(op->slot) + ": refused");
        finish(op, make_error_code(client_error::bad_redirect), {}, hand_over::post);
        return;
      case redirect_verdict::not_allowed:
        note_error(make_error_code(client_error::host_not_allowed),
                   std::string(kind) + " to " + cluster_detail::name_of(to.to) +
                       ", outside cluster_config::allowed_hosts: not followed");
        [[fallthrough]];
      case redirect_verdict::refresh:
        // A host the seeds' map does not name: ask them, then route by their answer.
        request_refresh();
        pause(std::move(op), false);
        return;
      case redirect_verdict::follow: break;
    }
    auto node = node_for(to.to);
    if (node) {
      if (to.type == redirect::kind::moved) {
        moved_.fetch_add(1, std::memory_order_relaxed);
        apply_moved(to.slot, node);
      } else {
        ask_.fetch_add(1, std::memory_order_relaxed);
        op->ask_node = std::move(node);
        op->asking.emplace(asking_request(*op->req));
      }
      send(std::move(op));
      return;
    }
  }
  // A pause: TRYAGAIN, CLUSTERDOWN, a node down, no map or no master for the slot yet.
  pause(std::move(op),
        cfg_.fail_fast_when_down && why.type == cluster_retry::kind::node_down);
}

// On the strand: sends the op again after a pause (10 ms doubling to 200 ms, or at once when a
// new map comes), or fails it when its deadline passed (or at once with `fail_fast`).
WEBSESSION_DECL void cluster_impl::pause(std::shared_ptr<cluster_op> op, bool fail_fast) {
  const auto now = steady::now();
  if (now >= op->deadline || fail_fast) {
    // last_error() says why (no map, uncovered slots, the node's connection error).
    finish(op, make_error_code(error::not_connected), {}, hand_over::post);
    return;
  }
  retries_.fetch_add(1, std::memory_order_relaxed);
  const auto wait = std::min<steady::duration>(
      std::chrono::milliseconds(std::min<unsigned>(200, 10u << std::min(op->retries, 5u))),
      op->deadline - now);
  ++op->retries;
  op->wait.emplace(strand_, wait);
  waiting_.insert(op);
  op->wait->async_wait([self = shared_from_this(), op](error_code) {
    self->waiting_.erase(op);
    op->wait.reset();
    if (op->done.load(std::memory_order_acquire)) return;
    if (op->cancelled || self->stopped_) {
      self->finish(op, boost::asio::error::operation_aborted, {}, hand_over::post);
      return;
    }
    if (steady::now() >= op->deadline) {
      self->finish(op, make_error_code(error::not_connected), {}, hand_over::post);
      return;
    }
    self->send(op);
  });
}

// ASKING before each command of `req`: ASKING is good for the next command only.
WEBSESSION_DECL request cluster_impl::asking_request(const request& req) {
  request out(req.idempotent());
  out.wait_for_replicas(req.wait_replicas(), req.wait_timeout());
  for (std::string_view c : split_commands(req.payload())) {
    out.push("ASKING");
    request_access::append_encoded(out, c);
  }
  return out;
}

WEBSESSION_DECL void cluster_impl::cancel_op(const std::shared_ptr<cluster_op>& op,
                                             boost::asio::cancellation_type_t type) {
  if (op->done.load(std::memory_order_acquire)) return;
  op->cancelled = true;
  op->node_signal.emit(type);  // the node decides for a request it holds (see connection)
  if (op->wait) op->wait->cancel();
}

// Hands the handler its result once: posted from the strand or an initiating function, called
// right away on the handler's executor (where the node completed it).
WEBSESSION_DECL void cluster_impl::finish(const std::shared_ptr<cluster_op>& op, error_code ec,
                                          std::vector<reply> replies, hand_over how) {
  if (op->done.exchange(true, std::memory_order_acq_rel)) return;
  op->asking.reset();
  op->caller.complete(ec, std::move(replies), how);
}

// ---- nodes and the map -----------------------------------------------------------------------

// On the strand: the node at `a`, connected (and running) from its first use on; nullptr for a
// host outside the allow-list, or beyond the node cap.
WEBSESSION_DECL std::shared_ptr<cluster_node> cluster_impl::node_for(const address& a) {
  const std::string name = cluster_detail::name_of(a);
  if (auto it = nodes_.find(name); it != nodes_.end()) return it->second;
  if (!allowed_.allows(a.host)) {
    note_error(make_error_code(client_error::host_not_allowed),
               name + " is outside cluster_config::allowed_hosts: not connected to");
    return nullptr;
  }
  if (nodes_.size() >= cfg_.cluster.max_nodes + cfg_.cluster.seeds.size()) {
    note_error(make_error_code(client_error::too_many_nodes),
               "no connection to " + name + ": cluster_config::max_nodes reached");
    return nullptr;
  }
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

// On the strand: the connections of nodes that the map `r` does not name close once their
// requests are done (a request that meets a closed one goes round again).
WEBSESSION_DECL void cluster_impl::retire_absent_nodes(const cluster_routing& r) {
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (r.has(it->second->addr)) {
      ++it;
    } else {
      it->second->conn->retire();
      it = nodes_.erase(it);
    }
  }
}

// The index of `node` among the masters of `r`, which it joins if it is not there yet.
WEBSESSION_DECL std::int16_t cluster_impl::master_index(cluster_routing& r,
                                                        const std::shared_ptr<cluster_node>& node) {
  for (std::size_t i = 0; i < r.masters.size(); ++i) {
    if (r.masters[i] == node) return static_cast<std::int16_t>(i);
  }
  r.masters.push_back(node);
  return static_cast<std::int16_t>(r.masters.size() - 1);
}

// On the strand: after a MOVED to a node of the map, the slot is served by it until the next
// map says otherwise.
WEBSESSION_DECL void cluster_impl::apply_moved(std::uint16_t slot,
                                               const std::shared_ptr<cluster_node>& to) {
  auto cur = routing();
  auto next = cur ? std::make_shared<cluster_routing>(*cur) : std::make_shared<cluster_routing>();
  if (!cur) next->slot_node.fill(-1);
  const std::int16_t index = master_index(*next, to);
  if (next->slot_node[slot] < 0) ++next->covered;
  next->slot_node[slot] = index;
  install(std::move(next));
}

// On the strand: one refresh at a time; requests made meanwhile share the next one, and
// refreshes are at least min_refresh_gap apart, so a storm of MOVED makes no stampede.
WEBSESSION_DECL void cluster_impl::request_refresh() {
  if (stopped_) return;
  if (refreshing_) {
    refresh_again_ = true;
    return;
  }
  refreshing_ = true;
  boost::asio::co_spawn(strand_, refresh_loop(shared_from_this()), boost::asio::detached);
}

WEBSESSION_DECL boost::asio::awaitable<void> cluster_impl::refresh_loop(
    std::shared_ptr<cluster_impl> self) {
  namespace asio = boost::asio;
  constexpr std::chrono::milliseconds min_refresh_gap{50};
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

namespace cluster_detail {
// The initiation of one node request (a named type: a lambda in a coroutine frame has no
// linkage, which GCC warns about for a non-inline coroutine).
struct node_exec {
  std::shared_ptr<connection_impl> conn;
  const request* req;
  template <class Handler>
  void operator()(Handler handler) const {
    auto ex = boost::asio::get_associated_executor(handler, conn->get_executor());
    conn->exec(req, exec_handler(std::move(handler)), std::move(ex));
  }
};

inline void append_failure(std::string& failures, const std::string& m) {
  failures += (failures.empty() ? "" : "; ") + m;
}
}  // namespace cluster_detail

// One request to one node, as a coroutine.
WEBSESSION_DECL boost::asio::awaitable<std::pair<boost::system::error_code, std::vector<reply>>>
cluster_impl::ask(const std::shared_ptr<cluster_node>& node, const request& req) {
  namespace asio = boost::asio;
  // Named first: GCC 12 destroys a braced temporary inside a co_await expression twice.
  cluster_detail::node_exec initiation{node->conn, &req};
  auto [ec, replies] =
      co_await asio::async_initiate<const asio::as_tuple_t<asio::use_awaitable_t<>>&,
                                    exec_signature>(initiation,
                                                    asio::as_tuple(asio::use_awaitable));
  std::pair<error_code, std::vector<reply>> out(ec, std::move(replies));
  co_return out;
}

// The seeds first (the configured, trusted ones), then the masters of the current map
// (connected ones first), then its replicas.
WEBSESSION_DECL std::vector<address> cluster_impl::refresh_candidates() {
  std::vector<address> out;
  const auto add = [&](const address& a) {
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  };
  for (const auto& a : cfg_.cluster.seeds) add(a);
  if (auto r = routing()) {
    std::vector<address> masters;
    for (const auto& n : r->masters) masters.push_back(n->addr);
    std::shuffle(masters.begin(), masters.end(), rng_);
    std::stable_partition(masters.begin(), masters.end(), [&](const address& a) {
      auto it = nodes_.find(cluster_detail::name_of(a));
      return it != nodes_.end() && it->second->conn->connected();
    });
    for (const auto& a : masters) add(a);
    for (const auto& a : r->replicas) add(a);
  }
  return out;
}

// On the strand: asks the candidates for the map until one gives one that may be installed.
WEBSESSION_DECL boost::asio::awaitable<void> cluster_impl::refresh_once() {
  using cluster_detail::append_failure;
  using cluster_detail::name_of;
  std::string failures;
  bool not_cluster = false;
  trust_verdict refused;
  // Why the nodes' connections failed, when they all failed alike with one of our codes (a
  // wrong password: auth_failed): that, rather than "no map", is what the user must fix.
  error_code node_cause;
  bool causes_alike = true;
  request shards(true);
  shards.push("CLUSTER", "SHARDS");
  request slots(true);
  slots.push("CLUSTER", "SLOTS");
  const auto& seeds = cfg_.cluster.seeds;
  for (const address& a : refresh_candidates()) {
    if (stopped_) co_return;
    auto node = node_for(a);
    if (!node) continue;
    auto [ec, replies] = co_await ask(node, shards);
    result<std::vector<cluster_shard>> parsed = make_error_code(client_error::protocol_error);
    if (!ec && replies.front().is_error()) {
      const std::string& text = replies.front().str;
      if (text.find("cluster support disabled") != std::string::npos) {
        not_cluster = true;
        append_failure(failures, name_of(a) + " is not a cluster node (" + text + ")");
        continue;
      }
      // Before Redis 7: CLUSTER SLOTS.
      auto [ec2, replies2] = co_await ask(node, slots);
      ec = ec2;
      if (!ec) {
        if (replies2.front().is_error()) {
          append_failure(failures, name_of(a) + ": " + replies2.front().str);
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
      append_failure(failures, name_of(a) + ": " + (detail.empty() ? ec.message() : detail));
      if (!cause || cause.category() != client_error_category() ||
          (node_cause && cause != node_cause)) {
        causes_alike = false;
      }
      if (cause) node_cause = cause;
      continue;
    }
    if (!parsed) {
      append_failure(failures, name_of(a) + ": unreadable slot map");
      continue;
    }
    if (stopped_) co_return;
    const auto cur = routing();
    std::vector<address> current;
    if (cur) {
      for (const auto& n : cur->masters) current.push_back(n->addr);
      current.insert(current.end(), cur->replicas.begin(), cur->replicas.end());
    }
    const bool from_seed = std::find(seeds.begin(), seeds.end(), a) != seeds.end();
    auto verdict = check_map(*parsed, from_seed, seeds, current, allowed_, cfg_.cluster.max_nodes);
    if (verdict.ec) {
      append_failure(failures, name_of(a) + ": " + verdict.message);
      refused = std::move(verdict);
      continue;
    }
    install_map(*parsed);
    co_return;
  }
  if (not_cluster) {
    note_error(make_error_code(client_error::not_a_cluster), failures);
  } else if (refused.ec) {
    note_error(refused.ec, "no slot map could be trusted: " + failures);
  } else {
    note_error(node_cause && causes_alike ? node_cause
                                          : make_error_code(client_error::no_cluster_map),
               "no node told the slot map: " + failures);
  }
}

WEBSESSION_DECL void cluster_impl::install_map(const std::vector<cluster_shard>& shards) {
  auto next = std::make_shared<cluster_routing>();
  next->slot_node.fill(-1);
  {
    // Nodes that left the map go first, so the node cap counts this map's nodes only.
    cluster_routing named;
    for (const address& a : map_nodes(shards)) named.replicas.push_back(a);
    retire_absent_nodes(named);
  }
  // The masters in the order of their lowest slot (those without slots last, by address), not
  // in the order the node asked listed them: each node lists its shards in an order of its own,
  // and refreshes ask different nodes. A master keeps its index (exec_at) from one map to the
  // next while the slot owners stay the same.
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
    auto node = node_for(s.master);
    if (!node) continue;
    const std::int16_t index = master_index(*next, node);
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
    errors_.clear_if([](const error_code& ec) { return map_error(ec); });
  }
}

WEBSESSION_DECL bool cluster_impl::map_error(const error_code& ec) {
  return ec == client_error::not_a_cluster || ec == client_error::no_cluster_map ||
         ec == client_error::slots_uncovered || ec == client_error::host_not_allowed ||
         ec == client_error::too_many_nodes;
}

// Any thread. A node's own failure does not hide a problem with the map (which says more).
WEBSESSION_DECL void cluster_impl::note_error(error_code ec, const std::string& message,
                                              bool about_map) {
  if (stopped_.load(std::memory_order_acquire)) return;  // no handler calls after cancel()
  errors_.record_if(ec, message, [about_map](const error_code& current) {
    return about_map || !map_error(current);
  });
}

// On the strand.
WEBSESSION_DECL void cluster_impl::stop() {
  if (stopped_) return;
  stopped_.store(true, std::memory_order_release);
  for (auto& [name, node] : nodes_) node->conn->cancel();
  periodic_timer_.cancel();
  refresh_timer_.cancel();
  for (const auto& op : waiting_) {
    if (op->wait) op->wait->cancel();
  }
}

WEBSESSION_DECL boost::asio::awaitable<boost::system::error_code> cluster_impl::run(
    std::shared_ptr<cluster_impl> self) {
  namespace asio = boost::asio;
  if (self->stopped_) co_return asio::error::operation_aborted;
  if (self->running_) co_return asio::error::already_started;
  self->running_ = true;
  for (const auto& w : insecure_setup_warnings(self->cfg_)) {
    self->errors_.notify(make_error_code(client_error::insecure_setup), w);
  }
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

WEBSESSION_DECL cluster_status cluster_impl::status() const {
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

WEBSESSION_DECL bool cluster_impl::connected() const {
  const auto r = routing();
  if (!r || r->masters.empty()) return false;
  return std::all_of(r->masters.begin(), r->masters.end(),
                     [](const auto& n) { return n->conn->connected(); });
}

WEBSESSION_DECL std::size_t cluster_impl::master_count() const {
  const auto r = routing();
  return r ? r->masters.size() : 0;
}

WEBSESSION_DECL std::optional<address> cluster_impl::master_address(std::size_t index) const {
  const auto r = routing();
  if (!r || index >= r->masters.size()) return std::nullopt;
  return r->masters[index]->addr;
}

}  // namespace websession::redis::detail

#endif
