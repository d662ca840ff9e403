// SPDX-License-Identifier: BSL-1.0
// The sans-IO core of a Redis connection: the queue, the requests in flight, deadlines, the
// WAIT group commit, reply delivery and the READONLY/LOADING requeue. It takes bytes, time and
// events and answers with actions (write these bytes, complete these requests, drop the link
// for this reason); it owns no socket, timer or executor, so tests drive it with scripted bytes
// and a scripted clock.
#pragma once

#include <websession/detail/config.hpp>
#include <websession/redis/config.hpp>
#include <websession/redis/detail/health.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reader.hpp>
#include <websession/redis/reply.hpp>
#include <websession/redis/request.hpp>

#include <boost/asio/cancellation_type.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace websession::redis::detail {

/// One request as the multiplexer sees it (the driver derives its operation from it and adds
/// the handler). Fields are the multiplexer's once added.
struct mux_op {
  using time_point = std::chrono::steady_clock::time_point;
  enum class state : unsigned char { queued, written, done };

  const request* req = nullptr;  // the caller's request: valid only until the op is done
  std::size_t expected = 0;      // replies still to come on the current connection
  std::vector<reply> replies;
  time_point deadline{};
  time_point sent_at{};     // when the write carrying it completed; zero until then
  std::uint64_t batch = 0;  // which write carried it
  std::uint64_t seq = 0;    // position in the stream of written requests
  state st = state::queued;
  bool internal = false;       // a health-check PING or the WAIT of a group commit
  bool is_wait = false;
  bool report_unsent = false;  // never written: client_error::not_sent (for a cluster)

  virtual ~mux_op() = default;
};

/// An action: complete `op` with `ec` (replies in op->replies when ec is empty). `answered`:
/// its replies came with the last bytes (the driver may run the last such handler inline).
struct mux_completion {
  std::shared_ptr<mux_op> op;
  boost::system::error_code ec;
  bool answered = false;
};

/// An action: drop the link (the driver closes the stream), for this reason.
struct mux_drop {
  boost::system::error_code ec;
  std::string message;
  explicit operator bool() const noexcept { return static_cast<bool>(ec); }
};

/// What the driver does after add().
enum class mux_write_hint : unsigned char { none, now, soon };

struct mux_options {
  /// Complete requests at once with not_connected while the last connect attempt failed.
  bool fail_fast_when_down = false;
  /// Sentinel: a READONLY / LOADING reply means the server is no longer a usable master; the
  /// requests it refused go to the next master.
  bool requeue_not_master = false;
  /// While replies are awaited, this many gathered requests go out without waiting for the
  /// driver's flush (each write is a system call; each request held back idles the server).
  /// With 64 coroutines on one connection, 8, 16 and 32 gave about 1.5x the throughput of one
  /// write per round of handlers.
  std::size_t write_batch = 16;
  reply_limits limits;
};

/// The I/O-free multiplexer of one connection.
///
/// Not thread safe: its owner (the connection's strand, or a test) calls it. Every call may
/// add completions; the owner takes them with take_completions() and hands them over.
class multiplexer {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using error_code = boost::system::error_code;

  explicit multiplexer(mux_options opts = {});

  // ---- requests ------------------------------------------------------------------------------
  /// A new request (op->req and op->deadline set). Returns what the driver should do about
  /// writing: now, soon (after the handlers already scheduled ran: they tend to add more), or
  /// nothing (a write is going on, not connected, or the request completed at once).
  mux_write_hint add(std::shared_ptr<mux_op> op);
  /// A cancellation from the op's own slot. A request not yet written is dropped (any type);
  /// one written may have run, so only terminal or partial cancellation completes it (its
  /// replies are skipped when they come).
  void cancel(const std::shared_ptr<mux_op>& op, boost::asio::cancellation_type_t type);
  /// Completes every request with operation_aborted; further adds complete so at once.
  void stop();
  bool stopped() const noexcept { return stopped_; }

  // ---- time ----------------------------------------------------------------------------------
  /// Completes the requests whose deadline passed: error::timeout when connected (or written),
  /// the unsent error otherwise.
  void expire(time_point now);
  /// The earliest deadline still pending.
  std::optional<time_point> next_deadline();
  /// The health check: the verdict; for `ping`, a PING was queued (write_due() says so).
  health_verdict check_health(time_point now, std::chrono::milliseconds interval);

