// SPDX-License-Identifier: BSL-1.0
// The health check of a connection as a pure decision: from what was last read and written
// and what is awaited, whether the server is presumed dead, owes nothing and may get a PING,
// or is fine. The driver asks it on a timer; the multiplexer gathers the facts.
#pragma once

#include <algorithm>
#include <chrono>

namespace websession::redis::detail {

/// What the health check sees of a connection at one moment.
struct health_facts {
  using time_point = std::chrono::steady_clock::time_point;
  /// A write is in progress, last advanced at last_write.
  bool writing = false;
  time_point last_write{};
  /// Bytes last received.
  time_point last_read{};
  /// Requests are in flight; the oldest was fully written at oldest_sent (zero while its write
  /// is still going on).
  bool awaiting = false;
  time_point oldest_sent{};
  /// Nothing queued, nothing being written, no PING outstanding.
  bool idle = false;
};

enum class health_verdict : unsigned char {
  fine,
  /// A write made no progress for the interval: the server does not read.
  stalled_write,
  /// Replies are awaited and nothing at all arrived for the interval.
  silent,
  /// Idle for the interval: send a PING (never under load: traffic itself proves the link).
  ping,
};

/// Replies are matched in order, so the oldest request in flight is the one the server must
/// answer next: if it was fully sent `interval` ago and nothing arrived since, the server is
/// dead, hung, or unreachable (which TCP alone may take many minutes to notice). Later requests
/// never reset this clock, so steady traffic to a dead server is detected as fast as one request.
inline health_verdict check_health(const health_facts& f, std::chrono::steady_clock::time_point now,
                                   std::chrono::milliseconds interval) {
  if (f.writing && now - f.last_write >= interval) return health_verdict::stalled_write;
  if (f.awaiting) {
    if (f.oldest_sent != health_facts::time_point{} &&
        now - std::max(f.last_read, f.oldest_sent) >= interval) {
      return health_verdict::silent;
    }
    return health_verdict::fine;
  }
  if (f.idle && now - std::max(f.last_read, f.last_write) >= interval) return health_verdict::ping;
  return health_verdict::fine;
}

/// How often the driver asks: a quarter interval bounds the detection delay to 1.25 intervals.
inline std::chrono::milliseconds health_tick(std::chrono::milliseconds interval) {
  return std::max(interval / 4, std::chrono::milliseconds(1));
}

}  // namespace websession::redis::detail
