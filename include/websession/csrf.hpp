// SPDX-License-Identifier: BSL-1.0
// CSRF synchronizer tokens derived from a session's CSRF secret: a fresh random salt per token
// (so tokens differ in every response, which defeats BREACH), checked in constant time.
#pragma once

#include <websession/detail/base64url.hpp>
#include <websession/session.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace websession {

// Format: base64url(salt[16] || HMAC-SHA256(csrf_secret, "websession-csrf-v1" || salt)).
//
// Why salted rather than one fixed HMAC per session: a fixed token sits in every page beside
// attacker-influenced text, and HTTP compression then leaks it byte by byte (BREACH). Rails and
// Django mask a fixed token with a per-response one-time pad; a random salt under the MAC has the
// same effect with one primitive and no unmasking step. Every token stays valid until the secret
// changes (id rotation), so several open tabs and forms keep working. 128 bits of salt never
// repeat in practice; the full 256-bit MAC is kept.
namespace detail {

inline constexpr std::string_view csrf_label = "websession-csrf-v1";
inline constexpr std::size_t csrf_salt_size = 16;
inline constexpr std::size_t csrf_mac_size = 32;
inline constexpr std::size_t csrf_raw_size = csrf_salt_size + csrf_mac_size;

// HMAC-SHA256(secret, label || salt). Returns false if OpenSSL fails.
inline bool csrf_mac(std::string_view secret, const unsigned char* salt,
                     unsigned char (&mac)[csrf_mac_size]) noexcept {
  unsigned char msg[csrf_label.size() + csrf_salt_size];
  for (std::size_t i = 0; i < csrf_label.size(); ++i)
    msg[i] = static_cast<unsigned char>(csrf_label[i]);
  for (std::size_t i = 0; i < csrf_salt_size; ++i) msg[csrf_label.size() + i] = salt[i];
  unsigned int len = 0;
  const unsigned char* r = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), msg,
                                sizeof msg, mac, &len);
  return r != nullptr && len == csrf_mac_size;
}

}  // namespace detail

/// Length of every token csrf_token returns (base64url of 48 bytes).
inline constexpr std::size_t csrf_token_size =
    detail::base64url_encoded_size(detail::csrf_raw_size);

/// A new CSRF token for `s`, to embed in a form field or send in a header; each call returns a
/// different token (random salt), and every one verifies until the session's id rotates (the
/// manager then renews the CSRF secret). URL-safe: 64 base64url characters.
///
/// A token is only useful if the session is stored: a fresh session that nobody wrote to is not
/// saved by the HTTP glue, so when issuing a token to such a session (a login form), call
/// s.mark_dirty() too.
///
/// Throws std::invalid_argument if `s` has no CSRF secret (it did not come from a manager),
/// std::runtime_error if OpenSSL's CSPRNG or HMAC fails.
inline std::string csrf_token(const session& s) {
  const std::string& secret = s.metadata().csrf_secret;
  if (secret.empty())
    throw std::invalid_argument("websession csrf_token: the session has no CSRF secret");
  unsigned char raw[detail::csrf_raw_size];
  unsigned char mac[detail::csrf_mac_size];
  if (!detail::random_fill(raw, detail::csrf_salt_size))
    throw std::runtime_error("websession csrf_token: RAND_bytes failed");
  if (!detail::csrf_mac(secret, raw, mac))
    throw std::runtime_error("websession csrf_token: HMAC failed");
  for (std::size_t i = 0; i < detail::csrf_mac_size; ++i) raw[detail::csrf_salt_size + i] = mac[i];
  std::string token(csrf_token_size, '\0');
  detail::base64url_encode_to(raw, sizeof raw, token.data());
  return token;
}

/// True if `token` is a CSRF token issued by csrf_token for this session's current CSRF secret.
/// The MAC is compared with CRYPTO_memcmp (constant time). False, never an exception, for
/// anything else: the empty string, a token of any other length, characters outside base64url,
/// a token of another session or from before an id rotation, a session without a secret, or an
/// OpenSSL failure.
inline bool verify_csrf(const session& s, std::string_view token) noexcept {
  const std::string& secret = s.metadata().csrf_secret;
  if (secret.empty() || token.size() != csrf_token_size) return false;
  unsigned char raw[detail::csrf_raw_size];
  if (!detail::base64url_decode_to(token, raw)) return false;
  unsigned char mac[detail::csrf_mac_size];
  if (!detail::csrf_mac(secret, raw, mac)) return false;
  const bool ok = CRYPTO_memcmp(mac, raw + detail::csrf_salt_size, detail::csrf_mac_size) == 0;
  OPENSSL_cleanse(mac, sizeof mac);
  return ok;
}

}  // namespace websession
