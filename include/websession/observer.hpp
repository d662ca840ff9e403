// SPDX-License-Identifier: BSL-1.0
// What a session manager tells an observer hook (an audit trail): sessions created, destroyed,
// rotated, expired, tampered with or evicted, by storage key.
#pragma once

#include <functional>
#include <string_view>

namespace websession {

/// `evicted`: destroyed because its user logged in once more than max_sessions_per_user allows.
enum class session_event_kind { created, destroyed, rotated, expired, tampered, evicted };

/// What the observer hook is told. Views are valid only during the call.
struct session_event {
  session_event_kind kind;
  /// The storage key (hashed id; safe to log). For `rotated`, the new key.
  std::string_view storage_key;
  /// For `rotated`, the key before the rotation; otherwise empty.
  std::string_view previous_key;
  /// The bound user, when known.
  std::string_view user;
};

/// Called synchronously on the thread that ran the operation; must be cheap and thread-safe.
/// Exceptions it throws are swallowed.
using session_observer = std::function<void(const session_event&)>;

namespace detail {

// Tells `observer` (if set) of `event`. An audit hook must not turn a successful operation into
// a failed one: what it throws is swallowed.
inline void notify(const session_observer& observer, const session_event& event) noexcept {
  if (!observer) return;
  try {
    observer(event);
  } catch (...) {
  }
}

}  // namespace detail
}  // namespace websession
