// SPDX-License-Identifier: BSL-1.0
// The record codec: a session (metadata and data) to the sealed bytes a store keeps under its
// storage key, and back, with the size caps; and the envelope (the metadata) alone, for
// listings. The one place where serializer and cipher meet.
#pragma once

#include <websession/concepts.hpp>
#include <websession/error.hpp>
#include <websession/session.hpp>

#include <boost/config.hpp>
#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/crypto.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace websession {

namespace detail {

// Wipes a string's characters when it goes out of scope (plaintext of sealed sessions).
struct wipe_on_exit {
  explicit wipe_on_exit(std::string& str) noexcept : s(str) {}
  std::string& s;
  wipe_on_exit(const wipe_on_exit&) = delete;
  wipe_on_exit& operator=(const wipe_on_exit&) = delete;
  ~wipe_on_exit() { OPENSSL_cleanse(s.data(), s.size()); }
};

// The reused plaintext buffer of this thread's opens. Not inlined: a coroutine calling the
// codec may resume on another thread, and a compiler may reuse a thread-local address it
// computed before a suspension; a call computes it afresh.
BOOST_NOINLINE inline std::string& plaintext_scratch() noexcept {
  thread_local std::string buffer;
  return buffer;
}

// Wipes and empties a reused buffer when it goes out of scope, keeping its capacity unless an
// unusually large value grew it (then the memory goes back to the allocator, wiped).
struct wipe_and_trim_on_exit {
  static constexpr std::size_t keep_capacity = 64 * 1024;
  explicit wipe_and_trim_on_exit(std::string& str) noexcept : s(str) {}
  std::string& s;
  wipe_and_trim_on_exit(const wipe_and_trim_on_exit&) = delete;
  wipe_and_trim_on_exit& operator=(const wipe_and_trim_on_exit&) = delete;
  ~wipe_and_trim_on_exit() {
    OPENSSL_cleanse(s.data(), s.size());
    s.clear();
    if (s.capacity() > keep_capacity) std::string().swap(s);
  }
};

}  // namespace detail

/// Seals sessions into stored records and opens them again: the serializer's bytes sealed by
/// the cipher with the storage key as associated data (a value copied under another key does
/// not open), within the size caps. basic_session_manager holds one and uses it for every load,
/// save, rotation and listing; tools that read or write the store directly (an administration
/// tool's probe) use the manager's (get_codec()).
///
/// The envelope is the session's metadata (times, deadlines, bound user, CSRF secret,
/// fingerprint); the version is the store's (store_record::version), not sealed. open_envelope
/// reads the envelope without the data where the serializer can (envelope_reading_serializer).
///
/// Thread safety: the const members may be called from several threads at once (the policies'
/// own contract). No plaintext is left behind in freed memory: the buffers it passes through
/// are wiped (the tree Boost.JSON parses into excepted).
template <serializer Serializer, cipher Cipher>
class record_codec {
 public:
  /// What sealing may add to a value (format and key id bytes, nonce, tag) is far below this: a
  /// stored value longer than max_value_bytes() plus this is refused unopened (malformed).
  static constexpr std::size_t seal_overhead_limit = 1024;

  /// `max_value_bytes`: the largest serialized session (options::max_value_bytes).
  record_codec(Serializer ser, Cipher cipher, std::size_t max_value_bytes)
      : ser_(std::move(ser)), cipher_(std::move(cipher)), max_value_bytes_(max_value_bytes) {}

  /// Replaces `out` with the sealed record of `meta` (its version aside) and `data` under
  /// storage key `key`. Errors: the serializer's (invalid_data), too_large (serialized beyond
  /// max_value_bytes), the cipher's.
  boost::system::error_code seal(const session_metadata& meta, const boost::json::object& data,
                                 std::string_view key, std::string& out) const {
    std::string plain;
    const detail::wipe_on_exit wipe{plain};
    if (auto ec = ser_.serialize(meta, data, plain)) return ec;
    if (plain.size() > max_value_bytes_) return error::too_large;
    return cipher_.seal(plain, key, out);
  }

  /// Opens `rec`, stored under `key`, into `meta` (with rec.version) and `data`. Errors:
  /// malformed (longer than the caps allow, or bytes the serializer cannot read), tampered (the
  /// cipher refused it: modified, an unknown key, or sealed under another storage key). On
  /// error `meta` and `data` are unspecified.
  boost::system::error_code open(const store_record& rec, std::string_view key,
                                 session_metadata& meta, boost::json::object& data) const {
    if (oversized(rec)) return error::malformed;
    // The plaintext lives in a buffer this thread reuses (wiped after each use): a fresh string
    // per load costs a large allocation and free. Nothing here suspends, so no other open on
    // this thread can reach the buffer meanwhile.
    std::string& plain = detail::plaintext_scratch();
    const detail::wipe_and_trim_on_exit wipe{plain};
    if (cipher_.open(rec.value, key, plain)) return error::tampered;
    if (ser_.deserialize(plain, meta, data)) return error::malformed;
    meta.version = rec.version;
    return {};
  }

  /// Opens `rec` for its envelope only: `meta` (with rec.version), as open() gives it. The data
  /// is not decoded when the serializer can skip it (json_serializer can), else decoded and
  /// dropped. Errors: as open().
  boost::system::error_code open_envelope(const store_record& rec, std::string_view key,
                                          session_metadata& meta) const {
    if (oversized(rec)) return error::malformed;
    std::string& plain = detail::plaintext_scratch();
    const detail::wipe_and_trim_on_exit wipe{plain};
    if (cipher_.open(rec.value, key, plain)) return error::tampered;
    if constexpr (envelope_reading_serializer<Serializer>) {
      if (ser_.deserialize_metadata(plain, meta)) return error::malformed;
    } else {
      boost::json::object ignored;
      if (ser_.deserialize(plain, meta, ignored)) return error::malformed;
    }
    meta.version = rec.version;
    return {};
  }

  const Serializer& get_serializer() const noexcept { return ser_; }
  const Cipher& get_cipher() const noexcept { return cipher_; }
  std::size_t max_value_bytes() const noexcept { return max_value_bytes_; }

 private:
  bool oversized(const store_record& rec) const noexcept {
    return rec.value.size() > max_value_bytes_ + seal_overhead_limit;
  }

  [[no_unique_address]] Serializer ser_;
  [[no_unique_address]] Cipher cipher_;
  std::size_t max_value_bytes_;
};

}  // namespace websession
