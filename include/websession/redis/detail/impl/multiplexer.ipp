// SPDX-License-Identifier: BSL-1.0
// Definitions of detail/multiplexer.hpp (compiled once with WEBSESSION_SEPARATE_COMPILATION).
#ifndef WEBSESSION_REDIS_DETAIL_IMPL_MULTIPLEXER_IPP
#define WEBSESSION_REDIS_DETAIL_IMPL_MULTIPLEXER_IPP

#include <websession/redis/detail/multiplexer.hpp>
#include <websession/redis/detail/sentinel_protocol.hpp>

#include <boost/asio/error.hpp>

#include <algorithm>
#include <iterator>
#include <utility>

namespace websession::redis::detail {

namespace mux_detail {
inline const request& ping_request() {
  static const request r = [] {
    request q;
    q.push("PING");
    return q;
  }();
  return r;
}
}  // namespace mux_detail

WEBSESSION_DECL multiplexer::multiplexer(mux_options opts) : opts_(opts), reader_(opts.limits) {}

WEBSESSION_DECL void multiplexer::complete(const std::shared_ptr<mux_op>& op, error_code ec,
                                           bool answered) {
  op->st = mux_op::state::done;
  op->req = nullptr;
  if (ec) op->replies.clear();
  if (!op->internal) out_.push_back({op, ec, answered});
}

WEBSESSION_DECL std::vector<mux_completion> multiplexer::take_completions() {
  std::vector<mux_completion> out;
  out.swap(out_);
  return out;
}

WEBSESSION_DECL boost::system::error_code multiplexer::unsent_error(const mux_op& op) const {
  return op.report_unsent ? make_error_code(client_error::not_sent)
                          : make_error_code(error::not_connected);
}

WEBSESSION_DECL mux_write_hint multiplexer::add(std::shared_ptr<mux_op> op) {
  op->expected = op->req ? op->req->size() : 0;
  if (stopped_) {
    complete(op, boost::asio::error::operation_aborted);
    return mux_write_hint::none;
  }
  if (down_ && opts_.fail_fast_when_down) {
    complete(op, unsent_error(*op));
    return mux_write_hint::none;
  }
  if (op->expected == 0) {
    complete(op, {});
    return mux_write_hint::none;
  }
  queue_.push_back(op);
  add_deadline(std::move(op));
  // Like Nagle's algorithm: with nothing in flight, a lone request goes out at once; while
  // replies are awaited, requests gather (up to write_batch) until the driver flushes.
  if (writing_ || !connected_) return mux_write_hint::none;
  if (in_flight_.empty() || queue_.size() >= opts_.write_batch) return mux_write_hint::now;
  return mux_write_hint::soon;
}

// deadlines_ is kept in deadline order, so its front is the earliest one pending and a single
// timer serves every request. Requests mostly come in call order with one timeout (an append); a
// cluster's retried request may come with an earlier deadline.
WEBSESSION_DECL void multiplexer::add_deadline(std::shared_ptr<mux_op> op) {
  auto pos = deadlines_.end();
  while (pos != deadlines_.begin() && (*std::prev(pos))->deadline > op->deadline) --pos;
  deadlines_.insert(pos, std::move(op));
}

WEBSESSION_DECL void multiplexer::trim_deadlines() {
  while (!deadlines_.empty() && deadlines_.front()->st == mux_op::state::done) {
    deadlines_.pop_front();
  }
}

WEBSESSION_DECL std::optional<multiplexer::time_point> multiplexer::next_deadline() {
  trim_deadlines();
  if (deadlines_.empty()) return std::nullopt;
  return deadlines_.front()->deadline;
}

WEBSESSION_DECL void multiplexer::expire(time_point now) {
  while (!deadlines_.empty()) {
    auto op = deadlines_.front();
    if (op->st != mux_op::state::done) {
      if (op->deadline > now) break;
      // Not sent because there was no connection: the server is unavailable, not slow.
      const bool unsent = op->st == mux_op::state::queued && !connected_;
      abandon(op, unsent ? unsent_error(*op) : make_error_code(error::timeout));
    }
    deadlines_.pop_front();
  }
}

WEBSESSION_DECL void multiplexer::cancel(const std::shared_ptr<mux_op>& op,
                                         boost::asio::cancellation_type_t type) {
  using ct = boost::asio::cancellation_type;
  if (op->st == mux_op::state::done) return;
  if (op->st == mux_op::state::written && (type & (ct::terminal | ct::partial)) == ct::none) {
    return;
  }
  abandon(op, boost::asio::error::operation_aborted);
}

// Completes an op before its replies: a queued one leaves the queue; a written one stays in
// in_flight_, because its replies will still come and must be skipped.
WEBSESSION_DECL void multiplexer::abandon(const std::shared_ptr<mux_op>& op, error_code ec) {
  if (op->st == mux_op::state::queued) {
    if (auto it = std::find(queue_.begin(), queue_.end(), op); it != queue_.end()) {
      queue_.erase(it);
    }
  }
  complete(op, ec);
}

WEBSESSION_DECL void multiplexer::stop() {
  if (stopped_) return;
  stopped_ = true;
  const auto abort_all = [&](auto& list) {
    for (auto& op : list) {
      if (op->st != mux_op::state::done) complete(op, boost::asio::error::operation_aborted);
    }
    list.clear();
  };
  abort_all(queue_);
  abort_all(held_);
  abort_all(refused_);
  // Written requests stay in flight (their replies would still have to be skipped), done.
  for (auto& op : in_flight_) {
    if (op->st != mux_op::state::done) complete(op, boost::asio::error::operation_aborted);
  }
  deadlines_.clear();
}

WEBSESSION_DECL health_verdict multiplexer::check_health(time_point now,
                                                         std::chrono::milliseconds interval) {
  health_facts f;
  f.writing = writing_;
  f.last_write = last_write_;
  f.last_read = last_read_;
  f.awaiting = !in_flight_.empty();
  if (f.awaiting) f.oldest_sent = in_flight_.front()->sent_at;
  f.idle = queue_.empty() && !writing_ && !ping_outstanding_;
  const health_verdict v = detail::check_health(f, now, interval);
  if (v == health_verdict::ping) {
    auto op = std::make_shared<mux_op>();
    op->req = &mux_detail::ping_request();
    op->internal = true;
    op->expected = 1;
    ping_outstanding_ = true;
    queue_.push_back(std::move(op));
  }
  return v;
}

WEBSESSION_DECL void multiplexer::on_connected(time_point now) {
  connected_ = true;
  down_ = false;
  last_read_ = last_write_ = now;
}

WEBSESSION_DECL void multiplexer::on_connect_failed() {
  down_ = true;
  if (!opts_.fail_fast_when_down) return;
  for (auto& op : queue_) {
    if (op->st != mux_op::state::done) complete(op, unsent_error(*op));
  }
  queue_.clear();
}

WEBSESSION_DECL void multiplexer::on_disconnected() {
  connected_ = false;
  writing_ = false;
  std::vector<std::shared_ptr<mux_op>> again;
  for (auto& op : in_flight_) {
    if (op->internal || op->st == mux_op::state::done) continue;
    if (op->req->idempotent() && !stopped_) {
      op->st = mux_op::state::queued;
      op->replies.clear();
      again.push_back(std::move(op));
    } else {
      // It may or may not have run: only the caller can decide what to do.
      complete(op, make_error_code(error::connection_lost));
    }
  }
  in_flight_.clear();
  ping_outstanding_ = false;
  // Ran, but whether replicas have them is unknown (a WAIT on a new connection would not cover
  // them).
  for (auto& op : held_) {
    if (op->st != mux_op::state::done) complete(op, make_error_code(error::connection_lost));
  }
  held_.clear();
  wait_in_flight_ = false;
  uncovered_ = 0;
  wait_replicas_ = 0;
  wait_timeout_ = {};
  role_lost_ = false;
  queue_.insert(queue_.begin(), std::make_move_iterator(again.begin()),
                std::make_move_iterator(again.end()));
  // Refused by a demoted master: those came before everything still in flight.
  queue_.insert(queue_.begin(), std::make_move_iterator(refused_.begin()),
                std::make_move_iterator(refused_.end()));
  refused_.clear();
  trim_deadlines();
  reader_.reset();
}

WEBSESSION_DECL bool multiplexer::write_due() const noexcept {
  const bool wait_due = uncovered_ > 0 && !wait_in_flight_;
  return connected_ && !writing_ && !stopped_ && (!queue_.empty() || wait_due);
}

WEBSESSION_DECL std::string_view multiplexer::begin_write(time_point now) {
  if (!write_due()) return {};
  write_buf_.clear();
  write_offset_ = 0;
  ++batch_;
  while (!queue_.empty()) {
    auto op = std::move(queue_.front());
    queue_.pop_front();
    if (op->st == mux_op::state::done) continue;
    write_buf_.append(op->req->payload());
    op->st = mux_op::state::written;
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
  // Group commit: one WAIT, right behind the durable requests of this write, confirms them all;
  // while one is in flight, the next waits for its answer (WAIT blocks the connection).
  if (uncovered_ > 0 && !wait_in_flight_) append_wait();
  if (write_buf_.empty()) return {};
  writing_ = true;
  last_write_ = now;
  return write_buf_;
}

WEBSESSION_DECL void multiplexer::append_wait() {
  wait_req_.clear();
  wait_req_.push("WAIT", wait_replicas_, wait_timeout_.count());
  auto op = std::make_shared<mux_op>();
  op->req = &wait_req_;
  op->internal = true;
  op->is_wait = true;
  op->st = mux_op::state::written;
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

WEBSESSION_DECL bool multiplexer::wrote(std::size_t n, time_point now) {
  last_write_ = now;
  write_offset_ += n;
  if (write_offset_ < write_buf_.size()) return false;
  writing_ = false;
  // The server owes replies to this batch from now on (the health check's clock).
  for (auto it = in_flight_.rbegin(); it != in_flight_.rend() && (*it)->batch == batch_; ++it) {
    (*it)->sent_at = now;
  }
  // Do not keep the memory of one huge value for the life of the connection.
  if (write_buf_.capacity() > (std::size_t{1} << 20)) std::string().swap(write_buf_);
  return true;
}

WEBSESSION_DECL std::string_view multiplexer::unwritten() const noexcept {
  return std::string_view(write_buf_).substr(std::min(write_offset_, write_buf_.size()));
}

// The WAIT written at `seq` said `confirmed` replicas have everything written before it: the
// durable requests it covers complete (replicas_not_confirmed for those that wanted more).
WEBSESSION_DECL void multiplexer::on_wait_reply(std::uint64_t seq, const reply& r) {
  wait_in_flight_ = false;
  const long long confirmed = r.type == reply_type::integer ? r.integer : -1;
  while (!held_.empty() && held_.front()->seq < seq) {
    auto op = std::move(held_.front());
    held_.pop_front();
    if (op->st == mux_op::state::done) continue;
    if (confirmed >= op->req->wait_replicas()) {
      complete(op, {}, true);
    } else {
      complete(op, make_error_code(error::replicas_not_confirmed));
    }
  }
}

// Gives one reply to the oldest request still waiting. False if nobody waits for it.
WEBSESSION_DECL bool multiplexer::deliver(reply&& r) {
  if (in_flight_.empty()) return false;
  mux_op& front = *in_flight_.front();
  if (front.st != mux_op::state::done) front.replies.push_back(std::move(r));
  if (--front.expected > 0) return true;
  auto done = std::move(in_flight_.front());
  in_flight_.pop_front();
  if (opts_.requeue_not_master) {
    const auto refused = [](const reply& x) { return x.is_error() && not_master_error(x.str); };
    if (std::any_of(done->replies.begin(), done->replies.end(), refused)) {
      role_lost_ = true;
      if (!done->internal && done->st != mux_op::state::done &&
          std::all_of(done->replies.begin(), done->replies.end(), refused)) {
        // Nothing of it ran: it goes to the next master after the reconnect.
        done->st = mux_op::state::queued;
        done->replies.clear();
        refused_.push_back(std::move(done));
        return true;
      }
    }
  }
  if (done->is_wait) {
    done->st = mux_op::state::done;
    on_wait_reply(done->seq, done->replies.front());
  } else if (done->internal) {
    ping_outstanding_ = false;
    done->st = mux_op::state::done;
  } else if (done->st != mux_op::state::done) {
    if (done->req->wait_replicas() > 0) {
      held_.push_back(std::move(done));  // until a WAIT written after it answers
    } else {
      complete(done, {}, true);
    }
  }
  return true;
}

WEBSESSION_DECL mux_drop multiplexer::on_read(const char* data, std::size_t n, time_point now) {
  last_read_ = now;
  const error_code parse_ec = reader_.feed(data, n);
  for (;;) {
    auto next = reader_.next();
    if (!next || !*next) break;
    if (!deliver(std::move(**next))) {
      return {make_error_code(client_error::unexpected_reply),
              "redis sent a reply nobody asked for"};
    }
  }
  if (parse_ec) {
    return {parse_ec, std::string(parse_ec == client_error::reply_too_large
                                      ? "redis reply refused: "
                                      : "redis protocol error: ") +
                          std::string(reader_.error_message())};
  }
  trim_deadlines();
  if (role_lost_) {
    role_lost_ = false;
    return {make_error_code(client_error::not_master),
            "answered READONLY or LOADING: not a usable master"};
  }
  return {};
}

}  // namespace websession::redis::detail

#endif
