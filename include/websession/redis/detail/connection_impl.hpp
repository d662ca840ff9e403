// SPDX-License-Identifier: BSL-1.0
// The state machine behind redis::connection: socket, reconnect loop, request queue, FIFO reply
// matching, deadlines and health checks. Everything here runs on one strand.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/detail/sentinel_protocol.hpp>
#include <websession/redis/detail/side_channel.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reader.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/require.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/ssl.h>

#if !defined(_WIN32)
#include <unistd.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace websession::redis::detail {

using exec_signature = void(boost::system::error_code, std::vector<reply>);
using exec_handler = boost::asio::any_completion_handler<exec_signature>;
using run_signature = void(boost::system::error_code);
using error_handler =
    std::function<void(const boost::system::error_code&, std::string_view message)>;
using steady = std::chrono::steady_clock;

// One async_exec call (or an internal health-check PING, which has no handler).
struct exec_op {
  enum class state : unsigned char { queued, written, done };

  exec_op() = default;
  // Asio 1.26's any_completion_handler has no usable move assignment (it would wrap itself
  // recursively), so the handler is only ever move-constructed.
  explicit exec_op(exec_handler h) noexcept : handler(std::move(h)) {}

  const request* req = nullptr;  // the caller's request: valid only until the op is done
  std::size_t expected = 0;      // replies still to come on the current connection
  std::vector<reply> replies;
  exec_handler handler;
  boost::asio::any_io_executor work;  // keeps the handler's execution context from running dry
  steady::time_point deadline;
  steady::time_point sent_at{};  // when the write carrying it completed; zero until then
  std::uint64_t batch = 0;       // which write carried it
  state st = state::queued;
  bool idempotent = false;
  bool internal = false;
  bool is_wait = false;        // the internal WAIT that confirms durable requests
  bool report_unsent = false;  // see exec_options
  std::uint64_t seq = 0;       // position in the stream of written requests
};

// What a cluster asks of a node's connection beyond async_exec.
struct exec_options {
  // The request's deadline; the default (zero) is config::request_timeout from the call.
  steady::time_point deadline{};
  // A request that was never written fails with client_error::not_sent instead of
  // error::not_connected, so that the cluster knows it may send it elsewhere.
  bool report_unsent = false;
};

inline const request& ping_request() {
  static const request r = [] {
    request q;
    q.push("PING");
    return q;
  }();
  return r;
}

class connection_impl : public std::enable_shared_from_this<connection_impl> {
 public:
  using tcp = boost::asio::ip::tcp;
  using endpoint_type = tcp::endpoint;
  using tls_stream = boost::asio::ssl::stream<tcp::socket>;
  using error_code = boost::system::error_code;

  connection_impl(boost::asio::any_io_executor ex, config cfg)
      : ex_(std::move(ex)),
        strand_(boost::asio::make_strand(ex_)),
        cfg_(std::move(cfg)),
        resolver_(strand_),
        connect_timer_(strand_),
        backoff_timer_(strand_),
        deadline_timer_(strand_),
        health_timer_(strand_),
        drain_timer_(strand_),
        watch_timer_(strand_),
        reader_(cfg_.limits),
        read_buf_(64 * 1024),
        rng_(std::random_device{}()) {
    validate(cfg_);
    if (cfg_.tls) ssl_ctx_.emplace(make_ssl_context(cfg_));
    if (sentinel_mode() && cfg_.sentinel.tls) sentinel_ssl_ctx_.emplace(make_ssl_context(cfg_));
    target_ = server_ = address{cfg_.host, cfg_.port};
  }

  const boost::asio::any_io_executor& get_executor() const noexcept { return ex_; }
  const boost::asio::strand<boost::asio::any_io_executor>& strand() const noexcept {
    return strand_;
  }
  const config& get_config() const noexcept { return cfg_; }

  bool connected() const noexcept { return up_.load(std::memory_order_acquire); }
  std::uint64_t connect_count() const noexcept {
    return connects_.load(std::memory_order_acquire);
  }

  error_code last_error() const {
    std::lock_guard lock(error_mutex_);
    return last_error_;
  }

  std::string last_error_message() const {
    std::lock_guard lock(error_mutex_);
    return last_error_message_;
  }

  void set_error_handler(error_handler h) { on_error_ = std::move(h); }

  // The server of the current (or last) connection: config's host and port, or the master the
  // sentinels named.
  address server_address() const {
    std::lock_guard lock(error_mutex_);
    return server_;
  }