  // ---- the link ------------------------------------------------------------------------------
  void on_connected(time_point now);
  /// A connect attempt failed: with fail_fast_when_down the queued requests fail now.
  void on_connect_failed();
  /// The link dropped (no write may be in progress): written requests are queued again when
  /// idempotent (and not stopped), fail with connection_lost otherwise; requests refused as
  /// not master go first.
  void on_disconnected();
  bool connected() const noexcept { return connected_; }
  /// The parser of the link's bytes (reset by on_connected; the handshake reads through it).
  redis::reader& reader() noexcept { return reader_; }

  // ---- writing -------------------------------------------------------------------------------
  /// Whether a write should start: connected, none going on, something queued (or a WAIT due).
  bool write_due() const noexcept;
  /// Whether durable requests written since the last WAIT wait for one (the driver writes at
  /// once after a read then, rather than wait for its flush).
  bool wait_due() const noexcept { return uncovered_ > 0 && !wait_in_flight_; }
  /// Starts a write of everything queued (and the WAIT of a group commit): the bytes to write,
  /// empty when there is nothing. Stays valid until the write is done or aborted.
  std::string_view begin_write(time_point now);
  /// `n` more bytes were written; true when the write is complete.
  bool wrote(std::size_t n, time_point now);
  /// The bytes of the current write still to go.
  std::string_view unwritten() const noexcept;
  /// The write ended without completing (the link failed).
  void write_aborted() noexcept { writing_ = false; }
  bool writing() const noexcept { return writing_; }

  // ---- reading -------------------------------------------------------------------------------
  /// Bytes from the link: replies go to their requests. A drop says the link must be dropped
  /// (a protocol error, a reply nobody asked for, a READONLY master with requeue_not_master).
  mux_drop on_read(const char* data, std::size_t n, time_point now);

  // ---- actions -------------------------------------------------------------------------------
  /// The completions produced since the last call.
  std::vector<mux_completion> take_completions();

  /// Counts, for tests and the health check.
  std::size_t queued() const noexcept { return queue_.size(); }
  std::size_t in_flight() const noexcept { return in_flight_.size(); }

 private:
  void complete(const std::shared_ptr<mux_op>& op, error_code ec, bool answered = false);
  error_code unsent_error(const mux_op& op) const;
  void abandon(const std::shared_ptr<mux_op>& op, error_code ec);
  void add_deadline(std::shared_ptr<mux_op> op);
  void trim_deadlines();
  void append_wait();
  void on_wait_reply(std::uint64_t seq, const reply& r);
  bool deliver(reply&& r);

  mux_options opts_;
  redis::reader reader_;
  std::deque<std::shared_ptr<mux_op>> queue_;      // not yet written, in call order
  std::deque<std::shared_ptr<mux_op>> in_flight_;  // written, in write order
  std::deque<std::shared_ptr<mux_op>> deadlines_;  // not yet done, in deadline order
  std::deque<std::shared_ptr<mux_op>> held_;       // durable, answered, awaiting their WAIT
  std::vector<std::shared_ptr<mux_op>> refused_;   // READONLY/LOADING: for the next master
  std::vector<mux_completion> out_;

  std::string write_buf_;
  std::size_t write_offset_ = 0;
  std::uint64_t batch_ = 0;
  std::uint64_t write_seq_ = 0;
  time_point last_read_{};
  time_point last_write_{};

  request wait_req_;  // the WAIT in flight (at most one)
  std::size_t uncovered_ = 0;  // durable requests written after the last WAIT
  int wait_replicas_ = 0;
  std::chrono::milliseconds wait_timeout_{};
  bool wait_in_flight_ = false;

  bool connected_ = false;
  bool down_ = false;
  bool stopped_ = false;
  bool writing_ = false;
  bool ping_outstanding_ = false;
  bool role_lost_ = false;
};

}  // namespace websession::redis::detail

#if !defined(WEBSESSION_SEPARATE_COMPILATION)
#include <websession/redis/detail/impl/multiplexer.ipp>
#endif
