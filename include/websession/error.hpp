// SPDX-License-Identifier: BSL-1.0
// Error codes of websession: one enum, one boost::system category, so every expected failure
// travels as a boost::system::error_code and can be compared against websession::error::X.
#pragma once

#include <boost/system/error_code.hpp>

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
};

namespace detail {

class error_category_impl final : public boost::system::error_category {
 public:
  // A fixed id keeps the category unique even if this header is seen by several shared objects.
  constexpr error_category_impl() noexcept : boost::system::error_category(0x7765627365737331ULL) {}

  const char* name() const noexcept override { return "websession"; }

  std::string message(int ev) const override { return describe(ev); }

  const char* message(int ev, char*, std::size_t) const noexcept override { return describe(ev); }

 private:
  static const char* describe(int ev) noexcept {
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
    }
    return "unknown websession error";
  }
};

}  // namespace detail

/// The category of websession::error.
inline const boost::system::error_category& error_category() noexcept {
  static constexpr detail::error_category_impl instance;
  return instance;
}

inline boost::system::error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// Writes the error's message (for logs and test diagnostics).
inline std::ostream& operator<<(std::ostream& os, error e) {
  return os << error_category().message(static_cast<int>(e));
}

}  // namespace websession

template <>
struct boost::system::is_error_code_enum<websession::error> : std::true_type {};
