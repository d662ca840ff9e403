// SPDX-License-Identifier: BSL-1.0
// Session ids: 256 bits from the CSPRNG plus a hash-slot tag, spelled `<43 base64url>.<tag>` in
// the cookie, and the storage keys derived from them (a session's key and its user's index key).
#pragma once

#include <websession/detail/base64url.hpp>
#include <websession/detail/sha256.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace websession {

/// A session id: 32 random bytes and a slot tag. The cookie carries its spelling (to_string);
/// the store only ever sees storage_key().
///
/// The slot tag (3 base64url characters) becomes the Redis Cluster hash tag of the storage key,
/// `prefix{tag}hash`, so it decides which hash slot (and which cluster node) holds the session.
/// A new anonymous session gets a random tag (sessions spread over all slots); a session bound
/// to a user gets the user's tag (user_slot_tag) when its id rotates at login, so that all of a
/// user's sessions and the user's index share one slot and per-user operations stay atomic on a
/// cluster. The tag carries no secret: it is chosen at random or derived from a hash of the user.
///
/// An id without a tag (43 characters, as issued before slot tags) still parses, and its storage
/// key is `prefix + hash`, so the sessions such cookies name stay valid.
class session_id {
 public:
  /// Bytes of randomness: 256 bits, far beyond guessing even with billions of live sessions.
  static constexpr std::size_t size = 32;
  /// Length of the random part's spelling (base64url without padding); also the whole length of
  /// an untagged (legacy) id.
  static constexpr std::size_t encoded_size = 43;
  static_assert(detail::base64url_encoded_size(size) == encoded_size);
  /// Characters of a slot tag (base64url: 2^18 tags, so every one of the 16384 slots is used).
  static constexpr std::size_t tag_size = 3;
  /// Length of a tagged id's spelling: the random part, '.', the tag.
  static constexpr std::size_t tagged_size = encoded_size + 1 + tag_size;

  /// A new id from OpenSSL RAND_bytes with a random slot tag. Throws std::runtime_error if the
  /// CSPRNG fails: an id from a weaker source would be guessable, so there is no fallback.
  static session_id generate() {
    session_id id = generate_untagged();
    unsigned char r[tag_size];
    if (!detail::random_fill(r, sizeof r)) {
      throw std::runtime_error("websession: RAND_bytes failed while generating a slot tag");
    }
    for (std::size_t i = 0; i < tag_size; ++i) id.tag_[i] = detail::base64url_alphabet[r[i] & 63];
    id.tagged_ = true;
    return id;
  }

  /// A new id with the given slot tag (for instance user_slot_tag(user)). Throws
  /// std::invalid_argument unless valid_tag(tag), std::runtime_error if the CSPRNG fails.
  static session_id generate(std::string_view tag) {
    if (!valid_tag(tag)) throw std::invalid_argument("websession: a slot tag is 3 base64url characters");
    session_id id = generate_untagged();
    for (std::size_t i = 0; i < tag_size; ++i) id.tag_[i] = tag[i];
    id.tagged_ = true;
    return id;
  }

  /// Whether `tag` is a slot tag: exactly tag_size base64url characters.
  static constexpr bool valid_tag(std::string_view tag) noexcept {
    if (tag.size() != tag_size) return false;
    for (char c : tag) {
      if (detail::base64url_values[static_cast<unsigned char>(c)] == 0xff) return false;
    }
    return true;
  }

  /// The id spelled by `cookie_value`, or nullopt unless it is exactly 43 characters of
  /// canonical unpadded base64url (an untagged id), optionally followed by '.' and a valid tag
  /// (any other length, a character outside the alphabet, padding, or nonzero unused bits in the
  /// 43rd character). Canonical-only means each id has exactly one spelling. Cheap on hostile
  /// input: the length is checked before anything is decoded.
  static std::optional<session_id> parse(std::string_view cookie_value) noexcept {
    if (cookie_value.size() != encoded_size && cookie_value.size() != tagged_size) {
      return std::nullopt;
    }
    session_id id;
    if (cookie_value.size() == tagged_size) {
      const std::string_view tag = cookie_value.substr(encoded_size + 1);
      if (cookie_value[encoded_size] != '.' || !valid_tag(tag)) return std::nullopt;
      for (std::size_t i = 0; i < tag_size; ++i) id.tag_[i] = tag[i];
      id.tagged_ = true;
    }
    if (!detail::base64url_decode_to(cookie_value.substr(0, encoded_size), id.bytes_.data())) {
      return std::nullopt;
    }
    return id;
  }

  /// The cookie spelling: 43 base64url characters, then '.' and the tag for a tagged id.
  /// Secret: whoever has it holds the session. Throws only std::bad_alloc.
  std::string to_string() const {
    std::string s(tagged_ ? tagged_size : encoded_size, '\0');
    detail::base64url_encode_to(bytes_.data(), size, s.data());
    if (tagged_) {
      s[encoded_size] = '.';
      for (std::size_t i = 0; i < tag_size; ++i) s[encoded_size + 1 + i] = tag_[i];
    }
    return s;
  }

