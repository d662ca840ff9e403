// SPDX-License-Identifier: BSL-1.0
// Definitions of detail/connection_impl.hpp (compiled once with WEBSESSION_SEPARATE_COMPILATION).
#ifndef WEBSESSION_REDIS_DETAIL_IMPL_CONNECTION_IMPL_IPP
#define WEBSESSION_REDIS_DETAIL_IMPL_CONNECTION_IMPL_IPP

#include <websession/redis/detail/connection_impl.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace websession::redis::detail {

WEBSESSION_DECL std::optional<std::string> tls_trust_warning(const config& c) {
  if (c.deployment == deployment::standalone || !c.tls) return std::nullopt;
  const std::string what = c.deployment == deployment::cluster
                               ? "the cluster nodes the slot map names"
                               : "the master the sentinels name";
  if (!c.verify_peer) {
    return "verify_peer is off: TLS to " + what + " accepts any certificate";
  }
  if (c.ca_file.empty() && c.tls_server_name.empty()) {
    return "TLS to " + what +
           " is checked against the public trust store with no tls_server_name: a certificate "
           "any public CA issued for a name the topology announces is accepted (set ca_file to "
           "your own CA, or pin tls_server_name)";
  }
  return std::nullopt;
}

WEBSESSION_DECL std::vector<std::string> insecure_setup_warnings(const config& c) {
  std::vector<std::string> out;
  if (c.deployment == deployment::sentinel && c.sentinel.password.empty()) {
    out.push_back(
        "sentinel_config::password is empty: whoever can reach a sentinel port is believed "
        "about where the master is (the data credentials go to a server only after it says ROLE "
        "master, or right away when it wants AUTH first)");
  }
  if (auto w = tls_trust_warning(c)) out.push_back(std::move(*w));
  return out;
}

WEBSESSION_DECL boost::asio::ssl::context make_ssl_context(const config& c) {
  namespace ssl = boost::asio::ssl;
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (c.ca_file.empty()) {
    ctx.set_default_verify_paths();
  } else {
    ctx.load_verify_file(c.ca_file);
  }
  if (!c.cert_file.empty()) ctx.use_certificate_chain_file(c.cert_file);
  if (!c.key_file.empty()) ctx.use_private_key_file(c.key_file, ssl::context::pem);
  ctx.set_verify_mode(c.verify_peer ? ssl::verify_peer : ssl::verify_none);
  return ctx;
}

WEBSESSION_DECL config connection_impl::validated(config c) {
  using std::chrono::milliseconds;
  const auto bad = [](const char* what) { throw std::invalid_argument(what); };
  if (c.request_timeout <= milliseconds::zero()) {
    bad("websession::redis::config::request_timeout must be positive");
  }
  if (c.connect_timeout <= milliseconds::zero()) {
    bad("websession::redis::config::connect_timeout must be positive");
  }
  if (c.reconnect_min <= milliseconds::zero() || c.reconnect_max < c.reconnect_min) {
    bad("websession::redis::config needs 0 < reconnect_min <= reconnect_max");
  }
  if (c.health_check_interval < milliseconds::zero()) {
    bad("websession::redis::config::health_check_interval must not be negative");
  }
  if (c.limits.max_elements == 0 || c.limits.max_bulk_length == 0 ||
      c.limits.max_line_length < 64) {
    bad("websession::redis::config::limits needs positive max_elements and max_bulk_length "
        "and a max_line_length of at least 64");
  }
  if (c.database < 0) bad("websession::redis::config::database must not be negative");
  if (c.deployment == deployment::sentinel) {
    if (c.sentinel.sentinels.empty() || c.sentinel.master_name.empty()) {
      bad("websession::redis::config::sentinel needs sentinels and a master_name");
    }
    if (c.tls && !c.sentinel.tls) {
      bad("websession::redis::config: the data nodes use TLS but the sentinels would be asked "
          "in plaintext (set sentinel.tls, or use a rediss-sentinel:// URL)");
    }
    if (c.sentinel.quorum == 0 || c.sentinel.quorum > c.sentinel.sentinels.size()) {
      bad("websession::redis::config::sentinel::quorum must be 1..the number of sentinels");
    }
  }
  if (c.deployment == deployment::cluster) {
    bad("websession::redis::connection serves one node: use redis::cluster (or redis::client) "
        "for a cluster config");
  }
  if (c.strict_tls) {
    if (auto w = tls_trust_warning(c)) throw std::invalid_argument("websession::redis: " + *w);
  }
  return c;
}

