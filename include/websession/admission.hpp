// SPDX-License-Identifier: BSL-1.0
// Whether a session opened from the store may be served: its deadlines, its user's valid-after
// time, and its client binding. The manager asks these after every load (and a listing the
// first two), so that each rule is written once.
#pragma once

#include <websession/clock.hpp>
#include <websession/error.hpp>
#include <websession/session.hpp>

#include <boost/system/error_code.hpp>

#include <openssl/crypto.h>

#include <functional>
#include <string>
#include <string_view>

namespace websession {

/// The application's "valid after" time of `user` (basic_session_manager::set_valid_after):
/// the user's sessions sealed at or before it are refused with error::revoked; time_point{}
/// (the epoch) when there is none. Kept outside the store (a column of the user table, say,
/// set to now by "log out everywhere"), so that a store that was written to cannot undo it.
/// Called on the thread of the operation for every load and listing of a session bound to a
/// user: it must be thread-safe, fast (an in-memory lookup) and must not block; what it throws
/// ends the operation with error::internal.
using valid_after_source = std::function<time_point(std::string_view user)>;

namespace detail {

// error::expired at `now` past the idle or the absolute deadline; error::revoked for a session
// of a user whose valid-after time (`valid_after`, if set) is at or after the session's last
// write (last_seen: every write seals the value anew with it); success otherwise.
inline boost::system::error_code check_live(const session_metadata& m, time_point now,
                                            const valid_after_source& valid_after = {}) {
  if (now >= m.idle_deadline || now >= m.absolute_deadline) return error::expired;
  if (valid_after && !m.user.empty() && m.last_seen <= valid_after(m.user)) return error::revoked;
  return {};
}

enum class binding { match, adopted, mismatch };

// Client binding: `stored` is the session's fingerprint, `client` the request's (see
// http::client_fingerprint). An empty `client` checks nothing (match); a session stored
// without a fingerprint takes the client's (adopted: it must be written); another fingerprint
// is a mismatch (compared in constant time).
inline binding check_binding(std::string& stored, std::string_view client) {
  if (client.empty()) return binding::match;
  if (stored.empty()) {
    stored = std::string(client);
    return binding::adopted;
  }
  if (stored.size() != client.size() ||
      CRYPTO_memcmp(stored.data(), client.data(), stored.size()) != 0)
    return binding::mismatch;
  return binding::match;
}

}  // namespace detail
}  // namespace websession
