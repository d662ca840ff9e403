// SPDX-License-Identifier: BSL-1.0
// A request: one or more commands sent together (pipelined) and answered together, plus whether
// it may be sent again after a connection drops.
#pragma once

#include <websession/redis/resp.hpp>
#include <websession/redis/slot.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace websession::redis {

namespace detail {
struct request_access;
}

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
  /// otherwise it fails with error::connection_lost, because it may or may not have run.
  request& idempotent(bool on) noexcept {
    idempotent_ = on;
    return *this;
  }

  /// Whether the request may be sent again after a dropped connection.
  bool idempotent() const noexcept { return idempotent_; }

  /// Routes the request by `key` on a Redis Cluster: it goes to the master serving
  /// hash_slot(key). Every key of every command of the request must hash to that slot (give
  /// them one hash tag); a request without a route goes to any master (PING, SCRIPT...). A
  /// single-node connection ignores the route.
  request& route(std::string_view key) noexcept {
    slot_ = hash_slot(key);
    return *this;
  }

  /// The slot set by route(), or -1.
  int slot() const noexcept { return slot_; }

  /// Makes the request durable: it completes only once `replicas` replicas have it, as a
  /// `WAIT replicas timeout` sent after it on the same connection says. The connection sends
  /// one WAIT for all the durable requests written since the last one (group commit; WAIT
  /// blocks the connection while it waits, so only one is in flight). When fewer replicas
  /// confirmed within `timeout`, the request completes with error::replicas_not_confirmed
  /// (error::connection_lost when the connection drops before WAIT answers): it ran on the
  /// master, but may be lost if the master fails before a replica has it. 0 (the default):
  /// no WAIT. `timeout` must stay below the connection's health_check_interval.
  request& wait_for_replicas(int replicas, std::chrono::milliseconds timeout) noexcept {
    wait_replicas_ = replicas;
    wait_timeout_ = timeout;
    return *this;
  }

  /// See wait_for_replicas.
  int wait_replicas() const noexcept { return wait_replicas_; }
  std::chrono::milliseconds wait_timeout() const noexcept { return wait_timeout_; }

  /// The number of commands, which is the number of replies the request completes with.
  std::size_t size() const noexcept { return commands_; }

  /// True when no command was pushed.
  bool empty() const noexcept { return commands_ == 0; }

  /// The RESP2 bytes of all commands.
  std::string_view payload() const noexcept { return payload_; }

  /// Removes every command and the route (keeps the buffer's capacity, the idempotent flag
  /// and wait_for_replicas).
  void clear() noexcept {
    payload_.clear();
    commands_ = 0;
    slot_ = -1;
  }

  /// Reserves room for `bytes` of encoded commands.
  void reserve(std::size_t bytes) { payload_.reserve(bytes); }

 private:
  friend struct detail::request_access;

  std::string payload_;
  std::size_t commands_ = 0;
  int slot_ = -1;
  int wait_replicas_ = 0;
  std::chrono::milliseconds wait_timeout_{0};
  bool idempotent_ = false;
};

namespace detail {
// What the cluster client needs beyond push: a command copied as encoded (for ASK).
struct request_access {
  static void append_encoded(request& r, std::string_view command) {
    r.payload_.append(command);
    ++r.commands_;
  }
};
}  // namespace detail

}  // namespace websession::redis