WEBSESSION_DECL connection_impl::connection_impl(boost::asio::any_io_executor ex, config cfg)
    : ex_(std::move(ex)),
      strand_(boost::asio::make_strand(ex_)),
      cfg_(validated(std::move(cfg))),
      ssl_ctx_(cfg_.tls ? std::optional<boost::asio::ssl::context>(make_ssl_context(cfg_))
                        : std::nullopt),
      stream_(ex_, ssl_ctx_ ? &*ssl_ctx_ : nullptr, cfg_.verify_peer),
      mux_(mux_options{cfg_.fail_fast_when_down, cfg_.deployment == deployment::sentinel, 16,
                       cfg_.limits}),
      handshake_(cfg_, cfg_.deployment == deployment::sentinel),
      read_buf_(64 * 1024),
      connect_timer_(strand_),
      backoff_timer_(strand_),
      deadline_timer_(strand_),
      health_timer_(strand_),
      drain_timer_(strand_),
      watch_timer_(strand_),
      rng_(std::random_device{}()) {
  if (sentinel_mode()) {
    if (cfg_.sentinel.tls) sentinel_ssl_ctx_.emplace(make_ssl_context(cfg_));
    sentinels_.emplace(cfg_.sentinel);
    sentinel_query_.emplace(make_sentinel_channel());
  }
  target_ = server_ = address{cfg_.host, cfg_.port};
}

WEBSESSION_DECL address connection_impl::server_address() const {
  std::lock_guard lock(server_mutex_);
  return server_;
}

// ---- requests ------------------------------------------------------------------------------

WEBSESSION_DECL void connection_impl::exec(const request* req, exec_handler handler,
                                           boost::asio::any_io_executor handler_ex,
                                           exec_options opts) {
  auto op = std::make_shared<exec_op>(std::move(handler), std::move(handler_ex));
  op->req = req;
  op->deadline = opts.deadline == steady::time_point{} ? steady::now() + cfg_.request_timeout
                                                       : opts.deadline;
  op->report_unsent = opts.report_unsent;
  forward_cancellation(op->caller.handler, shared_from_this(), op, strand_);
  auto f = [self = shared_from_this(), op = std::move(op)]() mutable {
    self->enqueue(std::move(op));
  };
  // From a thread that runs the executor and is not inside our strand, dispatch enters the
  // strand at once (when it is free): an idle connection then writes the request before
  // async_exec returns. Inside the strand: from a handler that hand_over_completions runs
  // inline, enqueue at once (our state is consistent there); from anywhere else (an error
  // handler), post: enqueue must not run in the middle of our own code.
  if (strand_.running_in_this_thread()) {
    if (completing_inline_) {
      f();
    } else {
      boost::asio::post(strand_, std::move(f));
    }
  } else {
    boost::asio::dispatch(strand_, std::move(f));
  }
}

WEBSESSION_DECL void connection_impl::enqueue(std::shared_ptr<exec_op> op) {
  const mux_write_hint hint = mux_.add(std::move(op));
  hand_over_completions();
  rearm_deadline();
  if (hint == mux_write_hint::now) {
    start_write();
  } else if (hint == mux_write_hint::soon && !flush_scheduled_) {
    flush_scheduled_ = true;
    // Posted to the executor, not to the strand: a handler waiting in the strand's queue keeps
    // the strand busy until it runs, so every async_exec of the handlers scheduled before it
    // would wait behind it too, instead of entering the strand at once.
    boost::asio::post(ex_, [self = shared_from_this()] {
      boost::asio::dispatch(self->strand_, [self] {
        self->flush_scheduled_ = false;
        self->start_write();
      });
    });
  }
}