  // Any thread. The op is built here, where the deadline starts, and handed to the strand.
  // `handler_ex` is the handler's associated executor (known only before type erasure).
  void exec(const request* req, exec_handler handler, boost::asio::any_io_executor handler_ex,
            exec_options opts = {}) {
    auto op = std::make_shared<exec_op>(std::move(handler));
    op->req = req;
    op->expected = req->size();
    op->idempotent = req->idempotent();
    op->deadline = opts.deadline == steady::time_point{} ? steady::now() + cfg_.request_timeout
                                                         : opts.deadline;
    op->report_unsent = opts.report_unsent;
    op->work = boost::asio::prefer(std::move(handler_ex),
                                   boost::asio::execution::outstanding_work.tracked);
    // Per-operation cancellation (e.g. a timer racing the request, or a cancelled coroutine).
    // Emitted from any thread, carried to the strand; the op may be done by then.
    if (auto slot = boost::asio::get_associated_cancellation_slot(op->handler);
        slot.is_connected()) {
      slot.assign([w = weak_from_this(), o = std::weak_ptr<exec_op>(op)](
                      boost::asio::cancellation_type_t type) {
        if (auto self = w.lock()) {
          boost::asio::post(self->strand_, [self, o, type] {
            if (auto op = o.lock()) self->cancel_op(op, type);
          });
        }
      });
    }
    auto f = [self = shared_from_this(), op = std::move(op)]() mutable {
      self->enqueue(std::move(op));
    };
    // From a thread that runs the executor and is not inside our strand, dispatch enters the
    // strand at once (when it is free): an idle connection then writes the request before
    // async_exec returns, with no trip through the scheduler. Inside the strand: from a
    // handler that complete_answered is running, enqueue at once (our state is consistent
    // there); from anywhere else (an error handler), post: enqueue must not run in the middle
    // of our own code. running_in_this_thread() makes reading completing_inline_ safe.
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

  // Any thread.
  void cancel() {
    boost::asio::post(strand_, [self = shared_from_this()] { self->stop(); });
  }

  // The body of async_run; runs on the strand until cancel().
  static boost::asio::awaitable<error_code> run(std::shared_ptr<connection_impl> self) {
    if (self->stopped_) co_return boost::asio::error::operation_aborted;
    if (self->running_) co_return boost::asio::error::already_started;
    self->running_ = true;
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

 private:
  static void validate(const config& c) {
    using std::chrono::milliseconds;
    if (c.request_timeout <= milliseconds::zero()) {
      throw std::invalid_argument("websession::redis::config::request_timeout must be positive");
    }
    if (c.connect_timeout <= milliseconds::zero()) {
      throw std::invalid_argument("websession::redis::config::connect_timeout must be positive");
    }
    if (c.reconnect_min <= milliseconds::zero() || c.reconnect_max < c.reconnect_min) {
      throw std::invalid_argument(
          "websession::redis::config needs 0 < reconnect_min <= reconnect_max");
    }
    if (c.health_check_interval < milliseconds::zero()) {
      throw std::invalid_argument(
          "websession::redis::config::health_check_interval must not be negative");
    }
    if (c.limits.max_elements == 0 || c.limits.max_bulk_length == 0 ||
        c.limits.max_line_length < 64) {
      throw std::invalid_argument(
          "websession::redis::config::limits needs positive max_elements and max_bulk_length "
          "and a max_line_length of at least 64");
    }
    if (c.database < 0) {
      throw std::invalid_argument("websession::redis::config::database must not be negative");
    }
    if (c.deployment == deployment::sentinel &&
        (c.sentinel.sentinels.empty() || c.sentinel.master_name.empty())) {
      throw std::invalid_argument(
          "websession::redis::config::sentinel needs sentinels and a master_name");
    }
    if (c.deployment == deployment::cluster) {
      throw std::invalid_argument(
          "websession::redis::connection serves one node: use redis::cluster (or redis::client) "
          "for a cluster config");
    }
  }

  // Throws boost::system::system_error when a file cannot be loaded: bad configuration is
  // reported at construction, not as an endless series of failed connects.
  static boost::asio::ssl::context make_ssl_context(const config& c) {
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

  // ---- requests ------------------------------------------------------------------------------

  void enqueue(std::shared_ptr<exec_op> op) {
    if (stopped_) {
      complete(*op, boost::asio::error::operation_aborted);
      return;
    }
    if (down_ && cfg_.fail_fast_when_down) {
      complete(*op, unsent_error(*op));
      return;
    }
    if (op->expected == 0) {
      complete(*op, {});
      return;
    }
    queue_.push_back(op);
    add_deadline(std::move(op));
    // Like Nagle's algorithm: with nothing in flight, a lone request goes out at once. While
    // replies are awaited, requests gather until the handlers already scheduled have run (they
    // are typically the callers of the next requests) and then go out in one write, or as soon
    // as write_batch of them have gathered: the server then starts on those while the other
    // handlers still run, instead of idling until all of them have.
    if (writing_) return;  // on_write_some writes what gathered meanwhile
    if (in_flight_.empty() || queue_.size() >= write_batch) {
      start_write();
    } else if (!flush_scheduled_) {
      flush_scheduled_ = true;
      // Posted to the executor, not to the strand: a handler waiting in the strand's queue
      // keeps the strand busy until it runs, so every async_exec of the handlers scheduled
      // before it would wait behind it too, instead of entering the strand at once.
      boost::asio::post(ex_, [self = shared_from_this()] {
        boost::asio::dispatch(self->strand_, [self] {
          self->flush_scheduled_ = false;
          self->start_write();
        });
      });
    }
  }

  // While replies are awaited, this many gathered requests go out without waiting for the
  // flush (each write is a system call and wakes the server; each request held back idles
  // it). With 64 coroutines on one connection, 8, 16 and 32 all gave about 1.5x the
  // throughput of one write per round of handlers (bench_sessions store_load).
  static constexpr std::size_t write_batch = 16;

  // Completes the requests that the last read answered. All but the last are posted, so that
  // with several threads they run in parallel. The last one is dispatched: when its executor
  // runs in this thread (the common case) its caller resumes right here, without a trip
  // through the scheduler (which would first poll the reactor), and its next request is
  // written before the read loop goes on (see exec: a handler completed here may call
  // async_exec, which then enqueues at once; nothing else of ours runs user code inline).
  // This is called with the state consistent: replies all delivered, deadlines trimmed.
  void complete_answered() {
    if (answered_.empty()) return;
    std::shared_ptr<exec_op> last = std::move(answered_.back());
    answered_.pop_back();
    post_answered();
    complete(*last, {}, hand_over::dispatch);
  }

  void post_answered() {
    for (auto& op : answered_) complete(*op, {});
    answered_.clear();
  }

  enum class hand_over : unsigned char { post, dispatch };

  // Hands the op's handler its result on the handler's own executor: posted (the caller may
  // be anywhere in our state machine), or dispatched by complete_answered only.
  void complete(exec_op& op, error_code ec, hand_over how = hand_over::post) {
    op.st = exec_op::state::done;
    op.req = nullptr;
    std::vector<reply> replies;
    if (!ec) replies = std::move(op.replies);
    op.replies = {};
    if (!op.handler) return;
    // Straight to the handler's executor, found before type erasure: asio::post and dispatch
    // would ask the type-erased handler for it again, and wrap it in a second polymorphic
    // executor on the heap (three allocations per completion with Asio 1.26).
    auto work = std::move(op.work);
    auto call = [h = std::move(op.handler), ec, r = std::move(replies)]() mutable {
      std::move(h)(ec, std::move(r));
    };
    if (how == hand_over::post) {
      boost::asio::require(work, boost::asio::execution::blocking.never).execute(std::move(call));
      return;
    }
    completing_inline_ = true;
    try {
      // blocking.possibly (the default): runs inline when `work` runs in this thread.
      work.execute(std::move(call));
    } catch (...) {
      // A handler that throws must not take the connection down. io_context itself catches
      // what an inline handler throws and rethrows it from run(); for an executor that does
      // not, the same happens here, as it would have for a posted handler.
      boost::asio::post(work, [e = std::current_exception()] { std::rethrow_exception(e); });
    }
    completing_inline_ = false;
  }

  // The error of a request that was never written because there was no connection.
  static error_code unsent_error(const exec_op& op) {
    return op.report_unsent ? make_error_code(client_error::not_sent)
                            : make_error_code(error::not_connected);
  }

  // deadlines_ is kept in deadline order, so the front is always the earliest one still
  // pending and a single timer serves every request. Requests mostly come in call order with
  // one timeout (an append); a cluster's retried request may come with an earlier deadline.
  void add_deadline(std::shared_ptr<exec_op> op) {
    auto pos = deadlines_.end();
    while (pos != deadlines_.begin() && (*std::prev(pos))->deadline > op->deadline) --pos;
    const bool first = pos == deadlines_.begin();
    deadlines_.insert(pos, std::move(op));
    if (!deadline_armed_) {
      arm_deadline();
    } else if (first) {
      deadline_timer_.cancel();  // its handler re-arms for the new front
    }
  }

  void arm_deadline() {
    trim_deadlines();
    if (deadlines_.empty()) return;
    deadline_armed_ = true;
    deadline_timer_.expires_at(deadlines_.front()->deadline);
    deadline_timer_.async_wait([self = shared_from_this()](error_code) {
      self->deadline_armed_ = false;
      self->on_deadline();
    });
  }

  void trim_deadlines() {
    while (!deadlines_.empty() && deadlines_.front()->st == exec_op::state::done) {
      deadlines_.pop_front();
    }
  }

  void on_deadline() {
    const auto now = steady::now();
    while (!deadlines_.empty()) {
      auto& op = deadlines_.front();
      if (op->st != exec_op::state::done) {
        if (op->deadline > now) break;
        expire(op);
      }
      deadlines_.pop_front();
    }
    arm_deadline();
  }

  void expire(const std::shared_ptr<exec_op>& op) {
    // Not sent because there was no connection: the server is unavailable, not slow.
    const bool unsent = op->st == exec_op::state::queued && !connected_;
    abandon(op, unsent ? unsent_error(*op) : make_error_code(error::timeout));
  }

  // A cancellation from the op's own cancellation slot. A request not yet written is dropped
  // (no effect on the server: any cancellation type). One written may already have run, so
  // only terminal or partial cancellation completes it; total cancellation is then ignored.
  void cancel_op(const std::shared_ptr<exec_op>& op, boost::asio::cancellation_type_t type) {
    using ct = boost::asio::cancellation_type;
    if (op->st == exec_op::state::done) return;
    if (op->st == exec_op::state::written && (type & (ct::terminal | ct::partial)) == ct::none) {
      return;
    }
    abandon(op, boost::asio::error::operation_aborted);
  }

  // Completes an op before its replies: a queued one leaves the queue; a written one stays in
  // in_flight_, because its replies will still come and must be skipped.
  void abandon(const std::shared_ptr<exec_op>& op, error_code ec) {
    if (op->st == exec_op::state::queued) {
      if (auto it = std::find(queue_.begin(), queue_.end(), op); it != queue_.end()) {
        queue_.erase(it);
      }
    }
    complete(*op, ec);
  }

  // ---- writing -------------------------------------------------------------------------------

  // One write at a time, carrying everything queued since the last one.
  void start_write() {
    const bool wait_due = uncovered_ > 0 && !wait_in_flight_;
    if (!connected_ || writing_ || stopped_ || (queue_.empty() && !wait_due)) return;
    write_buf_.clear();
    write_offset_ = 0;
    ++batch_;
    while (!queue_.empty()) {
      auto op = std::move(queue_.front());
      queue_.pop_front();
      if (op->st == exec_op::state::done) continue;
      write_buf_.append(op->req->payload());
      op->st = exec_op::state::written;
      op->expected = op->req->size();
      op->batch = batch_;
      op->seq = ++write_seq_;
      op->sent_at = {};
      op->replies.clear();
      op->replies.reserve(op->expected);
      if (op->req->wait_replicas() > 0) {
        ++uncovered_;
        wait_replicas_ = std::max(wait_replicas_, op->req->wait_replicas());
        wait_timeout_ = std::max(wait_timeout_, op->req->wait_timeout());
      }
      in_flight_.push_back(std::move(op));
    }
    // Group commit: one WAIT, right behind the durable requests of this write, confirms them
    // all; while one is in flight, the next waits for its answer (WAIT blocks the connection).
    if (uncovered_ > 0 && !wait_in_flight_) append_wait();
    if (write_buf_.empty()) return;
    writing_ = true;
    last_write_ = steady::now();
    write_some();
  }

  // Appends a WAIT for every durable request written before it on this connection.
  void append_wait() {
    wait_req_.clear();
    wait_req_.push("WAIT", wait_replicas_, wait_timeout_.count());
    auto op = std::make_shared<exec_op>();
    op->req = &wait_req_;
    op->internal = true;
    op->is_wait = true;
    op->st = exec_op::state::written;
    op->expected = 1;
    op->batch = batch_;
    op->seq = ++write_seq_;
    write_buf_.append(wait_req_.payload());
    in_flight_.push_back(std::move(op));
    wait_in_flight_ = true;
    uncovered_ = 0;
    wait_replicas_ = 0;
    wait_timeout_ = {};
  }

  // The WAIT written at `seq` said `confirmed` replicas have everything written before it:
  // the durable requests it covers complete (error::replicas_not_confirmed for those that
  // wanted more).
  void on_wait_reply(std::uint64_t seq, const reply& r) {
    wait_in_flight_ = false;
    const long long confirmed = r.type == reply_type::integer ? r.integer : -1;
    while (!held_.empty() && held_.front()->seq < seq) {
      auto op = std::move(held_.front());
      held_.pop_front();
      if (op->st == exec_op::state::done) continue;
      if (confirmed >= op->req->wait_replicas()) {
        op->st = exec_op::state::done;
        answered_.push_back(std::move(op));
      } else {
        complete(*op, make_error_code(error::replicas_not_confirmed));
      }
    }
    // Durable requests written after it need the next one (start_write sends it).
  }

  // Partial writes one by one (rather than async_write) so the health check sees the progress
  // of a long write: a write that advances is not a dead server. On plain TCP the socket is
  // non-blocking, and a write that the kernel takes whole (the usual case) completes right here,
  // without a completion handler; only the rest of a partial write waits for the reactor.
  void write_some() {
    const auto rest = boost::asio::buffer(write_buf_) + write_offset_;
    if (plain_) {
      error_code ec;
      const std::size_t n = plain_->write_some(rest, ec);
      if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) {
        on_write_some(ec, n, generation_);
        return;
      }
    }
    auto on_done = boost::asio::bind_executor(
        strand_, [self = shared_from_this(), gen = generation_](error_code ec, std::size_t n) {
          self->on_write_some(ec, n, gen);
        });
    if (tls_) {
      tls_->async_write_some(rest, std::move(on_done));
    } else {
      plain_->async_write_some(rest, std::move(on_done));
    }
  }

  void on_write_some(error_code ec, std::size_t n, std::uint64_t gen) {
    if (gen != generation_ || !connected_) {
      writing_ = false;
      drain_timer_.cancel();
      return;
    }
    if (ec) {
      writing_ = false;
      fail_connection(ec, "write failed: " + ec.message());
      return;
    }
    const auto now = steady::now();
    last_write_ = now;
    write_offset_ += n;
    if (write_offset_ < write_buf_.size()) {
      write_some();
      return;
    }
    writing_ = false;
    // The server owes replies to this batch from now on (the health check's clock).
    for (auto it = in_flight_.rbegin(); it != in_flight_.rend() && (*it)->batch == batch_; ++it) {
      (*it)->sent_at = now;
    }
    // Do not keep the memory of one huge value for the life of the connection.
    if (write_buf_.capacity() > (std::size_t{1} << 20)) std::string().swap(write_buf_);
    start_write();
  }

  // ---- reading -------------------------------------------------------------------------------

  // Gives one reply to the oldest request still waiting. False if nobody waits for it.
  bool deliver(reply&& r) {
    if (in_flight_.empty()) return false;
    exec_op& op = *in_flight_.front();
    if (op.st != exec_op::state::done) op.replies.push_back(std::move(r));
    if (--op.expected == 0) {
      auto done = std::move(in_flight_.front());
      in_flight_.pop_front();
      if (sentinel_mode() && refused_as_not_master(*done)) {
        role_lost_ = true;
        const bool none_ran =
            std::all_of(done->replies.begin(), done->replies.end(),
                        [](const reply& x) { return x.is_error() && not_master_error(x.str); });
        if (!done->internal && done->st != exec_op::state::done && none_ran) {
          // Nothing of it ran: it goes to the new master after the reconnect.
          done->st = exec_op::state::queued;
          done->replies.clear();
          refused_.push_back(std::move(done));
          return true;
        }
      }
      if (done->is_wait) {
        done->st = exec_op::state::done;
        on_wait_reply(done->seq, done->replies.front());
      } else if (done->internal) {
        ping_outstanding_ = false;
        done->st = exec_op::state::done;
      } else if (done->st != exec_op::state::done) {
        if (done->req->wait_replicas() > 0) {
          held_.push_back(std::move(done));  // until a WAIT written after it answers
        } else {
          done->st = exec_op::state::done;
          answered_.push_back(std::move(done));
        }
      }
    }
    return true;
  }

  // The completion token of the read loop's reads: the coroutine (which runs on the strand),
  // bound to the strand as its concrete type. Asio keeps the handler's executor busy while an
  // operation is pending; for the strand seen through any_io_executor (the coroutine's own
  // executor), that copy goes to the heap, once per read.
  auto strand_token(error_code& ec) const {
    return boost::asio::bind_executor(strand_,
                                      boost::asio::redirect_error(boost::asio::use_awaitable, ec));
  }

  boost::asio::awaitable<error_code> read_loop() {
    error_code ec;
    for (;;) {
      std::size_t n = 0;
      if (tls_) {
        n = co_await tls_->async_read_some(boost::asio::buffer(read_buf_), strand_token(ec));
      } else {
        n = co_await plain_->async_read_some(boost::asio::buffer(read_buf_), strand_token(ec));
      }
      if (ec) co_return ec;
      if (!connected_) co_return boost::asio::error::operation_aborted;
      last_read_ = steady::now();
      const error_code parse_ec = reader_.feed(read_buf_.data(), n);
      for (;;) {
        auto next = reader_.next();
        if (!next || !*next) break;
        if (!deliver(std::move(**next))) {
          post_answered();
          drop_reason(client_error::unexpected_reply, "redis sent a reply nobody asked for");
          co_return make_error_code(client_error::unexpected_reply);
        }
      }
      if (parse_ec) {
        post_answered();
        drop_reason(parse_ec, std::string(parse_ec == client_error::reply_too_large
                                              ? "redis reply refused from "
                                              : "redis protocol error from ") +
                                  where() + ": " + std::string(reader_.error_message()));
        co_return parse_ec;
      }
      trim_deadlines();
      if (uncovered_ > 0 && !wait_in_flight_) start_write();
      if (role_lost_) {
        // Sentinel: the master was demoted (READONLY) or is loading; ask the sentinels again.
        role_lost_ = false;
        post_answered();
        drop_reason(client_error::not_master,
                    "redis at " + where() + " answered READONLY or LOADING: not a usable master");
        co_return make_error_code(client_error::not_master);
      }
      complete_answered();
    }
  }

  // ---- health --------------------------------------------------------------------------------

  void arm_health() {
    if (cfg_.health_check_interval <= std::chrono::milliseconds::zero()) return;
    // A tick of a quarter interval bounds the detection delay to 1.25 intervals.
    auto tick = std::max(cfg_.health_check_interval / 4, std::chrono::milliseconds(1));
    health_timer_.expires_after(tick);
    health_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
      if (ec || gen != self->generation_ || !self->connected_ || self->stopped_) return;
      self->on_health();
    });
  }