  /// The key the store keeps this session under: `prefix{tag}` + base64url(SHA-256(bytes()))
  /// (`prefix` + the hash for an untagged id). It is a one-way hash of the id rather than the id
  /// itself so that a dump or read-only leak of the store (or its logs, or a replica) yields no
  /// usable session id: the cookie value cannot be recovered from the key. The hash needs no
  /// salt or stretching because the input is 256 random bits. Throws std::runtime_error if
  /// OpenSSL's SHA-256 fails and std::bad_alloc.
  std::string storage_key(std::string_view prefix) const {
    unsigned char digest[detail::sha256_size];
    if (!detail::sha256(bytes_.data(), size, digest)) {
      throw std::runtime_error("websession: SHA-256 failed while deriving a storage key");
    }
    std::string key;
    key.reserve(prefix.size() + tag_size + 2 + detail::base64url_encoded_size(sizeof digest));
    key.append(prefix);
    if (tagged_) {
      key += '{';
      key.append(tag_.data(), tag_size);
      key += '}';
    }
    detail::base64url_encode(digest, sizeof digest, key);
    return key;
  }

  /// The slot tag; empty for an untagged (legacy) id.
  std::string_view tag() const noexcept {
    return tagged_ ? std::string_view(tag_.data(), tag_size) : std::string_view();
  }

  /// The raw 32 bytes.
  const std::array<unsigned char, size>& bytes() const noexcept { return bytes_; }

  friend bool operator==(const session_id&, const session_id&) = default;

 private:
  // Private: an all-zero id must never escape; every id comes from generate() or parse().
  session_id() = default;

  static session_id generate_untagged() {
    session_id id;
    if (!detail::random_fill(id.bytes_.data(), size)) {
      throw std::runtime_error("websession: RAND_bytes failed while generating a session id");
    }
    return id;
  }

  std::array<unsigned char, size> bytes_{};
  std::array<char, tag_size> tag_{};
  bool tagged_ = false;
};

/// What stores see of a user id: base64url(HMAC-SHA256(key, user)), 43 characters. `key` is
/// the manager's user hash key (32 bytes, from the cipher: aes_gcm_cipher::user_hash_key),
/// so that without the secret a store dump cannot be matched against a dictionary of user
/// names, e-mail addresses or numeric ids. An empty `key` gives the unkeyed SHA-256(user): for
/// ciphers that have no secret, and to find sessions bound under unkeyed index names. Throws
/// std::runtime_error if OpenSSL fails, std::bad_alloc.
inline std::string user_hash(std::string_view user, std::string_view key = {}) {
  unsigned char digest[detail::sha256_size];
  if (key.empty()) {
    if (!detail::sha256(user.data(), user.size(), digest))
      throw std::runtime_error("websession: SHA-256 failed while hashing a user id");
  } else {
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(user.data()), user.size(), digest,
             &len) == nullptr ||
        len != detail::sha256_size)
      throw std::runtime_error("websession: HMAC-SHA256 failed while hashing a user id");
  }
  std::string out;
  detail::base64url_encode(digest, sizeof digest, out);
  return out;
}

/// The slot tag of `user`'s sessions: the first 3 characters of user_hash(user, key).
inline std::string user_slot_tag(std::string_view user, std::string_view key = {}) {
  std::string h = user_hash(user, key);
  h.resize(session_id::tag_size);
  return h;
}

/// The name of `user`'s index in a store: `prefix + "user:{" + tag + "}" + user_hash(user,
/// key)`, with the tag of user_slot_tag: the same hash tag as the user's session keys, so on a
/// Redis Cluster the index and the sessions share a slot. Storage keys contain no ':' after the
/// prefix, so an index name never equals a session key. Empty user: empty name.
inline std::string user_index_key(std::string_view prefix, std::string_view user,
                                  std::string_view key = {}) {
  if (user.empty()) return {};
  const std::string h = user_hash(user, key);
  std::string name;
  name.reserve(prefix.size() + 7 + session_id::tag_size + h.size());
  name.append(prefix).append("user:{").append(h, 0, session_id::tag_size).append("}").append(h);
  return name;
}

/// Whether `key` has the shape of a storage key made with `prefix` (session_id::storage_key):
/// the prefix, optionally `{tag}` with a valid slot tag, then 43 characters of canonical
/// base64url. Index names, other applications' keys and anything else are not.
inline bool is_storage_key(std::string_view key, std::string_view prefix) noexcept {
  if (!key.starts_with(prefix)) return false;
  std::string_view rest = key.substr(prefix.size());
  if (rest.size() == session_id::tag_size + 2 + session_id::encoded_size) {
    if (rest.front() != '{' || rest[session_id::tag_size + 1] != '}' ||
        !session_id::valid_tag(rest.substr(1, session_id::tag_size)))
      return false;
    rest.remove_prefix(session_id::tag_size + 2);
  }
  if (rest.size() != session_id::encoded_size) return false;
  unsigned char digest[detail::sha256_size];
  return detail::base64url_decode_to(rest, digest);
}

}  // namespace websession