// All but the last answered request are posted, so that with several threads they run in
// parallel. With `inline_last` (the read loop, state consistent) the last answered one is
// dispatched: when its executor runs in this thread its caller resumes right here, and its next
// request is written before the read loop goes on.
WEBSESSION_DECL void connection_impl::hand_over_completions(bool inline_last) {
  auto done = mux_.take_completions();
  if (done.empty()) return;
  std::size_t last = done.size();
  if (inline_last) {
    for (std::size_t i = done.size(); i-- > 0;) {
      if (done[i].answered) {
        last = i;
        break;
      }
    }
  }
  const auto give = [](mux_completion& c, hand_over how) {
    auto& op = static_cast<exec_op&>(*c.op);
    op.caller.complete(c.ec, std::move(op.replies), how);
  };
  for (std::size_t i = 0; i < done.size(); ++i) {
    if (i != last) give(done[i], hand_over::post);
  }
  if (last < done.size()) {
    completing_inline_ = true;
    give(done[last], hand_over::dispatch);
    completing_inline_ = false;
  }
}

WEBSESSION_DECL void connection_impl::rearm_deadline() {
  const auto next = mux_.next_deadline();
  if (!next) return;
  if (deadline_armed_) {
    if (*next < armed_for_) deadline_timer_.cancel();  // its handler re-arms for the new front
    return;
  }
  deadline_armed_ = true;
  armed_for_ = *next;
  deadline_timer_.expires_at(*next);
  deadline_timer_.async_wait([self = shared_from_this()](error_code) {
    self->deadline_armed_ = false;
    self->on_deadline();
  });
}

WEBSESSION_DECL void connection_impl::on_deadline() {
  mux_.expire(steady::now());
  hand_over_completions();
  rearm_deadline();
  maybe_retire();
}

WEBSESSION_DECL void connection_impl::cancel_op(const std::shared_ptr<exec_op>& op,
                                                boost::asio::cancellation_type_t type) {
  mux_.cancel(op, type);
  hand_over_completions();
  maybe_retire();
}

WEBSESSION_DECL void connection_impl::cancel() {
  boost::asio::post(strand_, [self = shared_from_this()] { self->stop(); });
}

WEBSESSION_DECL void connection_impl::retire() {
  boost::asio::post(strand_, [self = shared_from_this()] {
    self->retiring_ = true;
    self->maybe_retire();
  });
}

WEBSESSION_DECL void connection_impl::maybe_retire() {
  if (retiring_ && !busy()) stop();
}

// ---- writing and reading ---------------------------------------------------------------------

WEBSESSION_DECL void connection_impl::start_write() {
  if (stopped() || !mux_.write_due()) return;
  if (mux_.begin_write(steady::now()).empty()) return;
  write_some();
}

// Partial writes one by one (rather than async_write) so the health check sees the progress of
// a long write. On plain TCP a write that the kernel takes whole (the usual case) completes right
// here, without a completion handler; only the rest of a partial write waits for the reactor.
WEBSESSION_DECL void connection_impl::write_some() {
  const auto rest = boost::asio::buffer(mux_.unwritten());
  error_code ec;
  const std::size_t n = stream_.write_direct(rest, ec);
  if (ec != boost::asio::error::would_block) {
    on_write_some(ec, n, generation_);
    return;
  }
  stream_.async_write_some(
      rest, boost::asio::bind_executor(strand_, [self = shared_from_this(), gen = generation_](
                                                    error_code e, std::size_t k) {
        self->on_write_some(e, k, gen);
      }));
}

WEBSESSION_DECL void connection_impl::on_write_some(error_code ec, std::size_t n,
                                                    std::uint64_t gen) {
  if (gen != generation_ || state_ != link_state::up) {
    mux_.write_aborted();
    drain_timer_.cancel();
    return;
  }
  if (ec) {
    mux_.write_aborted();
    fail_connection(ec, "write failed: " + ec.message());
    return;
  }
  if (!mux_.wrote(n, steady::now())) {
    write_some();
    return;
  }
  start_write();
}