  // Replies are matched in order, so the oldest request in flight is the one the server must
  // answer next: if it was fully sent `interval` ago and nothing at all arrived since, the
  // server is dead, hung, or unreachable (which TCP alone may take many minutes to notice).
  // Likewise if a write makes no progress for `interval` (the server does not read).
  // Later requests or writes never reset this clock, so steady traffic to a dead server is
  // detected as fast as a single request.
  void on_health() {
    const auto now = steady::now();
    const auto interval = cfg_.health_check_interval;
    if (writing_ && now - last_write_ >= interval) {
      fail_connection(make_error_code(client_error::unresponsive),
                      "redis did not read what was sent for " +
                          std::to_string(interval.count()) + " ms");
      return;
    }
    if (!in_flight_.empty()) {
      const auto sent_at = in_flight_.front()->sent_at;
      if (sent_at != steady::time_point{} && now - std::max(last_read_, sent_at) >= interval) {
        fail_connection(make_error_code(client_error::unresponsive),
                        "redis sent nothing for " + std::to_string(interval.count()) +
                            " ms while replies were awaited");
        return;
      }
    } else if (queue_.empty() && !writing_ && !ping_outstanding_ &&
               now - std::max(last_read_, last_write_) >= interval) {
      // Idle only: under load, the traffic itself proves the connection works.
      auto op = std::make_shared<exec_op>();
      op->req = &ping_request();
      op->internal = true;
      op->expected = 1;
      ping_outstanding_ = true;
      queue_.push_back(std::move(op));
      start_write();
    }
    arm_health();
  }

