// SPDX-License-Identifier: BSL-1.0
// An I/O-free RESP2 parser: bytes in, redis::reply values out. It wraps hiredis's redisReader
// (a small, fuzzed parser) with callbacks that build our own reply type.
#pragma once

#include <websession/redis/config.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>
#include <websession/result.hpp>

#include <hiredis/hiredis.h>

#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace websession::redis {

// The code below reads hiredis 0.14's reader state (rstack, the sds buffer); hiredis 1.x changed
// both (and the callback table), so a newer hiredis must be adapted here first.
static_assert(HIREDIS_MAJOR == 0, "websession::redis::reader is written for hiredis 0.14");

namespace detail {

// What the callbacks need besides the task: the limits, and why they refused an item (hiredis
// itself only reports "Out of memory" when a callback returns NULL). One per reader, on the
// heap, so that hiredis's privdata pointer stays valid when the reader is moved.
struct reader_state {
  reply_limits limits;
  // Set when a callback refused an item: reply_too_large or protocol_error, and why.
  client_error refused_code = client_error::protocol_error;
  std::string refused;
};

// hiredis calls these while parsing. An element of an array is built in place inside its
// parent's `elements`, appended when hiredis starts it: storage grows with the elements that
// arrived, never with what a header announced. hiredis keeps a pointer to each unfinished
// array; an array's own slot only moves when a later sibling is appended to its parent, which
// happens after it is finished. Only a top-level reply is allocated, and hiredis frees only
// top-level replies. Exceptions must not cross the C code: any failure returns NULL, which
// hiredis turns into a reader error.
struct reply_builder {
  // Storage reserved for an array when it is announced; beyond this it grows as it fills.
  static constexpr std::size_t initial_elements = 16;

  static reply* slot(const redisReadTask* task) {
    if (task->parent != nullptr) {
      auto* parent = static_cast<reply*>(task->parent->obj);
      auto& v = parent->elements;
      const auto i = static_cast<std::size_t>(task->idx);
      if (i == v.size()) v.emplace_back();
      return &v.at(i);
    }
    return new reply;
  }

  static reader_state* state(const redisReadTask* task) noexcept {
    return static_cast<reader_state*>(task->privdata);
  }

  // Records why an item was refused; hiredis then fails the reader.
  static void refuse(const redisReadTask* task, const char* what, std::size_t n,
                     const char* unit, const char* limit, std::size_t max) {
    if (auto* st = state(task)) {
      st->refused_code = client_error::reply_too_large;
      st->refused = std::string(what) + " of " + std::to_string(n) + " " + unit +
                    " announced, beyond config::limits." + limit + " (" + std::to_string(max) +
                    ")";
    }
  }

  static void* create_string(const redisReadTask* task, char* str, size_t len) noexcept {
    reply* r = nullptr;
    try {
      // Normally caught from the header already (reader::check_pending).
      if (auto* st = state(task); st != nullptr && len > st->limits.max_bulk_length) {
        refuse(task, "a string", len, "bytes", "max_bulk_length", st->limits.max_bulk_length);
        return nullptr;
      }
      // hiredis 0.14 skips the two bytes after a bulk string without looking at them: a
      // reply that is longer than it announced would be cut there and its rest read as the
      // next replies. (For a line, str[len] is the CR hiredis found.)
      if (str[len] != '\r' || str[len + 1] != '\n') {
        if (auto* st = state(task)) {
          st->refused_code = client_error::protocol_error;
          st->refused = "a bulk string of " + std::to_string(len) +
                        " bytes announced is not followed by CRLF (the reply is longer or "
                        "shorter than it says)";
        }
        return nullptr;
      }
      r = slot(task);
      switch (task->type) {
        case REDIS_REPLY_ERROR: r->type = reply_type::error; break;
        case REDIS_REPLY_STATUS: r->type = reply_type::status; break;
        default: r->type = reply_type::string; break;
      }
      r->str.assign(str, len);
      return r;
    } catch (...) {
      if (task->parent == nullptr) delete r;
      return nullptr;
    }
  }

  static void* create_array(const redisReadTask* task, int elements) noexcept {
    reply* r = nullptr;
    try {
      const auto n = static_cast<std::size_t>(std::max(elements, 0));
      if (auto* st = state(task); st != nullptr && n > st->limits.max_elements) {
        refuse(task, "an array", n, "elements", "max_elements", st->limits.max_elements);
        return nullptr;
      }
      r = slot(task);
      r->type = reply_type::array;
      r->elements.reserve(std::min(n, initial_elements));
      return r;
    } catch (...) {
      if (task->parent == nullptr) delete r;
      return nullptr;
    }
  }