WEBSESSION_DECL boost::asio::awaitable<boost::system::error_code> connection_impl::read_loop() {
  namespace asio = boost::asio;
  error_code ec;
  for (;;) {
    // Bound to the strand as its concrete type: through any_io_executor (the coroutine's own
    // executor), Asio would copy it to the heap once per read.
    const std::size_t n = co_await stream_.async_read_some(
        asio::buffer(read_buf_),
        asio::bind_executor(strand_, asio::redirect_error(asio::use_awaitable, ec)));
    if (ec) co_return ec;
    if (state_ != link_state::up) co_return asio::error::operation_aborted;
    const mux_drop drop = mux_.on_read(read_buf_.data(), n, steady::now());
    if (drop) {
      hand_over_completions();
      drop_reason(drop.ec, "redis at " + where() + ": " + drop.message);
      co_return drop.ec;
    }
    if (mux_.wait_due()) start_write();
    hand_over_completions(true);
    maybe_retire();
  }
}

// ---- health --------------------------------------------------------------------------------

WEBSESSION_DECL void connection_impl::arm_health() {
  if (cfg_.health_check_interval <= std::chrono::milliseconds::zero()) return;
  health_timer_.expires_after(health_tick(cfg_.health_check_interval));
  health_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
    if (ec || gen != self->generation_ || self->state_ != link_state::up) return;
    self->on_health();
  });
}

WEBSESSION_DECL void connection_impl::on_health() {
  const auto interval = std::to_string(cfg_.health_check_interval.count());
  switch (mux_.check_health(steady::now(), cfg_.health_check_interval)) {
    case health_verdict::stalled_write:
      fail_connection(make_error_code(client_error::unresponsive),
                      "redis did not read what was sent for " + interval + " ms");
      return;
    case health_verdict::silent:
      fail_connection(make_error_code(client_error::unresponsive),
                      "redis sent nothing for " + interval + " ms while replies were awaited");
      return;
    case health_verdict::ping: start_write(); break;
    case health_verdict::fine: break;
  }
  arm_health();
}

// ---- the link --------------------------------------------------------------------------------

WEBSESSION_DECL boost::asio::awaitable<boost::system::error_code> connection_impl::run(
    std::shared_ptr<connection_impl> self) {
  if (self->stopped()) co_return boost::asio::error::operation_aborted;
  if (self->state_ != link_state::idle) co_return boost::asio::error::already_started;
  self->enter(link_state::down);
  for (const auto& w : insecure_setup_warnings(self->cfg_)) {
    self->errors_.notify(make_error_code(client_error::insecure_setup), w);
  }
  if (self->sentinel_mode() && self->cfg_.sentinel.subscribe) {
    boost::asio::co_spawn(self->strand_, watch_sentinels(self), boost::asio::detached);
  }
  bool failed = false;
  try {
    co_await self->run_loop();
  } catch (...) {
    failed = true;  // only allocation failures get here
  }
  if (failed) {
    self->stop();
    co_return make_error_code(error::internal);
  }
  co_return boost::asio::error::operation_aborted;
}

WEBSESSION_DECL std::chrono::milliseconds connection_impl::jittered(std::chrono::milliseconds d) {
  const auto lo = std::max<std::chrono::milliseconds::rep>(d.count() / 2, 1);
  std::uniform_int_distribution<std::chrono::milliseconds::rep> pick(lo, std::max(lo, d.count()));
  return std::chrono::milliseconds(pick(rng_));
}

WEBSESSION_DECL boost::asio::awaitable<void> connection_impl::run_loop() {
  namespace asio = boost::asio;
  auto backoff = cfg_.reconnect_min;
  bool wait_first = false;
  while (!stopped()) {
    if (wait_first) {
      backoff_timer_.expires_after(jittered(backoff));
      backoff = std::min(backoff * 2, cfg_.reconnect_max);
      error_code ignored;
      co_await backoff_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
      if (stopped()) break;
    }
    wait_first = true;
    auto [ec, message] = co_await connect_once();
    if (stopped()) break;
    if (ec) {
      close_link();
      record_error(ec, message);
      mux_.on_connect_failed();
      hand_over_completions();
      continue;
    }
    on_connected();
    const error_code read_ec = co_await read_loop();
    const auto uptime = steady::now() - connected_at_;
    co_await on_disconnected();
    if (stopped()) break;
    if (drop_ec_) {
      record_error(drop_ec_, "connection to " + where() + " dropped: " + drop_message_);
    } else {
      record_error(read_ec, "connection to " + where() + " lost: " + read_ec.message());
    }
    // A connection that worked for a while is reopened at once; one that keeps dying right
    // after it opens (a server that accepts and drops) goes through the backoff.
    if (uptime >= std::chrono::seconds(1)) {
      backoff = cfg_.reconnect_min;
      wait_first = false;
    }
  }
  stream_.reset();
}