  // ---- connection lifecycle ------------------------------------------------------------------

  static void close_native(tcp::socket::native_handle_type fd) noexcept {
#if defined(_WIN32)
    ::closesocket(fd);
#else
    ::close(fd);
#endif
  }

  void close_socket() noexcept {
    if (sentinel_query_) sentinel_query_->close();
    error_code ignored;
    if (tls_) tls_->next_layer().close(ignored);
    if (plain_) plain_->close(ignored);
  }

  // Records why the live connection is being dropped (the read loop's own error would only
  // say "operation aborted") and closes it, which ends the read loop.
  void drop_reason(error_code ec, std::string message) {
    if (!drop_ec_) {
      drop_ec_ = ec;
      drop_message_ = std::move(message);
    }
  }

  void fail_connection(error_code ec, std::string message) {
    drop_reason(ec, std::move(message));
    close_socket();
  }

  void record_error(error_code ec, const std::string& message) {
    {
      std::lock_guard lock(error_mutex_);
      last_error_ = ec;
      last_error_message_ = message;
    }
    if (on_error_) {
      try {
        on_error_(ec, message);
      } catch (...) {
        // A logging callback must not take the connection down.
      }
    }
  }

  void clear_error() {
    std::lock_guard lock(error_mutex_);
    last_error_ = {};
    last_error_message_.clear();
  }