  static void* create_integer(const redisReadTask* task, long long value) noexcept {
    try {
      reply* r = slot(task);
      r->type = reply_type::integer;
      r->integer = value;
      return r;
    } catch (...) {
      return nullptr;
    }
  }

  static void* create_nil(const redisReadTask* task) noexcept {
    try {
      reply* r = slot(task);
      r->type = reply_type::nil;
      return r;
    } catch (...) {
      return nullptr;
    }
  }

  static void free_object(void* p) noexcept { delete static_cast<reply*>(p); }

  // hiredis keeps the table by pointer, so it must live as long as any reader.
  static redisReplyObjectFunctions* table() noexcept {
    static redisReplyObjectFunctions fns{&create_string, &create_array, &create_integer,
                                         &create_nil, &free_object};
    return &fns;
  }
};

}  // namespace detail

/// Parses a byte stream of RESP2 replies. Not thread-safe; one reader per connection.
///
/// Usage: `feed` what the socket delivered, then call `next` until it yields no reply. After a
/// protocol error the reader is dead for good (the stream can no longer be framed): `next`
/// keeps failing with the same error; drop the connection and `reset` (or make a new reader)
/// for the next one.
///
/// Memory is bounded by the limits (config::limits): an array header announcing more than
/// max_elements elements, or a bulk string header announcing more than max_bulk_length bytes, fails
/// at once with client_error::reply_too_large, before anything is stored for it; so does a line
/// (simple string, error, integer, or a length line) longer than max_line_length. Below the limits,
/// storage grows as elements and bytes arrive. hiredis refuses nesting deeper than 8 arrays (its
/// parser is iterative, with a fixed stack; our replies, destroyed recursively, are never deeper).
/// After a reply bigger than buffer_keep the parse buffer is given back, so one large value does
/// not pin its memory.
class reader {
 public:
  /// Throws std::bad_alloc if hiredis cannot allocate its parser.
  explicit reader(reply_limits limits = {})
      : state_(std::make_unique<detail::reader_state>()) {
    state_->limits = limits;
    r_ = make(state_.get());
  }

  reader(reader&& other) noexcept
      : r_(std::exchange(other.r_, nullptr)),
        state_(std::move(other.state_)),
        ready_(std::move(other.ready_)),
        head_(std::exchange(other.head_, 0)),
        failed_(std::exchange(other.failed_, error_code{})),
        message_(std::move(other.message_)) {}

  reader& operator=(reader&& other) noexcept {
    if (this != &other) {
      destroy();
      r_ = std::exchange(other.r_, nullptr);
      state_ = std::move(other.state_);
      ready_ = std::move(other.ready_);
      head_ = std::exchange(other.head_, 0);
      failed_ = std::exchange(other.failed_, error_code{});
      message_ = std::move(other.message_);
    }
    return *this;
  }

  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;

  ~reader() { destroy(); }

  /// Appends `n` bytes of the stream and parses every reply they complete (replies then wait
  /// for `next`). Returns client_error::protocol_error when the bytes are not RESP2,
  /// client_error::reply_too_large when a reply exceeds the limits, and the same error again
  /// once the reader is dead (replies completed before the bad bytes can still be taken with
  /// `next`); the reason is in error_message(). Throws std::bad_alloc.
  boost::system::error_code feed(const char* data, std::size_t n) {
    if (failed_ || r_ == nullptr) return fail_code();
    // hiredis moves its unparsed remainder to the front of its buffer after each reply, so
    // feeding a large read at once would cost time quadratic in the number of replies it holds.
    while (n > 0) {
      std::size_t c = std::min(n, chunk_size);
      // Each piece ends between the '\r' and the '\n' of the next CRLF (the following piece
      // starts with that '\n'): hiredis completes a line only once its "\r\n" is there, so
      // check_pending sees every line whole but for the '\n' before hiredis acts on it, and a
      // limit gives the same verdict however the stream was split into reads.
      c = before_next_lf(data, c);
      if (redisReaderFeed(r_, data, c) != REDIS_OK) return fail();
      data += c;
      n -= c;
      for (;;) {
        void* raw = nullptr;
        if (redisReaderGetReply(r_, &raw) != REDIS_OK) return fail();
        if (raw == nullptr) break;
        std::unique_ptr<reply> owned(static_cast<reply*>(raw));
        ready_.push_back(std::move(*owned));
      }
      if (check_pending()) return fail();
    }
    release_buffer();
    return {};
  }

  /// The next complete reply; an empty optional when more bytes are needed; the error of
  /// `feed` once every reply parsed before a protocol error was taken.
  result<std::optional<reply>> next() {
    if (head_ < ready_.size()) {
      std::optional<reply> out(std::move(ready_[head_]));
      if (++head_ == ready_.size()) {
        // A burst of many small replies leaves a large vector behind: give it back.
        if (ready_.capacity() > ready_keep) {
          std::vector<reply>().swap(ready_);
        } else {
          ready_.clear();
        }
        head_ = 0;
      }
      return out;
    }
    if (failed_ || r_ == nullptr) return fail_code();
    return std::optional<reply>();
  }