// One attempt: (sentinels,) resolve, connect, TLS handshake, set-up, all within connect_timeout.
WEBSESSION_DECL boost::asio::awaitable<std::pair<boost::system::error_code, std::string>>
connection_impl::connect_once() {
  const std::uint64_t gen = ++generation_;
  enter(link_state::connecting);
  connect_expired_ = false;
  mux_.reader().reset();
  connect_timer_.expires_after(cfg_.connect_timeout);
  connect_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
    if (ec || gen != self->generation_ || self->state_ != link_state::connecting) return;
    self->connect_expired_ = true;
    self->close_link();
  });
  auto result = co_await connect_steps();
  enter(link_state::down);
  connect_timer_.cancel();
  if (result.first && sentinels_) sentinels_->connect_failed(target_);
  if (result.first && connect_expired_) {
    result = {make_error_code(client_error::connect_timeout),
              "connect to " + where() + " did not complete within " +
                  std::to_string(cfg_.connect_timeout.count()) + " ms"};
  }
  co_return result;
}

WEBSESSION_DECL boost::asio::awaitable<std::pair<boost::system::error_code, std::string>>
connection_impl::connect_steps() {
  using outcome = std::pair<error_code, std::string>;
  if (sentinels_) {
    // Named std::functions: a lambda temporary in a coroutine frame has no linkage (GCC warns).
    std::function<bool()> give_up = [this] { return stopped(); };
    std::function<bool()> expired = [this] { return connect_expired_; };
    auto found = co_await ask_sentinels(*sentinel_query_, *sentinels_, give_up, expired);
    if (found.first) co_return found;
    if (stopped()) co_return outcome{boost::asio::error::operation_aborted, "stopped"};
    target_ = sentinels_->settle(sentinels_->master());
  } else {
    target_ = address{cfg_.host, cfg_.port};
  }
  {
    std::lock_guard lock(server_mutex_);
    server_ = target_;
  }
  auto connected = co_await stream_.connect(target_, cfg_.tls_server_name, true);
  if (connected.first) co_return connected;
  if (stopped()) co_return outcome{boost::asio::error::operation_aborted, "stopped"};
  co_return co_await run_handshake(stream_, mux_.reader(), read_buf_, handshake_, where());
}

WEBSESSION_DECL void connection_impl::on_connected() {
  enter(link_state::up);
  connected_at_ = steady::now();
  drop_ec_ = {};
  drop_message_.clear();
  mux_.on_connected(connected_at_);
  up_.store(true, std::memory_order_release);
  connects_.fetch_add(1, std::memory_order_acq_rel);
  errors_.clear();
  arm_health();
  start_write();
  if (sentinels_) {
    // A sentinel announced a failover while we connected to the old master.
    if (auto s = sentinels_->take_announcement(); s && !(s->to == target_)) switch_master(*s);
  }
}