  std::string where() const { return target_.host + ":" + std::to_string(target_.port); }

  bool sentinel_mode() const noexcept { return cfg_.deployment == deployment::sentinel; }

  // The commands replayed on every connect. Never empty: with nothing to set up, a PING proves
  // that the server answers before the connection is declared up.
  request hello_request() const {
    request r;
    if (!cfg_.password.empty()) {
      if (cfg_.username.empty()) {
        r.push("AUTH", cfg_.password);
      } else {
        r.push("AUTH", cfg_.username, cfg_.password);
      }
    }
    if (cfg_.database != 0) r.push("SELECT", cfg_.database);
    if (!cfg_.client_name.empty()) r.push("CLIENT", "SETNAME", cfg_.client_name);
    // The sentinels may name a master that has just been demoted: make sure.
    if (sentinel_mode()) r.push("ROLE");
    if (r.empty()) r.push("PING");
    return r;
  }

  // Maps the first error reply of the hello request to its command.
  std::pair<error_code, std::string> check_hello(const std::vector<reply>& replies) const {
    std::size_t i = 0;
    auto check = [&](client_error e, const char* what) -> std::pair<error_code, std::string> {
      const reply& r = replies.at(i++);
      if (!r.is_error()) return {};
      // Whatever command met it, a refused or missing password is an AUTH problem.
      const std::string_view text(r.str);
      if (text.starts_with("NOAUTH") || text.starts_with("WRONGPASS")) {
        e = client_error::auth_failed;
      }
      return {make_error_code(e), std::string(what) + ": " + r.str};
    };
    if (!cfg_.password.empty()) {
      if (auto bad = check(client_error::auth_failed, "AUTH failed"); bad.first) return bad;
    }
    if (cfg_.database != 0) {
      if (auto bad = check(client_error::select_failed, "SELECT failed"); bad.first) return bad;
    }
    if (!cfg_.client_name.empty()) {
      if (auto bad = check(client_error::setname_failed, "CLIENT SETNAME failed"); bad.first) {
        return bad;
      }
    }
    if (sentinel_mode()) {
      if (auto bad = check(client_error::not_master, "ROLE failed"); bad.first) return bad;
      if (!role_is_master(replies.at(i - 1))) {
        return {make_error_code(client_error::not_master),
                where() + " is not a master (the sentinels will be asked again)"};
      }
      return {};
    }
    if (cfg_.password.empty() && cfg_.database == 0 && cfg_.client_name.empty()) {
      // The PING: an error here is typically NOAUTH (the server wants a password).
      if (auto bad = check(client_error::auth_failed, "PING failed"); bad.first) return bad;
    }
    return {};
  }

  // One attempt: resolve, connect, TLS handshake, AUTH/SELECT/SETNAME, all within
  // connect_timeout. On success the socket is open and the reader is at a reply boundary.
  boost::asio::awaitable<std::pair<error_code, std::string>> connect_once() {
    namespace asio = boost::asio;

    const std::uint64_t gen = ++generation_;
    connecting_ = true;
    connect_expired_ = false;
    reader_.reset();
    plain_.reset();
    tls_.reset();
    if (cfg_.tls) {
      tls_.emplace(ex_, *ssl_ctx_);
    } else {
      plain_.emplace(ex_);
    }
    connect_timer_.expires_after(cfg_.connect_timeout);
    connect_timer_.async_wait([self = shared_from_this(), gen](error_code ec) {
      if (ec || gen != self->generation_ || !self->connecting_) return;
      self->connect_expired_ = true;
      self->resolver_.cancel();
      self->close_socket();
    });

    auto result = co_await connect_steps();
    connecting_ = false;
    connect_timer_.cancel();
    if (result.first && announced_ && target_ == announced_->to) {
      // The announced master did not work out (it may have been demoted since, by a failover
      // whose announcement we missed): trust the sentinels' answer next time.
      announced_.reset();
    }
    if (result.first && connect_expired_) {
      result = {make_error_code(client_error::connect_timeout),
                "connect to " + where() + " did not complete within " +
                    std::to_string(cfg_.connect_timeout.count()) + " ms"};
    }
    co_return result;
  }

