// A request: one or more commands sent together (pipelined) and answered together, plus whether
// it may be sent again after a connection drops.
#pragma once

#include <websession/redis/resp.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace websession::redis {

/// One or more commands, encoded once when pushed and sent as one unit by connection::
/// async_exec, which completes with one reply per command, in order. Reusable after clear().
class request {
 public:
  request() = default;

  /// `idempotent`: see idempotent(bool).
  explicit request(bool idempotent) : idempotent_(idempotent) {}

  /// Appends one command, e.g. `push("SET", key, value, "PX", 5000)` or `push("DEL", keys)`
  /// with a range of keys. Arguments are binary-safe. Throws only std::bad_alloc.
  template <resp::argument... Args>
  request& push(std::string_view command, const Args&... args) {
    resp::append_command(payload_, command, args...);
    ++commands_;
    return *this;
  }

  /// Marks the request as safe to send twice (reads, or writes that give the same result when
  /// repeated, such as SET without a condition). A request that was sent but not answered when
  /// the connection dropped is then sent again after the reconnect (within its deadline);
  /// otherwise it fails with error::store_unavailable, because it may or may not have run.
  request& idempotent(bool on) noexcept {
    idempotent_ = on;
    return *this;
  }

  /// Whether the request may be sent again after a dropped connection.
  bool idempotent() const noexcept { return idempotent_; }

  /// The number of commands, which is the number of replies the request completes with.
  std::size_t size() const noexcept { return commands_; }

  /// True when no command was pushed.
  bool empty() const noexcept { return commands_ == 0; }

  /// The RESP2 bytes of all commands.
  std::string_view payload() const noexcept { return payload_; }

  /// Removes every command (keeps the buffer's capacity and the idempotent flag).
  void clear() noexcept {
    payload_.clear();
    commands_ = 0;
  }

  /// Reserves room for `bytes` of encoded commands.
  void reserve(std::size_t bytes) { payload_.reserve(bytes); }

 private:
  std::string payload_;
  std::size_t commands_ = 0;
  bool idempotent_ = false;
};

}  // namespace websession::redis
