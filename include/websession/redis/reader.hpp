// An I/O-free RESP2 parser: bytes in, redis::reply values out. It wraps hiredis's redisReader
// (a small, fuzzed parser) with callbacks that build our own reply type.
#pragma once

#include <websession/concepts.hpp>
#include <websession/redis/error.hpp>
#include <websession/redis/reply.hpp>

#include <hiredis/hiredis.h>

#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace websession::redis {

namespace detail {

// hiredis calls these while parsing. An element of an array is built in place inside its
// parent's `elements` (sized when the array was created, so the pointers stay valid); only a
// top-level reply is allocated, and hiredis frees only top-level replies. Exceptions must not
// cross the C code: any failure returns NULL, which hiredis turns into a reader error.
struct reply_builder {
  static reply* slot(const redisReadTask* task) {
    if (task->parent != nullptr) {
      auto* parent = static_cast<reply*>(task->parent->obj);
      return &parent->elements.at(static_cast<std::size_t>(task->idx));
    }
    return new reply;
  }

  static void* create_string(const redisReadTask* task, char* str, size_t len) noexcept {
    reply* r = nullptr;
    try {
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
      r = slot(task);
      r->type = reply_type::array;
      r->elements.resize(static_cast<std::size_t>(std::max(elements, 0)));
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
/// keeps failing with client_error::protocol_error; drop the connection and `reset` (or make a
/// new reader) for the next one.
class reader {
 public:
  /// Throws std::bad_alloc if hiredis cannot allocate its parser.
  reader() : r_(make()) {}

  reader(reader&& other) noexcept
      : r_(std::exchange(other.r_, nullptr)),
        ready_(std::move(other.ready_)),
        head_(std::exchange(other.head_, 0)),
        failed_(std::exchange(other.failed_, false)),
        message_(std::move(other.message_)) {}

  reader& operator=(reader&& other) noexcept {
    if (this != &other) {
      destroy();
      r_ = std::exchange(other.r_, nullptr);
      ready_ = std::move(other.ready_);
      head_ = std::exchange(other.head_, 0);
      failed_ = std::exchange(other.failed_, false);
      message_ = std::move(other.message_);
    }
    return *this;
  }

  reader(const reader&) = delete;
  reader& operator=(const reader&) = delete;

  ~reader() { destroy(); }

  /// Appends `n` bytes of the stream and parses every reply they complete (replies then wait
  /// for `next`). Returns client_error::protocol_error when the bytes are not RESP2 or the
  /// reader was already dead (replies completed before the bad bytes can still be taken with
  /// `next`); the hiredis message is in error_message(). Throws std::bad_alloc.
  boost::system::error_code feed(const char* data, std::size_t n) {
    if (failed_ || r_ == nullptr) return fail_code();
    // hiredis moves its unparsed remainder to the front of its buffer after each reply, so
    // feeding a large read at once would cost time quadratic in the number of replies it holds.
    while (n > 0) {
      const std::size_t c = std::min(n, chunk_size);
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
    }
    return {};
  }

  /// The next complete reply; an empty optional when more bytes are needed;
  /// client_error::protocol_error once every reply parsed before a protocol error was taken.
  result<std::optional<reply>> next() {
    if (head_ < ready_.size()) {
      std::optional<reply> out(std::move(ready_[head_]));
      if (++head_ == ready_.size()) {
        ready_.clear();
        head_ = 0;
      }
      return out;
    }
    if (failed_ || r_ == nullptr) return fail_code();
    return std::optional<reply>();
  }

  /// True after a protocol error.
  bool failed() const noexcept { return failed_; }

  /// hiredis's description of the protocol error; empty if none.
  std::string_view error_message() const noexcept { return message_; }

  /// Forgets all input, parsed replies and errors (for a new connection).
  /// Throws std::bad_alloc.
  void reset() {
    redisReader* fresh = make();
    destroy();
    r_ = fresh;
    ready_.clear();
    head_ = 0;
    failed_ = false;
    message_.clear();
  }

  /// Bytes are handed to hiredis in pieces of at most this size (see feed).
  static constexpr std::size_t chunk_size = 4096;

 private:
  static redisReader* make() {
    redisReader* r = redisReaderCreateWithFunctions(detail::reply_builder::table());
    if (r == nullptr) throw std::bad_alloc();
    // Never shrink the buffer: session values may be large, and shrinking then regrowing it
    // on every big value costs more than the memory kept.
    r->maxbuf = 0;
    return r;
  }

  void destroy() noexcept {
    if (r_ != nullptr) redisReaderFree(r_);
    r_ = nullptr;
  }

  static boost::system::error_code fail_code() noexcept {
    return make_error_code(client_error::protocol_error);
  }

  boost::system::error_code fail() {
    if (!failed_) {
      failed_ = true;
      message_ = (r_ != nullptr && r_->err != 0) ? r_->errstr : "protocol error";
    }
    return fail_code();
  }

  redisReader* r_ = nullptr;
  std::vector<reply> ready_;
  std::size_t head_ = 0;
  bool failed_ = false;
  std::string message_;
};

}  // namespace websession::redis