  boost::asio::awaitable<std::pair<error_code, std::string>> connect_steps() {
    namespace asio = boost::asio;
    namespace ssl = boost::asio::ssl;
    using asio::redirect_error;
    using asio::use_awaitable;
    using outcome = std::pair<error_code, std::string>;
    error_code ec;

    if (sentinel_mode()) {
      auto found = co_await ask_sentinels();
      if (found.first) co_return found;
      if (stopped_) co_return outcome{asio::error::operation_aborted, "stopped"};
      if (announced_) {
        if (target_ == announced_->from) {
          // A sentinel that has not yet caught up with an announced failover names the master
          // it left, which may still say ROLE master until the sentinels demote it: the
          // announcement wins (ROLE is checked there too).
          target_ = announced_->to;
        } else if (!(target_ == announced_->to)) {
          announced_.reset();  // the sentinels have moved on since
        }
      }
    } else {
      target_ = address{cfg_.host, cfg_.port};
    }
    {
      std::lock_guard lock(error_mutex_);
      server_ = target_;
    }
    auto endpoints = co_await resolver_.async_resolve(target_.host, std::to_string(target_.port),
                                                      redirect_error(use_awaitable, ec));
    if (ec) co_return outcome{ec, "resolve " + target_.host + ": " + ec.message()};
    if (stopped_) co_return outcome{asio::error::operation_aborted, "stopped"};

    tcp::socket& sock = tls_ ? tls_->next_layer() : *plain_;
    co_await asio::async_connect(sock, endpoints, redirect_error(use_awaitable, ec));
    if (ec) co_return outcome{ec, "connect to " + where() + ": " + ec.message()};
    // The connect left the socket registered with the reactor for writability (edge
    // triggered), and Asio never takes that back: every ACK of a request would then wake the
    // reactor for nothing, an extra wake-up per round trip while the reply is awaited. Handing
    // the descriptor back and taking it again registers it for reading only; a write that
    // cannot complete at once registers writability again, as it must.
    // Best effort: where release is not supported (old Windows), the socket stays as it is.
    {
      error_code not_done;
      const endpoint_type peer = sock.remote_endpoint(not_done);
      const auto fd = not_done ? tcp::socket::native_handle_type{} : sock.release(not_done);
      if (!not_done) {
        sock.assign(peer.protocol(), fd, ec);
        if (ec) {
          close_native(fd);
          co_return outcome{ec, "connect to " + where() + ": " + ec.message()};
        }
      }
    }
    error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored);
    // For the direct writes of write_some (Asio's own asynchronous operations do not mind).
    if (!tls_) {
      sock.non_blocking(true, ec);
      if (ec) co_return outcome{ec, "set non-blocking mode: " + ec.message()};
    }
    sock.set_option(asio::socket_base::keep_alive(true), ignored);

    if (tls_) {
      const std::string& name = cfg_.tls_server_name.empty() ? target_.host : cfg_.tls_server_name;
      error_code not_ip;
      asio::ip::make_address(name, not_ip);
      // SNI carries host names only (RFC 6066).
      if (not_ip) SSL_set_tlsext_host_name(tls_->native_handle(), name.c_str());
      if (cfg_.verify_peer) tls_->set_verify_callback(ssl::host_name_verification(name));
      co_await tls_->async_handshake(ssl::stream_base::client, redirect_error(use_awaitable, ec));
      if (ec) co_return outcome{ec, "TLS handshake with " + where() + ": " + ec.message()};
    }

    const request hello = hello_request();
    if (tls_) {
      co_await asio::async_write(*tls_, asio::buffer(hello.payload()),
                                 redirect_error(use_awaitable, ec));
    } else {
      co_await asio::async_write(*plain_, asio::buffer(hello.payload()),
                                 redirect_error(use_awaitable, ec));
    }
    if (ec) co_return outcome{ec, "write to " + where() + ": " + ec.message()};

