// SPDX-License-Identifier: BSL-1.0
// Clocks for the clock policy: the system clock by default, and manual_clock for tests, so
// expiry is tested by moving time, never by sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

namespace websession {

/// Time points of every websession clock: wall-clock time, because deadlines are stored
/// inside session values and must mean the same thing to every server instance.
using time_point = std::chrono::system_clock::time_point;

/// A clock whose time moves only when told to. Copies share one time, so a test can hand a copy
/// to the store and to the manager and move both at once. Thread-safe.
class manual_clock {
 public:
  /// Starts at 2026-01-01T00:00:00Z, a fixed instant so tests repeat. Not explicit, so that
  /// `Clock clock = {}` (a defaulted policy argument) works for it too.
  manual_clock() : manual_clock(time_point{std::chrono::seconds{1767225600}}) {}

  /// Starts at `start`.
  explicit manual_clock(time_point start)
      : now_(std::make_shared<std::atomic<time_point::rep>>(start.time_since_epoch().count())) {}

  time_point now() const noexcept {
    return time_point{time_point::duration{now_->load(std::memory_order_acquire)}};
  }

  /// Moves time forward (or backward, with a negative duration).
  template <class Rep, class Period>
  void advance(std::chrono::duration<Rep, Period> d) noexcept {
    now_->fetch_add(std::chrono::duration_cast<time_point::duration>(d).count(),
                    std::memory_order_acq_rel);
  }

  void set(time_point t) noexcept {
    now_->store(t.time_since_epoch().count(), std::memory_order_release);
  }

 private:
  std::shared_ptr<std::atomic<time_point::rep>> now_;
};

}  // namespace websession
