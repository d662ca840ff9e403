// SPDX-License-Identifier: BSL-1.0
// The cipher that does nothing: an explicit, loudly named opt-out of encryption for debugging and
// for stores that are already trusted.
#pragma once

#include <websession/concepts.hpp>
#include <websession/error.hpp>

#include <boost/system/error_code.hpp>

#include <string>
#include <string_view>

namespace websession {

/// WARNING: NO PROTECTION AT ALL. seal and open copy the bytes unchanged: anyone who can read the
/// store reads every session (user ids, CSRF secrets, data), and anyone who can write to it can
/// forge or edit sessions, or copy one session's value under another storage key, without
/// detection. `aad` is ignored. Use it only to debug (readable values in the store) or when the
/// store is already trusted for both confidentiality and integrity; the default is
/// aes_gcm_cipher.
///
/// Stateless; seal and open may run on any number of threads at once.
class plaintext_cipher {
 public:
  /// Replaces `out` with `plain`. error::internal only if the allocation fails (`out` emptied).
  boost::system::error_code seal(std::string_view plain, std::string_view /*aad*/,
                                 std::string& out) const noexcept {
    return copy(plain, out);
  }

  /// Replaces `out` with `sealed`; never reports error::tampered, since nothing is checked.
  /// error::internal only if the allocation fails (`out` emptied).
  boost::system::error_code open(std::string_view sealed, std::string_view /*aad*/,
                                 std::string& out) const noexcept {
    return copy(sealed, out);
  }

 private:
  static boost::system::error_code copy(std::string_view in, std::string& out) noexcept {
    try {
      out.assign(in);  // std::string::assign copes with `in` viewing into `out`
      return {};
    } catch (...) {
      out.clear();
      return error::internal;
    }
  }
};

static_assert(cipher<plaintext_cipher>);

}  // namespace websession
