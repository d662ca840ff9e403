// Session ids: 256 bits from the CSPRNG, spelled as 43 base64url characters in the cookie, and
// the storage key derived from them.
#pragma once

#include <websession/detail/base64url.hpp>
#include <websession/detail/sha256.hpp>


#include <array>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace websession {

/// A session id: 32 random bytes. The cookie carries its base64url spelling (to_string); the
/// store only ever sees storage_key().
class session_id {
 public:
  /// Bytes of randomness: 256 bits, far beyond guessing even with billions of live sessions.
  static constexpr std::size_t size = 32;
  /// Length of the cookie spelling (base64url without padding).
  static constexpr std::size_t encoded_size = 43;
  static_assert(detail::base64url_encoded_size(size) == encoded_size);

  /// A new id from OpenSSL RAND_bytes. Throws std::runtime_error if the CSPRNG fails: an id from
  /// a weaker source would be guessable, so there is no fallback.
  static session_id generate() {
    session_id id;
    if (!detail::random_fill(id.bytes_.data(), size)) {
      throw std::runtime_error("websession: RAND_bytes failed while generating a session id");
    }
    return id;
  }

  /// The id spelled by `cookie_value`, or nullopt unless it is exactly 43 characters of
  /// canonical unpadded base64url (any other length, a character outside the alphabet, padding,
  /// or nonzero unused bits in the last character). Canonical-only means each id has exactly one
  /// spelling. Cheap on hostile input: the length is checked before anything is decoded.
  static std::optional<session_id> parse(std::string_view cookie_value) noexcept {
    if (cookie_value.size() != encoded_size) return std::nullopt;
    session_id id;
    if (!detail::base64url_decode_to(cookie_value, id.bytes_.data())) return std::nullopt;
    return id;
  }

  /// The cookie spelling: 43 base64url characters. Secret: whoever has it holds the session.
  /// Throws only std::bad_alloc.
  std::string to_string() const {
    std::string s(encoded_size, '\0');
    detail::base64url_encode_to(bytes_.data(), size, s.data());
    return s;
  }

  /// The key the store keeps this session under: `prefix` + base64url(SHA-256(bytes())), i.e.
  /// prefix + 43 characters. It is a one-way hash of the id rather than the id itself so that a
  /// dump or read-only leak of the store (or its logs, or a replica) yields no usable session
  /// id: the cookie value cannot be recovered from the key. The hash needs no salt or stretching
  /// because the input is 256 random bits. Throws std::runtime_error if OpenSSL's SHA-256 fails
  /// and std::bad_alloc.
  std::string storage_key(std::string_view prefix) const {
    unsigned char digest[detail::sha256_size];
    if (!detail::sha256(bytes_.data(), size, digest)) {
      throw std::runtime_error("websession: SHA-256 failed while deriving a storage key");
    }
    std::string key;
    key.reserve(prefix.size() + detail::base64url_encoded_size(sizeof digest));
    key.append(prefix);
    detail::base64url_encode(digest, sizeof digest, key);
    return key;
  }

  /// The raw 32 bytes.
  const std::array<unsigned char, size>& bytes() const noexcept { return bytes_; }

  friend bool operator==(const session_id&, const session_id&) = default;

 private:
  // Private: an all-zero id must never escape; every id comes from generate() or parse().
  session_id() = default;

  std::array<unsigned char, size> bytes_{};
};

}  // namespace websession
