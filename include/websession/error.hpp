// SPDX-License-Identifier: BSL-1.0
// Error codes of websession: what happened (enum error) and what kind of failure it is (enum
// condition), each with its boost::system category, so every expected failure travels as a
// boost::system::error_code that compares with websession::error::X and websession::condition::Y.
#pragma once

#include <websession/detail/error_category.hpp>

#include <boost/system/error_code.hpp>
#include <boost/system/error_condition.hpp>

#include <ostream>
#include <string>
#include <type_traits>

namespace websession {

/// Expected failures of session operations. Values are stable (they may be logged).
enum class error {
  /// No session is stored under that id (never created, destroyed, rotated away, swept).
  not_found = 1,
  /// The session existed but its idle or absolute deadline has passed.
  expired,
  /// The stored value failed authentication: modified, sealed with an unknown key, or moved
  /// under another storage key.
  tampered,
  /// Input that is not of the expected shape: a cookie value that is not a session id, a stored
  /// value the serializer cannot read.
  malformed,
  /// The stored version is not the one that was loaded (a concurrent save won), or an
  /// `async_update` ran out of attempts.
  conflict,
  /// The store is full (max sessions or max bytes). The memory store evicts its least recently
  /// used anonymous sessions to make room; logged-in sessions are never evicted.
  capacity,
  /// The store could not be reached or answered with a failure.
  store_unavailable,
  /// The store did not answer before the deadline.
  timeout,
  /// The serialized session is larger than `options::max_value_bytes`.
  too_large,
  /// The session object is not usable for this call (default-constructed or destroyed).
  invalid_session,
  /// An unexpected exception was raised inside an operation (allocation failure, a throwing
  /// user callback); it is reported here instead of escaping into the server.
  internal,
  /// The session data cannot be stored because it could not be read back: a string that is not
  /// valid UTF-8, or nesting deeper than the serializer reads (see json_serializer).
  invalid_data,
  /// A save of a stored session whose bound user changed: the id must change with the binding
  /// (async_rotate), or a planted id would become the new user's session.
  rotation_required,
  /// The argument is not of the shape the operation takes (for example a storage key that is
  /// not one of this manager's session keys).
  invalid_argument,
  /// The stored value was sealed at or before its user's valid-after time
  /// (basic_session_manager::set_valid_after): revoked by the application ("log out
  /// everywhere"), and still or again in the store (an old value restored by someone who can
  /// write to the store).
  revoked,
};

/// What kind of failure an error is: compare a code with a condition (`if (ec ==
/// websession::condition::store_unreachable)`) instead of listing errors. Every websession::error
/// belongs to exactly one condition; docs/reference.md has the table. Codes of other categories
/// (operation_aborted after a cancellation) belong to none.
enum class condition {
  /// The session ended or was never there: not_found, expired, revoked. A request carries on
  /// with a fresh session.
  session_gone = 1,
  /// What the client sent (a cookie) or what was stored for it cannot be trusted: malformed,
  /// tampered. A request carries on with a fresh session; the stored value is left alone.
  client_input,
  /// The store could not be reached or did not answer in time: store_unavailable, timeout.
  /// Retry later (HTTP 503); fallback_store switches to its secondary on these.
  store_unreachable,
  /// The store answered but has no room: capacity. Retry later (HTTP 503).
  store_full,
  /// Another write won: conflict. Reload and reapply (async_update does).
  conflict,
  /// The call or the session data cannot be served as given, whatever the store or the client
  /// do: too_large, invalid_data, invalid_session, rotation_required, invalid_argument. A bug
  /// or a limit in the application.
  invalid_use,
  /// An unexpected exception inside an operation: internal.
  internal,
};

namespace detail {

struct condition_traits {
  static constexpr unsigned long long id = 0x7765627365737332ULL;
  static constexpr const char* name = "websession.condition";
  static const char* message(int cv) noexcept {
    switch (static_cast<condition>(cv)) {
      case condition::session_gone: return "the session ended or was never there";
      case condition::client_input: return "the client's cookie or the stored value is not trusted";
      case condition::store_unreachable: return "the session store could not be reached";
      case condition::store_full: return "the session store is full";
      case condition::conflict: return "a concurrent write won";
      case condition::invalid_use: return "the call or the session data cannot be served as given";
      case condition::internal: return "unexpected exception inside a session operation";
    }
    return "unknown websession condition";
  }
};

struct error_traits {
  // A fixed id keeps the category unique even if this header is seen by several shared objects.
  static constexpr unsigned long long id = 0x7765627365737331ULL;
  static constexpr const char* name = "websession";

  static const char* message(int ev) noexcept {
    switch (static_cast<error>(ev)) {
      case error::not_found: return "session not found";
      case error::expired: return "session expired";
      case error::tampered: return "session value failed authentication";
      case error::malformed: return "malformed session id or value";
      case error::conflict: return "session was changed concurrently";
      case error::capacity: return "session store is full";
      case error::store_unavailable: return "session store unavailable";
      case error::timeout: return "session store timed out";
      case error::too_large: return "session value exceeds the size limit";
      case error::invalid_session: return "session object is not valid for this operation";
      case error::internal: return "unexpected exception inside a session operation";
      case error::invalid_data: return "session data cannot be stored (invalid UTF-8 or nested too deep)";
      case error::rotation_required: return "the bound user changed: rotate the session id to store it";
      case error::invalid_argument: return "argument is not of the expected shape";
      case error::revoked: return "session was revoked (sealed before its user's valid-after time)";
    }
    return "unknown websession error";
  }

  // The one place that says what kind of failure each error is.
  static constexpr condition condition_of(error e) noexcept {
    switch (e) {
      case error::not_found:
      case error::expired:
      case error::revoked: return condition::session_gone;
      case error::malformed:
      case error::tampered: return condition::client_input;
      case error::store_unavailable:
      case error::timeout: return condition::store_unreachable;
      case error::capacity: return condition::store_full;
      case error::conflict: return condition::conflict;
      case error::too_large:
      case error::invalid_data:
      case error::invalid_session:
      case error::rotation_required:
      case error::invalid_argument: return condition::invalid_use;
      case error::internal: break;
    }
    return condition::internal;
  }

  // Values outside the enum (never made by websession) are their own condition.
  static boost::system::error_condition default_condition(int ev) noexcept {
    if (ev < static_cast<int>(error::not_found) || ev > static_cast<int>(last))
      return {ev, category_of<error_traits>()};
    return {static_cast<int>(condition_of(static_cast<error>(ev))), category_of<condition_traits>()};
  }
  static constexpr error last = error::revoked;
};

}  // namespace detail

/// The category of websession::error ("websession"). Its default_error_condition() is the
/// code's websession::condition.
inline const boost::system::error_category& error_category() noexcept {
  return detail::category_of<detail::error_traits>();
}

/// The category of websession::condition ("websession.condition").
inline const boost::system::error_category& condition_category() noexcept {
  return detail::category_of<detail::condition_traits>();
}

inline boost::system::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

inline boost::system::error_condition make_error_condition(condition c) noexcept {
  return {static_cast<int>(c), condition_category()};
}

/// Writes the error's message (for logs and test diagnostics).
inline std::ostream& operator<<(std::ostream& os, error e) {
  return os << error_category().message(static_cast<int>(e));
}

/// Writes the condition's message.
inline std::ostream& operator<<(std::ostream& os, condition c) {
  return os << condition_category().message(static_cast<int>(c));
}

}  // namespace websession

template <>
struct boost::system::is_error_code_enum<websession::error> : std::true_type {};

template <>
struct boost::system::is_error_condition_enum<websession::condition> : std::true_type {};