  /// True after a protocol error (or a reply beyond the limits).
  bool failed() const noexcept { return static_cast<bool>(failed_); }

  /// Why the reader failed (hiredis's description of the protocol error, or which limit was
  /// exceeded by how much); empty if it did not.
  std::string_view error_message() const noexcept { return message_; }

  /// The limits this reader enforces.
  const reply_limits& limits() const noexcept {
    static const reply_limits defaults;
    return state_ ? state_->limits : defaults;  // (a moved-from reader has none)
  }

  /// Bytes of parse buffer held now (the unparsed input and the room kept for more); at most
  /// about buffer_keep between replies, at most about max_bulk_length plus one read while a
  /// large bulk string arrives. For tests and diagnostics.
  std::size_t buffer_capacity() const noexcept {
    return r_ != nullptr && r_->buf != nullptr ? sdsalloc(r_->buf) : 0;
  }

  /// Forgets all input, parsed replies and errors (for a new connection); keeps the limits.
  /// Throws std::bad_alloc.
  void reset() {
    if (!state_) state_ = std::make_unique<detail::reader_state>();
    redisReader* fresh = make(state_.get());
    destroy();
    r_ = fresh;
    state_->refused.clear();
    state_->refused_code = client_error::protocol_error;
    std::vector<reply>().swap(ready_);
    head_ = 0;
    failed_ = {};
    message_.clear();
  }

  /// Bytes are handed to hiredis in pieces of at most this size (see feed).
  static constexpr std::size_t chunk_size = 4096;
  /// Parse buffer kept between replies; a larger one (left by a large reply) is given back
  /// when the reader is between replies again.
  static constexpr std::size_t buffer_keep = 64 * 1024;
  /// Capacity of parsed replies waiting for `next` that is kept once they were all taken.
  static constexpr std::size_t ready_keep = 256;

 private:
  using error_code = boost::system::error_code;

  static redisReader* make(detail::reader_state* st) {
    redisReader* r = redisReaderCreateWithFunctions(detail::reply_builder::table());
    if (r == nullptr) throw std::bad_alloc();
    // hiredis would shrink its buffer only when the next bytes arrive (and only for input
    // fed after a fully consumed buffer); release_buffer does it as soon as a reply ends.
    r->maxbuf = 0;
    r->privdata = st;
    return r;
  }

  // The length of the first piece of `data[0, n)`: up to the '\n' of its first CRLF after
  // byte 0 (excluded), or all of it.
  static std::size_t before_next_lf(const char* data, std::size_t n) noexcept {
    for (std::size_t from = 1; from < n;) {
      const void* nl = std::memchr(data + from, '\n', n - from);
      if (nl == nullptr) break;
      const auto at = static_cast<std::size_t>(static_cast<const char*>(nl) - data);
      if (data[at - 1] == '\r') return at;
      from = at + 1;
    }
    return n;
  }

  void destroy() noexcept {
    if (r_ != nullptr) redisReaderFree(r_);
    r_ = nullptr;
  }

  // The task hiredis is in the middle of (the type byte read, the rest not yet complete), or
  // nullptr between replies.
  const redisReadTask* current_task() const noexcept {
    if (r_->ridx < 0) return nullptr;
    const redisReadTask* t = &r_->rstack[r_->ridx];
    return t->type < 0 ? nullptr : t;
  }

