// SPDX-License-Identifier: BSL-1.0
// Whether a session opened from the store may be served: its deadlines and its client binding.
// The manager asks these after every load (and a listing the deadlines), so that each rule is
// written once.
#pragma once

#include <websession/clock.hpp>
#include <websession/error.hpp>
#include <websession/session.hpp>

#include <boost/system/error_code.hpp>

#include <openssl/crypto.h>

#include <string>
#include <string_view>

namespace websession::detail {

// error::expired at `now` past the idle or the absolute deadline; success otherwise.
inline boost::system::error_code check_live(const session_metadata& m, time_point now) noexcept {
  if (now >= m.idle_deadline || now >= m.absolute_deadline) return error::expired;
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

}  // namespace websession::detail