// After the read loop ended: closes the link, waits for the writer to let go of it, and
// settles every written request (sent again if idempotent, failed otherwise).
WEBSESSION_DECL boost::asio::awaitable<void> connection_impl::on_disconnected() {
  namespace asio = boost::asio;
  enter(link_state::down);
  up_.store(false, std::memory_order_release);
  ++generation_;
  close_link();
  health_timer_.cancel();
  while (mux_.writing()) {
    drain_timer_.expires_at(steady::time_point::max());
    error_code ignored;
    co_await drain_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  mux_.on_disconnected();
  hand_over_completions();
  rearm_deadline();
  maybe_retire();
}

// Records why the live connection is being dropped (the read loop's own error would only say
// "operation aborted").
WEBSESSION_DECL void connection_impl::drop_reason(error_code ec, std::string message) {
  if (!drop_ec_) {
    drop_ec_ = ec;
    drop_message_ = std::move(message);
  }
}

WEBSESSION_DECL void connection_impl::fail_connection(error_code ec, std::string message) {
  drop_reason(ec, std::move(message));
  close_link();
}

WEBSESSION_DECL void connection_impl::record_error(error_code ec, const std::string& message) {
  errors_.record(ec, message);
}

WEBSESSION_DECL void connection_impl::close_link() noexcept {
  if (sentinel_query_) sentinel_query_->close();
  stream_.close();
}

// Completes everything with operation_aborted and stops reconnecting. On the strand.
WEBSESSION_DECL void connection_impl::stop() {
  if (stopped()) return;
  state_ = link_state::stopped;
  mux_.stop();
  hand_over_completions();
  close_link();
  connect_timer_.cancel();
  backoff_timer_.cancel();
  deadline_timer_.cancel();
  health_timer_.cancel();
  watch_timer_.cancel();
  if (sentinel_watch_) sentinel_watch_->close();
}

// ---- sentinel --------------------------------------------------------------------------------

WEBSESSION_DECL side_channel connection_impl::make_sentinel_channel() {
  return side_channel(ex_, sentinel_ssl_ctx_ ? &*sentinel_ssl_ctx_ : nullptr, cfg_.verify_peer,
                      reply_limits{});
}

// A sentinel announced that the master moved: leave the old one (unless already at the new one).
// The announcement is kept until the next connection is up (see sentinel_resolver::settle).
WEBSESSION_DECL void connection_impl::switch_master(const master_switch& s) {
  const bool up = state_ == link_state::up;
  if (up && s.to == target_) return;  // already there
  sentinels_->announce(s);
  if (up) {
    fail_connection(make_error_code(client_error::master_switched),
                    "sentinel announced master '" + cfg_.sentinel.master_name + "' at " +
                        s.to.host + ":" + std::to_string(s.to.port));
  }
}

// Listens for +switch-master on one sentinel at a time (the next one when it fails), until
// stop(). Runs on the strand beside run_loop.
WEBSESSION_DECL boost::asio::awaitable<void> connection_impl::watch_sentinels(
    std::shared_ptr<connection_impl> self) {
  namespace asio = boost::asio;
  self->sentinel_watch_.emplace(self->make_sentinel_channel());
  side_channel& ch = *self->sentinel_watch_;
  const request sub = self->sentinels_->subscription();
  const std::size_t acks = self->sentinels_->subscription_acks();
  auto backoff = self->cfg_.reconnect_min;
  std::size_t next = 0;
  while (!self->stopped()) {
    const address at = self->sentinels_->watch_target(next++);
    // The set-up steps are bounded by connect_timeout; listening is not.
    self->watch_timer_.expires_after(self->cfg_.connect_timeout);
    self->watch_timer_.async_wait([self](error_code ec) {
      if (!ec && self->sentinel_watch_) self->sentinel_watch_->close();
    });
    const std::string no_name;  // not a braced temporary inside co_await (GCC 12)
    auto [ec, message] = co_await ch.connect(at, no_name);
    if (!ec) ec = co_await ch.write(sub);
    for (std::size_t i = 0; !ec && i < acks; ++i) {
      auto [rec, r] = co_await ch.read();  // AUTH's +OK, then the subscribe confirmation
      ec = rec ? rec : (r.is_error() ? make_error_code(client_error::auth_failed) : rec);
    }
    self->watch_timer_.cancel();
    if (!ec) {
      backoff = self->cfg_.reconnect_min;
      for (;;) {
        auto [rec, r] = co_await ch.read();
        if (rec || self->stopped()) break;
        if (auto s = parse_master_switch(r, self->cfg_.sentinel.master_name)) {
          self->switch_master(*s);
        }
      }
    }
    ch.close();
    if (self->stopped()) break;
    self->watch_timer_.expires_after(self->jittered(backoff));
    backoff = std::min(backoff * 2, self->cfg_.reconnect_max);
    error_code ignored;
    co_await self->watch_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  ch.close();
}

}  // namespace websession::redis::detail

#endif