  // hiredis holds an incomplete item until all of it arrived: a bulk string (`$<len>\r\n`
  // and then its bytes) or a line (status, error, integer, or an array or bulk header). Checks
  // the length a pending bulk or array header announces as soon as its digits are there, and
  // bounds the bytes of a pending line, before hiredis buffers (and scans) more of it. Sets
  // state_->refused and returns true when a limit is exceeded.
  bool check_pending() {
    const redisReadTask* t = current_task();
    if (t == nullptr) return false;
    const std::size_t pending = r_->len - r_->pos;
    const reply_limits& lim = state_->limits;
    const char* const first = r_->buf + r_->pos;
    const auto refuse = [&](client_error code, std::string why) {
      state_->refused_code = code;
      state_->refused = std::move(why);
      return true;
    };
    bool line_pending = true;  // the item's line has not ended yet
    if (t->type == REDIS_REPLY_STRING || t->type == REDIS_REPLY_ARRAY) {
      // hiredis leaves pos on the length line, just after the type byte.
      const bool bulk = t->type == REDIS_REPLY_STRING;
      const std::size_t max = bulk ? lim.max_bulk_length : lim.max_elements;
      const std::size_t scan = std::min<std::size_t>(pending, 24);
      std::size_t digits = 0;
      std::uint64_t v = 0;
      bool over = false;
      // hiredis refuses a length with a leading zero (`$05`): refuse it here already, so that
      // the digits counted below are significant ones.
      if (scan >= 2 && first[0] == '0' && first[1] >= '0' && first[1] <= '9') {
        return refuse(client_error::protocol_error,
                      std::string(bulk ? "bulk string" : "array") +
                          " length with a leading zero");
      }
      while (digits < scan && first[digits] >= '0' && first[digits] <= '9') {
        // (Past 19 digits v could wrap; any such number is beyond every limit.)
        over = over || v > std::numeric_limits<std::uint64_t>::max() / 10 - 1;
        v = v * 10 + static_cast<std::uint64_t>(first[digits] - '0');
        over = over || v > max;
        ++digits;
      }
      if (over) {
        std::string announced(first, std::min<std::size_t>(digits, 20));
        if (digits > 20) announced += "...";
        return refuse(client_error::reply_too_large,
                      (bulk ? "a bulk string of " + announced + " bytes"
                            : "an array of " + announced + " elements") +
                          " announced, beyond config::limits." +
                          (bulk ? "max_bulk_length" : "max_elements") + " (" +
                          std::to_string(max) + ")");
      }
      if (digits > 20) {
        return refuse(client_error::protocol_error,
                      std::string(bulk ? "bulk string" : "array") +
                          " length of more than 20 digits");
      }
      line_pending = std::string_view(first, scan).find("\r\n") == std::string_view::npos;
    }
    // The line's bytes so far, without a '\r' that may be the start of its end.
    const std::size_t line_bytes = pending - (pending > 0 && first[pending - 1] == '\r' ? 1 : 0);
    if (line_pending && line_bytes > lim.max_line_length) {
      return refuse(client_error::reply_too_large,
                    "a reply line of more than " + std::to_string(lim.max_line_length) +
                        " bytes, beyond config::limits.max_line_length");
    }
    return false;
  }

  // Gives back a parse buffer grown beyond buffer_keep once little of it is in use, by
  // replacing hiredis's reader with a fresh one (hiredis 0.14 exports no way to shrink the
  // buffer alone, and its own maxbuf check only runs when the next bytes arrive). Only between
  // top-level items: a reply's first item in progress (its type byte taken, its bytes pending)
  // is handed to the new reader again, type byte first; inside an array it waits for a later
  // call. Best effort: on any failure the old reader is kept.
  void release_buffer() noexcept {
    if (r_ == nullptr || r_->buf == nullptr || sdsalloc(r_->buf) <= buffer_keep) return;
    const std::size_t pending = r_->len - r_->pos;
    if (pending > buffer_keep / 2 || r_->ridx > 0) return;
    char marker = 0;
    if (const redisReadTask* t = current_task()) {
      switch (t->type) {
        case REDIS_REPLY_STRING: marker = '$'; break;
        case REDIS_REPLY_ARRAY: marker = '*'; break;
        case REDIS_REPLY_INTEGER: marker = ':'; break;
        case REDIS_REPLY_STATUS: marker = '+'; break;
        case REDIS_REPLY_ERROR: marker = '-'; break;
        default: return;
      }
    } else if (pending != 0) {
      return;  // (hiredis takes the type byte as soon as there is one)
    }
    redisReader* fresh = nullptr;
    try {
      std::string carry;
      if (marker != 0) {
        carry.reserve(pending + 1);
        carry.push_back(marker);
        carry.append(r_->buf + r_->pos, pending);
      }
      fresh = make(state_.get());
      if (!carry.empty() && redisReaderFeed(fresh, carry.data(), carry.size()) != REDIS_OK) {
        redisReaderFree(fresh);
        return;
      }
    } catch (...) {
      if (fresh != nullptr) redisReaderFree(fresh);
      return;
    }
    redisReaderFree(r_);
    r_ = fresh;
  }

  error_code fail_code() const noexcept {
    return failed_ ? failed_ : make_error_code(client_error::protocol_error);
  }

  error_code fail() {
    if (!failed_) {
      if (state_ && !state_->refused.empty()) {
        failed_ = make_error_code(state_->refused_code);
        message_ = state_->refused;
      } else {
        failed_ = make_error_code(client_error::protocol_error);
        message_ = (r_ != nullptr && r_->err != 0) ? r_->errstr : "protocol error";
      }
    }
    return failed_;
  }

  redisReader* r_ = nullptr;
  std::unique_ptr<detail::reader_state> state_;
  std::vector<reply> ready_;
  std::size_t head_ = 0;
  error_code failed_;
  std::string message_;
};

}  // namespace websession::redis