    std::vector<reply> replies;
    while (replies.size() < hello.size()) {
      std::size_t n = 0;
      if (tls_) {
        n = co_await tls_->async_read_some(asio::buffer(read_buf_),
                                           redirect_error(use_awaitable, ec));
      } else {
        n = co_await plain_->async_read_some(asio::buffer(read_buf_),
                                             redirect_error(use_awaitable, ec));
      }
      if (ec) co_return outcome{ec, "read from " + where() + ": " + ec.message()};
      const error_code parse_ec = reader_.feed(read_buf_.data(), n);
      for (;;) {
        auto next = reader_.next();
        if (!next || !*next) break;
        if (replies.size() == hello.size()) {
          co_return outcome{make_error_code(client_error::unexpected_reply),
                            where() + " sent more replies than asked for"};
        }
        replies.push_back(std::move(**next));
      }
      if (parse_ec) {
        co_return outcome{parse_ec, std::string(parse_ec == client_error::reply_too_large
                                                    ? "redis reply refused from "
                                                    : "redis protocol error from ") +
                                        where() + ": " + std::string(reader_.error_message())};
      }
    }
    co_return check_hello(replies);
  }

  // A connect attempt failed: the server is down (or refuses us) until one succeeds.
  void note_down() {
    down_ = true;
    if (!cfg_.fail_fast_when_down) return;
    for (auto& op : queue_) {
      if (op->st != exec_op::state::done) complete(*op, unsent_error(*op));
    }
    queue_.clear();
  }

  void on_connected() {
    connected_ = true;
    down_ = false;
    connected_at_ = steady::now();
    last_read_ = last_write_ = connected_at_;
    drop_ec_ = {};
    drop_message_.clear();
    up_.store(true, std::memory_order_release);
    connects_.fetch_add(1, std::memory_order_acq_rel);
    clear_error();
    arm_health();
    start_write();
    if (announced_) {
      const master_switch s = std::move(*announced_);
      announced_.reset();
      // A sentinel announced a failover while we connected to the old master.
      if (!(s.to == target_)) switch_master(s);
    }
  }

  // After the read loop ended: closes the socket, waits for the writer to let go of it, and
  // settles every written request (sent again if idempotent, failed otherwise).
  boost::asio::awaitable<void> on_disconnected() {
    namespace asio = boost::asio;
    connected_ = false;
    up_.store(false, std::memory_order_release);
    ++generation_;
    close_socket();
    health_timer_.cancel();
    while (writing_) {
      drain_timer_.expires_at(steady::time_point::max());
      error_code ignored;
      co_await drain_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    std::vector<std::shared_ptr<exec_op>> again;
    for (auto& op : in_flight_) {
      if (op->internal || op->st == exec_op::state::done) continue;
      if (op->idempotent && !stopped_) {
        op->st = exec_op::state::queued;
        op->replies.clear();
        again.push_back(std::move(op));
      } else {
        // It may or may not have run: only the caller can decide what to do.
        complete(*op, make_error_code(error::connection_lost));
      }
    }
    in_flight_.clear();
    ping_outstanding_ = false;
    // Ran, but whether replicas have them is unknown (a WAIT on a new connection would not
    // cover them).
    for (auto& op : held_) {
      if (op->st != exec_op::state::done) {
        complete(*op, make_error_code(error::connection_lost));
      }
    }
    held_.clear();
    wait_in_flight_ = false;
    uncovered_ = 0;
    wait_replicas_ = 0;
    wait_timeout_ = {};
    queue_.insert(queue_.begin(), std::make_move_iterator(again.begin()),
                  std::make_move_iterator(again.end()));
    // Refused by a demoted master (READONLY): those came before everything still in flight.
    queue_.insert(queue_.begin(), std::make_move_iterator(refused_.begin()),
                  std::make_move_iterator(refused_.end()));
    refused_.clear();
    trim_deadlines();
    plain_.reset();
    tls_.reset();
  }

  std::chrono::milliseconds jittered(std::chrono::milliseconds d) {
    const auto lo = std::max<std::chrono::milliseconds::rep>(d.count() / 2, 1);
    std::uniform_int_distribution<std::chrono::milliseconds::rep> pick(lo, std::max(lo, d.count()));
    return std::chrono::milliseconds(pick(rng_));
  }

  boost::asio::awaitable<void> run_loop() {
    namespace asio = boost::asio;
    auto backoff = cfg_.reconnect_min;
    bool wait_first = false;
    while (!stopped_) {
      if (wait_first) {
        backoff_timer_.expires_after(jittered(backoff));
        backoff = std::min(backoff * 2, cfg_.reconnect_max);
        error_code ignored;
        co_await backoff_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        if (stopped_) break;
      }
      wait_first = true;
      auto [ec, message] = co_await connect_once();
      if (stopped_) break;
      if (ec) {
        close_socket();
        record_error(ec, message);
        note_down();
        continue;
      }
      on_connected();
      const error_code read_ec = co_await read_loop();
      const auto uptime = steady::now() - connected_at_;
      co_await on_disconnected();
      if (stopped_) break;
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
    close_socket();
    plain_.reset();
    tls_.reset();
  }

  // Completes everything with operation_aborted and stops reconnecting. On the strand.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    for (auto& op : queue_) {
      if (op->st != exec_op::state::done) complete(*op, boost::asio::error::operation_aborted);
    }
    queue_.clear();
    for (auto& op : in_flight_) {
      if (op->st != exec_op::state::done && !op->internal) {
        complete(*op, boost::asio::error::operation_aborted);
      }
    }
    for (auto& op : held_) {
      if (op->st != exec_op::state::done) complete(*op, boost::asio::error::operation_aborted);
    }
    held_.clear();
    deadlines_.clear();
    resolver_.cancel();
    close_socket();
    connect_timer_.cancel();
    backoff_timer_.cancel();
    deadline_timer_.cancel();
    health_timer_.cancel();
    watch_timer_.cancel();
    if (sentinel_watch_) sentinel_watch_->close();
  }

  // ---- sentinel --------------------------------------------------------------------------------

  // Whether a reply of `op` refused it as not a master (READONLY, LOADING).
  static bool refused_as_not_master(const exec_op& op) {
    return std::any_of(op.replies.begin(), op.replies.end(),
                       [](const reply& r) { return r.is_error() && not_master_error(r.str); });
  }

  request sentinel_request() const {
    request q;
    const sentinel_config& sc = cfg_.sentinel;
    if (!sc.password.empty()) {
      if (sc.username.empty()) {
        q.push("AUTH", sc.password);
      } else {
        q.push("AUTH", sc.username, sc.password);
      }
    }
    return q;
  }

  side_channel make_sentinel_channel() {
    return side_channel(ex_, sentinel_ssl_ctx_ ? &*sentinel_ssl_ctx_ : nullptr, cfg_.verify_peer,
                        cfg_.limits);
  }

  // Asks the sentinels, in order, for the master's address, into target_. The one that answers
  // is asked first next time. Bounded by the connect attempt's timer (which closes the query).
  boost::asio::awaitable<std::pair<error_code, std::string>> ask_sentinels() {
    using outcome = std::pair<error_code, std::string>;
    const sentinel_config& sc = cfg_.sentinel;
    if (!sentinel_query_) sentinel_query_.emplace(make_sentinel_channel());
    request q = sentinel_request();
    const bool auth = !q.empty();
    q.push("SENTINEL", "get-master-addr-by-name", sc.master_name);
    const std::size_t n = sc.sentinels.size();
    std::string failures;
    bool unknown = false;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (sentinel_first_ + k) % n;
      const address& at = sc.sentinels[i];
      const std::string name = "sentinel " + at.host + ":" + std::to_string(at.port);
      auto [ec, message] = co_await sentinel_query_->connect(at, {});
      if (!ec) {
        auto [xec, replies] = co_await sentinel_query_->exchange(q);
        if (xec) {
          message = name + ": " + xec.message();
        } else if (auth && replies.front().is_error()) {
          message = name + " refused AUTH: " + replies.front().str;
        } else {
          const sentinel_answer a = parse_master_addr(replies.back());
          if (a.type == sentinel_answer::kind::master) {
            sentinel_query_->close();
            sentinel_first_ = i;
            target_ = a.master;
            co_return outcome{};
          }
          if (a.type == sentinel_answer::kind::unknown_name) {
            unknown = true;
            message = name + " does not know master '" + sc.master_name + "'";
          } else {
            message = name + " answered " +
                      (replies.back().is_error() ? replies.back().str : "an unexpected reply");
          }
        }
      } else {
        message = name + ": " + message;
      }
      sentinel_query_->close();
      failures += (failures.empty() ? "" : "; ") + message;
      if (stopped_) co_return outcome{boost::asio::error::operation_aborted, "stopped"};
      if (connect_expired_) {
        // A sentinel that swallows packets ate the attempt: start with the next one next time.
        sentinel_first_ = (i + 1) % n;
        break;
      }
    }
    if (unknown) {
      co_return outcome{make_error_code(client_error::unknown_master),
                        "the sentinels do not know master '" + sc.master_name + "': " + failures};
    }
    co_return outcome{make_error_code(client_error::no_sentinel),
                      "no sentinel told the master's address: " + failures};
  }

  // A sentinel announced that the master moved: leave the old one (unless already at the new
  // one). The announcement is kept until the next connection is up: a sentinel that still names
  // the old master (which may say ROLE master until the sentinels demote it) loses to it
  // (connect_steps), and a connection made to the old master meanwhile is left (on_connected).
  void switch_master(const master_switch& s) {
    if (connected_ && s.to == target_) return;  // already there
    announced_ = s;
    if (connected_) {
      fail_connection(make_error_code(client_error::master_switched),
                      "sentinel announced master '" + cfg_.sentinel.master_name + "' at " +
                          s.to.host + ":" + std::to_string(s.to.port));
    }
  }

  // Listens for +switch-master on one sentinel at a time (the next one when it fails), until
  // stop(). Runs on the strand beside run_loop.
  static boost::asio::awaitable<void> watch_sentinels(std::shared_ptr<connection_impl> self) {
    namespace asio = boost::asio;
    const sentinel_config& sc = self->cfg_.sentinel;
    self->sentinel_watch_.emplace(self->make_sentinel_channel());
    side_channel& ch = *self->sentinel_watch_;
    request sub = self->sentinel_request();
    const std::size_t replies_before = sub.size();
    sub.push("SUBSCRIBE", "+switch-master");
    auto backoff = self->cfg_.reconnect_min;
    std::size_t next = 0;
    while (!self->stopped_) {
      const address& at = sc.sentinels[(self->sentinel_first_ + next++) % sc.sentinels.size()];
      // The set-up steps are bounded by connect_timeout; listening is not.
      self->watch_timer_.expires_after(self->cfg_.connect_timeout);
      self->watch_timer_.async_wait([self](error_code ec) {
        if (!ec && self->sentinel_watch_) self->sentinel_watch_->close();
      });
      auto [ec, message] = co_await ch.connect(at, {});
      if (!ec) ec = co_await ch.write(sub);
      for (std::size_t i = 0; !ec && i <= replies_before; ++i) {
        auto [rec, r] = co_await ch.read();  // AUTH's +OK, then the subscribe confirmation
        ec = rec ? rec : (r.is_error() ? make_error_code(client_error::auth_failed) : rec);
      }
      self->watch_timer_.cancel();
      if (!ec) {
        backoff = self->cfg_.reconnect_min;
        for (;;) {
          auto [rec, r] = co_await ch.read();
          if (rec || self->stopped_) break;
          if (auto s = parse_master_switch(r, sc.master_name)) self->switch_master(*s);
        }
      }
      ch.close();
      if (self->stopped_) break;
      self->watch_timer_.expires_after(self->jittered(backoff));
      backoff = std::min(backoff * 2, self->cfg_.reconnect_max);
      error_code ignored;
      co_await self->watch_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
    }
    ch.close();
  }

  boost::asio::any_io_executor ex_;
  boost::asio::strand<boost::asio::any_io_executor> strand_;
  config cfg_;
  std::optional<boost::asio::ssl::context> ssl_ctx_;

  tcp::resolver resolver_;
  // The sockets are made on ex_, not on the strand: every handler of theirs is bound to the
  // strand (the coroutines run on it, and write_some and read_loop bind theirs), and an I/O
  // object on the strand would cost a heap copy of it per operation (see strand_token).
  std::optional<tcp::socket> plain_;
  std::optional<tls_stream> tls_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer health_timer_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer watch_timer_;  // the sentinel watcher's timeouts and backoff

  reader reader_;
  std::vector<char> read_buf_;
  std::string write_buf_;
  std::size_t write_offset_ = 0;  // bytes of write_buf_ already written
  std::uint64_t batch_ = 0;       // number of the current (or last) write

  std::deque<std::shared_ptr<exec_op>> queue_;      // not yet written, in call order
  std::deque<std::shared_ptr<exec_op>> in_flight_;  // written, in write order
  std::deque<std::shared_ptr<exec_op>> deadlines_;  // not yet done, in call order

  std::uint64_t generation_ = 0;  // bumped per connect attempt and per drop
  bool stopped_ = false;
  bool running_ = false;
  bool connecting_ = false;
  bool connect_expired_ = false;
  bool connected_ = false;
  bool down_ = false;  // the last connect attempt failed (see config::fail_fast_when_down)
  bool writing_ = false;
  bool deadline_armed_ = false;
  bool ping_outstanding_ = false;
  bool flush_scheduled_ = false;
  std::vector<std::shared_ptr<exec_op>> answered_;  // by the read in progress, not yet completed
  bool completing_inline_ = false;                  // complete_answered is running a handler
  steady::time_point connected_at_{};
  steady::time_point last_read_{};   // last bytes received
  steady::time_point last_write_{};  // last write started or advanced
  error_code drop_ec_;
  std::string drop_message_;
  address target_;  // the server of the current connect attempt or connection (strand)
  address server_;  // target_ for server_address(), under error_mutex_
  bool role_lost_ = false;  // sentinel: a reply said READONLY/LOADING in the current read
  std::vector<std::shared_ptr<exec_op>> refused_;  // requeued after READONLY/LOADING
  // Durable requests (request::wait_for_replicas): answered, waiting for a WAIT behind them.
  std::deque<std::shared_ptr<exec_op>> held_;
  request wait_req_;                      // the WAIT in flight (at most one)
  std::uint64_t write_seq_ = 0;           // requests written on this connection
  std::size_t uncovered_ = 0;             // durable requests written after the last WAIT
  int wait_replicas_ = 0;                 // the most any of those asks for
  std::chrono::milliseconds wait_timeout_{};
  bool wait_in_flight_ = false;
  std::optional<side_channel> sentinel_query_;   // asks for the master during a connect
  std::optional<side_channel> sentinel_watch_;   // subscribed to +switch-master
  std::optional<boost::asio::ssl::context> sentinel_ssl_ctx_;
  std::size_t sentinel_first_ = 0;               // the sentinel to ask first
  std::optional<master_switch> announced_;        // +switch-master since the last connection
  std::minstd_rand rng_;

  std::atomic<bool> up_{false};
  std::atomic<std::uint64_t> connects_{0};
  mutable std::mutex error_mutex_;
  error_code last_error_;
  std::string last_error_message_;
  error_handler on_error_;
};

}  // namespace websession::redis::detail
